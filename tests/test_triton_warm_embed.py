"""Triton warm_embed against the reference: bit-exact in every dtype (bf16 is rounded by hand)."""

from __future__ import annotations

import pytest
import torch

from warmkern import launches, ops, reference
from warmkern import triton as wt

DEV = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize(("d", "block_d"), [(40, None), (300, "128")])  # one D tile / several, last partial
def test_warm_embed_bit_exact(dtype, d, block_d, monkeypatch):
    if block_d:
        monkeypatch.setenv("WARMKERN_TRITON_BLOCK_D", block_d)
    gen = torch.Generator().manual_seed(d)
    v, b, g, mask = 50, 2, 7, 7
    w = (torch.randn(v, d, generator=gen) * 2).to(dtype)
    x = torch.randint(0, v, (b, g), generator=gen)
    x[:, :5] = mask
    draft = torch.randint(-1, v, (b, g), generator=gen)
    draft[0, 0] = -1  # masked, kept, but no draft: stays W[mask]
    keep = torch.rand(b, g, generator=gen) < 0.7
    keep[:, 1:3] = True
    keep[1, 3] = False  # masked, draft present, not kept
    alpha = torch.tensor([0.3, 0.77])
    want = reference.warm_embed(w, x, draft, keep, mask_id=mask, alpha=alpha, scale=1.7)
    out = torch.empty(b, g, d, dtype=dtype, device=DEV)
    launches.reset()
    got = wt.warm_embed(w.to(DEV), x.to(DEV), draft.to(DEV), keep.to(DEV), mask_id=mask, alpha=alpha.to(DEV),
                        scale=1.7, out=out)
    assert launches.snapshot() == {"warm_embed": 1}
    assert got is out
    assert torch.equal(got.cpu(), want)


def test_warm_embed_through_ops_with_scalar_alpha_and_strided_inputs():
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(30, 24, generator=gen).to(torch.bfloat16)
    xs = torch.randint(0, 30, (2, 12), generator=gen)
    xs[:, ::2] = 29
    x = xs[:, ::2].contiguous()[:, :3]  # [2, 3]
    draft = torch.randint(-1, 30, (2, 6), generator=gen)[:, 1:4]  # a strided view
    keep = torch.ones(2, 3, dtype=torch.bool)
    launches.reset()
    got = ops.warm_embed(w.to(DEV), x.to(DEV), draft.to(DEV), keep.to(DEV), mask_id=29, alpha=0.5, scale=0.25,
                         backend="triton")
    assert launches.snapshot() == {"warm_embed": 1}
    assert torch.equal(got.cpu(), reference.warm_embed(w, x, draft, keep, mask_id=29, alpha=0.5, scale=0.25))
