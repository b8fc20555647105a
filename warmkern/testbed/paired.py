"""Paired comparisons of a saved `warmkern eval --json` table: every row against cold threshold decoding on the
same problems, and split by whether the drafter's own answer was right.

Rows of one table decode the same problems with the same seed, so their difference is paired: only the
discordant problems (b: the row right, cold wrong; c: the reverse) carry information. The 95% interval of the
difference of two paired proportions is Newcombe's hybrid score interval (Newcombe 1998, Stat Med 17:2635,
method 10, with its continuity-corrected phi): it combines the two rows' Wilson intervals (`report.wilson`, the
table's CIs) with the phi correlation of the pair, and stays inside [-1, 1] where the Wald interval does not.

    python -m warmkern.testbed.paired warmkern/testbed/assets/results/eval_test.json [--against cold_tau,cold_topk]

`targets` checks issue 14's bar: the draft prior with threshold decoding at least `TARGETS[dllm]` above cold
threshold decoding at no more dLLM NFE, at every block length (the point estimate, as the issue states it; the
paired interval says whether the gain is distinguishable from zero).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from warmkern.testbed.report import DLLM_TITLES, wilson

# Issue 14: the prior + τ row must beat cold τ by this much (accuracy, absolute) at <= cold τ's NFE.
TARGETS = {"uncalibrated": 0.02, "calibrated": 0.01}


def counts(row: str, base: str) -> tuple[int, int, int, int]:
    """(both right, only `row` right, only `base` right, both wrong) from two 0/1 strings of equal length."""
    if len(row) != len(base) or not row:
        raise ValueError(f"counts: expected two non-empty bit strings of equal length, got {len(row)} and {len(base)}")
    pairs = list(zip(row, base))
    return (pairs.count(("1", "1")), pairs.count(("1", "0")), pairs.count(("0", "1")), pairs.count(("0", "0")))


def newcombe(row: str, base: str) -> tuple[float, float, float]:
    """(accuracy of `row` − accuracy of `base`, 95% lower, upper) for paired 0/1 outcomes (Newcombe's method 10)."""
    a, b, c, d = counts(row, base)
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    (l1, u1), (l2, u2) = wilson(a + b, n), wilson(a + c, n)
    den = (a + b) * (c + d) * (a + c) * (b + d)
    ad_bc = a * d - b * c  # Newcombe's continuity-corrected phi: a positive correlation shrunk by n/2
    phi = (max(0.0, ad_bc - n / 2) if ad_bc > 0 else ad_bc) / math.sqrt(den) if den else 0.0
    delta = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    eps = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    diff = p1 - p2
    return diff, max(-1.0, diff - delta), min(1.0, diff + eps)


def _groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["dllm"] is not None:
            out.setdefault((r["dllm"], r["block_length"]), []).append(r)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:+.1f}"


def paired_table(table: dict, against: str = "cold_tau") -> str:
    """Markdown: per dLLM and block length, each row with per-problem results against the `against` row."""
    out = [f"| dLLM, block | method | settings | accuracy | vs {against}: Δ points [95% CI] | row only / {against} "
           "only right | NFE (vs) |", "|---|---|---|---|---|---|---|"]
    for (dllm, blk), rows in _groups(table["rows"]).items():
        base = next((r for r in rows if r.get("key") == against and r.get("correct")), None)
        if base is None:
            continue
        for r in rows:
            if r is base or not r.get("correct"):
                continue
            diff, lo, hi = newcombe(r["correct"], base["correct"])
            _, b, c, _ = counts(r["correct"], base["correct"])
            out.append(f"| {dllm}, {blk} | {r['method']} | {r['params']} | {100 * r['accuracy']:.1f}% | "
                       f"{_pct(diff)} [{_pct(lo)}, {_pct(hi)}] | {b} / {c} | {r['mean_nfe']:.2f} "
                       f"({base['mean_nfe']:.2f}) |")
    return "\n".join(out)


