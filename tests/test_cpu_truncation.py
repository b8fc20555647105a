"""The C++ truncation cutoff (csrc/truncation.h) against the spec's keep set (reference.truncation_keep).

warmkern_cpu::_truncation_cutoff returns one cutoff c per row; the kept entries must be exactly
{v : zs[v] >= c}. top_k is exact. top_p compares a sum of probabilities with top_p, which the spec and
the kernel round differently, so every top_p row here is checked first (asserted) to have no entry
whose mass-above lies within MARGIN of top_p; exact ties and +inf / -inf rows are exact whatever the
rounding. The sort-based baseline (_truncation_cutoff_sort) is held to the same contract.
"""

from __future__ import annotations

import pytest
import torch
from cpu_cases import ISAS, use_isa

from warmkern import cpu  # noqa: F401  (loads warmkern._C, which registers the private ops)
from warmkern.reference import truncation_keep

_HAS_OP = hasattr(torch.ops.warmkern_cpu, "_truncation_cutoff")
pytestmark = pytest.mark.skipif(not _HAS_OP, reason="warmkern._C without _truncation_cutoff (not built)")

MARGIN = 1e-4  # no top_p row has an entry whose mass-above is this close to top_p
TOP_PS = (1e-6, 0.5, 0.9, 0.95, 0.999)
INF = float("inf")


def _cut(zs: torch.Tensor, top_k: int, top_p: float, sort: bool = False) -> torch.Tensor:
    op = torch.ops.warmkern_cpu._truncation_cutoff_sort if sort else torch.ops.warmkern_cpu._truncation_cutoff
    return op(zs.contiguous(), top_k, top_p)


def _top_ks(v: int) -> list[int]:
    return sorted({k for k in (1, 2, 50, v - 1, v) if k >= 0})


def mass_above_margin(row: torch.Tensor, top_p: float) -> float:
    """min over the row's distinct values below the max of |softmax mass strictly above - top_p| (float64).

    The max's mass-above is exactly 0 everywhere, so it is no rounding hazard (inf when it is the only value).
    """
    z = row.double()
    m = z.max()
    assert torch.isfinite(m), "margin rows have a finite max"
    vals, inv = torch.unique(z, sorted=True, return_inverse=True)  # ascending
    group = torch.zeros_like(vals).index_add_(0, inv, torch.exp(z - m))
    group = group / group.sum()
    above = group.flip(0).cumsum(0) - group.flip(0)  # descending: mass of the greater groups
    return float((above[1:] - top_p).abs().min()) if len(vals) > 1 else INF


def check(zs: torch.Tensor, top_k: int, top_p: float, sort: bool = False) -> None:
    """keep == (zs >= c) row by row, against the spec (all kept when both truncations are off)."""
    c = _cut(zs, top_k, top_p, sort)
    assert c.shape == (zs.shape[0],) and c.dtype == torch.float32
    want = truncation_keep(zs, top_k, top_p)
    if want is None:
        want = torch.ones_like(zs, dtype=torch.bool)
    got = zs >= c.unsqueeze(-1)
    bad = (got != want).any(dim=-1).nonzero().flatten().tolist()
    assert not bad, f"rows {bad}: top_k={top_k} top_p={top_p} kept {got[bad].sum(-1).tolist()} want " \
        f"{want[bad].sum(-1).tolist()} (cutoff {c[bad].tolist()})"


def rows_with_margin(make, r: int, top_p: float | tuple[float, ...], gen: torch.Generator) -> torch.Tensor:
    """r rows from make(gen), each redrawn until no mass-above lies within MARGIN of top_p (asserted)."""
    top_ps = top_p if isinstance(top_p, tuple) else (top_p,)
    ok = lambda row: all(mass_above_margin(row, p) > MARGIN for p in top_ps)
    out = []
    for _ in range(r):
        for _attempt in range(50):
            row = make(gen)
            if ok(row):
                break
        assert ok(row), "no row satisfies the precondition"
        out.append(row)
    return torch.stack(out)


def _randn(v: int, scale: float, shift: float = 0.0):
    return lambda gen: torch.randn(v, generator=gen) * scale + shift


def _random(v: int):
    """Plain random logits, peaked enough at large V that the entries near the top_p crossing are not tiny."""
    return _randn(v, 3.0 if v <= 256 else 8.0)


def _flat_groups(v: int):
    """A flat row in ~20 tie groups 0.1 apart: the nucleus holds most entries, the groups' masses are far apart."""
    return lambda gen: (torch.randn(v, generator=gen) * 3.0).round() * 0.1 + 5.0


def _head_tail(v: int):
    """A peaked row: a head of up to 12 entries holds the mass, the rest sits ~40 below (mass < 1e-10)."""
    def make(gen: torch.Generator) -> torch.Tensor:
        row = torch.randn(v, generator=gen) - 40.0
        h = min(v, 12)
        row[torch.randperm(v, generator=gen)[:h]] = torch.randn(h, generator=gen) * 2.0
        return row
    return make


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("v", [1, 2, 127, 4096])
@pytest.mark.parametrize("scale", [0.5, 3.0, 100.0])
def test_top_k_random_rows(monkeypatch, isa: str, v: int, scale: float) -> None:
    use_isa(monkeypatch, isa)
    gen = torch.Generator().manual_seed(v * 7 + int(scale))
    zs = torch.randn(6, v, generator=gen) * scale
    zs[1] -= 50.0  # all negative
    for k in [*_top_ks(v), v + 3]:
        check(zs, k, 1.0)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("v", [1, 2, 127, 4096])
