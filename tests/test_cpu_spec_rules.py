"""The C++ kernels on the wave-2 rules of the spec, on every ISA variant (issues 12, 14, 15).

Each new argument against the reference under the parity contract (tests/parity.py), on rows long
enough (V > 2 fast spans) that the AVX2 / AVX-512 fast spans run and must stop before the prior token
and the pick- / score-suppressed ids: per-row seeds and the step tensor (a row draws the same numbers
alone or in a batch), pick_suppress_ids / score_suppress_ids, +inf logits and temperature overflow,
the draft prior, top-k / top-p truncation, Dream's alg_temp selection, and all of them in one
denoise_step.
"""

from __future__ import annotations

import pytest
import torch
from cpu_cases import ISAS, needs_cpu_ext, use_isa
from parity import assert_stats_match

from warmkern import cpu, reference

pytestmark = [needs_cpu_ext, pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")]

INF = float("inf")
MASK = 5000
V = 9001  # > 2 fast spans of 4096; the mask column inside the third
TEMPS = ((0.0, "none"), (0.7, "none"), (0.6, "sampling"))
TRUNC_KW = ("top_k", "top_p", "prior_ids", "prior_bias")


def _logits(b, g, seed, dtype=torch.float32, v=V, scale=3.0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(b, g, v, generator=gen) * scale).to(dtype)


def _x(b, g, seed, v=V):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, v, (b, g), generator=gen)
    x[:, ::2] = MASK
    return x


def _check(logits, x, **kw):
    want = reference.token_stats(logits, x, mask_id=MASK, **kw)
    got = cpu.token_stats(logits, x, mask_id=MASK, **kw)
    seed = kw.get("row_seeds", kw.get("seed", 0))
    step = kw.get("step_tensor", kw.get("step", 0))
    assert_stats_match(got, want, logits=logits, temperature=kw.get("temperature", 0.0), seed=seed, step=step,
                       suppress_ids=kw.get("suppress_ids", ()), uncond_logits=kw.get("uncond_logits"),
                       cfg_scale=kw.get("cfg_scale", 0.0), **{n: kw[n] for n in TRUNC_KW if n in kw})
    return got, want


def _prior(b, g, seed, v=V):
    """Prior ids spread over the row (fast-span starts and middles, the mask, -1 = none)."""
    gen = torch.Generator().manual_seed(seed)
    p = torch.randint(-1, v, (b, g), generator=gen)
    p.view(-1)[:4] = torch.tensor([0, 4096, MASK, -1])[: p.numel()]
    return p


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("temp", TEMPS, ids=str)
@pytest.mark.parametrize("score", reference.SCORE_MODES)
def test_row_seeds_and_step_tensor(monkeypatch, isa, temp, score):
    use_isa(monkeypatch, isa)
    logits = _logits(3, 4, 1, torch.bfloat16)
    x = _x(3, 4, 2)
    seeds = torch.tensor([5, 2**40 + 1, 2**63 - 1])
    kw = dict(temperature=temp[0], score_temperature=temp[1], score=score)
    got, _ = _check(logits, x, row_seeds=seeds, step_tensor=torch.tensor(11), **kw)
    for i in range(3):  # a row alone draws what it draws in the batch
        alone = cpu.token_stats(logits[i : i + 1], x[i : i + 1], mask_id=MASK, seed=int(seeds[i]), step=11, **kw)
        assert torch.equal(alone[0][0], got[0][i]) and torch.equal(alone[1][0], got[1][i])


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("temp", TEMPS, ids=str)
@pytest.mark.parametrize("score", ["prob", "margin", "entropy"])
def test_pick_and_score_suppress_ids(monkeypatch, isa, temp, score):
    use_isa(monkeypatch, isa)
    logits = _logits(2, 4, 3)
    x = _x(2, 4, 4)
    top = logits.argmax(-1)  # suppress the winners so the lists matter
    ids = sorted({int(t) for t in top.flatten()} | {0, 4095, 4096, V - 1})
    x[:, 1] = ids[0]  # p_cur of a score-suppressed id is 0
    kw = dict(temperature=temp[0], score_temperature=temp[1], score=score, seed=3)
    _check(logits, x, pick_suppress_ids=ids[::2], score_suppress_ids=[*ids[1::2], ids[0]], **kw)
    _check(logits, x, pick_suppress_ids=ids, suppress_ids=(7, 8000), **kw)
    _check(logits, x, score_suppress_ids=ids, **kw)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("temp", TEMPS, ids=str)
