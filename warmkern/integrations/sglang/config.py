"""The plugin's YAML (`--dllm-algorithm-config`): keys, defaults, and their checks.

sglang hands the parsed YAML mapping to the algorithm (`DllmConfig.algorithm_config`); this module turns
it into a frozen `WarmkernConfig`, naming the offending key on bad input so a server fails at start-up,
not at its first request. The defaults reproduce sglang's `LowConfidence` (threshold 0.95, greedy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch

from warmkern.schema import SCORE_MODES, SCORE_TEMPERATURES

RULES = ("threshold", "topk", "factor")
BACKENDS = ("auto", "reference", "triton", "cpu")
# Keys sglang itself reads from the same YAML; accepted and left to sglang.
SGLANG_KEYS = frozenset({"block_size", "capture_input_preparation"})


@dataclass(frozen=True)
class WarmkernConfig:
    """One server's decoding settings (every request of the server shares them).

    rule: which positions a step commits: `threshold` (score > threshold, at least the best one, as
    sglang's LowConfidence), `topk` (the k best per step), `factor` (Fast-dLLM's factor rule).
    prior_bias: logit bias on a request's draft token at each position (0 = no prior).
    inject_draft: write a request's draft tokens into masked slots before a block's first forward;
    they stay provisional and `remask_threshold` remasks those the model doubts.
    """

    rule: str = "threshold"
    threshold: float = 0.95
    k: int = 1
    factor: float = 1.0
    score: str = "prob"
    score_temperature: str = "none"
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    alg_temp: float = 0.0
    suppress_ids: tuple[int, ...] = ()
    pick_suppress_ids: tuple[int, ...] = ()
    score_suppress_ids: tuple[int, ...] = ()
    seed: int = 0
    prior_bias: float = 0.0
    inject_draft: bool = False
    remask_threshold: float | None = None
    remask_max: int | None = None
    backend: str = "auto"

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> WarmkernConfig:
        """Build from the YAML mapping; unknown keys and bad values raise ValueError naming the key."""
        raw = dict(raw or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known - SGLANG_KEYS)
        if unknown:
            raise ValueError(f"dllm-algorithm-config: unknown key(s) {unknown}; expected some of {sorted(known)}")
        values = {name: raw[name] for name in known if name in raw}
        cfg = cls(**{n: _PARSERS[n](n, v) for n, v in values.items()})
        cfg._check_combination()
        return cfg

    def _check_combination(self) -> None:
        if self.score_temperature == "sampling" and self.temperature == 0:
            _fail("score_temperature", "'none' when temperature is 0", "'sampling'")
        if self.alg_temp > 0 and self.rule != "topk":
            _fail("alg_temp", "0 unless rule is 'topk' (Dream's alg_temp draws k positions)", self.alg_temp)
        for key in ("temperature", "alg_temp"):
            value = getattr(self, key)
            if value > 0 and not math.isfinite(float(torch.tensor(1.0 / value, dtype=torch.float32))):
                _fail(key, "0 or a value whose fp32 inverse is finite", value)
        if self.remask_threshold is not None and not self.inject_draft:
            _fail("remask_threshold", "null unless inject_draft is true (only injected tokens are remasked)",
                  self.remask_threshold)


def _fail(key: str, expected: str, got: object) -> None:
    raise ValueError(f"dllm-algorithm-config: {key}: expected {expected}, got {got!r}")


def _number(key: str, value: object, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(key, "a finite number", value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        _fail(key, f"a number in [{lo}, {hi}]", value)
    return float(value)


def _integer(key: str, value: object, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        _fail(key, f"an integer >= {lo}", value)
    return int(value)


def _choice(choices: tuple[str, ...]):
    def parse(key: str, value: object) -> str:
        if value not in choices:
            _fail(key, f"one of {list(choices)}", value)
        return str(value)

    return parse


def _ids(key: str, value: object) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)):
        _fail(key, "a list of token ids", value)
    return tuple(_integer(f"{key}[{i}]", v) for i, v in enumerate(value))


def _flag(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        _fail(key, "true or false", value)
    return bool(value)


def _optional(parse):
    return lambda key, value: None if value is None else parse(key, value)


_PARSERS = {
    "rule": _choice(RULES),
    "threshold": lambda k, v: _number(k, v),
    "k": lambda k, v: _integer(k, v, lo=1),
    "factor": lambda k, v: _number(k, v, lo=0.0),
    "score": _choice(SCORE_MODES),
    "score_temperature": _choice(SCORE_TEMPERATURES),
    "temperature": lambda k, v: _number(k, v, lo=0.0),
    "top_k": lambda k, v: _integer(k, v),
    "top_p": lambda k, v: _number(k, v, lo=0.0, hi=1.0),
    "alg_temp": lambda k, v: _number(k, v, lo=0.0),
    "suppress_ids": _ids,
    "pick_suppress_ids": _ids,
    "score_suppress_ids": _ids,
    "seed": lambda k, v: _integer(k, v),
    "prior_bias": lambda k, v: _number(k, v),
    "inject_draft": _flag,
    "remask_threshold": _optional(lambda k, v: _number(k, v, lo=0.0, hi=1.0)),
    "remask_max": _optional(lambda k, v: _integer(k, v)),
    "backend": _choice(BACKENDS),
}
