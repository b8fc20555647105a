"""Timing harness shared by the bench_*.py suites: cold caches, memory peaks, a round budget.

Every contender goes through `measure`, so they are treated alike: one call under the memory
profiler (which doubles as warm-up, after an extra untimed call for JIT contenders), then a number
of timed rounds sized from that call, each preceded by an untimed cache flush and state reset.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

QUICK = os.environ.get("WARMKERN_BENCH_QUICK", "0") not in ("", "0")

# Time budget per benchmark (seconds) and round limits; quick runs only prove the suite works.
TARGET_S = 0.2 if QUICK else 2.5
MAX_ROUNDS = 3 if QUICK else 30
SLOW_S = 10.0  # a call this slow gets a single timed round

_FLUSH_BYTES = 64 << 20  # twice the 32 MiB L3 of the benchmark machine: evicts the logits
_flush_buf: torch.Tensor | None = None


def flush_caches() -> None:
    """Write a buffer larger than the last-level cache, so every round reads its inputs from DRAM."""
    global _flush_buf
    if QUICK:
        return
    if _flush_buf is None:
        _flush_buf = torch.empty(_FLUSH_BYTES // 4, dtype=torch.float32)
    _flush_buf.fill_(1.0)


def peak_cpu_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes held by the torch CPU allocator during fn(), above what was held before.

    Replays the profiler's allocation/free records in time order; allocations made outside the
    torch allocator (e.g. std::vector inside a C++ kernel) are invisible to it.
    """
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    records = [
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and str(e.device_type()).upper().endswith("CPU")
    ]
    held = peak = 0
    for _, n in sorted(records):
        held += n
        peak = max(peak, held)
    return peak


def peak_cuda_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes above the starting allocation on the current CUDA device during fn()."""
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


@dataclass
class Case:
    """What a suite hands to `measure`: the call, how to reset its state, and how to describe it."""

    fn: Callable[[], Any]
    reset: Callable[[], None] = lambda: None
    device: str = "cpu"
    jit: bool = False  # compiled contenders: one extra untimed call before anything is measured


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(benchmark, case: Case, info: dict[str, Any]) -> None:
    """Run `case` under pytest-benchmark and attach memory peak and description to the JSON."""
    def call() -> None:
        case.fn()
        _sync(case.device)

    def setup() -> None:
        case.reset()
        flush_caches()
        _sync(case.device)

    enabled = not getattr(benchmark, "disabled", False)
    if enabled and case.jit:
        setup()
        call()
    rounds = 1
    if enabled:
        setup()
        t0 = time.perf_counter()
        peak = peak_cuda_bytes(call) if case.device == "cuda" else peak_cpu_bytes(call)
        est = time.perf_counter() - t0
        info["peak_bytes"] = int(peak)
        info["first_call_s"] = est
        if est >= SLOW_S:
            rounds = 1
        else:
            rounds = int(max(2 if not QUICK else 1, min(MAX_ROUNDS, TARGET_S // max(est, 1e-6))))
    info["threads"] = torch.get_num_threads()
    info["device"] = case.device
    benchmark.extra_info.update(info)
    benchmark.group = info["group"]
    benchmark.pedantic(call, setup=setup, rounds=rounds, iterations=1, warmup_rounds=0)
