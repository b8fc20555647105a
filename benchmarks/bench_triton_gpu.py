"""The one command for the first CUDA machine: measured Triton times next to kernels-report's predictions,
the GPU parity suite, and CUDA-graph capture + replay with an advancing step.

    python benchmarks/bench_triton_gpu.py            # everything (markdown on stdout)
    python benchmarks/bench_triton_gpu.py --quick    # B = 16 only, no parity suite
    python benchmarks/bench_triton_gpu.py --op-count # runs anywhere: reference ATen ops per step

Times are the median of CUDA-graph replays of 10 back-to-back launches (so host launch overhead is not
timed) at LLaDA shapes (V = 126464, G = 256, window [64, 96), bf16), for the same (kernel, variant, B)
rows `warmkern kernels-report` predicts, on the device's own compute capability. GB/s = bytes the op
must read (logits, and uncond logits with CFG, of the rows it needs) / measured time. Without CUDA it
prints a line and exits 0 (pytest collects it and skips).
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from warmkern import launches

ROOT = Path(__file__).resolve().parent.parent
V, G, D, MASK = 126464, 256, 4096, 126336
LO, HI, K = 64, 96, 2  # the third 32-token block of a 256-token answer, 2 tokens per step
SUPPRESS = (126081, 126348)


def _wt(name: str):
    return importlib.import_module(f"warmkern.triton.{name}")


def _inputs(b: int, cfg: bool) -> dict:
    gen = torch.Generator(device="cuda").manual_seed(b)
    z = torch.randn(b, G, V, generator=gen, device="cuda", dtype=torch.bfloat16).mul_(3.0)
    z[..., MASK] = -30.0
    x = torch.randint(0, MASK, (b, G), device="cuda")
    x[:, LO:] = MASK
    rows = {k: torch.full((b,), n, device="cuda") for k, n in (("lo", LO), ("hi", HI), ("k", K))}
    u = torch.randn_like(z) if cfg else None
    return dict(logits=z, x=x, prov=torch.zeros_like(x, dtype=torch.bool), uncond=u, **rows)


def _call(kind: str, variant, inp: dict, step):
    """One launch of `kind` with the report's arguments for `variant` (seed/step as device tensors)."""
    kw = dict(mask_id=MASK, temperature=0.7 if variant.sampled else 0.0, score=variant.score,
              suppress_ids=SUPPRESS, uncond_logits=inp["uncond"], cfg_scale=1.5 if variant.cfg else 0.0,
              seed=inp["seed"], step=step)
    if kind == "token_stats":
        return _wt("token_stats").token_stats(inp["logits"], inp["x"], **kw)
    rule = variant.rule or {"k": inp["k"]}
    return _wt("denoise_step").denoise_step(inp["logits"], inp["x"], inp["prov"], lo=inp["lo"], hi=inp["hi"],
                                            **rule, **kw)


