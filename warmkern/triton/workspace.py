"""Scratch of the single-launch kernels, per (device, stream), never freed while a graph may use it.

A Workspace holds int32 counters that must start at 0 (the kernels return each one to 0 before they
finish, so zeroing happens once, at allocation: a step needs no memset launch) plus uninitialised
int64/fp32 scratch (partial states, denoise_step's per-position results).

Rules that make it safe for concurrent streams and CUDA graphs:
- one workspace per (device, stream): kernels on different streams never share counters;
- a workspace that must grow is replaced by a new, larger one and the old one is kept alive
  forever (`_RETIRED`): a graph captured before still replays on valid, unshared memory;
- one created or grown while its stream is being captured is zeroed inside the capture (that memset
  runs at every replay) and once more, eagerly, on its first use outside a capture;
- a caller can supply its own: `with workspace.using(Workspace.allocate(dev, ...)):` (e.g. one per
  captured graph that is replayed concurrently with other work).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass
class Workspace:
    counters: torch.Tensor  # int32, zero between calls
    ints: torch.Tensor  # int64 scratch
    floats: torch.Tensor  # fp32 scratch
    zero_pending: bool = False  # zeroed only inside a graph capture so far

    @classmethod
    def allocate(cls, device: torch.device | str, counters: int, ints: int = 0, floats: int = 0) -> Workspace:
        """A workspace with room for the given numbers of counters / int64 / fp32 scratch elements."""
        device = torch.device(device)
        return cls(torch.zeros(max(counters, 1), dtype=torch.int32, device=device),
                   torch.empty(max(ints, 1), dtype=torch.int64, device=device),
                   torch.empty(max(floats, 1), dtype=torch.float32, device=device),
                   zero_pending=_capturing(device))

    def fits(self, device: torch.device, counters: int, ints: int, floats: int) -> bool:
        return (self.counters.device == device and self.counters.numel() >= counters
                and self.ints.numel() >= ints and self.floats.numel() >= floats)


_BY_STREAM: dict[tuple[str, int | None, int], Workspace] = {}
_RETIRED: list[Workspace] = []  # outgrown buffers: a captured graph may still hold their addresses
_SUPPLIED: contextvars.ContextVar[Workspace | None] = contextvars.ContextVar("warmkern_workspace", default=None)


def _capturing(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_current_stream_capturing()


def _stream_key(device: torch.device) -> tuple[str, int | None, int]:
    if device.type != "cuda":
        return (device.type, device.index, 0)
    return (device.type, device.index, torch.cuda.current_stream(device).cuda_stream)


@contextlib.contextmanager
def using(ws: Workspace) -> Iterator[Workspace]:
    """Run the Triton ops of this block (this thread / task) on the caller's workspace."""
    token = _SUPPLIED.set(ws)
    try:
        yield ws
    finally:
        _SUPPLIED.reset(token)


def get(device: torch.device, counters: int, ints: int = 0, floats: int = 0) -> Workspace:
    """The workspace a launch on `device` (its current stream) uses, with at least the given room."""
    ws = _SUPPLIED.get()
    if ws is not None:
        if not ws.fits(device, counters, ints, floats):
            raise ValueError(f"workspace: expected one on {device} with at least {counters} counters, {ints} ints "
                             f"and {floats} floats, got {ws.counters.device} with {ws.counters.numel()}, "
                             f"{ws.ints.numel()} and {ws.floats.numel()}")
    else:
        key = _stream_key(device)
        ws = _BY_STREAM.get(key)
        if ws is None or not ws.fits(device, counters, ints, floats):
            if ws is not None:
                _RETIRED.append(ws)
                counters, ints, floats = (max(n, 2 * have) for n, have in
                                          ((counters, ws.counters.numel()), (ints, ws.ints.numel()),
                                           (floats, ws.floats.numel())))
            ws = Workspace.allocate(device, max(counters, 1024), ints, floats)
            _BY_STREAM[key] = ws
    if ws.zero_pending and not _capturing(device):
        ws.counters.zero_()
        ws.zero_pending = False
    return ws
