"""Bytes per denoising step under vocabulary (tensor) parallelism: state all-gather vs logits all-gather.

Computed at LLaDA shapes for TP = 2/4/8, and measured on the real engine: TP gloo processes (CPU), each with
its column shard of bf16 logits, run (a) what serving engines do today, all-gather the [B, G, V/TP] logits
shards then one-device `ops.denoise_step`, and (b) `warmkern.distributed.denoise_step` on the shard (partial
states, one all-gather per round). Bytes are counted at the collective call (what each rank contributes;
an all-gather makes every rank receive (TP - 1) times that); times are medians over --reps steps. Both paths
run the reference backend (the shard kernels are not written yet), so compare the collectives' times, and
check the tokens: every rank of (b) must end with (a)'s x.

    python benchmarks/tp_bytes.py --tp 2 4 8 --reps 10 [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

V, B, G, MASK, K = 126464, 1, 32, 126336, 4  # LLaDA: vocabulary, one sequence, a 32-token block window
MODES = {  # name -> (denoise_step keyword arguments)
    "greedy-prob": dict(temperature=0.0, score="prob"),
    "sampled-prob": dict(temperature=1.0, score="prob", seed=3),
    "greedy-margin": dict(temperature=0.0, score="margin"),
    "sampled-top-k-20": dict(temperature=1.0, top_k=20, seed=3),
    "sampled-top-p-0.9": dict(temperature=1.0, top_p=0.9, seed=3),
}


def computed(tp: int, state_bytes_per_pos: int) -> dict:
    """Per rank and step: bytes contributed to the all-gather (each rank receives (tp - 1) times this)."""
    logits = B * G * (V // tp) * 2  # bf16 shard
    state = B * G * state_bytes_per_pos + 16  # + the 16-byte header
    return dict(logits=logits, state=state, ratio=logits / state)


def _inputs(rank: int, tp: int) -> tuple[torch.Tensor, int]:
    """This rank's column shard of the same random bf16 logits on every rank."""
    gen = torch.Generator().manual_seed(0)
    full = (torch.randn(B, G, V, generator=gen) * 3).to(torch.bfloat16)
    n = V // tp
    return full[..., rank * n : (rank + 1) * n].contiguous(), rank * n


def _time(fn, reps: int) -> tuple[float, object]:
    out, times = None, []
    for _ in range(reps):
        dist.barrier()
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _worker(rank: int, tp: int, store: str, reps: int, threads: int, out_dir: str) -> None:
    from warmkern import distributed, ops

    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=tp)
    shard, start = _inputs(rank, tp)
    x0 = torch.full((B, G), MASK)
    counted: list[tuple[int, float]] = []  # (bytes contributed, seconds) per all-gather of the state path
    real_gather = distributed._gather

    def counting(t, group):
        t0 = time.perf_counter()
        out = real_gather(t, group)
        counted.append((t.numel() * t.element_size(), time.perf_counter() - t0))
        return out

    distributed._gather = counting
    res = {}
    for mode, kw in MODES.items():
        step = dict(mask_id=MASK, lo=0, hi=G, k=K, backend="reference", **kw)

        def logits_path(step=step):
            buf = torch.empty((tp * B, G, shard.shape[-1]), dtype=shard.dtype)
            t = time.perf_counter()
            (getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor)(buf, shard)
            t_coll = time.perf_counter() - t
            logits = buf.view(tp, B, G, -1).permute(1, 2, 0, 3).reshape(B, G, -1)
            x, prov = x0.clone(), torch.zeros((B, G), dtype=torch.bool)
            ops.denoise_step(logits, x, prov, **step)
            return x, t_coll

        def state_path(step=step):
            x, prov = x0.clone(), torch.zeros((B, G), dtype=torch.bool)
            distributed.denoise_step(shard, x, prov, vocab_start=start, vocab_total=V, **step)
            return x

        t_logits, (x_a, _) = _time(logits_path, reps)
        colls = [logits_path()[1] for _ in range(reps)]
        counted.clear()
        t_state, x_b = _time(state_path, reps)
        rounds = len(counted) // reps
        state_bytes = sum(b for b, _ in counted) // reps
        per_step = [sum(t for _, t in counted[i * rounds : (i + 1) * rounds]) for i in range(reps)]
        t_state_coll = statistics.median(per_step)
        res[mode] = dict(same_x=bool(torch.equal(x_a, x_b)), logits_bytes=shard.numel() * shard.element_size(),
                         state_bytes=state_bytes, rounds=rounds, t_logits_step=t_logits, t_state_step=t_state,
                         t_logits_allgather=statistics.median(colls), t_state_allgather=t_state_coll)
    torch.save(res, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def measure(tp: int, reps: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        mp.spawn(_worker, args=(tp, os.path.join(d, "store"), reps, threads, d), nprocs=tp)
        ranks = [torch.load(os.path.join(d, f"rank{r}.pt")) for r in range(tp)]
    out = {}
    for mode in MODES:
        r0 = ranks[0][mode]
        out[mode] = dict(r0, same_x_all_ranks=all(r[mode]["same_x"] for r in ranks))
    return out


def table(results: dict) -> str:
    lines = ["| TP | mode | rounds | logits B/rank (computed = measured) | state B/rank (measured) | ratio | "
             "all-gather logits ms | all-gather state ms | step logits+ops ms | step distributed ms | same x |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for tp, modes in results.items():
        for mode, r in modes.items():
            lines.append(f"| {tp} | {mode} | {r['rounds']} | {r['logits_bytes']:,} | {r['state_bytes']:,} | "
                         f"{r['logits_bytes'] / r['state_bytes']:,.0f}x | {1e3 * r['t_logits_allgather']:.2f} | "
                         f"{1e3 * r['t_state_allgather']:.2f} | {1e3 * r['t_logits_step']:.1f} | "
                         f"{1e3 * r['t_state_step']:.1f} | {r['same_x_all_ranks']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tp", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    print("computed (greedy prob: 5 fields = 20 B/position):")
    for tp in a.tp:
        c = computed(tp, 20)
        print(f"  TP={tp}: logits {c['logits']:,} B/rank, state {c['state']:,} B/rank, {c['ratio']:,.0f}x")
    results = {tp: measure(tp, a.reps, a.threads) for tp in a.tp}
    print(table(results))
    if a.json:
        a.json.write_text(json.dumps({str(k): v for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
