"""Choosing the warm-start hyper-parameters on the validation split (never on test).

Rule, for every row that trades NFE for accuracy: among the grid points whose validation accuracy is
within 1 point of cold top-k, take the one with the fewest mean NFE; if none qualifies, the most accurate.
Rows whose NFE is fixed by the schedule (embedding interpolation with top-k) take the most accurate.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from warmkern.testbed import task
from warmkern.testbed.methods import HPARAMS_PATH, Method
from warmkern.testbed.report import rows_to_json

TAUS = (0.7, 0.8, 0.9, 0.95)
RATES = (0.75, 1.0)
REMASK = (0.3, 0.5, 0.7, 0.9)
NOREMASK_RATES = (0.25, 0.5, 0.75, 1.0)
ALPHAS = (0.25, 0.5, 0.75)
SCHEDULES = ("constant", "linear")


def _pick(cands: list[tuple[Method, dict]], target: float) -> tuple[Method, dict]:
    ok = [c for c in cands if c[1]["accuracy"] >= target]
    if ok:
        return min(ok, key=lambda c: (c[1]["mean_nfe"], -c[1]["accuracy"]))
    return max(cands, key=lambda c: (c[1]["accuracy"], -c[1]["mean_nfe"]))


def _grid(tau: float | None) -> dict[str, list[Method]]:
    """Grid for each warm row; threshold rows use the cold-tuned τ (so warm vs cold differ only by the draft)."""
    g: dict[str, list[Method]] = {"token_remask": [], "token_noremask": [], "emb_topk": [], "emb_threshold": []}
    for thr, rate, rm in itertools.product((None, tau), RATES, REMASK):
        g["token_remask"].append(Method("tr", "warm", threshold=thr, rate=rate, remask_threshold=rm))
    for rate in NOREMASK_RATES:
        g["token_noremask"].append(Method("tn", "warm", rate=rate))
    for a, s in itertools.product(ALPHAS, SCHEDULES):
        g["emb_topk"].append(Method("et", "warm", mode="embedding", alpha=a, alpha_schedule=s))
        g["emb_threshold"].append(Method("eh", "warm", threshold=tau, mode="embedding", alpha=a, alpha_schedule=s))
    return g


def tune(probs: list[task.Problem], batch: int = 100, seed: int = 0, json_path: Path | None = None) -> dict:
    from warmkern.testbed.evaluate import evaluate

    cold = [Method("cold top-k", "cold")] + [Method(f"cold τ={t}", "cold", threshold=t) for t in TAUS]
    rows = rows_to_json(evaluate(probs, cold, batch=batch, seed=seed, desc="tune: cold"))
    base = rows[0]["accuracy"]
    target = base - 0.01
    tau_m, _ = _pick(list(zip(cold[1:], rows[1:])), target)
    tau = tau_m.threshold
    log: dict = {"n": len(probs), "cold_topk": rows[0], "cold_threshold_grid": rows[1:], "tau": tau, "rows": {}}
    hp: dict = {"tau": tau}
    for key, grid in _grid(tau).items():
        res = rows_to_json(evaluate(probs, grid, batch=batch, seed=seed, desc=f"tune: {key}"))
        for m, r in zip(grid, res):
            r["method"] = key
            r["params"] = m.describe()
        best_m, best = (max(zip(grid, res), key=lambda c: c[1]["accuracy"]) if key == "emb_topk"
                        else _pick(list(zip(grid, res)), target))
        log["rows"][key] = {"grid": res, "chosen": best["params"]}
        hp[key] = {"threshold": best_m.threshold, "rate": best_m.rate, "remask_threshold": best_m.remask_threshold,
                   "alpha": best_m.alpha, "alpha_schedule": best_m.alpha_schedule}
        print(f"{key}: chose {best['params']} (val acc {100 * best['accuracy']:.1f}%, NFE {best['mean_nfe']:.1f}; "
              f"cold top-k {100 * base:.1f}%, NFE {rows[0]['mean_nfe']:.1f})")
    hp["chosen_on"] = (f"validation split, first {len(probs)} problems, seed {seed}; "
                       "rule: fewest NFE within 1 point of cold top-k")
    HPARAMS_PATH.write_text(json.dumps(hp, indent=1))
    if json_path is not None:
        json_path.write_text(json.dumps(log, indent=1))
    return hp
