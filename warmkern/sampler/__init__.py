"""`generate`: LLaDA's sampler, drop-in, on warmkern's fused ops — plus Fast-dLLM modes, Dream's
schedule and warm starting from an autoregressive draft.

The loop is semi-autoregressive over blocks of the answer. Inside a block every step is one model
forward and one `ops.denoise_step`. Three parts, one concern each:

- `config`: the arguments, validated before any forward, frozen into one `SamplerConfig`;
- `plan`: the block plan (steps per row, which rows take part in step i with which rule, growth by
  remasks, when the host reads the device: once per block for fixed schedules, plus once per step run
  beyond the block-start plan; once per step for threshold/factor);
- `state`: buffers, CFG mirror, warm start (`warm`), the forward and the ops call;
- `stats`: `GenerationStats`, the one NFE definition, timing.
"""

from __future__ import annotations

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
    seed: int = 0,
    backend: str | None = None,
    progress: bool = False,
    return_stats: bool = False,
) -> Tensor | tuple[Tensor, GenerationStats]:
    """Sample `gen_length` tokens after `prompt` (left padded, `[B, P]`); returns `[B, P + G]`.

    Cold start reproduces LLaDA's `generate` (same arguments, same tokens at temperature 0; x0 never
    is `mask_id`, ties go to the lower position). A prompt holding `mask_id` is infilled as LLaDA
    does it: every masked position before the current block's end is a candidate, while each block
    commits as many tokens as it held masks at its start (so, as in LLaDA, as many positions as the
    prompt held masks stay masked in the output); schedule 'llada' without threshold/factor only.
    Keyword-only extensions:

    - threshold / factor: Fast-dLLM parallel decoding. A block ends once it has no masks; `steps`
      stays an upper bound: a block's last planned step commits everything still masked.
    - score: 'prob' | 'margin' | 'entropy' | 'random' (default from `remasking`).
    - schedule='dream': k = floor(m (1 - s/t)) on linspace(1, 1e-3, n + 1) per block, the rest at
      the last step; with logits_shift=True (position i read at i-1) and one block this is Dream's
      diffusion_generate (maskgit_plus / topk_margin / entropy, no alg_temp, no top-p/top-k).
    - Each block plans ceil(masked_at_block_start * steps / gen_length) steps and runs until it has
      no masks; with remasking on, a block holding injected tokens runs at least one step so the dLLM
      sees each of them, and remasked tokens grow their row's plan (`WarmStart.remask_budget`;
      threshold/factor move their forced last step with it; Dream's ratios cover the block-start
      plan, LLaDA's k = ceil(masked / steps left) the steps it grew by).
    - warm_start: see `WarmStart`; its keep mask and all noise come from Philox with `seed`.
    - backend: 'auto' | 'reference' | 'triton' | 'cpu' (ops dispatch); progress: a tqdm bar.
    - return_stats=True returns `(x, GenerationStats)`.

    Every argument is validated before the first forward (TypeError for a wrong type, ValueError for a
    bad value, "name: expected ..., got ..."); vocabulary checks use the model's vocabulary when it
    tells, else the first logits.
    """
    config = SamplerConfig.from_arguments(
        steps=steps, gen_length=gen_length, block_length=block_length, temperature=temperature, cfg_scale=cfg_scale,
        remasking=remasking, mask_id=mask_id, logits_eos_inf=logits_eos_inf,
        confidence_eos_eot_inf=confidence_eos_eot_inf, threshold=threshold, factor=factor, score=score,
        schedule=schedule, logits_shift=logits_shift, eos_id=eos_id, eot_id=eot_id, warm_start=warm_start, seed=seed,
        backend=backend, progress=progress, return_stats=return_stats,
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
