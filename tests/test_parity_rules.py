"""Every backend against the spec on the wave-2 rules: per-row seeds (a row decodes the same alone or in
any batch), +inf logits and temperature overflow, exact probabilities at certainty, LLaDA's EOS/EOT
lists, Dream's top-p/top-k truncation and alg_temp, the draft prior, step as a device tensor and
warm_embed's out-of-range status. The contract is tests/parity.py; shapes stay small for the interpreter.
"""

from __future__ import annotations

import pytest
import torch
from parity import assert_stats_match

from warmkern import backends, ops, reference

INF = float("inf")
MASK = 3
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


@pytest.fixture(params=["cpu", "triton"])
def backend(request):
    why = backends.unavailable_reason(request.param, torch.device("cpu"))
    if why is not None:
        pytest.skip(why)
    return request.param


def _logits(b, g, v, seed, dtype=torch.float32, scale=3.0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(b, g, v, generator=gen) * scale).to(dtype)


def _x(b, g, v, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, v, (b, g), generator=gen)
    x[:, ::2] = MASK
    return x


def _stats_both(backend, logits, x, **kw):
    want = ops.token_stats(logits, x, mask_id=MASK, backend="reference", **kw)
    got = ops.token_stats(logits, x, mask_id=MASK, backend=backend, **kw)
    return got, want


