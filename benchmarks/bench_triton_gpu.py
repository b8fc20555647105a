"""GPU timings of the Triton kernels against the reference at LLaDA shapes, with achieved bandwidth.

Run `python benchmarks/bench_triton_gpu.py` on a CUDA machine (markdown table on stdout), or let
pytest collect it (skipped without CUDA). Bandwidth = bytes the op must read (logits of the rows it
needs; weight rows + output for warm_embed) / median time, so the first GPU run shows how close each
kernel is to the memory roofline. `--op-count` (runs anywhere) counts the reference path's
top-level ATen ops per denoising step with torch.profiler: the launches the fused kernel replaces.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

import pytest
import torch

from warmkern import launches, ops

V, G, D, MASK = 126464, 256, 4096, 126336
LO, HI, K = 64, 96, 2  # the third 32-token block of a 256-token answer, 2 tokens per step


def _logits(b: int, device: str) -> torch.Tensor:
    gen = torch.Generator(device=device).manual_seed(b)
    z = torch.randn(b, G, V, generator=gen, device=device, dtype=torch.bfloat16).mul_(3.0)
    z[..., MASK] = -30.0
    return z


def _x(b: int, device: str) -> torch.Tensor:
    x = torch.randint(0, MASK, (b, G), device=device)
    x[:, LO:] = MASK
    return x


def time_ms(fn, reset=None, iters: int = 20) -> float:
    """Median CUDA-event time of fn() in ms (reset() runs untimed before each call)."""
    times = []
    for i in range(iters + 3):
        if reset is not None:
            reset()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        if i >= 3:
            times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def _batch_rows(b: int) -> list[dict]:
    logits, x0 = _logits(b, "cuda"), _x(b, "cuda")
    x, prov = x0.clone(), torch.zeros_like(x0, dtype=torch.bool)

    def reset() -> None:
        x.copy_(x0)
        prov.zero_()

    full_bytes = b * G * V * 2
    win_bytes = b * (HI - LO) * V * 2
    rows = []
    for score, temp in (("prob", 0.0), ("prob", 1.0), ("margin", 0.0), ("entropy", 1.0)):
        kw = dict(mask_id=MASK, temperature=temp, score=score, seed=1, step=7, check_values=False)
        for backend in ("reference", "triton"):
            ms = time_ms(partial(ops.token_stats, logits, x, backend=backend, **kw))
            rows.append(dict(op="token_stats", B=b, variant=f"{score} T={temp:g}", backend=backend, ms=ms,
                             gbps=full_bytes / ms / 1e6))
            ms = time_ms(partial(ops.denoise_step, logits, x, prov, lo=LO, hi=HI, k=K, backend=backend, **kw), reset)
            rows.append(dict(op="denoise_step (window 32)", B=b, variant=f"{score} T={temp:g}", backend=backend,
                             ms=ms, gbps=win_bytes / ms / 1e6))
    w = torch.randn(V, D, device="cuda", dtype=torch.bfloat16)
    draft = torch.randint(0, MASK, (b, G), device="cuda")
    keep = torch.rand(b, G, device="cuda") < 0.7
    out = torch.empty(b, G, D, device="cuda", dtype=torch.bfloat16)
    emb_bytes = b * G * D * 2 * 3  # up to two rows read + one written per position
    for backend in ("reference", "triton"):
        ms = time_ms(partial(ops.warm_embed, w, x0, draft, keep, mask_id=MASK, alpha=0.5, out=out, backend=backend,
                             check_values=False))
        rows.append(dict(op="warm_embed", B=b, variant="bf16 D=4096", backend=backend, ms=ms,
                         gbps=emb_bytes / ms / 1e6))
    return rows


def bench_rows(batches=(1, 4)) -> list[dict]:
    return [row for b in batches for row in _batch_rows(b)]


def graph_capture_ok() -> bool:
    """A triton denoise_step replays from a CUDA graph (no host sync, no allocation-time memset)."""
    logits, x = _logits(1, "cuda"), _x(1, "cuda")
    prov = torch.zeros_like(x, dtype=torch.bool)
    kw = dict(mask_id=MASK, lo=LO, hi=HI, k=K, backend="triton", check_values=False)
    ops.denoise_step(logits, x.clone(), prov.clone(), **kw)  # warm-up: compile + workspace
    xg, pg = x.clone(), prov.clone()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        ops.denoise_step(logits, xg, pg, **kw)
    xg.copy_(x)
    pg.zero_()
    graph.replay()
    xe, pe = x.clone(), prov.clone()
    ops.denoise_step(logits, xe, pe, **kw)
    torch.cuda.synchronize()
    return bool(torch.equal(xg, xe))


def reference_op_count(device: str = "cpu") -> dict[str, int]:
    """Top-level ATen ops of one reference denoise_step (and of one triton step's launches)."""
    from torch.profiler import ProfilerActivity, profile

    from warmkern import reference

    b, v = 1, 4099  # the op count does not depend on the sizes
    logits = torch.randn(b, G, v, device=device)
    x = torch.full((b, G), 4000, device=device)
    prov = torch.zeros_like(x, dtype=torch.bool)
    lo, hi, k = (torch.full((b,), n, device=device) for n in (LO, HI, K))
    counts = {}
    for name, kw in (("T=0 prob", dict(score="prob")), ("T=1 prob", dict(score="prob", temperature=1.0)),
                     ("T=0 margin", dict(score="margin"))):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            reference.denoise_step(logits, x.clone(), prov.clone(), mask_id=4000, lo=lo, hi=hi, k=k, **kw)
        top = [e for e in prof.events() if e.cpu_parent is None and e.name.startswith("aten::")]
        counts[f"denoise_step {name}"] = len(top)
    w = torch.randn(v, 64, device=device)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        reference.warm_embed(w, x, x.clone(), prov.logical_not(), mask_id=4000, alpha=0.5, out=torch.empty(b, G, 64))
    counts["warm_embed"] = len([e for e in prof.events() if e.cpu_parent is None and e.name.startswith("aten::")])
    return counts


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_triton_gpu_timings() -> None:
    launches.reset()
    rows = bench_rows(batches=(1,))
    assert all(r["ms"] > 0 for r in rows)
    assert graph_capture_ok()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--op-count", action="store_true", help="only count the reference's ops per step (any device)")
    args = p.parse_args(argv)
    if args.op_count:
        for name, n in reference_op_count().items():
            print(f"reference {name}: {n} top-level ATen ops per call (triton: 1 launch)")
        return 0
    if not torch.cuda.is_available():
        print("bench_triton_gpu: no CUDA device, nothing to time (try --op-count)")
        return 0
    print(f"{torch.cuda.get_device_name()} | V={V} G={G} window=[{LO},{HI}) D={D} bf16\n")
    print("| op | B | variant | backend | median ms | GB/s (bytes needed / time) |\n|---|---|---|---|---|---|")
    for r in bench_rows():
        print(f"| {r['op']} | {r['B']} | {r['variant']} | {r['backend']} | {r['ms']:.3f} | {r['gbps']:.0f} |")
    print(f"\nCUDA-graph replay of a triton denoise_step matches eager: {graph_capture_ok()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
