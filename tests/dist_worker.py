"""Worker of tests/test_distributed.py: one gloo process of a 4-process group (and of a 2-process subgroup).

Each rank takes its uneven vocabulary shard of deterministic inputs, runs warmkern.distributed on every case
and saves what it got; the test process compares every rank with the one-process warmkern.ops result.
Inputs are built by `case_inputs` here, so the workers and the test build the very same tensors.
"""

from __future__ import annotations

import os
import traceback

import torch

MASK = 3
B, G, V = 3, 6, 97
SIZES = {4: [30, 20, 40, 7], 2: [60, 37]}  # uneven; the mask is in shard 0, the lists below in every shard
LISTS = dict(suppress_ids=(45, 96), pick_suppress_ids=(35, 75), score_suppress_ids=(92, 10))

STATS_CASES = {
    "greedy-prob": dict(),
    "greedy-margin-lists": dict(score="margin", **LISTS),
    "greedy-entropy": dict(score="entropy"),
    "sampled-prob-row-seeds": dict(temperature=0.8, seed=torch.tensor([5, 2**40 + 1, 9]), step=4),
    "sampled-random": dict(temperature=1.0, score="random", seed=3, step=torch.tensor(7)),
    "sampled-entropy-tempered": dict(temperature=0.6, score="entropy", score_temperature="sampling", seed=1),
    "cfg-margin": dict(cfg_scale=1.5, uncond=True, score="margin"),
    "prior": dict(prior="draft", prior_bias=torch.tensor([1.0, 4.0, -1.0]), temperature=0.5, seed=2),
    "top-k": dict(top_k=7),
    "top-p-sampled": dict(top_p=0.9, temperature=0.7, seed=11, score_temperature="sampling"),
    "top-p-top-k-everything": dict(top_p=0.8, top_k=12, temperature=0.9, seed=4, cfg_scale=0.5, uncond=True,
                                   prior="draft", prior_bias=2.0, **LISTS),
}
DENOISE_CASES = {
    "k-greedy": dict(k=torch.tensor([2, 1, 3]), lo=torch.tensor([0, 1, 0]), hi=torch.tensor([6, 5, 4])),
    "threshold-sampled": dict(threshold=0.2, temperature=0.8, seed=torch.tensor([1, 2, 3])),
    "factor-margin": dict(factor=1.0, score="margin"),
    "k-alg-temp-top-k": dict(k=2, alg_temp=0.4, top_k=10, temperature=0.7, seed=6),
    "k-remask-prior-cfg": dict(k=2, remask_threshold=0.3, prior="draft", prior_bias=1.0, cfg_scale=0.8, uncond=True,
                               **LISTS),
    "k-top-p-entropy": dict(k=3, top_p=0.9, score="entropy", temperature=1.0, score_temperature="sampling", seed=8),
}


def case_inputs(name: str) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor, dict]:
    """(logits, uncond or None, x, provisional, kwargs) of a case, the same in every process."""
    kw = dict({**STATS_CASES, **DENOISE_CASES}[name])
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    logits = torch.randn(B, G, V, generator=gen) * 3
    uncond = torch.randn(B, G, V, generator=gen) * 3 if kw.pop("uncond", None) else None
    x = torch.randint(0, V, (B, G), generator=gen)
    x[:, ::2] = MASK
    prov = (x != MASK) & (torch.arange(G) % 3 == 1)
    if kw.pop("prior", None):
        kw["prior_ids"] = torch.randint(-1, V, (B, G), generator=gen)
    if name in DENOISE_CASES:
        kw.setdefault("lo", 0)
        kw.setdefault("hi", G)
    return logits, uncond, x, prov, kw


def _shard(t: torch.Tensor | None, start: int, n: int) -> torch.Tensor | None:
    return None if t is None else t[..., start : start + n]


CPU_CASES = ("greedy-margin-lists", "sampled-prob-row-seeds", "sampled-entropy-tempered", "cfg-margin", "prior",
             "k-remask-prior-cfg", "threshold-sampled")  # no top_k / top_p: their rounds are reference-only so far


def _run_world(world: int, group, rank: int, backend: str = "reference") -> dict:
    """Every case on the reference; CPU_CASES with backend="cpu" (the C++ state pass; world 4's shards start off
    the Philox lanes at 30, 50, 90)."""
    from warmkern import distributed

    sizes = SIZES[world]
    start, n = sum(sizes[:rank]), sizes[rank]
    out = {}
    names = [*STATS_CASES, *DENOISE_CASES] if backend == "reference" else CPU_CASES
    for i, name in enumerate(names):
        logits, uncond, x, prov, kw = case_inputs(name)
        total = V if i % 2 else None  # half the calls learn vocab_total with one more all-gather
        common = dict(vocab_start=start, vocab_total=total, group=group, uncond_logits=_shard(uncond, start, n),
                      mask_id=MASK, backend=backend)
        if name in STATS_CASES:
            out[name] = distributed.token_stats(_shard(logits, start, n), x, **common, **kw)
        else:
            counts = distributed.denoise_step(_shard(logits, start, n), x, prov, **common, **kw)
            out[name] = (*counts, x, prov)
    return out


def _run_mismatches(rank: int) -> dict:
    """Ranks that disagree (arguments, or shards that overlap) must all raise, not hang or diverge."""
    from warmkern import distributed

    logits, _, x, _, _ = case_inputs("greedy-prob")
    sizes = SIZES[4]
    start, n = sum(sizes[:rank]), sizes[rank]
    errors = {}
    bad = [("seed", dict(vocab_start=start, temperature=0.5, seed=1 if rank == 0 else 2)),
           ("tiling", dict(vocab_start=start + (rank == 1)))]
    for what, kw in bad:
        try:
            distributed.token_stats(logits[..., start : start + n], x, vocab_total=V, mask_id=MASK, **kw)
            errors[what] = None
        except ValueError as err:
            errors[what] = str(err)
    return errors


def main(rank: int, world: int, tmpdir: str) -> None:
    """Entry point of a spawned process: run every case in the 4-group and the {0, 1} subgroup, save results."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    try:
        dist.init_process_group("gloo", init_method=f"file://{os.path.join(tmpdir, 'store')}", rank=rank,
                                world_size=world)
        pair = dist.new_group([0, 1])  # every rank takes part in creating a group
        results = {4: _run_world(4, None, rank), "errors": _run_mismatches(rank),
                   ("cpu", 4): _run_world(4, None, rank, "cpu")}
        if rank < 2:
            results[2] = _run_world(2, pair, rank)
            results[("cpu", 2)] = _run_world(2, pair, rank, "cpu")
        dist.barrier()
        dist.destroy_process_group()
        torch.save(results, os.path.join(tmpdir, f"rank{rank}.pt"))
    except Exception:
        with open(os.path.join(tmpdir, f"rank{rank}.err"), "w") as f:
            f.write(traceback.format_exc())
        raise
