"""`generate`'s arguments, validated once before any forward and frozen into one `SamplerConfig`.

Every check goes through `warmkern.validation` (wrong type -> TypeError, bad value -> ValueError,
"name: expected ..., got ...") and names the *public* argument: `eos_id`, never the ops' `suppress_ids`.
Checks that need the vocabulary run as soon as it is known: from the model before the first
forward when it says, else from the first logits before any op sees them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from warmkern import schema
from warmkern import validation as V
from warmkern.warmstart import WarmStart

REMASKING = ("low_confidence", "random")
SCHEDULES = ("llada", "dream")
ANY_VOCAB = V.INT64_MAX  # token ids are range-checked again once the vocabulary is known
DREAM_EPS = 1e-3  # Dream's diffusion_generate default: timesteps = linspace(1, eps, steps + 1)
Hook = Callable[[int | None, Tensor, Tensor | None], Tensor]


def check_seed(seed: object) -> int | Tensor:
    """An int for every row, or per-row seeds (a sequence of ints or an int64 tensor) as a 1-D int64 tensor.

    Non-sequence types get the ops' words ("seed: expected an int, got str"); the row count is checked
    against the prompt in `check_inputs`.
    """
    if isinstance(seed, Tensor):
        if seed.dtype != torch.int64:
            dtype = str(seed.dtype).replace("torch.", "")
            raise TypeError(f"seed: expected an int or an int64 tensor, got dtype {dtype}")
        if seed.dim() > 1:
            raise ValueError(f"seed: expected an int or a 1-D tensor of per-row seeds, got shape {tuple(seed.shape)}")
        if seed.numel() and not bool(((seed >= 0) & (seed <= V.INT64_MAX)).all()):
            raise ValueError(f"seed: expected values >= 0, got {int(seed.min())}")
        return seed.reshape(-1)
    if isinstance(seed, Sequence) and not isinstance(seed, str):
        ints = [V.check_int(f"seed[{i}]", s, lo=0, hi=V.INT64_MAX) for i, s in enumerate(seed)]
        return torch.tensor(ints, dtype=torch.int64)
    return V.check_int("seed", seed, lo=0, hi=V.INT64_MAX)


def op_float(arg: schema.Arg, value: object, off: float) -> float:
    """A float argument the ops take too, checked by the op's own row (same words); None means `off`."""
    return off if value is None else V.CHECKS["float"](arg, value, None)


def check_hook(name: str, hook: object) -> Hook | None:
    if hook is not None and not callable(hook):
        raise TypeError(f"{name}: expected a callable (step, x, logits) or None, got {type(hook).__name__}")
    return hook  # type: ignore[return-value]


