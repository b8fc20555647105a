"""Parity of the C++ token_stats against the reference spec (tests/parity.py contract).

The kernel is fast and the shapes are small, so the main test runs the full product of dtype,
score mode, temperature mode, CFG, layout and ISA variant; edge cases (NaN/inf rows, chunk
boundaries, peaked logits that exercise the Gumbel skip, big seeds) get their own tests.
"""

from __future__ import annotations

import itertools
import zlib

import pytest
import torch
from cpu_cases import ISAS, make_logits, needs_cpu_ext, use_isa
from hypothesis import given, settings
from hypothesis import strategies as st
from parity import assert_stats_match

from warmkern import cpu, reference

pytestmark = needs_cpu_ext

DTYPES = (torch.float32, torch.bfloat16, torch.float16)
TEMPS = (("greedy", 0.0, "none"), ("sampled", 1.0, "none"), ("scaled", 0.7, "sampling"))
SCORES = reference.SCORE_MODES


def check(logits, x, **kw):
    """Run both implementations and assert the parity contract."""
    want = reference.token_stats(logits, x, **kw)
    got = cpu.token_stats(logits, x, **kw)
    assert_stats_match(
        got, want, logits=logits, temperature=kw.get("temperature", 0.0), seed=kw.get("seed", 0),
        step=kw.get("step", 0), suppress_ids=kw.get("suppress_ids", ()), uncond_logits=kw.get("uncond_logits"),
        cfg_scale=kw.get("cfg_scale", 0.0),
        **{n: kw[n] for n in ("top_k", "top_p", "prior_ids", "prior_bias") if n in kw},
    )
    return got, want


