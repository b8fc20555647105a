"""The rows of the evaluation table: which decoding method, with which hyper-parameters."""

from __future__ import annotations

from dataclasses import dataclass, field

from warmkern.testbed.models import ASSETS

HPARAMS_PATH = ASSETS / "hparams.json"

# Used only until `warmkern eval --split validation --tune` has written assets/hparams.json.
DEFAULT_HPARAMS: dict = {
    "tau": 0.9,
    "token_remask": {"rate": 1.0, "remask_threshold": 0.5, "threshold": None, "remask_budget": "extend"},
    "token_noremask": {"rate": 0.5, "threshold": None},
    "emb_topk": {"alpha": 0.5, "alpha_schedule": "linear"},
    "emb_threshold": {"alpha": 0.5, "alpha_schedule": "linear", "threshold": 0.9},
}


@dataclass
class Method:
    name: str
    kind: str  # "drafter" | "cold" | "warm"
    threshold: float | None = None
    mode: str = "token"
    rate: float = 1.0
    alpha: float = 0.5
    alpha_schedule: str = "constant"
    remask_threshold: float | None = None
    remask_budget: str = "extend"  # WarmStart.remask_budget: steps for remasked tokens at the cold pace, or none

    def describe(self) -> str:
        if self.kind == "drafter":
            return "greedy, char-level causal LM"
        dec = f"τ={self.threshold}" if self.threshold is not None else "top-k, steps=G"
        if self.kind == "cold":
            return dec
        if self.mode == "token":
            rm = (f", remask<{self.remask_threshold} {self.remask_budget}" if self.remask_threshold is not None
                  else "")
            return f"{dec}, ρ={self.rate}{rm}"
        return f"{dec}, α={self.alpha} {self.alpha_schedule}, ρ={self.rate}"


@dataclass
class RowResult:
    name: str
    params: str
    correct: list[bool] = field(default_factory=list)
    nfe: list[int] = field(default_factory=list)
    wall_s: float = 0.0
    draft_s: float = 0.0
    model_s: float = 0.0
    sampler_s: float = 0.0
    remasked: int = 0
    injected: int = 0
    examples: list[str] = field(default_factory=list)


def methods_from_hparams(hp: dict) -> list[Method]:
    tau = hp["tau"]
    tr, tn, et, eh = hp["token_remask"], hp["token_noremask"], hp["emb_topk"], hp["emb_threshold"]
    rows = [
        Method("drafter alone", "drafter"),
        Method("cold top-k", "cold"),
        Method("cold threshold", "cold", threshold=tau),
        Method("token injection + remasking", "warm", threshold=tr["threshold"], mode="token", rate=tr["rate"],
               remask_threshold=tr["remask_threshold"], remask_budget=tr.get("remask_budget", "fixed")),
    ]
    if "token_remask_alt" in hp:  # the other budget's best point too, so the table shows what the budget changes
        alt = hp["token_remask_alt"]
        rows.append(Method(f"token injection + remasking, {alt['remask_budget']} budget", "warm",
                           threshold=alt["threshold"], mode="token", rate=alt["rate"],
                           remask_threshold=alt["remask_threshold"], remask_budget=alt["remask_budget"]))
    rows += [
        Method("token injection, no remasking", "warm", threshold=tn.get("threshold"), mode="token", rate=tn["rate"]),
        Method("embedding interp. top-k", "warm", mode="embedding", rate=et.get("rate", 1.0), alpha=et["alpha"],
               alpha_schedule=et["alpha_schedule"]),
        Method("embedding interp. threshold", "warm", threshold=eh["threshold"], mode="embedding",
               rate=eh.get("rate", 1.0), alpha=eh["alpha"], alpha_schedule=eh["alpha_schedule"]),
    ]
    return rows
