"""`generate`: LLaDA's sampler, drop-in, on warmkern's fused ops — plus Fast-dLLM modes, Dream's
schedule and arguments (top_p, top_k, alg_temp, eps, hooks) and warm starting from an autoregressive draft.

The loop is semi-autoregressive over blocks of the answer. Inside a block every step is one model
forward and one `ops.denoise_step`. Its parts, one concern each:

- `config`: the arguments, validated before any forward, frozen into one `SamplerConfig`;
- `plan`: the block plan (steps per row, which rows take part in step i with which rule, growth by
  remasks, when the host reads the device: once per block for fixed schedules, plus once per step run
  beyond the block-start plan; once per step for threshold/factor);
- `state`: buffers, counts, the host reads and the ops call (`_op_arguments`, the one place op arguments are
  built); `forward`: the model call (CFG mirror, embedding inputs, logits checks); `warm`: the warm starts
  (token injection, embedding mixing, the draft prior); `hooks`: Dream's generation hooks;
- `stats`: `GenerationStats`, the one NFE definition, timing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from warmkern.models import ModelAdapter
from warmkern.sampler.config import REMASKING, SCHEDULES, SamplerConfig
from warmkern.sampler.plan import BlockPlan
from warmkern.sampler.state import DecodingState
from warmkern.sampler.stats import Clock, GenerationStats, StepLog
from warmkern.warmstart import WarmStart

__all__ = ["REMASKING", "SCHEDULES", "GenerationStats", "SamplerConfig", "generate"]


# Over 60 lines only by its drop-in LLaDA signature and its user documentation: the body is a 25-line loop.
@torch.no_grad()
def generate(
    model,
    prompt: Tensor,
    attention_mask: Tensor | None = None,
    steps: int = 128,
    gen_length: int = 128,
    block_length: int = 128,
    temperature: float = 0.0,
    cfg_scale: float = 0.0,
    remasking: str = "low_confidence",
    mask_id: int = 126336,
    logits_eos_inf: bool = False,
    confidence_eos_eot_inf: bool = False,
    *,
    threshold: float | None = None,
    factor: float | None = None,
    score: str | None = None,
    schedule: str = "llada",
    logits_shift: bool = False,
    eos_id: int = 126081,
    eot_id: int = 126348,
    warm_start: WarmStart | None = None,
    seed: int | Sequence[int] | Tensor = 0,
    top_p: float | None = None,
    top_k: int | None = None,
    alg_temp: float | None = None,
    eps: float = 1e-3,
    generation_logits_hook_func: Callable | None = None,
    generation_tokens_hook_func: Callable | None = None,
    backend: str | None = None,
    progress: bool = False,
    return_stats: bool = False,
) -> Tensor | tuple[Tensor, GenerationStats]:
    """Sample `gen_length` tokens after `prompt` (left padded, `[B, P]`); returns `[B, P + G]`.

    Cold start reproduces LLaDA's `generate` (same arguments, same tokens at temperature 0; x0 never
    is `mask_id`, ties go to the lower position). `confidence_eos_eot_inf` is LLaDA's rule exactly: x0 is
    drawn from the full logits, then EOS and EOT (T = 0) or EOT alone (T > 0) leave the softmax the
    confidence reads, so the other confidences renormalise and an EOS / EOT proposal has confidence 0.
    A prompt holding `mask_id` is infilled as LLaDA does it: every masked position before the current
    block's end is a candidate, while each block commits as many tokens as it held masks at its start (so,
    as in LLaDA, as many positions as the prompt held masks stay masked in the output); schedule 'llada'
    without threshold/factor only. Keyword-only extensions:

    - threshold / factor: Fast-dLLM parallel decoding. A block ends once it has no masks; `steps`
      stays an upper bound: a block's last planned step commits everything still masked.
    - score: 'prob' | 'margin' | 'entropy' | 'random' (default from `remasking`).
    - schedule='dream': k = floor(m (1 - s/t)) on linspace(1, eps, n + 1) per block, the rest at the last
      step; with logits_shift=True (position i read at i-1) and one block this is Dream's
      diffusion_generate (alg maskgit_plus / topk_margin / entropy -> score prob / margin / entropy).
    - top_p / top_k / alg_temp / eps: Dream's, same names and meanings. top_p then top_k truncate the
      tempered logits before the sample and the confidence, even at temperature 0 (None = off);
      alg_temp > 0 commits a sample without replacement from softmax(confidence / alg_temp) instead of
      the top k (fixed schedules only); eps is the last timestep of Dream's schedule.
    - generation_logits_hook_func(step, x, logits) -> logits runs after each forward, before the fused
      step; generation_tokens_hook_func(step, x, logits) -> x once before the loop (step None, logits
      None) and after each step. Dream's signatures: x is the whole sequence [B, P + G], logits
      [B, P + G, V] aligned with it (shifted with logits_shift); step counts forwards from 0. The way to
      port Dream-style constrained decoding (banned tokens, fixed spans). With CFG the logits hook runs
      on the conditional, then the unconditional logits. Tokens the hook writes are final; they do not
      shorten a block's plan (as in Dream, k follows the masks left).
    - Each block plans ceil(masked_at_block_start * steps / gen_length) steps and runs until it has
      no masks; with remasking on, a block holding injected tokens runs at least one step so the dLLM
      sees each of them, and remasked tokens grow their row's plan (`WarmStart.remask_budget`;
      threshold/factor move their forced last step with it; Dream's ratios cover the block-start
      plan, LLaDA's k = ceil(masked / steps left) the steps it grew by).
    - warm_start: see `WarmStart` (token injection, embedding mixing, the draft as a logit prior).
    - seed: an int (every row uses it) or per-row seeds (a sequence of B ints or a [B] int64 tensor).
      All random numbers (Gumbel noise, random scores, the warm-start keep mask, alg_temp) are Philox
      keyed by the row's seed, the position in its region and the step (block + n_blocks * index within
      the block), never by its place in the batch: row i of a batch run with seeds s decodes exactly as a
      batch of one with seed s[i], provided the model's logits for that row do not change with the
      batch's left padding (RoPE / relative positions, or position ids; see README). Give distinct seeds
      for distinct samples of one prompt.
    - backend: 'auto' | 'reference' | 'triton' | 'cpu' (ops dispatch); progress: a tqdm bar.
    - return_stats=True returns `(x, GenerationStats)`.

    Every argument is validated before the first forward (TypeError for a wrong type, ValueError for a
    bad value, "name: expected ..., got ..."); vocabulary checks use the model's vocabulary when it
    tells, else the first logits. In embedding mode, an id the embedding table cannot hold (a logits
    vocabulary larger than the table) is reported at the next host read as a ValueError naming the model.
    """
    config = SamplerConfig.from_arguments(
        steps=steps, gen_length=gen_length, block_length=block_length, temperature=temperature, cfg_scale=cfg_scale,
        remasking=remasking, mask_id=mask_id, logits_eos_inf=logits_eos_inf,
        confidence_eos_eot_inf=confidence_eos_eot_inf, threshold=threshold, factor=factor, score=score,
        schedule=schedule, logits_shift=logits_shift, eos_id=eos_id, eot_id=eot_id, warm_start=warm_start, seed=seed,
        top_p=top_p, top_k=top_k, alg_temp=alg_temp, eps=eps, logits_hook=generation_logits_hook_func,
        tokens_hook=generation_tokens_hook_func, backend=backend, progress=progress, return_stats=return_stats,
    )
    config.check_inputs(prompt, attention_mask)
    adapter = ModelAdapter(model, logits_shift=config.logits_shift)
    config.check_vocab(adapter.vocab_size)
    clock = Clock(adapter.device, enabled=config.timed)
    state = DecodingState(adapter, prompt, attention_mask, config, clock)
    log = StepLog(state.batch_size, state.backend, clock, config.steps if config.progress else None)
    counts = state.opening_counts()
    for block in range(config.n_blocks):
        plan = BlockPlan(config, state, block, counts)
        while plan.needs_step():
            step = plan.next_step()
            transfers, remasks = state.step(step)
            log.record(step.active, transfers, remasks)
            plan.advance(remasks)
        counts = plan.finish()
        state.end_block(block)
        log.end_block(plan.index, plan.planned)
    stats = log.finish(state.injected)
    x = state.result()
    return (x, stats) if return_stats else x