def graph_time_us(fn, reps: int = 10, iters: int = 5) -> float:
    """Median GPU time of one fn() from replays of a graph holding `reps` back-to-back calls."""
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        fn()  # warm-up on the capture stream: compile, workspace, id lists
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        for _ in range(reps):
            fn()
    times = []
    for _ in range(iters + 1):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) * 1e3 / reps)
    return sorted(times[1:])[iters // 2]


def measure(kind: str, variant, b: int, cc: int) -> dict:
    from warmkern.triton import report

    inp = _inputs(b, variant.cfg)
    inp["seed"] = torch.tensor(1, device="cuda")
    step = torch.tensor(7, device="cuda")
    us = graph_time_us(lambda: _call(kind, variant, inp, step))
    row = report.vocab_row(kind, variant, cc, b)
    h200 = "H200" in torch.cuda.get_device_name()
    pred = row.get("predicted_us_h200") if h200 else row["predicted_us"]
    floor = row.get("hbm_floor_us_h200") if h200 else row["hbm_floor_us"]
    positions = b * (G if kind == "token_stats" else HI - LO)
    nbytes = positions * V * 2 * (2 if variant.cfg else 1)
    return dict(kernel=kind, variant=variant.name, B=b, us=us, gbps=nbytes / us / 1e3, predicted_us=pred,
                floor_us=floor, measured_over_predicted=us / pred, measured_over_floor=us / floor)


def graph_replay_ok() -> bool:
    """A captured denoise_step replays with an advancing step (a 0-d device tensor) exactly like eager
    launches with that step as an int: nothing of the step (or seed) is baked into the capture."""
    from warmkern.triton import report

    variant = report.Variant("prob", True, False)
    inp = _inputs(2, False)
    inp["seed"] = torch.tensor(5, device="cuda")
    x0, p0 = inp["x"].clone(), inp["prov"].clone()
    step = torch.tensor(0, device="cuda")
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        _call("denoise_step", variant, inp, step)  # warm-up
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        _call("denoise_step", variant, inp, step)
    ok = True
    for s in range(1, 4):
        inp["x"].copy_(x0)
        inp["prov"].copy_(p0)
        step.fill_(s)
        graph.replay()
        got = inp["x"].clone()
        eager = dict(inp, x=x0.clone(), prov=p0.clone(), seed=5)
        _call("denoise_step", variant, eager, s)
        ok &= bool(torch.equal(got, eager["x"]))
    return ok


def parity_suite() -> int:
    """The Triton test files on the GPU (they run on CUDA tensors when CUDA is available)."""
    tests = sorted(str(p) for p in (ROOT / "tests").glob("test_triton_*.py"))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", *tests], cwd=ROOT, check=False).returncode


def reference_op_count(device: str = "cpu") -> dict[str, int]:
    """Top-level ATen ops of one reference denoise_step (the launches one fused Triton launch replaces)."""
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
        counts[f"denoise_step {name}"] = len([e for e in prof.events() if e.cpu_parent is None
                                              and e.name.startswith("aten::")])
    w = torch.randn(v, 64, device=device)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        reference.warm_embed(w, x, x.clone(), prov.logical_not(), mask_id=4000, alpha=0.5, out=torch.empty(b, G, 64))
    counts["warm_embed"] = len([e for e in prof.events() if e.cpu_parent is None and e.name.startswith("aten::")])
    return counts


def rows(batches, kinds=("denoise_step", "token_stats")) -> list[dict]:
    from warmkern.triton import report

    p = torch.cuda.get_device_properties(0)
    return [measure(kind, v, b, p.major * 10 + p.minor) for b in batches for kind in kinds for v in report.VARIANTS]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_triton_gpu_timings_and_graph_replay() -> None:
    launches.reset()
    assert graph_replay_ok()
    assert all(r["us"] > 0 for r in rows((16,), kinds=("denoise_step",)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--op-count", action="store_true", help="only count the reference's ops per step (any device)")
    p.add_argument("--quick", action="store_true", help="B = 16 only, no parity suite")
    args = p.parse_args(argv)
    if args.op_count:
        for name, n in reference_op_count().items():
            print(f"reference {name}: {n} top-level ATen ops per call (triton: 1 launch)")
        return 0
    if not torch.cuda.is_available():
        print("bench_triton_gpu: no CUDA device, nothing to time (try --op-count)")
        return 0
    print(f"{torch.cuda.get_device_name()} | V={V} G={G} window=[{LO},{HI}) bf16 | predicted: kernels-report\n")
    print("| kernel | variant | B | measured us | GB/s | predicted us | measured / predicted | HBM floor us |"
          " measured / floor |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows((16,) if args.quick else (1, 16, 64)):
        print(f"| {r['kernel']} | {r['variant']} | {r['B']} | {r['us']:.1f} | {r['gbps']:.0f} "
              f"| {r['predicted_us']:.1f} | {r['measured_over_predicted']:.2f} | {r['floor_us']:.1f} "
              f"| {r['measured_over_floor']:.2f} |")
    replay = graph_replay_ok()
    print(f"\nCUDA-graph replay with an advancing step matches eager launches: {replay}")
    rc = 0 if args.quick else parity_suite()
    print(f"GPU parity suite (tests/test_triton_*.py): {'passed' if rc == 0 else f'FAILED (rc {rc})'}")
    return 0 if replay and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
