"""Bit-exact parity of the C++ warm_embed with the reference (fp32 math, one rounding per spec op)."""

from __future__ import annotations

import pytest
import torch
from cpu_cases import ISAS, needs_cpu_ext, use_isa

from warmkern import cpu, reference

pytestmark = needs_cpu_ext


def inputs(b: int, g: int, v: int, d: int, dtype: torch.dtype, gen: torch.Generator):
    weight = torch.randn(v, d, generator=gen).to(dtype)
    mask_id = v - 2
    x = torch.randint(0, v, (b, g), generator=gen)
    x[torch.rand(b, g, generator=gen) < 0.6] = mask_id
    draft = torch.randint(-1, v, (b, g), generator=gen)
    keep = torch.rand(b, g, generator=gen) < 0.7
    return weight, x, draft, keep, mask_id


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize(("d", "scale"), [(1, 1.0), (37, 1.0), (64, 0.3333), (130, 8.0)])
def test_warm_embed_exact(monkeypatch, isa, dtype, d, scale):
    use_isa(monkeypatch, isa)
    gen = torch.Generator().manual_seed(d)
    b, g, v = 3, 9, 40
    weight, x, draft, keep, mask_id = inputs(b, g, v, d, dtype, gen)
    alpha = torch.tensor([0.0, 0.37, 1.0])
    want = reference.warm_embed(weight, x, draft, keep, mask_id=mask_id, alpha=alpha, scale=scale)
    out = torch.full((b, g, d), float("nan"), dtype=dtype)
    got = cpu.warm_embed(weight, x, draft, keep, mask_id=mask_id, alpha=alpha, scale=scale, out=out)
    assert got is out
    assert torch.equal(out, want)


def test_warm_embed_strided_views():
    """x/draft/keep as slices of the full sequence, weight with padded rows."""
    gen = torch.Generator().manual_seed(0)
    weight_full = torch.randn(30, 24, generator=gen)
    weight = weight_full[:, 4:20]
    xf = torch.randint(0, 30, (2, 12), generator=gen)
    xf[:, 5:] = 28
    draft = torch.randint(-1, 30, (2, 12), generator=gen)[:, 3:10]
    keep = (torch.rand(2, 12, generator=gen) < 0.5)[:, 2:9]
    x = xf[:, 4:11]
    alpha = torch.tensor([0.25, 0.75])
    want = reference.warm_embed(weight, x, draft, keep, mask_id=28, alpha=alpha, scale=2.5)
    out = torch.empty(2, 7, 16)
    cpu.warm_embed(weight, x, draft, keep, mask_id=28, alpha=alpha, scale=2.5, out=out)
    assert torch.equal(out, want)


def test_warm_embed_bad_ids_give_zero_rows_and_status():
    """An id outside the table is never read: a zero row, and status is set (reference.warm_embed)."""
    weight = torch.randn(10, 4)
    x = torch.tensor([[3, 12, 9, -1]])
    draft = torch.tensor([[0, 0, 10, 2]])
    keep = torch.ones(1, 4, dtype=torch.bool)
    st, st_ref = torch.zeros(1, dtype=torch.int32), torch.zeros(1, dtype=torch.int32)
    want = reference.warm_embed(weight, x, draft, keep, mask_id=9, alpha=torch.tensor([0.5]), status=st_ref)
    got = cpu.warm_embed(weight, x, draft, keep, mask_id=9, alpha=torch.tensor([0.5]), out=torch.empty(1, 4, 4),
                         status=st)
    assert st.item() == st_ref.item() == 1
    assert torch.equal(got[0, 1:], torch.zeros(3, 4))
    assert torch.equal(got, want)
