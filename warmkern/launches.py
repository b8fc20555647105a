"""Kernel-launch counter: backends call `count(op)` per kernel launch so tests can prove fusion."""

from __future__ import annotations

from collections import Counter

_COUNTS: Counter[str] = Counter()


def count(op: str, n: int = 1) -> None:
    """Record `n` kernel launches issued on behalf of `op`."""
    _COUNTS[op] += n


def snapshot() -> dict[str, int]:
    """Launches recorded since the last reset, per op."""
    return dict(_COUNTS)


def reset() -> None:
    _COUNTS.clear()