@pytest.mark.parametrize("score", ["prob", "margin", "entropy"])
def test_plus_inf_logits_on_long_rows(monkeypatch, isa, temp, score):
    """+inf in a fast span, twice in a row, at the mask, score-suppressed; and z * (1/T) overflowing."""
    use_isa(monkeypatch, isa)
    logits = _logits(1, 6, 5)
    logits[0, 0, 4200] = INF
    logits[0, 1, [100, 8000]] = INF
    logits[0, 2, MASK] = INF
    logits[0, 3, 300] = INF
    logits[0, 4, [9, 4097, 8999]] = 3e38
    logits[0, 5, :] = float("nan")
    logits[0, 5, 17] = 1.0
    x = torch.tensor([[MASK, 8000, 1, MASK, 4097, 17]])
    kw = dict(temperature=temp[0], score_temperature=temp[1], score=score, seed=2)
    _check(logits, x, **kw)
    _check(logits, x, score_suppress_ids=(300,), pick_suppress_ids=(100,), **kw)


@pytest.mark.parametrize("isa", ISAS)
def test_dead_positions(monkeypatch, isa):
    use_isa(monkeypatch, isa)
    logits = torch.full((1, 3, V), -INF)
    logits[0, 0, MASK] = 2.0  # only the mask: dead
    logits[0, 1, 11] = 1.0  # only a pick-suppressed id: dead
    x = torch.tensor([[MASK, 11, 3]])
    for t in (0.0, 1.0):
        got, _ = _check(logits, x, temperature=t, pick_suppress_ids=(11,), seed=1)
        assert got[0].tolist() == [[MASK] * 3] and got[1].tolist() == [[-INF] * 3] and got[2].tolist() == [[0.0] * 3]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("temp", TEMPS, ids=str)
