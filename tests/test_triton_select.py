"""Triton select against the reference: every rule, remasking, ties, NaN/-inf/-0.0 scores, windows."""

from __future__ import annotations

import pytest
import torch

from warmkern import launches, reference
from warmkern import triton as wt

DEV = "cuda" if torch.cuda.is_available() else "cpu"
B, G, MASK = 3, 37, 99  # G not a power of two


def row_inputs(seed: int):
    gen = torch.Generator().manual_seed(seed)
    sc = torch.round(torch.rand(B, G, generator=gen) * 8) / 8  # many exact ties
    sc[1, 3], sc[1, 4], sc[2, 7], sc[2, 8] = float("nan"), float("-inf"), -0.0, 0.0
    sc[0, 10:14] = 1.0
    x0 = torch.randint(0, MASK + 1, (B, G), generator=gen)  # some x0 == MASK: never eligible
    x = torch.where(torch.rand(B, G, generator=gen) < 0.6, MASK, torch.randint(0, MASK, (B, G), generator=gen))
    pc = torch.round(torch.rand(B, G, generator=gen) * 8) / 8
    prov = torch.rand(B, G, generator=gen) < 0.5
    return sc, x0, pc, x, prov


RULES = [
    ("k per row (0, within, beyond #eligible)", dict(k=torch.tensor([0, 3, 50]))),
    ("k", dict(k=torch.tensor([5, 1, 2]))),
    ("threshold", dict(threshold=0.6)),
    ("threshold none pass", dict(threshold=2.0)),
    ("factor", dict(factor=1.0)),
    ("factor tight", dict(factor=0.05)),
]
REMASK = [{}, dict(remask_threshold=0.5), dict(remask_threshold=0.7, remask_max=2)]
CASES = [(name, rule, REMASK[i % 3], i) for i, (name, rule) in enumerate(RULES)] + [
    ("k + remask max 0", dict(k=torch.tensor([2, 2, 2])), dict(remask_threshold=0.9, remask_max=0), 9),
    ("factor + remask", dict(factor=0.5), dict(remask_threshold=0.6), 10),
]


@pytest.mark.parametrize(("name", "rule", "remask", "seed"), CASES, ids=[c[0] for c in CASES])
def test_select_parity(name, rule, remask, seed):
    sc, x0, pc, x, prov = row_inputs(seed)
    lo = torch.tensor([0, 3, 10 + seed % 5])
    hi = torch.tensor([G, 20, 10 + seed % 5 + (0 if seed % 2 else 9)])  # full, partial, empty or short
    rule = {k: (v.to(DEV) if isinstance(v, torch.Tensor) else v) for k, v in rule.items()}
    xa, pa = x.clone(), prov.clone()
    want = reference.select(sc, x0, pc, xa, pa, mask_id=MASK, lo=lo, hi=hi,
                            **{k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in rule.items()}, **remask)
    xb, pb = x.to(DEV), prov.to(DEV)
    launches.reset()
    got = wt.select(sc.to(DEV), x0.to(DEV), pc.to(DEV), xb, pb, mask_id=MASK, lo=lo.to(DEV), hi=hi.to(DEV),
                    **rule, **remask)
    assert launches.snapshot() == {"select": 1}
    assert torch.equal(xb.cpu(), xa) and torch.equal(pb.cpu(), pa)
    assert torch.equal(got[0].cpu(), want[0]) and torch.equal(got[1].cpu(), want[1])


def test_select_breaks_ties_by_position_and_ranks_nan_last():
    """All-equal scores: top-k takes the leftmost eligible; NaN scores go after -inf."""
    g = 8
    sc = torch.tensor([[0.5] * g, [float("nan"), float("-inf"), float("nan"), 0.1, -0.0, 0.0, float("-inf"), 2.0]])
    x0 = torch.full((2, g), 4)
    x = torch.full((2, g), 9)
    prov = torch.zeros(2, g, dtype=torch.bool)
    lo, hi, k = torch.tensor([1, 0]), torch.tensor([g, g]), torch.tensor([3, 7])
    xb = x.clone().to(DEV)
    nt, nr = wt.select(sc.to(DEV), x0.to(DEV), sc.abs().to(DEV), xb, prov.to(DEV), mask_id=9, lo=lo.to(DEV),
                       hi=hi.to(DEV), k=k.to(DEV))
    assert xb[0].cpu().tolist() == [9, 4, 4, 4, 9, 9, 9, 9]
    assert xb[1].cpu().tolist() == [4, 4, 9, 4, 4, 4, 4, 4]  # the last NaN (position 2) is left out
    assert nt.cpu().tolist() == [3, 7] and nr.cpu().tolist() == [0, 0]
    xa = x.clone()
    reference.select(sc, x0, sc.abs(), xa, prov.clone(), mask_id=9, lo=lo, hi=hi, k=k)
    assert torch.equal(xa, xb.cpu())
