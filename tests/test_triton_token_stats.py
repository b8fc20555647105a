"""Interpreter (or GPU) parity of the Triton token_stats against the reference spec.

The option space is a cartesian product far too large for the interpreter, so the cases are a
greedy all-pairs cover: every pair of values of any two factors appears in at least one case.
"""

from __future__ import annotations

import itertools
import random
import zlib

import pytest
import torch
from parity import assert_stats_match

from warmkern import launches, ops, reference
from warmkern import triton as wt

DEV = "cuda" if torch.cuda.is_available() else "cpu"
# the NaN/inf rows make the interpreter's numpy evaluate inf - inf and 0/0 in discarded lanes
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

FACTORS = {
    "dtype": [torch.float32, torch.float16, torch.bfloat16],
    "score": ["prob", "margin", "entropy", "random"],
    "temp": ["greedy", "sampled", "sampled+scaled"],  # T=0 / T>0 / T>0 with score_temperature sampling
    "cfg": [False, True],
    "ids": [False, True],  # suppress + pick-suppress + score-suppress ids
    "trunc": ["none", "top-k", "top-p", "both"],  # Dream's truncation (the cutoff search before the pass)
    "prior": [False, True],  # the draft prior (bias on one id per position)
    "layout": ["contiguous", "padded", "dream"],  # padded: strided rows; dream: logits_full[:, P-1:P+G-1]
    "split": ["1", "3", "auto-split", "auto-whole"],  # forced NSPLIT, or chosen from B*G
    "vocab": ["multi-tile", "one-tile"],
    "nan": [False, True],
}


def all_pairs(factors: dict[str, list], seed: int = 0) -> list[dict]:
    """Greedy all-pairs cover (deterministic): add the candidate covering most uncovered pairs."""
    names = list(factors)
    uncovered = {((a, i), (b, j)) for a, b in itertools.combinations(names, 2)
                 for i in range(len(factors[a])) for j in range(len(factors[b]))}
    rnd = random.Random(seed)
    cases = []
    while uncovered:
        best, best_gain = None, -1
        for _ in range(60):
            cand = {n: rnd.randrange(len(factors[n])) for n in names}
            a, b = next(iter(sorted(uncovered)))  # always cover the first uncovered pair
            cand[a[0]], cand[b[0]] = a[1], b[1]
            gain = sum(((x, cand[x]), (y, cand[y])) in uncovered for x, y in itertools.combinations(names, 2))
            if gain > best_gain:
                best, best_gain = cand, gain
        uncovered -= {((x, best[x]), (y, best[y])) for x, y in itertools.combinations(names, 2)}
        cases.append({n: factors[n][best[n]] for n in names})
    return cases


CASES = all_pairs(FACTORS)


