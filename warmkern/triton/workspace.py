"""Per-device scratch that must start zeroed: the atomic counters of the single-launch kernels.

The kernels return every counter to 0 before they finish, so the buffer is zeroed once (at
allocation) and reused: a step needs no memset launch and stays CUDA-graph capturable. Calls that
run concurrently on different streams of one device would share counters; warmkern's sampler
issues its steps on one stream.
"""

from __future__ import annotations

import torch

_COUNTERS: dict[tuple[str, int | None], torch.Tensor] = {}


def counters(device: torch.device, n: int) -> torch.Tensor:
    """An int32 buffer of at least `n` zeroed counters on `device` (grown, never shrunk)."""
    key = (device.type, device.index)
    buf = _COUNTERS.get(key)
    if buf is None or buf.numel() < n:
        buf = torch.zeros(max(n, 1024), dtype=torch.int32, device=device)
        _COUNTERS[key] = buf
    return buf
