"""Parity of the C++ select and denoise_step against the reference: identical x / provisional
updates and counts for every rule (top-k, threshold, factor) with and without remasking, ties,
NaN/-inf scores, per-row windows and strided state views."""

from __future__ import annotations

import itertools
from functools import partial

import pytest
import torch
from cpu_cases import ISAS, make_logits, needs_cpu_ext, state_view, use_isa
from hypothesis import given, settings
from hypothesis import strategies as st

from warmkern import cpu, reference

pytestmark = needs_cpu_ext

MASK = 50
RULES = ("k", "k0", "kbig", "threshold", "factor")
REMASKS = ((None, None), (0.5, None), (0.9, 1), (0.3, 0))


def rule_kwargs(rule: str, b: int) -> dict:
    if rule == "k":
        return {"k": torch.arange(b, dtype=torch.int64) % 3 + 1}
    if rule == "k0":
        return {"k": torch.zeros(b, dtype=torch.int64)}
    if rule == "kbig":
        return {"k": torch.full((b,), 10**6, dtype=torch.int64)}
    if rule == "threshold":
        return {"threshold": 0.6}
    return {"factor": 1.0}


def make_select_inputs(b: int, g: int, gen: torch.Generator, ties: bool):
    x = torch.randint(0, MASK, (b, g), generator=gen)
    masked = torch.rand(b, g, generator=gen) < 0.6
    x[masked] = MASK
    prov = ~masked & (torch.rand(b, g, generator=gen) < 0.6)
    if ties:  # few distinct values: ordering by position decides
        score = torch.randint(0, 4, (b, g), generator=gen).float() / 4
    else:
        score = torch.rand(b, g, generator=gen)
    score[torch.rand(b, g, generator=gen) < 0.1] = float("nan")
    score[torch.rand(b, g, generator=gen) < 0.1] = float("-inf")
    x0 = torch.randint(0, MASK + 1, (b, g), generator=gen)  # sometimes mask: not eligible
    p_cur = torch.randint(0, 5, (b, g), generator=gen).float() / 5  # ties in p_cur too
    lo = torch.randint(0, g // 2 + 1, (b,), generator=gen)
    hi = torch.minimum(lo + torch.randint(0, g, (b,), generator=gen), torch.tensor(g))
    return score, x0, p_cur, x, prov, lo, hi


def select_call(score, x0, p_cur, mod, x, prov, **kw):
    return mod.select(score, x0, p_cur, x, prov, **kw)


def step_call(logits, mod, x, prov, **kw):
    return mod.denoise_step(logits, x, prov, **kw)


def run_both(call, x, prov, strided, **kw):
    """call(module, x, provisional, **kw) on the reference and on cpu; everything must be equal."""
    xr, pr = x.clone(), prov.clone()
    if strided:
        xc, pc = state_view(x, prov)
    else:
        xc, pc = x.clone(), prov.clone()
    want = call(reference, xr, pr, **kw)
    got = call(cpu, xc, pc, **kw)
    assert torch.equal(xc, xr), (xc, xr)
    assert torch.equal(pc, pr)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]), (got, want)
    assert got[0].dtype == torch.int64 and got[1].dtype == torch.int64


@pytest.mark.parametrize("isa", ISAS[:1] + ISAS[-1:])
@pytest.mark.parametrize(("rule", "remask", "ties", "strided"),
                         list(itertools.product(RULES, REMASKS, (False, True), (False, True))))
def test_select_parity(monkeypatch, isa, rule, remask, ties, strided):
    use_isa(monkeypatch, isa)
    gen = torch.Generator().manual_seed(RULES.index(rule) * 100 + REMASKS.index(remask) * 10 + ties)
    for _ in range(4):
        score, x0, p_cur, x, prov, lo, hi = make_select_inputs(3, 17, gen, ties)
        kw = dict(mask_id=MASK, lo=lo, hi=hi, remask_threshold=remask[0], remask_max=remask[1], **rule_kwargs(rule, 3))
        run_both(partial(select_call, score, x0, p_cur), x, prov, strided, **kw)


