"""Choosing the warm-start hyper-parameters on the validation split (never on test).

Rule, for every row that trades NFE for accuracy: among the grid points whose validation accuracy is
within 1 point of cold top-k, take the one with the fewest mean NFE; if none qualifies, the most accurate.
Rows whose NFE is fixed by the schedule (embedding interpolation with top-k) take the most accurate.
Warm threshold rows reuse the τ chosen for cold threshold decoding, so warm vs cold differ only by the draft.
Token injection + remasking also searches `remask_budget` (extend / fixed); `token_remask_alt` is the same
rule over the points of the budget the chosen row does not use, kept as a table row to show what the budget changes.
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
BUDGETS = ("extend", "fixed")
NOREMASK_RATES = (0.25, 0.5, 0.75, 1.0)
EMB = (("constant", 0.25), ("constant", 0.5), ("constant", 0.75), ("linear", 0.5))
KEYS = ("token_remask", "token_remask_alt", "token_noremask", "emb_topk", "emb_threshold")


def _pick(cands: list[tuple[Method, dict]], target: float) -> tuple[Method, dict]:
    ok = [c for c in cands if c[1]["accuracy"] >= target]
    if ok:
        return min(ok, key=lambda c: (c[1]["mean_nfe"], -c[1]["accuracy"]))
    return max(cands, key=lambda c: (c[1]["accuracy"], -c[1]["mean_nfe"]))


def _grid() -> list[tuple[str, Method]]:
    """(row key, method) pairs; threshold=-1.0 is a placeholder for the τ chosen on cold decoding."""
    g: list[tuple[str, Method]] = [("cold", Method("cold top-k", "cold"))]
    g += [("cold_tau", Method("cold", "cold", threshold=t)) for t in TAUS]
    for thr, rate, rm, bud in itertools.product((None, -1.0), RATES, REMASK, BUDGETS):
        g.append(("token_remask", Method("tr", "warm", threshold=thr, rate=rate, remask_threshold=rm,
                                         remask_budget=bud)))
    g += [("token_noremask", Method("tn", "warm", rate=r)) for r in NOREMASK_RATES]
    for s, a in EMB:
        g.append(("emb_topk", Method("et", "warm", mode="embedding", alpha=a, alpha_schedule=s)))
        g.append(("emb_threshold", Method("eh", "warm", threshold=-1.0, mode="embedding", alpha=a, alpha_schedule=s)))
    return g


def tune(probs: list[task.Problem], batch: int = 100, seed: int = 0, json_path: Path | None = None,
         threads: int | None = None) -> dict:
    from warmkern.testbed.evaluate import evaluate

    grid = _grid()
    cold = [m for k, m in grid if k.startswith("cold")]
    res = rows_to_json(evaluate(probs, cold, batch=batch, seed=seed, desc="tune: cold", threads=threads))
    base, target = res[0]["accuracy"], res[0]["accuracy"] - 0.01
    tau = _pick(list(zip(cold[1:], res[1:])), target)[0].threshold
    warm = [(k, m) for k, m in grid if not k.startswith("cold")]
    for _, m in warm:
        if m.threshold == -1.0:
            m.threshold = tau
    wres = rows_to_json(evaluate(probs, [m for _, m in warm], batch=batch, seed=seed, desc="tune: warm",
                                 threads=threads))
    log: dict = {"n": len(probs), "seed": seed, "cold_topk": res[0], "cold_threshold_grid": res[1:], "tau": tau,
                 "rows": {}}
    hp: dict = {"tau": tau}
    for key in KEYS:
        if key == "token_remask_alt":  # KEYS puts token_remask first
            other = "fixed" if hp["token_remask"]["remask_budget"] == "extend" else "extend"
            cands = [(m, r) for (k, m), r in zip(warm, wres) if k == "token_remask" and m.remask_budget == other]
        else:
            cands = [(m, r) for (k, m), r in zip(warm, wres) if k == key]
        for m, r in cands:
            r["method"], r["params"] = ("token_remask" if key == "token_remask_alt" else key), m.describe()
        best_m, best = (max(cands, key=lambda c: c[1]["accuracy"]) if key == "emb_topk" else _pick(cands, target))
        log["rows"][key] = {"grid": [r for _, r in cands], "chosen": best["params"]}
        hp[key] = {"threshold": best_m.threshold, "rate": best_m.rate, "remask_threshold": best_m.remask_threshold,
                   "alpha": best_m.alpha, "alpha_schedule": best_m.alpha_schedule,
                   "remask_budget": best_m.remask_budget if best_m.remask_threshold is not None else None}
        print(f"{key}: chose {best['params']} (val acc {100 * best['accuracy']:.1f}%, NFE {best['mean_nfe']:.1f}; "
              f"cold top-k {100 * base:.1f}%, NFE {res[0]['mean_nfe']:.1f})")
    hp["chosen_on"] = (f"validation split, first {len(probs)} problems, seed {seed}; "
                       "rule: fewest NFE within 1 point of cold top-k")
    HPARAMS_PATH.write_text(json.dumps(hp, indent=1))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(log, indent=1))
    return hp
