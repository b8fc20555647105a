"""Choosing the warm-start hyper-parameters of one dLLM on the validation split (never on test), at block_length G.

Rule, for every row that trades NFE for accuracy: among the grid points whose validation accuracy is
within 1 point of cold top-k, take the one with the fewest mean NFE; if none qualifies, the most accurate.
Rows whose NFE is fixed by the schedule (embedding interpolation and the draft prior with top-k) take the
most accurate. Warm threshold rows reuse the τ chosen for cold threshold decoding, so warm vs cold differ only
by the draft. Token injection + remasking also searches `remask_budget` (extend / fixed); `token_remask_alt`
is the same rule over the points of the budget the chosen row does not use, kept as a table row to show what
the budget changes. The draft prior with τ (`prior_tau`, when `WarmStart` has mode="prior") searches β and τ
and takes the most accurate point whose NFE is at most cold τ's (the prior's promise: more accuracy at cold
threshold cost), else the most accurate.
"""

from __future__ import annotations

import itertools

from warmkern import warmstart
from warmkern.testbed import task
from warmkern.testbed.checkpoints import GEN_LENGTH
from warmkern.testbed.methods import Method
from warmkern.testbed.report import rows_to_json
from warmkern.testbed.runner import Setting, evaluate

TAUS = (0.7, 0.8, 0.9, 0.95)
RATES = (0.75, 1.0)
REMASK = (0.3, 0.5, 0.7, 0.9)
BUDGETS = ("extend", "fixed")
NOREMASK_RATES = (0.25, 0.5, 0.75, 1.0)
EMB = (("constant", 0.25), ("constant", 0.5), ("constant", 0.75), ("linear", 0.5))
BETAS = (0.5, 1.0, 2.0)
TAU_PH = -1.0  # placeholder threshold: the τ chosen on cold decoding
WARM_KEYS = ("token_remask", "token_remask_alt", "token_noremask", "emb_topk", "emb_threshold", "prior_tau",
             "prior_topk")


def prior_available() -> bool:
    """The draft prior (`WarmStart(mode="prior", beta=...)`) is in this build of warmkern."""
    return "prior" in warmstart.MODES


def _pick(cands: list[tuple[Method, dict]], target: float) -> tuple[Method, dict]:
    ok = [c for c in cands if c[1]["accuracy"] >= target]
    if ok:
        return min(ok, key=lambda c: (c[1]["mean_nfe"], -c[1]["accuracy"]))
    return max(cands, key=lambda c: (c[1]["accuracy"], -c[1]["mean_nfe"]))


def _pick_within_nfe(cands: list[tuple[Method, dict]], max_nfe: float) -> tuple[Method, dict]:
    ok = [c for c in cands if c[1]["mean_nfe"] <= max_nfe] or cands
    return max(ok, key=lambda c: (c[1]["accuracy"], -c[1]["mean_nfe"]))


def _grid(keys: tuple[str, ...] = WARM_KEYS) -> list[tuple[str, Method]]:
    """(row key, method) pairs of the warm rows in `keys`; threshold TAU_PH stands for the cold τ."""
    g: list[tuple[str, Method]] = []
    if "token_remask" in keys or "token_remask_alt" in keys:
        for thr, rate, rm, bud in itertools.product((None, TAU_PH), RATES, REMASK, BUDGETS):
            g.append(("token_remask", Method("tr", "warm", threshold=thr, rate=rate, remask_threshold=rm,
                                             remask_budget=bud)))
    if "token_noremask" in keys:
        g += [("token_noremask", Method("tn", "warm", rate=r)) for r in NOREMASK_RATES]
    for s, a in EMB:
        if "emb_topk" in keys:
            g.append(("emb_topk", Method("et", "warm", mode="embedding", alpha=a, alpha_schedule=s)))
        if "emb_threshold" in keys:
            g.append(("emb_threshold", Method("eh", "warm", threshold=TAU_PH, mode="embedding", alpha=a,
                                              alpha_schedule=s)))
    if prior_available():
        if "prior_tau" in keys:
            g += [("prior_tau", Method("pt", "warm", threshold=t, mode="prior", beta=b))
                  for b, t in itertools.product(BETAS, TAUS)]
        if "prior_topk" in keys:
            g += [("prior_topk", Method("pk", "warm", mode="prior", beta=b)) for b in BETAS]
    return g


