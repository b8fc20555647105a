"""Benchmark shapes and inputs: LLaDA-sized by default, tiny under WARMKERN_BENCH_QUICK=1.

LLaDA-8B: vocabulary 126464 (mask id 126336), hidden size 4096, 256 generated tokens decoded in
blocks of 32 with 2 tokens committed per step. The inputs are random but shaped like a real step:
positions before the window are already decoded, the window and everything after it are masked.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from wk_harness import QUICK

from warmkern import backends

CONTENDERS = ("floor", "eager", "eager-window", "reference", "compiled", "compiled-window", "cpu", "triton")
WINDOW_ONLY = ("eager-window", "compiled-window")  # denoise_step variants that slice the window first
SEED, STEP = 1234, 7


@dataclass(frozen=True)
class Shape:
    vocab: int
    gen: int
    lo: int
    hi: int
    k: int
    mask_id: int
    dim: int

    @property
    def window(self) -> int:
        return self.hi - self.lo


FULL = Shape(vocab=126464, gen=256, lo=64, hi=96, k=2, mask_id=126336, dim=4096)
TINY = Shape(vocab=4099, gen=64, lo=16, hi=48, k=2, mask_id=4000, dim=64)
SHAPE = TINY if QUICK else FULL


@dataclass(frozen=True)
class StepGroup:
    batch: int
    temperature: float
    score: str
    top_p: float = 1.0  # Dream's truncation (bench_truncation.py); off by default
    top_k: int = 0

    @property
    def trunc(self) -> str:
        return (f" top_p={self.top_p:g}" if self.top_p < 1 else "") + (f" top_k={self.top_k}" if self.top_k else "")

    @property
    def name(self) -> str:
        return f"denoise_step B={self.batch} T={self.temperature:g} score={self.score}{self.trunc}"

    @property
    def id(self) -> str:
        return f"B{self.batch}-T{self.temperature:g}-{self.score}{self.trunc.replace(' ', '-')}"


if QUICK:
    STEP_GROUPS = [StepGroup(1, 0.0, "prob"), StepGroup(1, 1.0, "prob")]
    TRUNC_GROUPS = [StepGroup(1, 0.0, "prob", top_p=0.95), StepGroup(1, 1.0, "prob", top_k=50)]
    EMBED_BATCHES = [1]
else:
    STEP_GROUPS = [
        StepGroup(1, 0.0, "prob"), StepGroup(1, 1.0, "prob"),
        StepGroup(4, 0.0, "prob"), StepGroup(4, 1.0, "prob"),
        StepGroup(1, 0.0, "margin"), StepGroup(1, 0.0, "entropy"),
    ]
    # Dream / DiffuCoder's settings (issue 15): top_p = 0.95 or top_k = 50, greedy and sampled
    TRUNC_GROUPS = [
        StepGroup(1, t, "prob", top_p=p, top_k=k) for p, k in ((0.95, 0), (1.0, 50)) for t in (0.0, 1.0)
    ]
    EMBED_BATCHES = [1, 4]


def _state(batch: int, s: Shape, gen: torch.Generator) -> torch.Tensor:
    """x of a step inside the third block: decoded prefix, masked from the window on."""
    x = torch.randint(0, s.mask_id, (batch, s.gen), generator=gen)
    x[:, s.lo:] = s.mask_id
    return x


@functools.lru_cache(maxsize=1)
def step_inputs(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [B, G, V] bf16, initial x [B, G]); the mask column is kept low as in a trained model."""
    s = SHAPE
    gen = torch.Generator().manual_seed(batch)
    logits = torch.empty(batch, s.gen, s.vocab, dtype=torch.bfloat16)
    for b in range(batch):  # row by row: no fp32 copy of the whole tensor
        logits[b] = torch.randn(s.gen, s.vocab, generator=gen).mul_(3.0)
    logits[..., s.mask_id] = -30.0
    return logits, _state(batch, s, gen)


@functools.lru_cache(maxsize=1)
def embed_inputs(batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(weight [V, D] bf16, x, draft, keep). Only the rows the op reads are initialised, so the
    1 GiB table costs no time or resident memory beyond them (an untouched page is never read)."""
    s = SHAPE
    gen = torch.Generator().manual_seed(100 + batch)
    x = _state(batch, s, gen)
    draft = torch.randint(0, s.mask_id, (batch, s.gen), generator=gen)
    draft[:, -s.gen // 8:] = -1  # the draft is shorter than the region: no proposal at the end
    keep = torch.rand(batch, s.gen, generator=gen) < 0.7
    weight = torch.empty(s.vocab, s.dim, dtype=torch.bfloat16)
    rows = torch.unique(torch.cat([x.flatten(), draft.clamp(min=0).flatten(), torch.tensor([s.mask_id])]))
    weight[rows] = torch.randn(len(rows), s.dim, generator=gen).mul_(0.02).to(torch.bfloat16)
    return weight, x, draft, keep


def skip_reason(contender: str) -> str | None:
    """Why a contender cannot run on this machine (re-checked every run: the C++ kernels may land later)."""
    if contender == "triton":
        if not torch.cuda.is_available():
            return "needs a CUDA device (GPU timings: benchmarks/bench_triton_gpu.py)"
        return backends.unavailable_reason("triton", torch.device("cuda"))
    if contender == "cpu":
        return backends.unavailable_reason("cpu", torch.device("cpu"))
    return None
