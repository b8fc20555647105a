"""Backend registry: which implementations exist, which can run here, and what `auto` picks.

A backend is a module exposing `warm_embed`, `token_stats`, `select` and `denoise_step` with the
signatures of `warmkern.reference`, called with normalised arguments (alpha, k, lo, hi as [B]
tensors; id lists as tuples; `out` always given to warm_embed).
"""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType

import torch

log = logging.getLogger("warmkern")

BACKENDS = ("reference", "triton", "cpu")
CHOICES = ("auto", *BACKENDS)
_MODULES = {"reference": "warmkern.reference", "triton": "warmkern.triton", "cpu": "warmkern.cpu"}
_auto_logged: set[tuple[str, str]] = set()


def _interpret() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def unavailable_reason(name: str, device: torch.device) -> str | None:
    """Why backend `name` cannot run on `device` here, or None if it can."""
    if name == "reference":
        return None
    if name == "cpu":
        if device.type != "cpu":
            return f"backend 'cpu' runs on CPU tensors, got tensors on {device}"
        from warmkern import cpu

        return cpu.unavailable_reason()
    if name == "triton":
        try:
            import triton  # noqa: F401
        except Exception as err:  # pragma: no cover - depends on the install
            return f"backend 'triton' needs the triton package ({err})"
        if device.type == "cuda" or _interpret():
            return None
        return f"backend 'triton' needs CUDA tensors (got {device}) or TRITON_INTERPRET=1"
    raise ValueError(f"backend: expected one of {CHOICES}, got {name!r}")


def requested(backend: str | None) -> str:
    """The backend asked for: the argument, else $WARMKERN_BACKEND (empty = unset), else 'auto'."""
    if backend is not None:
        if backend not in CHOICES:
            raise ValueError(f"backend: expected one of {CHOICES}, got {backend!r}")
        return backend
    env = os.environ.get("WARMKERN_BACKEND", "").strip()
    if env and env not in CHOICES:
        raise ValueError(f"WARMKERN_BACKEND: expected one of {CHOICES} (or unset), got {env!r}")
    return env or "auto"


def resolve(backend: str | None, device: torch.device) -> str:
    """Concrete backend name for a request ('auto', None -> $WARMKERN_BACKEND or auto)."""
    name = requested(backend)
    if name != "auto":
        why = unavailable_reason(name, device)
        if why is not None:
            raise RuntimeError(f"backend={name!r} was requested but cannot run: {why}")
        return name
    if device.type == "cuda":
        chosen = "triton" if unavailable_reason("triton", device) is None else "reference"
    else:
        chosen = "cpu" if unavailable_reason("cpu", device) is None else "reference"
    if (device.type, chosen) not in _auto_logged:
        _auto_logged.add((device.type, chosen))
        log.info("warmkern: backend 'auto' chose %r for %s tensors", chosen, device.type)
    return chosen


def module(name: str) -> ModuleType:
    return importlib.import_module(_MODULES[name])