def make_x(b, g, v, mask_id, gen):
    x = torch.randint(0, v, (b, g), generator=gen)
    x[:, ::2] = mask_id
    return x


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("layout", ["contiguous", "padded", "dream"])
@pytest.mark.parametrize(("temp", "score", "cfg"), list(itertools.product(TEMPS, SCORES, (False, True))),
                         ids=lambda v: v[0] if isinstance(v, tuple) else str(v))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_parity_product(monkeypatch, isa, layout, temp, score, cfg, dtype):
    use_isa(monkeypatch, isa)
    gen = torch.Generator().manual_seed(zlib.crc32(repr((layout, temp[0], score, cfg, str(dtype))).encode()))
    b, g, v = 2, 5, 1157  # odd V over two chunks
    mask_id = 1100  # in the second chunk
    logits = make_logits(b, g, v, dtype, layout, gen)
    uncond = make_logits(b, g, v, dtype, layout, gen) if cfg else None
    check(
        logits, make_x(b, g, v, mask_id, gen), mask_id=mask_id, temperature=temp[1], score=score,
        score_temperature=temp[2], suppress_ids=(0, 3, 1023, 1024, v - 1), pick_suppress_ids=(5, 17),
        score_suppress_ids=(17, 40),
        uncond_logits=uncond, cfg_scale=1.5 if cfg else 0.0, seed=1234, step=3,
    )


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("temperature", [0.0, 1.0])
@pytest.mark.parametrize("score", SCORES)
def test_nan_and_inf_rows(monkeypatch, isa, temperature, score):
    use_isa(monkeypatch, isa)
    gen = torch.Generator().manual_seed(7)
    b, g, v, mask_id = 2, 6, 300, 299
    logits = torch.randn(b, g, v, generator=gen) * 2
    logits[0, 0] = float("nan")  # dead: nothing finite
    logits[0, 1, ::3] = float("nan")  # partly NaN
    logits[0, 2] = float("-inf")
    logits[0, 2, mask_id] = 1.0  # only the mask is finite: dead
    logits[0, 3, 17] = float("inf")  # +inf allowed entry: dead by the spec's isfinite test
    logits[0, 4, mask_id] = float("inf")  # +inf mask entry, finite allowed: the spec's m = 0 branch
    logits[1, 0] = float("-inf")
    logits[1, 0, 5] = 0.5  # one finite entry: margin's second is 0
    logits[1, 1, :] = 0.25  # all equal: first index wins
    x = make_x(b, g, v, mask_id, gen)
    x[0, 1] = 5
    x[0, 4] = 9
    got, _ = check(logits, x, mask_id=mask_id, temperature=temperature, score=score, seed=5, step=1)
    assert got[0][0, 0] == mask_id and got[1][0, 0] == float("-inf") and got[2][0, 0] == 0


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("v", [2, 3, 5, 63, 64, 65, 1024, 1025, 2049])
def test_vocab_sizes(monkeypatch, isa, v):
    use_isa(monkeypatch, isa)
    gen = torch.Generator().manual_seed(v)
    logits = torch.randn(3, 4, v, generator=gen)
    mask_id = v // 2
    for temperature, score in ((0.0, "margin"), (1.0, "prob"), (0.5, "entropy")):
        check(logits, make_x(3, 4, v, mask_id, gen), mask_id=mask_id, temperature=temperature, score=score,
              seed=99, step=2)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_peaked_logits_sampling(monkeypatch, isa, dtype):
    """LLM-like rows (a few large logits over a flat bulk): most Gumbel blocks are skipped."""
    use_isa(monkeypatch, isa)
    gen = torch.Generator().manual_seed(11)
    b, g, v, mask_id = 2, 8, 5003, 5000
    logits = torch.randn(b, g, v, generator=gen)
    top = torch.randint(0, v, (b, g, 3), generator=gen)
    logits.scatter_(-1, top, torch.tensor([12.0, 11.5, 9.0]).expand(b, g, 3).contiguous())
    logits = logits.to(dtype)
    for temperature in (1.0, 0.3, 2.5):
        for step in range(3):
            check(logits, make_x(b, g, v, mask_id, gen), mask_id=mask_id, temperature=temperature, score="prob",
                  seed=2**40 + 17, step=step)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_long_rows(monkeypatch, isa, dtype, score):
    """Rows of several 4096-entry spans (the AVX-512 fast path at T = 0) cut by the mask column and
    suppressed ids, with the cases that path must get right: the max in a late span (rescaled sums),
    ties across and inside spans, NaN entries and NaN/-inf spans, +inf entries, entries below the
    exp floor."""
    use_isa(monkeypatch, isa)
    gen = torch.Generator().manual_seed(zlib.crc32(repr((str(dtype), score)).encode()))
    g, v, mask_id = 9, 13001, 7000
    logits = torch.randn(1, g, v, generator=gen) * 3
    logits[0, 1, 12000] = 25.0  # the max in the last span: earlier spans' sums get rescaled
    logits[0, 2, [100, 5000, 9000]] = 20.0  # ties across spans: the first wins
    logits[0, 2, 99] = 19.5  # a runner-up next to it (margin)
    logits[0, 3, ::7] = float("nan")
    logits[0, 3, 4096:8192] = float("nan")
    logits[0, 4, :6000] = float("-inf")  # leading spans with nothing finite
    logits[0, 5, 9999] = float("inf")  # +inf allowed entry: dead
    logits[0, 6, mask_id] = float("inf")  # +inf mask entry: the spec's m = 0 branch
    logits[0, 7] -= 200.0
    logits[0, 7, 3333] = 0.0  # everything else below exp's floor
    logits[0, 8, 64:128] = 30.0  # a tie inside one span
    logits = logits.to(dtype)
    x = make_x(1, g, v, mask_id, gen)
    x[0, 1::2] = torch.tensor([12000, 5000, 4100, 3333])
    for temperature, st_ in ((0.0, "none"), (1.0, "none")):
        check(logits, x, mask_id=mask_id, temperature=temperature, score=score, score_temperature=st_,
              suppress_ids=(5, 4200, 11000), pick_suppress_ids=(17,), score_suppress_ids=(4300,), seed=8, step=1)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_back_to_back_full_spans(monkeypatch, isa, dtype, score):
    """Four full 4096-entry fast spans in a row with no generic chunk between them (mask column at
    the end, nothing suppressed): test_long_rows cuts every span short, so this is where one fast
    span's sums, top-2 lanes and argmax are handed to the next and the prefetch runs span to span."""
    use_isa(monkeypatch, isa)
    gen = torch.Generator().manual_seed(zlib.crc32(repr(("full spans", str(dtype), score)).encode()))
    g, v = 6, 4 * 4096 + 77
    mask_id = v - 1
    logits = torch.randn(1, g, v, generator=gen) * 3
    logits[0, 1, 13000] = 22.0  # the max in the last full span, the runner-up two spans earlier
    logits[0, 1, 4500] = 21.5
    logits[0, 2, ::5] = float("nan")
    logits[0, 2, 4096:8192] = float("-inf")  # a whole span with nothing finite between two others
    logits[0, 3] -= 200.0
    logits[0, 3, 9000] = 0.0  # a few survivors of exp's floor in different spans
    logits[0, 3, 15000] = -0.5
    logits[0, 4, [4095, 4096, 12288]] = 18.0  # ties on span borders: the first wins
    logits = logits.to(dtype)
    x = make_x(1, g, v, mask_id, gen)
    x[0, 1::2] = torch.tensor([4500, 9000, 4096])
    check(logits, x, mask_id=mask_id, temperature=0.0, score=score, pick_suppress_ids=(3,), seed=4, step=2)