def by_draft(table: dict, keys: tuple[str, ...] = ("cold_tau", "prior_tau", "prior_topk", "cold_topk")) -> str:
    """Markdown: accuracy of each row on the problems whose drafter answer was right vs wrong (the vote)."""
    drafter = next(r for r in table["rows"] if r["dllm"] is None)
    right = [i for i, ch in enumerate(drafter["correct"]) if ch == "1"]
    wrong = [i for i, ch in enumerate(drafter["correct"]) if ch == "0"]
    out = [f"drafter right on {len(right)} of {len(drafter['correct'])} problems", "",
           "| dLLM, block | method | draft right | draft wrong |", "|---|---|---|---|"]
    for (dllm, blk), rows in _groups(table["rows"]).items():
        for r in sorted((r for r in rows if r.get("key") in keys and r.get("correct")),
                        key=lambda r: keys.index(r["key"])):
            acc = [sum(r["correct"][i] == "1" for i in idx) / max(1, len(idx)) for idx in (right, wrong)]
            out.append(f"| {dllm}, {blk} | {r['method']} | {100 * acc[0]:.1f}% | {100 * acc[1]:.1f}% |")
    return "\n".join(out)


def _verdict(diff: float, lo: float, nfe: float, base_nfe: float, need: float) -> str:
    """'met' only when the gain reaches the bar *and* the NFE is not above the baseline's; says by how much."""
    gap = diff - need
    acc = f"{100 * gap:+.1f} points vs the bar" if gap >= -1e-12 else f"accuracy {100 * -gap:.1f} points short"
    cost = f"NFE {nfe - base_nfe:+.2f}" + (" (above)" if nfe > base_nfe else "")
    sig = "CI excludes 0" if lo > 0 else "CI includes 0"
    ok = gap >= -1e-12 and nfe <= base_nfe
    return f"{'met' if ok else 'missed'}: {acc}, {cost}, {sig}"


def targets(table: dict, row: str = "prior_tau", against: str = "cold_tau",
            need: dict[str, float] | None = None) -> str:
    """Markdown: per dLLM and block length, whether `row` beats `against` by the issue's margin at <= its NFE."""
    need = TARGETS if need is None else need
    out = [f"| dLLM, block | {row} | {against} | Δ points [95% CI] | target | verdict |",
           "|---|---|---|---|---|---|"]
    for (dllm, blk), rows in _groups(table["rows"]).items():
        by_key = {r.get("key"): r for r in rows if r.get("correct")}
        r, base = by_key.get(row), by_key.get(against)
        if r is None or base is None or dllm not in need:
            continue
        diff, lo, hi = newcombe(r["correct"], base["correct"])
        out.append(f"| {dllm}, {blk} | {100 * r['accuracy']:.1f}% at {r['mean_nfe']:.2f} NFE | "
                   f"{100 * base['accuracy']:.1f}% at {base['mean_nfe']:.2f} NFE | {_pct(diff)} [{_pct(lo)}, "
                   f"{_pct(hi)}] | ≥ +{100 * need[dllm]:.0f} at ≤ NFE | "
                   f"{_verdict(diff, lo, r['mean_nfe'], base['mean_nfe'], need[dllm])} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m warmkern.testbed.paired", description=__doc__.splitlines()[0])
    ap.add_argument("table", type=Path, help="a `warmkern eval --json` file")
    ap.add_argument("--against", default="cold_tau,cold_topk",
                    help="comma-separated row keys of the baselines (default cold_tau,cold_topk)")
    args = ap.parse_args(argv)
    table = json.loads(args.table.read_text())
    print(", ".join(f"{k}: {v}" for k, v in DLLM_TITLES.items()))
    for against in (k.strip() for k in args.against.split(",") if k.strip()):
        print(paired_table(table, against))
        print()
    print("issue 14 targets (prior τ vs cold τ):")
    print(targets(table))
    print()
    print(by_draft(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