def make_logits(case, b, g, v, gen):
    """[b, g, v] logits in the case's dtype and layout, with NaN/-inf rows when asked."""
    dt = case["dtype"]
    if case["layout"] == "dream":
        p = 5  # prompt length: the generation region's logits sit one position to the left
        full = (torch.randn(b, p + g + 2, v, generator=gen) * 3).to(dt)
        logits = full[:, p - 1 : p + g - 1]
    elif case["layout"] == "padded":
        full = (torch.randn(b, g, v + 24, generator=gen) * 3).to(dt)
        logits = full[:, :, 7 : 7 + v]
    else:
        logits = (torch.randn(b, g, v, generator=gen) * 3).to(dt)
    if case["nan"]:
        logits[0, 0] = float("nan")  # dead row
        logits[0, 1, ::3] = float("nan")  # partly NaN
        if g > 2:
            logits[-1, 2] = float("-inf")  # dead, but the mask logit stays finite
            logits[-1, 2, v // 3] = 2.0
            logits[0, 2, v // 3] = float("inf")  # +inf at mask_id only: alive, every finite p is 0
    return logits


@pytest.mark.parametrize("case", CASES, ids=[f"c{i}" for i in range(len(CASES))])
def test_token_stats_parity(case, monkeypatch):
    gen = torch.Generator().manual_seed(zlib.crc32(repr(case).encode()))
    v = 1000 if case["vocab"] == "multi-tile" else 97
    b, g = (2, 5) if case["split"] == "auto-whole" else (2, 3)  # the interpreter splits below 8 rows
    if case["split"] in ("1", "3"):
        monkeypatch.setenv("WARMKERN_TRITON_SPLIT", case["split"])
    if v > 256:
        monkeypatch.setenv("WARMKERN_TRITON_BLOCK_V", "256")  # 4 tiles, the last one partial
    mask_id = v // 3  # an interior id, like LLaDA's
    logits = make_logits(case, b, g, v, gen).to(DEV)
    x = torch.randint(0, v, (b, g), generator=gen)
    x[:, ::2] = mask_id
    x = x.to(DEV)
    kw = dict(mask_id=mask_id, seed=1234, step=3, score=case["score"])
    if case["temp"] != "greedy":
        kw["temperature"] = 0.7
    if case["temp"] == "sampled+scaled":
        kw["score_temperature"] = "sampling"
    if case["cfg"]:
        kw["uncond_logits"] = (torch.randn(b, g, v, generator=gen) * 3).to(case["dtype"]).to(DEV)
        kw["cfg_scale"] = 1.5
    if case["ids"]:
        x[0, 1] = 11  # the current token is suppressed: p_cur must be 0
        kw["suppress_ids"] = (11, 12, v - 1)
        best = int(reference.token_stats(logits, x, **kw)[0][1, 0])
        kw["pick_suppress_ids"] = (best, 5)  # a real x0 leaves the pick (it stays in the softmax)
        kw["score_suppress_ids"] = (int(x[1, 1]), 5, 12)  # the current token leaves the softmax: p_cur 0
    if case["trunc"] in ("top-k", "both"):
        kw["top_k"] = 7
    if case["trunc"] in ("top-p", "both"):
        kw["top_p"] = 0.8
    if case["prior"]:
        kw["prior_ids"] = torch.randint(-1, v, (b, g), generator=gen).to(DEV)
        kw["prior_ids"][0, 0] = mask_id  # the bias reaches a special id too
        kw["prior_bias"] = torch.tensor([2.0, -0.5]).to(DEV)
    launches.reset()
    got = wt.token_stats(logits, x, **kw)
    assert launches.snapshot() == {"token_stats": 1}
    want = reference.token_stats(logits, x, **kw)
    extra = {n: kw[n] for n in ("top_k", "top_p", "prior_ids", "prior_bias") if n in kw}
    assert_stats_match(got, want, logits=logits, temperature=kw.get("temperature", 0.0), seed=1234, step=3,
                       suppress_ids=kw.get("suppress_ids", ()), uncond_logits=kw.get("uncond_logits"),
                       cfg_scale=kw.get("cfg_scale", 0.0), **extra)
    if case["ids"]:
        assert got[2][0, 1] == 0 and got[2][1, 1] == 0 and got[0][1, 0] != kw["pick_suppress_ids"][0]


def test_split_paths_agree_exactly_enough(monkeypatch):
    """The split merge (fixed order) and the single pass give the same tokens and near-equal floats."""
    gen = torch.Generator().manual_seed(7)
    logits = torch.randn(1, 2, 2000, generator=gen).to(DEV)
    x = torch.tensor([[5, 1]]).to(DEV)
    monkeypatch.setenv("WARMKERN_TRITON_BLOCK_V", "256")
    res = {}
    for split in ("1", "2", "8"):
        monkeypatch.setenv("WARMKERN_TRITON_SPLIT", split)
        res[split] = wt.token_stats(logits, x, mask_id=1, score="entropy", temperature=1.0, seed=3)
    for split in ("2", "8"):
        assert torch.equal(res[split][0], res["1"][0])
        torch.testing.assert_close(res[split][1], res["1"][1], rtol=1e-5, atol=1e-6)
    again = wt.token_stats(logits, x, mask_id=1, score="entropy", temperature=1.0, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(again, res["8"]))  # deterministic run to run


def test_rows_beyond_2_pow_31_elements():
    """int64 offsets: a logits row starting past element 2^31 of one storage (only touched pages exist)."""
    if DEV != "cpu":
        pytest.skip("the lazily allocated big storage is a CPU trick")
    v = 300
    off = 2**31 + 64
    storage = torch.empty(off + v, dtype=torch.float16)
    logits = storage.as_strided((1, 2, v), (0, off, 1))
    gen = torch.Generator().manual_seed(0)
    logits[0, 0].copy_(torch.randn(v, generator=gen))
    logits[0, 1].copy_(torch.randn(v, generator=gen) * 4)
    x = torch.tensor([[v - 1, 5]])
    for kw in (dict(), dict(temperature=0.5, score="margin")):
        want = reference.token_stats(logits, x, mask_id=v - 1, **kw)
        got = wt.token_stats(logits, x, mask_id=v - 1, **kw)
        assert_stats_match(got, want, logits=logits, temperature=kw.get("temperature", 0.0))


def test_through_the_public_op():
    """ops.token_stats(backend='triton') reaches this backend through the torch.library op."""
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 4, 64, generator=gen).to(DEV)
    x = torch.full((2, 4), 3, dtype=torch.int64).to(DEV)
    launches.reset()
    got = ops.token_stats(logits, x, mask_id=3, score="margin", backend="triton")
    assert launches.snapshot() == {"token_stats": 1}
    assert_stats_match(got, reference.token_stats(logits, x, mask_id=3, score="margin"), logits=logits)