@pytest.mark.parametrize("threshold", [-1.0, 0.0, 0.9, 2.0])
def test_threshold_always_takes_first(threshold):
    score = torch.tensor([[float("nan"), 0.2, 0.2, float("-inf")], [float("nan")] * 4])
    x = torch.full((2, 4), MASK)
    x0 = torch.arange(8).reshape(2, 4)
    kw = dict(mask_id=MASK, lo=torch.zeros(2, dtype=torch.int64), hi=torch.full((2,), 4), threshold=threshold)
    prov = torch.zeros(2, 4, dtype=torch.bool)
    run_both(partial(select_call, score, x0, score), x, prov, False, **kw)


def test_factor_fp32_boundary():
    """(r+1)(1-s) <= factor evaluated in fp32, exactly at the boundary."""
    score = torch.tensor([[0.9, 0.75, 0.75, 0.5, 0.8]])
    x = torch.full((1, 5), MASK)
    x0 = torch.arange(5).reshape(1, 5)
    for factor in (0.4, 0.5, 0.75, 0.7500001, 1.0, 1.5, 0.0):
        kw = dict(mask_id=MASK, lo=torch.zeros(1, dtype=torch.int64), hi=torch.full((1,), 5), factor=factor)
        run_both(partial(select_call, score, x0, score), x, torch.zeros(1, 5, dtype=torch.bool), False, **kw)


