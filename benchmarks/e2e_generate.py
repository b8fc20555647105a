"""End to end through `warmkern.generate` at LLaDA's vocabulary: lm_head = 'full' vs 'window' vs 'fused'.

The model and shapes of benchmarks/e2e_window.py (a random Llama-architecture model with V = 126464, hidden 1024,
4 layers, bf16; prompt 128 + gen 256, block 32, LLaDA's fixed schedule, greedy low-confidence), decoded by
`generate` itself with each `lm_head`. Reported: tokens identical to 'full', wall time in total and per step
(GenerationStats' model / sampler split), and the peak bytes allocated during a `generate` call of the same
shapes with one step per block (torch profiler allocator events, on top of the weights). Ops on the reference
backend, as in e2e_window.py: with lm_head='full' generate's denoise_step reads the whole region (256 rows),
which the reference computes in full; a kernel that skips rows outside the window would not.

    python benchmarks/e2e_generate.py [--steps 64] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

HEADS = ("full", "window", "fused")


def run(model, prompt, lm_head: str, steps: int, gen: int):
    from e2e_window import BLOCK, MASK

    from warmkern import generate

    t = time.perf_counter()
    x, stats = generate(model, prompt, steps=steps, gen_length=gen, block_length=BLOCK, mask_id=MASK,
                        backend="reference", lm_head=lm_head, return_stats=True)
    return x, time.perf_counter() - t, stats


def peak_bytes(model, prompt, lm_head: str) -> int:
    """Peak of bytes allocated minus freed during a generate call of the same shapes with one step per block."""
    from e2e_window import BLOCK, GEN

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        run(model, prompt, lm_head, GEN // BLOCK, GEN)
    cur = top = 0
    for e in sorted(prof.events(), key=lambda e: e.time_range.start):
        cur += e.self_cpu_memory_usage
        top = max(top, cur)
    return top


def main(argv: list[str] | None = None) -> None:
    from e2e_window import GEN, model_and_prompt

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model, prompt = model_and_prompt()
    res, tokens = {}, {}
    for head in HEADS:
        x, wall, stats = run(model, prompt, head, a.steps, GEN)
        tokens[head] = x
        res[head] = dict(total_s=wall, step_ms=1e3 * wall / stats.nfe, nfe=stats.nfe, model_s=stats.time_model_s,
                         sampler_s=stats.time_sampler_s, peak_mb=peak_bytes(model, prompt, head) / 2**20,
                         same_tokens=bool(torch.equal(x, tokens["full"])))
    print("| lm_head | tokens = full's | total s | ms/step | model s | sampler s | peak MiB "
          "| speed vs full | memory vs full |")
    print("|---|---|---|---|---|---|---|---|---|")
    full = res["full"]
    for head, r in res.items():
        print(f"| {head} | {r['same_tokens']} | {r['total_s']:.1f} | {r['step_ms']:.0f} | {r['model_s']:.1f} | "
              f"{r['sampler_s']:.1f} | {r['peak_mb']:.1f} | {full['total_s'] / r['total_s']:.2f}x | "
              f"{full['peak_mb'] / r['peak_mb']:.1f}x lower |")
    if a.json:
        a.json.write_text(json.dumps(dict(results=res, steps=a.steps, threads=a.threads), indent=1))


if __name__ == "__main__":
    here = Path(__file__).resolve()
    sys.path[:0] = [str(here.parents[1]), str(here.parent)]
    main()
