"""warmkern as an sglang dLLM algorithm: `--dllm-algorithm Warmkern --dllm-algorithm-config cfg.yaml`.

sglang loads the `sglang.srt.plugins` entry point `warmkern` (pyproject.toml) in the engine and in every
scheduler process; `register` then adds the `Warmkern` class to sglang's algorithm table. sglang is
imported only inside `register` / `algorithm_class()`: this package imports without it.

Mirrors sglang 0.5.23 (see `algorithm.py` for the exact interface); README "Serving with sglang".
"""

from __future__ import annotations

from warmkern.integrations.sglang.algorithm import WarmkernSteps, strict_threshold
from warmkern.integrations.sglang.config import WarmkernConfig
from warmkern.integrations.sglang.requests import DRAFT_KEY, PRIOR_BIAS_KEY

ALGORITHM_NAME = "Warmkern"
_CLASSES: dict[type, type] = {}

__all__ = [
    "ALGORITHM_NAME",
    "DRAFT_KEY",
    "PRIOR_BIAS_KEY",
    "WarmkernConfig",
    "WarmkernSteps",
    "algorithm_class",
    "register",
    "strict_threshold",
]


def algorithm_class(base: type | None = None) -> type:
    """The `Warmkern` class: WarmkernSteps on top of sglang's DllmAlgorithm (or `base`, e.g. a test stand-in)."""
    if base is None:
        from sglang.srt.dllm.algorithm.base import DllmAlgorithm

        base = DllmAlgorithm
    cls = _CLASSES.get(base)
    if cls is None:
        cls = type(ALGORITHM_NAME, (WarmkernSteps, base), {"__module__": __name__, "__doc__": WarmkernSteps.__doc__})
        _CLASSES[base] = cls
    return cls


def register() -> None:
    """Entry point (`sglang.srt.plugins`): make `--dllm-algorithm Warmkern` resolve to `algorithm_class()`."""
    from sglang.srt.dllm import algorithm as table

    table.algo_name_to_cls[ALGORITHM_NAME] = algorithm_class()
