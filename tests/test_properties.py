"""hypothesis properties of the reference ops (the spec's invariants, on random small cases)."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from warmkern import reference as ref

MASK = 1
SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def step_case(draw):
    b = draw(st.integers(1, 3))
    g = draw(st.integers(1, 12))
    v = draw(st.integers(3, 12))
    seed = draw(st.integers(0, 2**40))
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, g, v, generator=gen) * draw(st.sampled_from([0.1, 1.0, 8.0]))
    x = torch.randint(0, v, (b, g), generator=gen)
    x = torch.where(torch.rand(b, g, generator=gen) < 0.6, MASK, x)
    prov = (x != MASK) & (torch.rand(b, g, generator=gen) < 0.5)
    lo = torch.randint(0, g + 1, (b,), generator=gen)
    hi = torch.minimum(lo + torch.randint(0, g + 1, (b,), generator=gen), torch.tensor(g))
    return logits, x, prov, lo, hi, seed


def _eligible(x, x0, lo, hi):
    pos = torch.arange(x.shape[1])
    return (x == MASK) & (x0 != MASK) & (pos >= lo[:, None]) & (pos < hi[:, None])


@SETTINGS
@given(step_case(), st.integers(0, 15), st.sampled_from(["prob", "margin", "entropy", "random"]))
def test_topk_transfers_min_k_eligible_inside_window(case, k, score):
    logits, x, prov, lo, hi, seed = case
    x0, sc, pc = ref.token_stats(logits, x, mask_id=MASK, score=score, seed=seed)
    elig = _eligible(x, x0, lo, hi)
    before = x.clone()
    kt = torch.full((x.shape[0],), k)
    nt, _ = ref.select(sc, x0, pc, x, prov, mask_id=MASK, lo=lo, hi=hi, k=kt)
    changed = x != before
    assert torch.equal(nt, torch.minimum(kt, elig.sum(-1)))
    assert torch.equal(changed.sum(-1), nt)
    assert not (changed & ~elig).any()
    assert torch.equal(x[changed], x0[changed])


@SETTINGS
@given(step_case(), st.floats(0.0, 1.0))
def test_threshold_always_progresses(case, thr):
    logits, x, prov, lo, hi, seed = case
    x0, sc, pc = ref.token_stats(logits, x, mask_id=MASK, seed=seed)
    elig = _eligible(x, x0, lo, hi)
    nt, _ = ref.select(sc, x0, pc, x, prov, mask_id=MASK, lo=lo, hi=hi, threshold=thr)
    assert ((nt >= 1) == elig.any(-1)).all()
    assert (nt >= ((sc >= thr) & elig).sum(-1)).all()


@SETTINGS
@given(step_case(), st.floats(0.0, 1.0), st.one_of(st.none(), st.integers(0, 4)))
def test_only_provisional_in_window_tokens_are_remasked(case, thr, rmax):
    logits, x, prov, lo, hi, seed = case
    x0, sc, pc = ref.token_stats(logits, x, mask_id=MASK, seed=seed)
    before, prov_before = x.clone(), prov.clone()
    _, nr = ref.select(sc, x0, pc, x, prov, mask_id=MASK, lo=lo, hi=hi, k=torch.zeros(x.shape[0], dtype=torch.long),
                       remask_threshold=thr, remask_max=rmax)
    remasked = (before != MASK) & (x == MASK)
    pos = torch.arange(x.shape[1])
    in_window = (pos >= lo[:, None]) & (pos < hi[:, None])
    assert not (remasked & ~(prov_before & in_window)).any()
    assert (pc[remasked] < thr).all()
    assert torch.equal(remasked.sum(-1), nr)
    if rmax is not None:
        assert (nr <= rmax).all()
    assert not (prov & remasked).any()


@SETTINGS
@given(step_case(), st.sampled_from([0.0, 0.5, 1.0]), st.lists(st.integers(0, 2), max_size=2))
def test_x0_never_mask_or_suppressed_and_values_in_range(case, temperature, suppress):
    logits, x, _, _, _, seed = case
    suppress = tuple(s for s in suppress if s != MASK)
    x0, sc, pc = ref.token_stats(logits, x, mask_id=MASK, temperature=temperature, suppress_ids=suppress, seed=seed)
    # A row whose every non-mask id is suppressed has no candidate: the spec makes it a dead row.
    candidates = set(range(logits.shape[-1])) - {MASK} - set(suppress)
    if not candidates:
        assert (x0 == MASK).all() and (sc == float("-inf")).all()
        return
    assert not (x0 == MASK).any()
    assert not torch.isin(x0, torch.tensor(list(suppress), dtype=torch.long)).any()
    assert (torch.isfinite(sc) | (sc == float("-inf"))).all()
    assert ((pc >= 0) & (pc <= 1)).all()


@SETTINGS
@given(step_case())
def test_greedy_is_leftmost_argmax(case):
    logits, x, _, _, _, _ = case
    logits = logits.round()  # plenty of exact ties
    x0, _, _ = ref.token_stats(logits, x, mask_id=MASK)
    allowed = logits.clone()
    allowed[..., MASK] = float("-inf")
    best = allowed.amax(-1, keepdim=True)
    first = (allowed == best).int().argmax(-1)  # first index attaining the max
    assert torch.equal(x0, first)


@SETTINGS
@given(step_case(), st.sampled_from(["prob", "margin", "entropy"]))
def test_cfg_scale_zero_equals_no_cfg(case, score):
    logits, x, _, _, _, seed = case
    uncond = torch.randn_like(logits)
    a = ref.token_stats(logits, x, mask_id=MASK, score=score, seed=seed)
    b = ref.token_stats(logits, x, mask_id=MASK, score=score, seed=seed, uncond_logits=uncond, cfg_scale=0.0)
    assert torch.equal(a[0], b[0])
    torch.testing.assert_close(a[1], b[1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a[2], b[2], rtol=1e-5, atol=1e-6)