STATS_CASES = {
    "row-seeds-sampled": dict(temperature=0.8, seed=torch.tensor([5, 2**40 + 1, 9])),
    "row-seeds-random": dict(score="random", seed=torch.tensor([1, 2, 3]), step=7),
    "step-tensor": dict(temperature=1.0, seed=4, step=torch.tensor(11)),
    "prior": dict(prior_ids="draft", prior_bias=1.5),
    "prior-per-row-sampled": dict(prior_ids="draft", prior_bias=torch.tensor([0.5, 2.0, -1.0]), temperature=0.7,
                                  seed=2, score="margin"),
    "top-k": dict(top_k=5),
    "top-k-sampled-entropy": dict(top_k=20, temperature=0.5, score="entropy", score_temperature="sampling", seed=3),
    "top-p": dict(top_p=0.9),
    "top-p-sampled": dict(top_p=0.95, temperature=0.3, score_temperature="sampling", seed=8),
    "top-p-top-k-margin": dict(top_p=0.5, top_k=3, score="margin"),
    "top-p-tiny": dict(top_p=1e-6),
    "llada-eos-eot-greedy": dict(suppress_ids=(7, 11)),
    "llada-eos-eot-sampled": dict(pick_suppress_ids=(7,), score_suppress_ids=(11,), temperature=1.0, seed=6),
    "everything": dict(top_p=0.8, top_k=9, prior_ids="draft", prior_bias=1.0, temperature=0.6, cfg_scale=0.5,
                       uncond="yes", pick_suppress_ids=(7,), seed=torch.tensor([3, 4, 5])),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("case", list(STATS_CASES))
def test_token_stats_rules_match_the_spec(backend, case, dtype):
    b, g, v = 3, 4, 97
    kw = dict(STATS_CASES[case])
    logits = _logits(b, g, v, hash(case) % 1000, dtype)
    if kw.get("prior_ids") == "draft":
        kw["prior_ids"] = torch.randint(-1, v, (b, g), generator=torch.Generator().manual_seed(1))
    if kw.pop("uncond", None):
        kw["uncond_logits"] = _logits(b, g, v, 77, dtype)
    x = _x(b, g, v, 5)
    got, want = _stats_both(backend, logits, x, **kw)
    trunc = {n: kw[n] for n in ("top_k", "top_p", "prior_ids", "prior_bias") if n in kw}
    if "prior_bias" in trunc and not isinstance(trunc["prior_bias"], torch.Tensor):
        trunc["prior_bias"] = torch.tensor([trunc["prior_bias"]])
    seed = kw.get("seed", 0)
    assert_stats_match(got, want, logits=logits, temperature=kw.get("temperature", 0.0),
                       seed=seed, step=kw.get("step", 0), suppress_ids=kw.get("suppress_ids", ()),
                       uncond_logits=kw.get("uncond_logits"), cfg_scale=kw.get("cfg_scale", 0.0), **trunc)


@pytest.mark.parametrize("rule", ["k", "threshold", "factor", "alg_temp"])
def test_a_row_decodes_the_same_alone_and_in_a_batch(backend, rule):
    b, g, v = 3, 6, 61
    logits = _logits(b, g, v, 12)
    seeds = torch.tensor([21, 22, 23])
    rule_kw = {"k": dict(k=2), "threshold": dict(threshold=0.3), "factor": dict(factor=1.0),
               "alg_temp": dict(k=2, alg_temp=0.4)}[rule]
    kw = dict(mask_id=MASK, lo=0, hi=g, temperature=1.0, score="random" if rule == "k" else "prob", step=3,
              backend=backend, **rule_kw)
    x, prov = torch.full((b, g), MASK), torch.zeros(b, g, dtype=torch.bool)
    ops.denoise_step(logits, x, prov, seed=seeds, **kw)
    for i in range(b):
        xi, pi = torch.full((1, g), MASK), torch.zeros(1, g, dtype=torch.bool)
        ops.denoise_step(logits[i : i + 1], xi, pi, seed=int(seeds[i]), **kw)
        assert torch.equal(xi[0], x[i]), f"row {i}"
    xr, pr = torch.full((b, g), MASK), torch.zeros(b, g, dtype=torch.bool)
    ops.denoise_step(logits, xr, pr, seed=seeds, **{**kw, "backend": "reference"})
    assert torch.equal(x, xr)


@pytest.mark.parametrize("alg_temp", [0.0, 0.3])
def test_denoise_step_with_every_new_input_matches_the_spec(backend, alg_temp):
    b, g, v = 2, 8, 53
    logits = _logits(b, g, v, 31, torch.bfloat16)
    x = _x(b, g, v, 9)
    prov = (x != MASK) & (torch.arange(g) % 3 == 1)
    prior = torch.randint(-1, v, (b, g), generator=torch.Generator().manual_seed(4))
    kw = dict(mask_id=MASK, lo=torch.tensor([0, 2]), hi=torch.tensor([8, 7]), k=torch.tensor([3, 2]),
              alg_temp=alg_temp, remask_threshold=0.2, temperature=0.9, top_p=0.9, top_k=12, prior_ids=prior,
              prior_bias=torch.tensor([1.0, 0.5]), seed=torch.tensor([7, 8]), step=torch.tensor(2),
              pick_suppress_ids=(5,), score_suppress_ids=(6,))
    xa, pa, xb, pb = x.clone(), prov.clone(), x.clone(), prov.clone()
    want = ops.denoise_step(logits, xa, pa, backend="reference", **kw)
    got = ops.denoise_step(logits, xb, pb, backend=backend, **kw)
    assert torch.equal(xa, xb) and torch.equal(pa, pb)
    assert all(torch.equal(u, w) for u, w in zip(got, want))


INF_ROWS = {
    "one-plus-inf": [1.0, INF, 2.0, 0.5, -1.0, 0.0, 3.0, 2.5],
    "two-plus-inf": [INF, 0.0, INF, INF, 1.0, 2.0, -INF, 0.0],  # 0 is not the mask here (MASK = 3)
    "mask-plus-inf": [0.0, 1.0, 2.0, INF, 0.5, 0.0, 0.0, 1.0],
    "certain": [0.0, -INF, -INF, -INF, -INF, -INF, -INF, -INF],
    "fifty-fifty": [0.0, 0.0, -INF, -INF, -INF, -INF, -INF, -INF],
    "quarter": [1.5, 1.5, 1.5, -INF, 1.5, -INF, -INF, -INF],
    "dead": [-INF, float("nan"), -INF, INF, -INF, -INF, -INF, -INF],
}


@pytest.mark.parametrize("score", ["prob", "margin", "entropy"])
@pytest.mark.parametrize("temperature", [0.0, 0.5])
def test_infinite_and_certain_rows_are_exact(backend, score, temperature, monkeypatch):
    rows = torch.tensor(list(INF_ROWS.values()))  # [R, 8]
    logits = rows.unsqueeze(0)  # B = 1, G = R
    x = torch.tensor([[0, 1, 0, 0, 0, 1, 0]])
    kw = dict(score=score, temperature=temperature, seed=1)
    if temperature:
        kw["score_temperature"] = "sampling"
    isas = ("base", "avx2", "avx512") if backend == "cpu" else ("-",)
    want = ops.token_stats(logits, x, mask_id=MASK, backend="reference", **kw)
    for isa in isas:
        monkeypatch.setenv("WARMKERN_CPU_ISA", isa)
        got = ops.token_stats(logits, x, mask_id=MASK, backend=backend, **kw)
        for name, a, w in zip(("x0", "score", "p_cur"), got, want):
            assert torch.equal(a, w) or torch.allclose(a, w, rtol=1e-6, atol=0, equal_nan=True), (isa, name, a, w)
    if score == "prob" and temperature == 0:
        assert want[1][0, 3:6].tolist() == [1.0, 0.5, 0.25] and want[2][0, 3:6].tolist() == [1.0, 0.5, 0.25]


def test_temperature_overflow_agrees(backend):
    logits = torch.tensor([[[0.0, 1.0, 3e38, 2e38, 3e38, 1.0]]])
    x = torch.full((1, 1), MASK)
    for st in ("none", "sampling"):
        got, want = _stats_both(backend, logits, x, temperature=0.5, score_temperature=st, seed=2)
        assert all(torch.equal(a, w) for a, w in zip(got, want)), st
        assert want[0].item() == 2


def test_threshold_one_commits_every_certain_position(backend):
    logits = torch.full((1, 3, 6), -INF)
    logits[:, :, 1] = 0.0
    x, prov = torch.full((1, 3), MASK), torch.zeros(1, 3, dtype=torch.bool)
    nt, _ = ops.denoise_step(logits, x, prov, mask_id=MASK, lo=0, hi=3, threshold=1.0, backend=backend)
    assert nt.item() == 3


def test_remask_threshold_one_keeps_certain_tokens(backend):
    logits = torch.full((1, 3, 6), -INF)
    logits[:, :, 1] = 0.0
    x, prov = torch.full((1, 3), 1), torch.ones(1, 3, dtype=torch.bool)
    _, nr = ops.denoise_step(logits, x, prov, mask_id=MASK, lo=0, hi=3, k=0, remask_threshold=1.0, backend=backend)
    assert nr.item() == 0 and torch.equal(x, torch.full((1, 3), 1))


def test_warm_embed_out_of_range_ids_never_read_and_flagged(backend):
    w = torch.randn(7, 5)
    x = torch.tensor([[MASK, 10**9, 2, MASK, 7, -5]])
    draft = torch.tensor([[1, 1, 1, 8, 1, 1]])
    keep = torch.ones(1, 6, dtype=torch.bool)
    st_ref, st = torch.zeros(1, dtype=torch.int32), torch.zeros(1, dtype=torch.int32)
    want = ops.warm_embed(w, x, draft, keep, mask_id=MASK, alpha=0.5, status=st_ref, backend="reference",
                          check_values=False)
    got = ops.warm_embed(w, x, draft, keep, mask_id=MASK, alpha=0.5, status=st, backend=backend, check_values=False)
    assert st.item() == st_ref.item() == 1
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_reference_keeps_truncation_and_prior_out_of_x0_when_off():
    """top_k = 0 / top_p = 1 / no prior_ids are exactly the untruncated spec (the defaults are off)."""
    logits = _logits(2, 3, 17, 2)
    x = _x(2, 3, 17, 1)
    a = reference.token_stats(logits, x, mask_id=MASK, temperature=0.5, seed=3)
    b = reference.token_stats(logits, x, mask_id=MASK, temperature=0.5, seed=3, top_k=0, top_p=1.0,
                              prior_ids=torch.full((2, 3), -1), prior_bias=torch.tensor([4.0]))
    assert all(torch.equal(u, w) for u, w in zip(a, b))
