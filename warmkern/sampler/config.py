"""`generate`'s arguments, validated once before any forward and frozen into one `SamplerConfig`.

Every check goes through `warmkern.validation` (wrong type -> TypeError, bad value -> ValueError,
"name: expected ..., got ...") and names the *public* argument: `eos_id`, never the ops' `demote_ids`.
Checks that need the vocabulary run as soon as it is known: from the model before the first
forward when it says, else from the first logits before any op sees them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from warmkern import validation as V
from warmkern.warmstart import WarmStart

REMASKING = ("low_confidence", "random")
SCHEDULES = ("llada", "dream")
ANY_VOCAB = V.INT64_MAX  # token ids are range-checked again once the vocabulary is known


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
    seed: int
    backend: str | None
    progress: bool
    timed: bool

    @classmethod
    def from_arguments(
        cls, *, steps: object, gen_length: object, block_length: object, temperature: object, cfg_scale: object,
        remasking: object, mask_id: object, logits_eos_inf: object, confidence_eos_eot_inf: object,
        threshold: object, factor: object, score: object, schedule: object, logits_shift: object, eos_id: object,
        eot_id: object, warm_start: object, seed: object, backend: object, progress: object, return_stats: object,
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
        temperature = V.check_float("temperature", temperature, lo=0.0)
        V.check_score(score, "sampling" if schedule == "dream" and temperature > 0 else "none", temperature)  # as ops
        if remasking == "random" and score != "random":
            raise ValueError(f"score: expected 'random' (remasking='random'), got {score!r}")
        if warm_start is not None and not isinstance(warm_start, WarmStart):
            raise TypeError(f"warm_start: expected a WarmStart or None, got {type(warm_start).__name__}")
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
            warm_start=warm_start, seed=V.check_int("seed", seed, lo=0, hi=V.INT64_MAX),
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
    def score_temperature(self) -> str:
        return "sampling" if self.schedule == "dream" and self.temperature > 0 else "none"

    @property
    def suppress_ids(self) -> tuple[int, ...]:
        return (self.eos_id,) if self.logits_eos_inf else ()

    @property
    def demote_ids(self) -> tuple[int, ...]:
        return (self.eos_id, self.eot_id) if self.confidence_eos_eot_inf else ()

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

