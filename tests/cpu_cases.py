"""Shared helpers of the C++ backend tests: ISA variants, skip marker, logits layouts."""

from __future__ import annotations

import pytest
import torch

from warmkern import cpu

needs_cpu_ext = pytest.mark.skipif(cpu.unavailable_reason() is not None, reason=str(cpu.unavailable_reason()))

# Every compiled variant runs (the kernel caps the request at what the CPU supports).
ISAS = ("base", "avx2", "avx512")



def use_isa(monkeypatch: pytest.MonkeyPatch, isa: str) -> None:
    """Pin the kernel variant for this test (read by the C++ side on every call)."""
    monkeypatch.setenv("WARMKERN_CPU_ISA", isa)


def make_logits(b: int, g: int, v: int, dtype: torch.dtype, layout: str, gen: torch.Generator, scale: float = 3.0):
    """[b, g, v] logits as a contiguous tensor, a padded-row view, or Dream's right-shifted view."""
    if layout == "dream":
        p = 3  # logits of generation position i sit at i - 1 of the full sequence
        full = (torch.randn(b, p + g + 1, v, generator=gen) * scale).to(dtype)
        return full[:, p - 1 : p - 1 + g]
    if layout == "padded":
        full = (torch.randn(b, g, v + 13, generator=gen) * scale).to(dtype)
        return full[:, :, 5 : 5 + v]
    return (torch.randn(b, g, v, generator=gen) * scale).to(dtype)


def state_view(x: torch.Tensor, prov: torch.Tensor, offset: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """x / provisional as views x_full[:, P:P+G] of a longer sequence (row stride > G)."""
    b, g = x.shape
    xf = torch.full((b, offset + g + 2), 7, dtype=x.dtype)
    pf = torch.zeros((b, offset + g + 2), dtype=torch.bool)
    xf[:, offset : offset + g] = x
    pf[:, offset : offset + g] = prov
    return xf[:, offset : offset + g], pf[:, offset : offset + g]