def test_sampling_frequencies_follow_softmax(monkeypatch):
    """Gumbel-max over many steps draws x0 with the softmax probabilities (sanity of the noise)."""
    use_isa(monkeypatch, "avx512")
    logits = torch.tensor([[[0.0, 1.0, 2.0, -1.0, 0.5]]]).expand(1, 400, 5).contiguous()
    x = torch.full((1, 400), 4)
    counts = torch.zeros(5)
    for step in range(20):
        x0, _, _ = cpu.token_stats(logits, x, mask_id=4, temperature=1.0, seed=3, step=step)
        counts += torch.bincount(x0.flatten(), minlength=5).float()
    p = torch.softmax(logits[0, 0, :4], -1)
    torch.testing.assert_close(counts[:4] / counts.sum(), p, atol=0.02, rtol=0)


def test_extreme_seed_and_step():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 3, 777, generator=gen)
    x = make_x(2, 3, 777, 700, gen)
    for seed, step in ((2**63 - 1, 2**32 - 1), (2**32, 0), (0, 2**31 + 5)):
        check(logits, x, mask_id=700, temperature=1.0, score="random", seed=seed, step=step)


def test_extreme_values_fp32():
    """Huge logit gaps and tiny temperatures: the online softmax rescaling must stay exact."""
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(1, 4, 3000, generator=gen) * 30
    logits[0, 0, 2500] = 1e4  # the max appears in a late chunk: earlier sums get rescaled to ~0
    logits[0, 1, 0] = -1e30
    x = make_x(1, 4, 3000, 10, gen)
    for temperature, st_, score in ((0.0, "none", "entropy"), (0.05, "sampling", "prob"), (3.0, "sampling", "margin")):
        check(logits, x, mask_id=10, temperature=temperature, score=score, score_temperature=st_, seed=1, step=1)


@settings(max_examples=40, deadline=None)
@given(
    b=st.integers(1, 3), g=st.integers(1, 6), v=st.integers(2, 300), dtype=st.sampled_from(DTYPES),
    score=st.sampled_from(SCORES), temp=st.sampled_from(TEMPS), cfg=st.booleans(),
    seed=st.integers(0, 2**63 - 1), step=st.integers(0, 2**32 - 1), data=st.data(),
)
def test_parity_hypothesis(b, g, v, dtype, score, temp, cfg, seed, step, data):
    gen = torch.Generator().manual_seed(seed % 2**31)
    mask_id = data.draw(st.integers(0, v - 1))
    ids = st.lists(st.integers(0, v - 1), max_size=4)
    logits = make_logits(b, g, v, dtype, "contiguous", gen)
    uncond = make_logits(b, g, v, dtype, "contiguous", gen) if cfg else None
    x = torch.randint(0, v, (b, g), generator=gen)
    x[torch.rand(b, g, generator=gen) < 0.5] = mask_id
    check(logits, x, mask_id=mask_id, temperature=temp[1], score=score, score_temperature=temp[2],
          suppress_ids=tuple(data.draw(ids)), pick_suppress_ids=tuple(data.draw(ids)),
          score_suppress_ids=tuple(data.draw(ids)), uncond_logits=uncond,
          cfg_scale=data.draw(st.floats(-1.0, 3.0)) if cfg else 0.0, seed=seed, step=step)