def _candidates(key: str, warm: list[tuple[str, Method]], wres: list[dict], hp: dict) -> list[tuple[Method, dict]]:
    if key == "token_remask_alt":  # the budget the chosen token_remask row does not use
        other = "fixed" if hp["token_remask"]["remask_budget"] == "extend" else "extend"
        return [(m, r) for (k, m), r in zip(warm, wres) if k == "token_remask" and m.remask_budget == other]
    return [(m, r) for (k, m), r in zip(warm, wres) if k == key]


def _entry(m: Method) -> dict:
    return {"threshold": m.threshold, "rate": m.rate, "remask_threshold": m.remask_threshold, "alpha": m.alpha,
            "alpha_schedule": m.alpha_schedule, "beta": m.beta,
            "remask_budget": m.remask_budget if m.remask_threshold is not None else None}


def tune(dllm: str, probs: list[task.Problem], batch: int = 100, seed: int = 0,
         keys: tuple[str, ...] = WARM_KEYS, previous: dict | None = None) -> tuple[dict, dict]:
    """(hyper-parameters, grid log) of `dllm` for the warm rows in `keys`; other rows keep `previous`'s entries."""
    setting = Setting(probs, batch, GEN_LENGTH, seed)
    cold = [Method("cold top-k", "cold")] + [Method("cold", "cold", threshold=t) for t in TAUS]
    res = rows_to_json(evaluate(setting, {dllm: cold}, desc=f"tune {dllm}: cold", with_drafter=False))
    base, target = res[0], res[0]["accuracy"] - 0.01
    tau_m, tau_r = _pick(list(zip(cold[1:], res[1:])), target)
    warm = _grid(keys)
    for _, m in warm:
        m.threshold = tau_m.threshold if m.threshold == TAU_PH else m.threshold
    wres = rows_to_json(evaluate(setting, {dllm: [m for _, m in warm]}, desc=f"tune {dllm}: warm",
                                 with_drafter=False)) if warm else []
    log: dict = {"n": len(probs), "seed": seed, "cold_topk": base, "cold_threshold_grid": res[1:],
                 "tau": tau_m.threshold, "rows": {}}
    hp: dict = {k: v for k, v in (previous or {}).items() if k not in keys} | {"tau": tau_m.threshold}
    for key in (k for k in WARM_KEYS if k in keys):
        cands = _candidates(key, warm, wres, hp)
        if not cands:
            continue
        for m, r in cands:
            r["method"], r["params"] = ("token_remask" if key == "token_remask_alt" else key), m.describe()
        if key in ("emb_topk", "prior_topk"):
            best_m, best = max(cands, key=lambda c: c[1]["accuracy"])
        elif key == "prior_tau":
            best_m, best = _pick_within_nfe(cands, tau_r["mean_nfe"])
        else:
            best_m, best = _pick(cands, target)
        log["rows"][key] = {"grid": [r for _, r in cands], "chosen": best["params"]}
        hp[key] = _entry(best_m)
        print(f"{dllm} {key}: chose {best['params']} (val acc {100 * best['accuracy']:.1f}%, NFE "
              f"{best['mean_nfe']:.1f}; cold top-k {100 * base['accuracy']:.1f}%, NFE {base['mean_nfe']:.1f})")
    hp["chosen_on"] = (f"validation split, first {len(probs)} problems, seed {seed}, block_length {GEN_LENGTH}; "
                       "rule: see warmkern/testbed/tune.py")
    return hp, log