@pytest.mark.parametrize("score", reference.SCORE_MODES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_prior(monkeypatch, isa, temp, score, dtype):
    use_isa(monkeypatch, isa)
    b, g = 2, 4
    logits = _logits(b, g, 6, dtype)
    x = _x(b, g, 7)
    prior = _prior(b, g, 8)
    kw = dict(temperature=temp[0], score_temperature=temp[1], score=score, seed=4)
    _check(logits, x, prior_ids=prior, prior_bias=torch.tensor([9.0, -2.0]), **kw)
    _check(logits, x, prior_ids=prior, prior_bias=torch.tensor([3e38]), suppress_ids=(0,), **kw)  # overflow, stay -inf
    _check(logits, x, prior_ids=prior, prior_bias=torch.tensor([1.5]), uncond_logits=_logits(b, g, 9, dtype),
           cfg_scale=0.5, **kw)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("temp", TEMPS, ids=str)
@pytest.mark.parametrize("score", reference.SCORE_MODES)
@pytest.mark.parametrize("trunc", [dict(top_k=1), dict(top_k=2), dict(top_k=50), dict(top_k=V - 1), dict(top_k=V),
                                   dict(top_k=V + 3), dict(top_p=0.95), dict(top_p=0.5), dict(top_p=0.3, top_k=20),
                                   dict(top_p=1e-6), dict(top_p=0.0)], ids=str)
def test_truncation(monkeypatch, isa, temp, score, trunc):
    use_isa(monkeypatch, isa)
    b, g = 2, 3
    logits = _logits(b, g, 10, torch.bfloat16, scale=4.0)  # bf16: ties at the cutoff
    x = _x(b, g, 11)
    kw = dict(temperature=temp[0], score_temperature=temp[1], score=score, seed=5, **trunc)
    _check(logits, x, **kw)
    _check(logits, x, prior_ids=_prior(b, g, 12), prior_bias=torch.tensor([2.0]), pick_suppress_ids=(1, 4097),
           score_suppress_ids=(2,), suppress_ids=(3,), **kw)


@pytest.mark.parametrize("isa", ISAS)
def test_truncation_of_infinite_rows(monkeypatch, isa):
    use_isa(monkeypatch, isa)
    logits = _logits(1, 3, 13)
    logits[0, 0, [10, 20]] = INF
    logits[0, 1, MASK] = INF
    logits[0, 2, :] = -INF
    logits[0, 2, [4, 5, 6]] = 1.0
    x = torch.tensor([[MASK, 10, 5]])
    for trunc in (dict(top_p=0.5), dict(top_k=2), dict(top_p=0.9, top_k=1)):
        for t in (0.0, 0.8):
            _check(logits, x, temperature=t, seed=1, score="margin", **trunc)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("alg_temp", [0.1, 1.0, 7.0])
def test_select_alg_temp(monkeypatch, isa, alg_temp):
    use_isa(monkeypatch, isa)
    b, g = 3, 16
    gen = torch.Generator().manual_seed(14)
    score = torch.rand(b, g, generator=gen)
    score[0, 3] = float("nan")
    score[1, 4] = -INF
    x0 = torch.randint(0, 50, (b, g), generator=gen)
    x = torch.full((b, g), 99)
    x[:, 1::3] = 7
    p_cur = torch.rand(b, g, generator=gen)
    prov = x != 99
    kw = dict(mask_id=99, lo=torch.tensor([0, 2, 5]), hi=torch.tensor([16, 15, 16]), k=torch.tensor([3, 5, 16]),
              alg_temp=alg_temp, row_seeds=torch.tensor([1, 2**50, 3]), step_tensor=torch.tensor(9),
              remask_threshold=0.5)
    xa, pa, xb, pb = x.clone(), prov.clone(), x.clone(), prov.clone()
    want = reference.select(score, x0, p_cur, xa, pa, **kw)
    got = cpu.select(score, x0, p_cur, xb, pb, **kw)
    assert torch.equal(xa, xb) and torch.equal(pa, pb)
    assert all(torch.equal(u, w) for u, w in zip(got, want))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("rule", [dict(k=torch.tensor([2, 3]), alg_temp=0.5), dict(threshold=0.2),
                                  dict(factor=1.0)], ids=str)
def test_denoise_step_with_every_new_argument(monkeypatch, isa, rule):
    use_isa(monkeypatch, isa)
    b, g = 2, 6
    logits = _logits(b, g, 15, torch.bfloat16)
    x = _x(b, g, 16)
    x[0, 1] = -3  # an id outside the vocabulary: p_cur 0, remasked
    prov = (x != MASK) & (torch.arange(g) % 3 != 0)
    kw = dict(mask_id=MASK, lo=torch.tensor([0, 1]), hi=torch.tensor([6, 5]), remask_threshold=0.3, temperature=0.9,
              top_p=0.9, top_k=40, prior_ids=_prior(b, g, 17), prior_bias=torch.tensor([1.0, 0.5]),
              row_seeds=torch.tensor([7, 8]), step_tensor=torch.tensor(2), pick_suppress_ids=(5,),
              score_suppress_ids=(6,), suppress_ids=(9,), **rule)
    xa, pa, xb, pb = x.clone(), prov.clone(), x.clone(), prov.clone()
    want = reference.denoise_step(logits, xa, pa, **kw)
    got = cpu.denoise_step(logits, xb, pb, **kw)
    assert torch.equal(xa, xb) and torch.equal(pa, pb)
    assert all(torch.equal(u, w) for u, w in zip(got, want))
