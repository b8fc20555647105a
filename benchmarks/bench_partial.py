"""The shard pass token_stats_partial, cpu (C++) vs reference, at TP = 2 of LLaDA's vocabulary.

One rank's shard: bf16 logits [B = 1, G = 32 (one block), V_shard = 126464 / 2] at vocab_start = 63232 (the
second half: the ids and Philox counters are global). Groups: greedy prob, sampled prob (T = 1), greedy margin.
The one-device ops.token_stats on the same shard-sized logits (cpu) is the floor the shard pass should meet.

Run (1 thread, the dev box's 2 cores are shared):
OMP_NUM_THREADS=1 python -m pytest benchmarks/bench_partial.py --benchmark-enable \
    --benchmark-columns=min,median,rounds
"""

from __future__ import annotations

import pytest
import torch

from warmkern import cpu, ops

VT = 126464
V = VT // 2
START = VT - V
B, G = 1, 32
MASK = 126336  # LLaDA's mask id: in this (second) shard
MODES = {"greedy-prob": dict(), "sampled-prob": dict(temperature=1.0, seed=7), "greedy-margin": dict(score="margin")}
CONTENDERS = ("partial_cpu", "partial_reference", "token_stats_cpu")

pytestmark = pytest.mark.skipif(cpu.unavailable_reason() is not None, reason=str(cpu.unavailable_reason()))


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(B, G, V, generator=gen) * 3).to(torch.bfloat16)
    x = torch.full((B, G), MASK, dtype=torch.int64)
    x[:, ::3] = START + 5
    return logits, x


@pytest.mark.parametrize("contender", CONTENDERS)
@pytest.mark.parametrize("mode", list(MODES))
def test_token_stats_partial(benchmark, mode: str, contender: str) -> None:
    logits, x = _inputs()
    kw = MODES[mode]
    if contender == "token_stats_cpu":
        fn = lambda: ops.token_stats(logits, x, mask_id=V - 1, backend="cpu", check_values=False, **kw)
    else:
        backend = contender.removeprefix("partial_")
        fn = lambda: ops.token_stats_partial(logits, x, vocab_start=START, vocab_total=VT, mask_id=MASK,
                                             backend=backend, check_values=False, **kw)
    if contender == "partial_cpu":  # the timed kernel gives the spec's state
        ref = ops.token_stats_partial(logits, x, vocab_start=START, vocab_total=VT, mask_id=MASK,
                                      backend="reference", **kw)
        got = fn()
        assert torch.equal(got[..., 1], ref[..., 1]) and torch.equal(got[..., 0], ref[..., 0])
    benchmark.group = f"token_stats_partial B={B} G={G} V_shard={V} {mode}"
    benchmark(fn)
