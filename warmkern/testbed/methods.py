"""The rows of the evaluation table: which decoding method, with which hyper-parameters, and what it measured.

Hyper-parameters are chosen per dLLM on the validation split (`tune.py`) and stored in one JSON file with
one entry per dLLM name (`assets/hparams.json`: "calibrated", "uncalibrated").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from warmkern.testbed.checkpoints import ASSETS

HPARAMS_PATH = ASSETS / "hparams.json"

# Used for a dLLM that has no entry in the hyper-parameter file (never tuned): stated in the table header.
DEFAULT_HPARAMS: dict = {
    "tau": 0.9,
    "token_remask": {"rate": 1.0, "remask_threshold": 0.5, "threshold": None, "remask_budget": "extend"},
    "token_noremask": {"rate": 0.5, "threshold": None},
    "emb_topk": {"alpha": 0.5, "alpha_schedule": "linear"},
    "emb_threshold": {"alpha": 0.5, "alpha_schedule": "linear", "threshold": 0.9},
}
# Row keys in table order; `prior_*` rows appear once the hyper-parameters hold them (the draft prior).
ROW_KEYS = ("cold_topk", "cold_tau", "token_remask", "token_remask_alt", "token_noremask", "emb_topk",
            "emb_threshold", "prior_tau", "prior_topk")
# `warmkern demo` (~3 min budget on 2 cores for 4 settings x 200 problems): a top-k row costs 32 forwards per
# sample, so "prior_topk" (which cannot cut NFE) is left to `warmkern eval` / `demo --methods ...`.
DEMO_ROW_KEYS = ("cold_topk", "cold_tau", "token_remask", "prior_tau")


@dataclass
class Method:
    name: str
    kind: str  # "drafter" | "cold" | "warm"
    threshold: float | None = None
    mode: str = "token"  # WarmStart.mode: "token" | "embedding" | "prior"
    rate: float = 1.0
    alpha: float = 0.5
    alpha_schedule: str = "constant"
    remask_threshold: float | None = None
    remask_budget: str = "extend"  # WarmStart.remask_budget: steps for remasked tokens at the cold pace, or none
    beta: float | None = None  # WarmStart(mode="prior").beta: logit bonus of the draft token at masked positions
    key: str = ""  # which row of the table (ROW_KEYS); "" for tuning grid points

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
        if self.mode == "prior":
            return f"{dec}, β={self.beta}"
        return f"{dec}, α={self.alpha} {self.alpha_schedule}, ρ={self.rate}"

    def warm_start_kwargs(self) -> dict:
        """Keyword arguments of `WarmStart` (besides the draft and fill_tail) for a warm row."""
        kw: dict = dict(mode=self.mode, rate=self.rate)
        if self.mode == "embedding":
            kw.update(alpha=self.alpha, alpha_schedule=self.alpha_schedule)
        elif self.mode == "token":
            kw.update(remask_threshold=self.remask_threshold, remask_budget=self.remask_budget)
        else:
            kw.update(beta=self.beta)
        return kw


@dataclass
class RowResult:
    name: str
    params: str
    dllm: str | None = None  # None for the drafter-alone row
    block_length: int | None = None
    correct: list[bool] = field(default_factory=list)
    nfe: list[int] = field(default_factory=list)  # dLLM forwards per sample (GenerationStats.nfe_per_row)
    drafter_forwards: list[int] = field(default_factory=list)  # sequential drafter forwards per sample
    wall_s: float = 0.0  # at the evaluation batch, drafter included for warm rows
    draft_s: float = 0.0
    model_s: float = 0.0
    sampler_s: float = 0.0
    latency_s: list[float] = field(default_factory=list)  # batch-of-one wall time per sample, drafter included
    remasked: int = 0
    injected: int = 0
    examples: list[str] = field(default_factory=list)


def _row(key: str, name: str, hp: dict, kind: str = "warm", **fixed) -> Method:
    """A table row from its hyper-parameter entry (None-valued fields keep the Method defaults)."""
    given = {k: v for k, v in hp.items() if k in Method.__dataclass_fields__ and v is not None}
    return Method(name, kind, key=key, **(given | fixed))


def methods_from_hparams(hp: dict, keys: tuple[str, ...] = ROW_KEYS) -> list[Method]:
    """The table rows of one dLLM (drafter alone comes separately): those of `keys` that `hp` can fill."""
    rows = {"cold_topk": Method("cold top-k", "cold", key="cold_topk"),
            "cold_tau": Method("cold threshold", "cold", threshold=hp["tau"], key="cold_tau")}
    if "token_remask" in hp:
        rows["token_remask"] = _row("token_remask", "token injection + remasking", hp["token_remask"], mode="token")
    if "token_remask_alt" in hp:  # the other budget's best point, so the table shows what the budget changes
        alt = hp["token_remask_alt"]
        rows["token_remask_alt"] = _row("token_remask_alt", f"token injection + remasking, {alt['remask_budget']} "
                                        "budget", alt, mode="token")
    named = {"token_noremask": ("token injection, no remasking", "token"),
             "emb_topk": ("embedding interp. top-k", "embedding"),
             "emb_threshold": ("embedding interp. threshold", "embedding"),
             "prior_tau": ("draft prior threshold", "prior"), "prior_topk": ("draft prior top-k", "prior")}
    for key, (name, mode) in named.items():
        if key in hp:
            rows[key] = _row(key, name, hp[key], mode=mode)
    return [rows[k] for k in ROW_KEYS if k in rows and k in keys]  # table order, whatever order keys have


def drafter_method() -> Method:
    return Method("drafter alone", "drafter", key="drafter")


def load_hparams(path: Path, dllm: str) -> tuple[dict, bool]:
    """(hyper-parameters of `dllm`, whether they were tuned): its entry of the file, else the defaults."""
    if not path.exists():
        return dict(DEFAULT_HPARAMS), False
    stored = json.loads(path.read_text())
    if dllm in stored:
        return stored[dllm], True
    return dict(DEFAULT_HPARAMS), False
