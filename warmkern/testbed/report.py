"""Formatting the evaluation: the text tables (one per dLLM and block length), JSON rows and the plot."""

from __future__ import annotations

import math
from pathlib import Path

from warmkern.testbed.methods import RowResult

DLLM_TITLES = {"calibrated": "calibrated dLLM (phase 2, shipped)", "uncalibrated": "uncalibrated dLLM (phase 1)"}
MARKERS = {None: "*", 32: "o", 8: "s"}  # drafter alone, one block, semi-autoregressive
HEAD = ("| method | settings | accuracy (95% CI) | dLLM NFE | NFE vs cold | drafter fwd | ms/sample @batch "
        "| ms/sample alone | sampler / model time | remasks / sample |")


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion (sane at 0% and 100%, unlike the normal one)."""
    if n == 0:
        return 0.0, 0.0
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def _mean(xs: list) -> float | None:
    return sum(xs) / len(xs) if xs else None


def summarize(r: RowResult, cold_nfe: float | None) -> dict:
    """One JSON row. Per-sample costs: dLLM NFE, drafter forwards, wall seconds at the batch and alone."""
    n = len(r.correct)
    k = sum(r.correct)
    lo, hi = wilson(k, n)
    nfe = _mean(r.nfe)
    busy = r.model_s + r.sampler_s
    return {
        "method": r.name, "params": r.params, "dllm": r.dllm, "block_length": r.block_length, "n": n,
        "accuracy": k / n if n else 0.0, "ci95": [lo, hi], "mean_nfe": nfe,
        "nfe_change": (nfe / cold_nfe - 1) if (nfe is not None and cold_nfe) else None,
        "drafter_forwards": _mean(r.drafter_forwards),
        "s_per_sample": r.wall_s / n if n else None, "s_per_sample_alone": _mean(r.latency_s),
        "alone_n": len(r.latency_s), "wall_s": r.wall_s, "draft_s": r.draft_s,
        "sampler_share": r.sampler_s / busy if busy else None, "model_share": r.model_s / busy if busy else None,
        "remasks_per_sample": r.remasked / n if n else 0.0, "injected_per_sample": r.injected / n if n else 0.0,
    }


def rows_to_json(rows: list[RowResult]) -> list[dict]:
    """Rows in order; NFE change is against cold top-k of the same dLLM and block length."""
    cold = {(r.dllm, r.block_length): _mean(r.nfe) for r in rows if r.name == "cold top-k"}
    return [summarize(r, cold.get((r.dllm, r.block_length))) for r in rows]


def _fmt(v: float | None, spec: str, scale: float = 1.0) -> str:
    return "—" if v is None else format(scale * v, spec)


def _line(s: dict) -> str:
    acc = f"{100 * s['accuracy']:.1f}% ({100 * s['ci95'][0]:.1f}–{100 * s['ci95'][1]:.1f})"
    share = ("—" if s["sampler_share"] is None
             else f"{100 * s['sampler_share']:.1f}% / {100 * s['model_share']:.1f}%")
    rm = "—" if s["dllm"] is None else f"{s['remasks_per_sample']:.2f}"
    chg = _fmt(s["nfe_change"], "+.0f", 100) + ("%" if s["nfe_change"] is not None else "")
    return (f"| {s['method']} | {s['params']} | {acc} | {_fmt(s['mean_nfe'], '.1f')} | {chg} | "
            f"{_fmt(s['drafter_forwards'], '.1f')} | {_fmt(s['s_per_sample'], '.1f', 1e3)} | "
            f"{_fmt(s['s_per_sample_alone'], '.1f', 1e3)} | {share} | {rm} |")


def format_table(rows: list[RowResult]) -> str:
    """One markdown table per (dLLM, block length), the drafter-alone row in its own section first."""
    out: list[str] = []
    last: tuple | None = None
    for s in rows_to_json(rows):
        group = (s["dllm"], s["block_length"])
        if group != last:
            title = ("drafter alone (its drafts feed every warm row)" if s["dllm"] is None
                     else f"{DLLM_TITLES.get(s['dllm'], s['dllm'])}, block_length {s['block_length']}")
            out += (["", f"### {title}"] if out else [f"### {title}"]) + [HEAD, "|" + "---|" * 10]
            last = group
        out.append(_line(s))
    return "\n".join(out)


def plot(rows: list[dict], path: Path, title: str = "") -> None:
    """Accuracy against mean NFE, one panel per dLLM: colour = method, marker = block length (JSON rows, so a
    saved table can be re-plotted). matplotlib is an optional extra: `pip install warmkern[plot]`."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("warmkern eval --plot: matplotlib is not installed (pip install 'warmkern[plot]'); no plot written")
        return
    dllms = list(dict.fromkeys(r["dllm"] for r in rows if r["dllm"] is not None)) or [None]
    names = list(dict.fromkeys(r["method"] for r in rows))
    colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(names)}
    fig, axes = plt.subplots(1, len(dllms), figsize=(6 * len(dllms), 5.5), sharey=True, squeeze=False)
    for ax, dllm in zip(axes[0], dllms):
        for r in (r for r in rows if r["dllm"] in (dllm, None)):
            lo, hi = r["ci95"]
            ax.errorbar([r["mean_nfe"] or 0.0], [100 * r["accuracy"]], capsize=3, color=colours[r["method"]],
                        yerr=[[100 * (r["accuracy"] - lo)], [100 * (hi - r["accuracy"])]],
                        fmt=MARKERS.get(r["block_length"], "^"), markersize=7)
        ax.set_title(DLLM_TITLES.get(dllm, str(dllm)), fontsize=9)
        ax.set_xlabel("mean dLLM NFE per sample (drafter alone at 0)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("exact-match accuracy (%), 95% CI")
    handles = [plt.Line2D([], [], color=colours[m], marker="o", linestyle="", label=m) for m in names]
    handles += [plt.Line2D([], [], color="grey", marker=MARKERS[b], linestyle="", label=f"block_length {b}")
                for b in sorted({r["block_length"] for r in rows if r["block_length"]}, reverse=True)]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=7)
    fig.tight_layout(rect=(0, 0.14, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
