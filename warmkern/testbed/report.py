"""Formatting the evaluation: the text table, JSON rows and the accuracy-vs-NFE plot."""

from __future__ import annotations

import math
from pathlib import Path

from warmkern.testbed.methods import RowResult


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion (sane at 0% and 100%, unlike the normal one)."""
    if n == 0:
        return 0.0, 0.0
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def summarize(r: RowResult, cold_nfe: float | None) -> dict:
    n = len(r.correct)
    k = sum(r.correct)
    lo, hi = wilson(k, n)
    nfe = sum(r.nfe) / len(r.nfe) if r.nfe else None
    busy = r.model_s + r.sampler_s
    return {
        "method": r.name, "params": r.params, "n": n, "accuracy": k / n if n else 0.0, "ci95": [lo, hi],
        "mean_nfe": nfe,
        "nfe_change": (nfe / cold_nfe - 1) if (nfe is not None and cold_nfe) else None,
        "wall_s": r.wall_s, "draft_s": r.draft_s,
        "sampler_share": r.sampler_s / busy if busy else None, "model_share": r.model_s / busy if busy else None,
        "remasks_per_sample": r.remasked / n if n else 0.0, "injected_per_sample": r.injected / n if n else 0.0,
    }


def rows_to_json(rows: list[RowResult]) -> list[dict]:
    cold = next((r for r in rows if r.name == "cold top-k"), None)
    cold_nfe = sum(cold.nfe) / len(cold.nfe) if cold and cold.nfe else None
    return [summarize(r, cold_nfe) for r in rows]


def format_table(rows: list[RowResult]) -> str:
    head = ("| method | settings | accuracy (95% CI) | mean NFE | NFE vs cold | wall s | sampler / model time "
            "| remasks / sample |")
    lines = [head, "|" + "---|" * 8]
    for s in rows_to_json(rows):
        nfe = "—" if s["mean_nfe"] is None else f"{s['mean_nfe']:.1f}"
        chg = "—" if s["nfe_change"] is None else f"{100 * s['nfe_change']:+.0f}%"
        share = ("—" if s["sampler_share"] is None
                 else f"{100 * s['sampler_share']:.1f}% / {100 * s['model_share']:.1f}%")
        acc = f"{100 * s['accuracy']:.1f}% ({100 * s['ci95'][0]:.1f}–{100 * s['ci95'][1]:.1f})"
        rm = f"{s['remasks_per_sample']:.2f}" if s["method"] not in ("drafter alone",) else "—"
        lines.append(f"| {s['method']} | {s['params']} | {acc} | {nfe} | {chg} | {s['wall_s']:.1f} | {share} | {rm} |")
    return "\n".join(lines)


def plot(rows: list[RowResult], path: Path, title: str = "") -> None:
    """Accuracy against mean NFE per method (matplotlib is an optional extra: `pip install warmkern[plot]`)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("warmkern eval --plot: matplotlib is not installed (pip install 'warmkern[plot]'); no plot written")
        return
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for s in rows_to_json(rows):
        x = 0.0 if s["mean_nfe"] is None else s["mean_nfe"]
        lo, hi = s["ci95"]
        ax.errorbar([x], [100 * s["accuracy"]], yerr=[[100 * (s["accuracy"] - lo)], [100 * (hi - s["accuracy"])]],
                    fmt="o", capsize=3, label=f"{s['method']} ({s['params']})")
    ax.set_xlabel("mean NFE per sample (dLLM forward passes; drafter alone plotted at 0)")
    ax.set_ylabel("exact-match accuracy (%), 95% CI")
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