@settings(max_examples=60, deadline=None)
@given(b=st.integers(1, 4), g=st.integers(1, 40), rule=st.sampled_from(RULES), remask=st.sampled_from(REMASKS),
       ties=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_select_hypothesis(b, g, rule, remask, ties, seed):
    gen = torch.Generator().manual_seed(seed)
    score, x0, p_cur, x, prov, lo, hi = make_select_inputs(b, g, gen, ties)
    kw = dict(mask_id=MASK, lo=lo, hi=hi, remask_threshold=remask[0], remask_max=remask[1], **rule_kwargs(rule, b))
    run_both(partial(select_call, score, x0, p_cur), x, prov, seed % 2 == 0, **kw)


# ----------------------------------------------------------------------------- denoise_step
STEP_CASES = list(itertools.product(
    (torch.float32, torch.bfloat16, torch.float16),
    (("prob", 0.0, "none"), ("margin", 1.0, "none"), ("entropy", 0.7, "sampling"), ("random", 1.0, "none")),
    (*RULES[::2], "kbig"),
    ((None, None), (0.4, 2)),
))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize(("dtype", "mode", "rule", "remask"), STEP_CASES, ids=lambda v: str(v)[:12])
def test_denoise_step_parity(monkeypatch, isa, dtype, mode, rule, remask):
    use_isa(monkeypatch, isa)
    gen = torch.Generator().manual_seed(STEP_CASES.index((dtype, mode, rule, remask)))
    b, g, v = 2, 12, 301
    logits = make_logits(b, g, v, dtype, "dream", gen, scale=2.0)
    uncond = make_logits(b, g, v, dtype, "padded", gen, scale=2.0) if mode[0] == "margin" else None
    _, _, _, x, prov, _, _ = make_select_inputs(b, g, gen, False)
    lo = torch.tensor([0, 4])
    hi = torch.tensor([8, 12])
    kw = dict(mask_id=MASK, lo=lo, hi=hi, remask_threshold=remask[0], remask_max=remask[1],
              temperature=mode[1], score=mode[0], score_temperature=mode[2], suppress_ids=(3, 300),
              pick_suppress_ids=(7,), score_suppress_ids=(9,), uncond_logits=uncond, cfg_scale=0.5, seed=77, step=4,
              **rule_kwargs(rule, b))
    for strided in (False, True):
        run_both(partial(step_call, logits), x, prov, strided, **kw)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_denoise_step_long_rows(monkeypatch, isa, temperature):
    """LLaDA-like rows (several AVX-512/AVX2 fast spans), with remasking: the provisional rows need p_cur
    only, which takes the fast path at T > 0 too."""
    use_isa(monkeypatch, isa)
    gen = torch.Generator().manual_seed(int(temperature * 10))
    b, g, v, mask = 2, 10, 9001, 8990
    logits = make_logits(b, g, v, torch.bfloat16, "dream", gen)
    x = torch.randint(0, mask, (b, g), generator=gen)
    x[:, 4:] = mask
    prov = torch.zeros(b, g, dtype=torch.bool)
    prov[:, 1:4] = True
    kw = dict(mask_id=mask, lo=torch.tensor([2, 0]), hi=torch.tensor([10, 8]), k=torch.tensor([2, 3]),
              remask_threshold=0.5, temperature=temperature, seed=11, step=2)
    for strided in (False, True):
        run_both(partial(step_call, logits), x, prov, strided, **kw)


def test_denoise_step_ignores_rows_outside_window():
    """Garbage (NaN) logits outside [lo, hi) change nothing: those rows are never read."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 10, 100, generator=gen)
    x = torch.full((1, 10), 99)
    prov = torch.zeros(1, 10, dtype=torch.bool)
    kw = dict(mask_id=99, lo=torch.tensor([2]), hi=torch.tensor([6]), k=torch.tensor([2]))
    x1, p1 = x.clone(), prov.clone()
    cpu.denoise_step(logits, x1, p1, **kw)
    bad = logits.clone()
    bad[:, :2] = float("nan")
    bad[:, 6:] = float("nan")
    x2, p2 = x.clone(), prov.clone()
    cpu.denoise_step(bad, x2, p2, **kw)
    assert torch.equal(x1, x2)
    assert (x1[0, 2:6] != 99).sum() == 2


def test_multi_step_trajectory():
    """Several steps in a row (state fed back) stay identical to the reference."""
    gen = torch.Generator().manual_seed(1)
    b, g, v, mask = 2, 16, 200, 199
    xr = torch.full((b, g), mask)
    xr[:, ::5] = 3
    pr = xr != mask
    xc, pc = xr.clone(), pr.clone()
    for step in range(6):
        logits = torch.randn(b, g, v, generator=gen).to(torch.bfloat16)
        kw = dict(mask_id=mask, lo=torch.tensor([0, 0]), hi=torch.tensor([8, 16]), k=torch.tensor([2, 3]),
                  remask_threshold=0.02, remask_max=1, temperature=1.0, seed=5, step=step)
        want = reference.denoise_step(logits, xr, pr, **kw)
        got = cpu.denoise_step(logits, xc, pc, **kw)
        assert torch.equal(xc, xr) and torch.equal(pc, pr)
        assert all(torch.equal(a, b_) for a, b_ in zip(got, want))


@pytest.mark.parametrize("score", ["prob", "margin", "random"])
def test_denoise_step_nonfinite_rows(score):
    """+inf mask logits (the spec's m = 0 branch) and dead rows, on masked and provisional positions."""
    gen = torch.Generator().manual_seed(2)
    b, g, v, mask = 1, 8, 120, 119
    logits = torch.randn(b, g, v, generator=gen)
    logits[0, :, mask] = float("inf")  # every row: m = +inf -> finite p are 0
    logits[0, 3] = float("nan")  # dead row
    x = torch.full((b, g), mask)
    x[0, 1::2] = torch.tensor([4, 5, 6, 7])
    prov = x != mask
    kw = dict(mask_id=mask, lo=torch.tensor([0]), hi=torch.tensor([8]), k=torch.tensor([2]), remask_threshold=0.5,
              score=score, temperature=1.0, seed=3)
    for strided in (False, True):
        run_both(partial(step_call, logits), x, prov, strided, **kw)