@pytest.mark.parametrize("top_p", TOP_PS)
def test_top_p_random_rows(monkeypatch, isa: str, v: int, top_p: float) -> None:
    use_isa(monkeypatch, isa)
    gen = torch.Generator().manual_seed(v + int(top_p * 1000))
    # plain random rows put entries of mass ~1e-5 at the 0.999 crossing: there only the structured rows
    makers = (_random(v), _flat_groups(v), _head_tail(v)) if top_p < 0.99 else (_flat_groups(v), _head_tail(v))
    for make in makers:
        zs = rows_with_margin(make, 3, top_p, gen)
        check(zs, 0, top_p)
        check(zs, 0, top_p, sort=True)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("v", [127, 4096])
def test_top_p_then_top_k(monkeypatch, isa: str, v: int) -> None:
    use_isa(monkeypatch, isa)
    gen = torch.Generator().manual_seed(v)
    for top_p in TOP_PS:
        zs = rows_with_margin(_random(v) if top_p < 0.99 else _flat_groups(v), 4, top_p, gen)
        for k in _top_ks(v):
            check(zs, k, top_p)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("v", [2, 127, 4096])
def test_duplicate_heavy_rows(monkeypatch, isa: str, v: int) -> None:
    """Integer-valued rows: big tie groups, which stay together at both cutoffs."""
    use_isa(monkeypatch, isa)
    gen = torch.Generator().manual_seed(11 + v)
    zs = rows_with_margin(lambda g: torch.randint(-4, 5, (v,), generator=g).float(), 5, TOP_PS, gen)
    zs[1] = 3.0  # one value everywhere
    zs[2] = torch.randint(0, 2, (v,), generator=gen).float() * 1000.0  # two far-apart groups
    for top_p in TOP_PS:
        assert all(mass_above_margin(row, top_p) > MARGIN for row in zs)
        for k in [0, *_top_ks(v)]:
            check(zs, k, top_p)


def test_large_vocab_once() -> None:
    """LLaDA's V: random rows (top_k), peaked and integer rows (top_p, many candidates), both."""
    v = 126464
    gen = torch.Generator().manual_seed(5)
    rnd = torch.randn(2, v, generator=gen) * 3.0
    for k in (1, 2, 50, v - 1, v):
        check(rnd, k, 1.0)
    peaked = rows_with_margin(_head_tail(v), 1, 0.95, gen)
    ints = torch.randint(-3, 3, (1, v), generator=gen).float() * 0.7  # the nucleus holds ~10^5 entries
    for top_p in TOP_PS:
        for zs in (peaked, ints):
            assert mass_above_margin(zs[0], top_p) > MARGIN
            check(zs, 0, top_p)
            check(zs, 50, top_p)


@pytest.mark.parametrize("isa", ISAS)
def test_infinite_entries(monkeypatch, isa: str) -> None:
    """+inf rows are uniform over their +inf entries; -inf entries are kept only when nothing else is."""
    use_isa(monkeypatch, isa)
    v = 300
    gen = torch.Generator().manual_seed(3)
    zs = torch.randn(6, v, generator=gen) * 3.0
    zs[0, [5, 77]] = INF                 # two +inf
    zs[1, 200] = INF                     # one +inf
    zs[2, :] = -INF                      # nothing > -inf: everything kept
    zs[3, 10:] = -INF                    # 10 finite entries, the rest -inf
    zs[4, ::2] = -INF
    zs[5, :] = -INF
    zs[5, 42] = INF
    for top_p in (0.0, 1e-6, 0.5, 0.95, 0.999, 1.0):
        for k in (0, 1, 2, 3, 9, 10, 11, 50, v - 1, v):
            check(zs, k, top_p)
            check(zs, k, top_p, sort=True)
    c = _cut(zs, 0, 0.5)
    assert c[0] == INF and c[1] == INF and c[2] == -INF and c[5] == INF


@pytest.mark.parametrize("isa", ISAS)
def test_exact_answers(monkeypatch, isa: str) -> None:
    """Hand-checked cutoffs: ties at the k-th value, signed zeros, tiny top_p, both off."""
    use_isa(monkeypatch, isa)
    row = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0, -1.0]])
    assert _cut(row, 1, 1.0).item() == 3.0          # the three 3.0 are one tie
    assert _cut(row, 4, 1.0).item() == 2.0
    assert _cut(row, 0, 1e-6).item() == 3.0         # tiny top_p: the max and its ties
    assert _cut(row, 0, 1.0).item() == -INF          # both off
    assert _cut(row, 6, 1.0).item() == -INF          # top_k >= V is off
    zeros = torch.tensor([[-0.0, 0.0, -0.0, -1.0]])
    assert (zeros >= _cut(zeros, 1, 1.0).unsqueeze(-1)).sum().item() == 3  # -0 == +0: one tie
    check(zeros, 1, 1.0)
    check(zeros, 0, 0.5)


def test_bad_arguments_name_the_argument() -> None:
    zs = torch.zeros(2, 8)
    with pytest.raises(RuntimeError, match="top_k: expected"):
        _cut(zs, -1, 1.0)
    with pytest.raises(RuntimeError, match="top_p: expected"):
        _cut(zs, 0, 1.5)
    with pytest.raises(RuntimeError, match="zs: expected"):
        torch.ops.warmkern_cpu._truncation_cutoff(zs.double(), 0, 0.5)
    with pytest.raises(RuntimeError, match="zs: expected no NaN"):
        _cut(torch.full((1, 4), float("nan")), 0, 0.5)
