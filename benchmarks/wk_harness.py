"""Timing harness shared by the bench_*.py suites: cold caches, memory peaks, a round budget.

Every contender goes through `measure`, so they are treated alike: one call under the memory
profiler (which doubles as warm-up, after an extra untimed call for JIT contenders), then a number
of timed rounds sized from that call, each preceded by an untimed cache flush and state reset. A
call slower than SLOW_S is not repeated: its profiled call is the measurement.
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
MAX_ROUNDS = 3 if QUICK else 50
SLOW_S = 5.0  # a call this slow is timed once, by its profiled call (profiler overhead is then < 0.1%)

_FLUSH_BYTES = 128 << 20  # 4x the 32 MiB L3 lscpu reports (the VM's two vCPUs may sit on two L3 slices)
_flush_bufs: dict[str, torch.Tensor] = {}


def flush_caches(device: str = "cpu") -> None:
    """Write a buffer larger than the last-level cache, so every round reads its inputs from DRAM
    (on CUDA: 256 MiB, several times an H100/H200 L2)."""
    if QUICK:
        return
    if device not in _flush_bufs:
        n = (256 << 20 if device == "cuda" else _FLUSH_BYTES) // 4
        _flush_bufs[device] = torch.empty(n, dtype=torch.float32, device=device)
    _flush_bufs[device].fill_(1.0)


def peak_cpu_bytes(fn: Callable[[], Any]) -> tuple[int, float]:
    """(peak bytes held by the torch CPU allocator during fn() above what was held before, seconds).

    Replays the profiler's allocation/free records in time order; allocations made outside the
    torch allocator (e.g. std::vector inside a C++ kernel) are invisible to it.
    """
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        t0 = time.perf_counter()
        fn()
        seconds = time.perf_counter() - t0
    records = [
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and str(e.device_type()).upper().endswith("CPU")
    ]
    held = peak = 0
    for _, n in sorted(records):
        held += n
        peak = max(peak, held)
    return peak, seconds


def peak_cuda_bytes(fn: Callable[[], Any]) -> tuple[int, float]:
    """(peak bytes above the starting allocation on the current CUDA device during fn(), seconds)."""
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base, time.perf_counter() - t0


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
        flush_caches(case.device)
        _sync(case.device)

    enabled = not getattr(benchmark, "disabled", False)
    if enabled and case.jit:
        setup()
        call()
    rounds = 1
    info["threads"] = torch.get_num_threads()
    info["device"] = case.device
    benchmark.group = info["group"]
    if enabled:
        setup()
        peak, est = peak_cuda_bytes(call) if case.device == "cuda" else peak_cpu_bytes(call)
        info["peak_bytes"] = int(peak)
        info["first_call_s"] = est
        if est >= SLOW_S and hasattr(benchmark, "_make_stats"):
            # Too slow to repeat within the budget: the profiled call is the one measurement.
            info["single_profiled_call"] = True
            benchmark.extra_info.update(info)
            benchmark._mode = "warmkern: single profiled call"
            benchmark._make_stats(1).update(est)
            return
        rounds = int(max(1 if QUICK or est >= SLOW_S else 2, min(MAX_ROUNDS, TARGET_S // max(est, 1e-6))))
    benchmark.extra_info.update(info)
    benchmark.pedantic(call, setup=setup, rounds=rounds, iterations=1, warmup_rounds=0)