# Over 150 lines only by its 27 fields, their one-line derived properties and the two checks that need the
# prompt / the vocabulary: one frozen record that every other part reads.
@dataclass(frozen=True)
class SamplerConfig:
    """What the plan, the state and the statistics read; built by `from_arguments` only."""

    steps: int
    gen_length: int
    block_length: int
    temperature: float
    cfg_scale: float
    mask_id: int
    score: str
    schedule: str
    threshold: float | None
    factor: float | None
    logits_eos_inf: bool
    confidence_eos_eot_inf: bool
    logits_shift: bool
    eos_id: int
    eot_id: int
    warm_start: WarmStart | None
    seed: int | Tensor  # an int for every row, or [B] int64 per-row seeds (on the host until the state moves them)
    top_p: float  # 1 = off
    top_k: int  # 0 = off
    alg_temp: float  # 0 = off
    eps: float
    logits_hook: Hook | None
    tokens_hook: Hook | None
    backend: str | None
    progress: bool
    timed: bool

    @classmethod
    def from_arguments(
        cls, *, steps: object, gen_length: object, block_length: object, temperature: object, cfg_scale: object,
        remasking: object, mask_id: object, logits_eos_inf: object, confidence_eos_eot_inf: object,
        threshold: object, factor: object, score: object, schedule: object, logits_shift: object, eos_id: object,
        eot_id: object, warm_start: object, seed: object, top_p: object, top_k: object, alg_temp: object, eps: object,
        logits_hook: object, tokens_hook: object, backend: object, progress: object, return_stats: object,
    ) -> SamplerConfig:
        """Validate `generate`'s keyword arguments (all but the model and the prompt tensors)."""
        steps = V.check_int("steps", steps, lo=1)
        gen_length = V.check_int("gen_length", gen_length, lo=1)
        block_length = V.check_int("block_length", block_length, lo=1)
        if gen_length % block_length:
            raise ValueError(f"block_length: expected a divisor of gen_length ({gen_length}), got {block_length}")
        schedule = V.check_choice("schedule", schedule, SCHEDULES)
        n_blocks = gen_length // block_length
        if schedule == "llada" and steps % n_blocks:
            raise ValueError(f"steps: expected a multiple of the number of blocks ({n_blocks}), got {steps}")
        remasking = V.check_choice("remasking", remasking, REMASKING)
        if threshold is not None and factor is not None:
            raise ValueError("threshold/factor: expected at most one of them, got both")
        if score is None:  # LLaDA's remasking argument implies the score
            score = "random" if remasking == "random" else "prob"
        temperature = op_float(schema.TEMPERATURE, temperature, 0.0)
        V.check_score(score, "sampling" if schedule == "dream" and temperature > 0 else "none", temperature)  # as ops
        if remasking == "random" and score != "random":
            raise ValueError(f"score: expected 'random' (remasking='random'), got {score!r}")
        if warm_start is not None and not isinstance(warm_start, WarmStart):
            raise TypeError(f"warm_start: expected a WarmStart or None, got {type(warm_start).__name__}")
        alg_temp = op_float(schema.ALG_TEMP, alg_temp, 0.0)
        if alg_temp > 0 and (threshold is not None or factor is not None):
            raise ValueError(f"alg_temp: expected None or 0 with threshold/factor (it draws a fixed number of "
                             f"positions per step), got {alg_temp}")
        eps = V.check_float("eps", eps, lo=0.0, hi=1.0)
        if eps != DREAM_EPS and schedule != "dream":
            raise ValueError(f"eps: expected the default {DREAM_EPS} unless schedule='dream' (it sets Dream's "
                             f"timesteps), got {eps}")
        return cls(
            steps=steps, gen_length=gen_length, block_length=block_length,
            temperature=temperature,
            cfg_scale=V.check_float("cfg_scale", cfg_scale, lo=0.0),
            mask_id=V.check_id("mask_id", mask_id, ANY_VOCAB), score=score, schedule=schedule,
            threshold=V.optional(V.check_float, "threshold", threshold),
            factor=V.optional(V.check_float, "factor", factor, lo=0.0),
            logits_eos_inf=V.check_bool("logits_eos_inf", logits_eos_inf),
            confidence_eos_eot_inf=V.check_bool("confidence_eos_eot_inf", confidence_eos_eot_inf),
            logits_shift=V.check_bool("logits_shift", logits_shift),
            eos_id=V.check_id("eos_id", eos_id, ANY_VOCAB), eot_id=V.check_id("eot_id", eot_id, ANY_VOCAB),
            warm_start=warm_start, seed=check_seed(seed),
            top_p=op_float(schema.TOP_P, top_p, 1.0), top_k=0 if top_k is None else V.check_int("top_k", top_k, lo=0),
            alg_temp=alg_temp, eps=eps,
            logits_hook=check_hook("generation_logits_hook_func", logits_hook),
            tokens_hook=check_hook("generation_tokens_hook_func", tokens_hook),
            backend=backend,  # checked by backends.resolve (once the device is known), as the ops do
            progress=V.check_bool("progress", progress), timed=V.check_bool("return_stats", return_stats),
        )

    # ------------------------------------------------------------------ derived
    @property
    def n_blocks(self) -> int:
        return self.gen_length // self.block_length

    @property
    def adaptive(self) -> bool:
        """Threshold / factor decoding: the rule decides how many tokens a step commits."""
        return self.threshold is not None or self.factor is not None

    @property
    def warm_mode(self) -> str | None:
        return self.warm_start.mode if self.warm_start is not None else None

    @property
    def verify(self) -> bool:
        """Token warm start with remasking: a block holding injected tokens runs at least one step."""
        return self.warm_mode == "token" and self.warm_start.remask_threshold is not None  # type: ignore[union-attr]

    @property
    def grow(self) -> bool:
        """Remasked tokens grow their row's plan by their cold-pace budget (remask_budget='extend')."""
        return self.verify and self.warm_start.remask_budget == "extend"  # type: ignore[union-attr]

    @property
    def prefilled(self) -> bool:
        """Token warm starts fill blocks before they start: the plan reads their counts (and plans fewer steps).

        Tokens written by Dream's tokens hook do not shorten the plan: Dream and LLaDA run their `steps`
        whatever the hook wrote, and k is computed from the masks left at each step.
        """
        return self.warm_mode == "token"

    @property
    def noisy(self) -> bool:
        """Whether a step draws random numbers (Gumbel, random score, alg_temp), which are keyed by position."""
        return self.temperature > 0 or self.score == "random" or self.alg_temp > 0

    @property
    def score_temperature(self) -> str:
        return "sampling" if self.schedule == "dream" and self.temperature > 0 else "none"

    @property
    def suppress_ids(self) -> tuple[int, ...]:
        """-inf everywhere (choice and softmax): EOS with logits_eos_inf (LLaDA sets logits[:, :, eos] = -inf
        before drawing x0)."""
        return (self.eos_id,) if self.logits_eos_inf else ()

    @property
    def score_suppress_ids(self) -> tuple[int, ...]:
        """confidence_eos_eot_inf, exactly as LLaDA's generate.py: out of the confidence softmax, not the choice.

        LLaDA draws `x0 = argmax(logits_with_noise)` first, then writes
        `logits_with_noise[:, :, eos] = logits[:, :, eot] = -inf` and scores with softmax(logits). At T = 0
        `add_gumbel_noise` returns `logits` itself, so EOS and EOT both leave that softmax (every other
        confidence renormalises); at T > 0 only EOT does (the write to the noisy copy reaches nothing). x0 may
        still be EOS or EOT; its confidence is then p = 0, so it is committed after the positions that
        hold content.
        """
        if not self.confidence_eos_eot_inf:
            return ()
        return (self.eos_id, self.eot_id) if self.temperature == 0 else (self.eot_id,)

    # ------------------------------------------------------------------ checks that need more than the arguments
    def check_inputs(self, prompt: object, attention_mask: object) -> None:
        """The prompt `[B, P]` int64 (left padded) and its attention mask; the draft's shape."""
        if isinstance(prompt, Tensor) and prompt.dtype != torch.int64:
            raise V.DTypeError(f"prompt: expected dtype int64, got {str(prompt.dtype).replace('torch.', '')}")
        V.check_tensor("prompt", prompt, dtypes=(torch.int64,), ndim=2, unit_last_stride=False)
        assert isinstance(prompt, Tensor)
        if prompt.shape[0] < 1:
            raise ValueError(f"prompt: expected at least one row, got shape {tuple(prompt.shape)}")
        if attention_mask is not None:  # any dtype: it goes to the model as it is
            dtypes = (attention_mask.dtype,) if isinstance(attention_mask, Tensor) else ()
            V.check_tensor("attention_mask", attention_mask, dtypes=dtypes, ndim=2, shape=tuple(prompt.shape),
                           unit_last_stride=False)
        if isinstance(self.seed, Tensor) and self.seed.numel() not in (1, prompt.shape[0]):
            raise ValueError(f"seed: expected an int or {prompt.shape[0]} per-row seeds (one per prompt row), "
                             f"got {self.seed.numel()}")
        if self.warm_start is not None:
            want = (prompt.shape[0], self.gen_length)
            if tuple(self.warm_start.draft.shape) != want:
                got = tuple(self.warm_start.draft.shape)
                raise ValueError(f"warm_start.draft: expected shape {want} (batch, gen_length), got {got}")

    def check_vocab(self, vocab: int | None) -> None:
        """Token ids against the model's vocabulary (skipped while it is unknown)."""
        if vocab is None:
            return
        V.check_id("mask_id", self.mask_id, vocab)
        flags = (("logits_eos_inf", self.logits_eos_inf, ("eos_id",)),
                 ("confidence_eos_eot_inf", self.confidence_eos_eot_inf, ("eos_id", "eot_id")))
        for flag, on, names in flags:
            for name in names if on else ():
                value = getattr(self, name)
                if value >= vocab:
                    raise ValueError(f"{name}: expected a token id in [0, {vocab}) ({flag}=True uses it), got {value}")
        ws = self.warm_start
        if ws is not None:
            if ws.fill_tail is not None:
                V.check_id("warm_start.fill_tail", ws.fill_tail, vocab)
            V.check_ids("warm_start.draft", ws.draft, vocab, allow_minus_one=True)

