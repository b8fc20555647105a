"""Partial states over vocabulary shards (warmkern.partial), in one process: cut the vocabulary any way, run
the shard passes, merge in shard order, finalize, and get the one-device token_stats (tests/parity.py's
contract, with x0 *identical* also at T > 0: the Philox counters are keyed by the global vocabulary index).
"""

from __future__ import annotations

import pytest
import torch

from warmkern import backends, ops
from warmkern.partial import protocol, state, truncation

INF = float("inf")
MASK = 3
B, G, V = 3, 5, 97
CUTS = {"one": [97], "two-uneven": [60, 37], "four-uneven": [30, 20, 40, 7], "width-one": [1, 95, 1]}

CASES = {
    "greedy-prob": dict(),
    "sampled-row-seeds": dict(temperature=0.7, seed=torch.tensor([1, 2, 2**40 + 3])),
    "margin": dict(score="margin"),
    "margin-sampled": dict(score="margin", temperature=1.3, score_temperature="sampling", seed=5),
    "entropy": dict(score="entropy"),
    "random-step-tensor": dict(score="random", step=torch.tensor(3), temperature=0.5, seed=9),
    "top-k": dict(top_k=5),
    "top-k-sampled": dict(top_k=20, temperature=0.5, seed=3, score="entropy", score_temperature="sampling"),
    "top-p": dict(top_p=0.9),
    "top-p-tiny": dict(top_p=1e-6),
    "top-p-top-k-sampled": dict(top_p=0.8, top_k=9, temperature=0.6, seed=4, score="margin"),
    "lists-in-every-shard": dict(suppress_ids=(7, 60, 96), pick_suppress_ids=(31, 90), score_suppress_ids=(50, 2)),
    "prior": dict(prior_ids="draft", prior_bias=torch.tensor([1.0, 5.0, -2.0]), score="margin"),
    "cfg-sampled": dict(cfg_scale=0.5, uncond=True, temperature=1.0, seed=2, top_p=0.95),
}


def _inputs(case: str, dtype: torch.dtype):
    gen = torch.Generator().manual_seed(sum(map(ord, case)))
    logits = (torch.randn(B, G, V, generator=gen) * 3).to(dtype)
    x = torch.randint(0, V, (B, G), generator=gen)
    x[:, ::2] = MASK
    kw = dict(CASES[case])
    if kw.get("prior_ids") == "draft":
        kw["prior_ids"] = torch.randint(-1, V, (B, G), generator=gen)
    uncond = (torch.randn(B, G, V, generator=gen) * 3).to(dtype) if kw.pop("uncond", None) else None
    return logits, uncond, x, kw


def sharded(logits, uncond, x, kw, sizes, impl=None):
    full = protocol.stats_kwargs("test", dict(kw, mask_id=MASK))
    full.pop("uncond_logits")
    impl = impl if impl is not None else protocol.reference_impl()
    return protocol.sharded_token_stats(protocol.SplitShards(logits, uncond, sizes), x, full, impl)


def assert_same_stats(got, want):
    """Tokens identical; score and p_cur within tests/parity.py's tolerances (merge order of the exp-sums)."""
    assert torch.equal(got[0], want[0]), f"x0 {got[0]} != {want[0]}"
    torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-6, equal_nan=True)
    torch.testing.assert_close(got[2], want[2], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("cut", list(CUTS))
@pytest.mark.parametrize("case", list(CASES))
def test_merged_shards_are_the_one_device_op(case, cut, dtype):
    logits, uncond, x, kw = _inputs(case, dtype)
    want = ops.token_stats(logits, x, mask_id=MASK, uncond_logits=uncond, backend="reference", **kw)
    assert_same_stats(sharded(logits, uncond, x, kw, CUTS[cut]), want)


@pytest.mark.parametrize("cut", ["one", "four-uneven"])
def test_validated_ops_path_matches_the_unvalidated_spec(cut):
    """Also with one shard, where the merged (max, exp-sum) would be views of the gathered parts."""
    logits, uncond, x, kw = _inputs("top-p-top-k-sampled", torch.float32)
    impl = protocol.ops_impl("reference", check_values=True)
    a = sharded(logits, uncond, x, kw, CUTS[cut], impl)
    b = sharded(logits, uncond, x, kw, CUTS[cut])
    assert all(torch.equal(u, w) for u, w in zip(a, b))


INF_ROWS = [
    [1.0, INF, 2.0, 0.5, -1.0, 0.0, 3.0, 2.5],  # one +inf
    [INF, 0.0, INF, INF, 1.0, 2.0, -INF, 0.0],  # +inf in several shards (3 is the mask)
    [0.0, 1.0, 2.0, INF, 0.5, 0.0, 0.0, 1.0],  # the mask is +inf
    [0.0, -INF, -INF, -INF, -INF, -INF, -INF, -INF],  # certain
    [1.5, 1.5, 1.5, -INF, 1.5, -INF, -INF, -INF],  # a four-way tie across shards
    [-INF, float("nan"), -INF, INF, -INF, -INF, -INF, -INF],  # dead
    [0.0, 1.0, 3e38, 2e38, 3e38, 1.0, -3e38, 0.0],  # temperature overflow, exp-sum rescaling over 6e38
    [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0],  # all tied: the lowest candidate id, whatever the cut
]


@pytest.mark.parametrize("score", ["prob", "margin", "entropy"])
@pytest.mark.parametrize("temperature", [0.0, 0.5])
@pytest.mark.parametrize("trunc", [(0, 1.0), (2, 1.0), (0, 0.5), (3, 0.3)], ids=str)
def test_infinite_tied_and_dead_rows_are_exact(score, temperature, trunc):
    logits = torch.tensor(INF_ROWS).unsqueeze(0)
    x = torch.tensor([[0, 1, 0, 0, 0, 1, 0, 2]])
    kw = dict(score=score, temperature=temperature, seed=1, top_k=trunc[0], top_p=trunc[1])
    if temperature:
        kw["score_temperature"] = "sampling"
    want = ops.token_stats(logits, x, mask_id=MASK, backend="reference", **kw)
    for sizes in ([1, 7], [3, 1, 4], [2, 2, 2, 2], [1] * 8):
        got = sharded(logits, None, x, kw, sizes)
        for name, a, w in zip(("x0", "score", "p_cur"), got, want):
            assert torch.equal(a, w) or torch.allclose(a, w, rtol=1e-6, atol=0, equal_nan=True), (sizes, name, a, w)


def test_merge_is_associative_up_to_rounding_and_keeps_the_lowest_index():
    logits, _, x, _ = _inputs("greedy-prob", torch.float32)
    logits[..., 40] = logits[..., 10] = 50.0  # a tie between two shards
    parts = [state.token_stats_partial(logits[..., a:b], x, vocab_start=a, vocab_total=V, mask_id=MASK,
                                       score="entropy") for a, b in ((0, 30), (30, 50), (50, 97))]
    left = state.merge(state.merge(parts[0], parts[1]), parts[2])
    right = state.merge(parts[0], state.merge(parts[1], parts[2]))
    torch.testing.assert_close(left, right, rtol=1e-6, atol=1e-6)
    assert (left[..., state.BEST_IDX].contiguous().view(torch.int32) == 10).all()


def test_ordered_key_round_trips_and_orders_floats():
    vals = torch.tensor([-INF, -3e38, -1.0, -1e-45, -0.0, 0.0, 1e-45, 2.5, 3e38, INF])
    keys = truncation.ordered_key(vals)
    assert (keys[1:] >= keys[:-1]).all() and keys[4] == keys[5]  # -0.0 is +0.0
    assert torch.equal(truncation.key_value(keys)[5:], vals[5:]) and torch.equal(truncation.key_value(keys)[:4],
                                                                                  vals[:4])


def test_shard_ops_check_global_ids_and_the_slice():
    logits = torch.randn(1, 2, 10)
    x = torch.full((1, 2), 50)
    ops.token_stats_partial(logits, x, vocab_start=40, vocab_total=60, mask_id=55, prior_ids=torch.tensor([[59, 0]]),
                            prior_bias=1.0, suppress_ids=(1, 58))  # ids anywhere in [0, 60) are fine
    with pytest.raises(ValueError, match="vocab_start"):
        ops.token_stats_partial(logits, x, vocab_start=55, vocab_total=60, mask_id=3)
    with pytest.raises(ValueError, match=r"x: expected ids in \[0, 60\)"):
        ops.token_stats_partial(logits, torch.full((1, 2), 60), vocab_start=0, vocab_total=60, mask_id=3)
    with pytest.raises(ValueError, match=r"suppress_ids\[0\]"):
        ops.truncation_partial(logits, vocab_start=0, vocab_total=60, suppress_ids=(60,))
    with pytest.raises(ValueError, match="level"):
        ops.nucleus_partial(logits, vocab_start=0, vocab_total=60, zs_max=torch.zeros(1, 2),
                            prefix=torch.zeros(1, 2, dtype=torch.int64), level=4)


def test_a_backend_without_the_shard_kernels_raises_when_asked_for():
    logits, x = torch.randn(1, 2, 10), torch.zeros(1, 2, dtype=torch.int64)
    if backends.unavailable_reason("cpu", logits.device) is None:
        with pytest.raises(RuntimeError, match="does not implement truncation_partial"):
            ops.truncation_partial(logits, vocab_start=0, vocab_total=10, top_k=2, backend="cpu")
    st = ops.token_stats_partial(logits, x, vocab_start=0, vocab_total=10, mask_id=3, backend="auto")
    assert st.shape == (1, 2, len(state.FIELDS))


@pytest.mark.parametrize("case", ["sampled-row-seeds", "random-step-tensor", "top-p-top-k-sampled"])
def test_a_window_of_rows_at_its_position_offset_decodes_like_those_rows_of_the_region(case):
    """The sampler hands only the window rows: Philox counters follow the region's positions, not the window's."""
    logits, uncond, x, kw = _inputs(case, torch.float32)
    want = ops.token_stats(logits, x, mask_id=MASK, uncond_logits=uncond, backend="reference", **kw)
    got = sharded(logits[:, 1:4], None, x[:, 1:4], dict(kw, position_offset=1), CUTS["two-uneven"])
    assert_same_stats(got, tuple(t[:, 1:4] for t in want))
    got = ops.token_stats_partial(logits[:, 1:4], x[:, 1:4], vocab_start=0, vocab_total=V, mask_id=MASK,
                                  position_offset=1, **{k: v for k, v in kw.items() if k not in ("top_k", "top_p")})
    assert got.shape == (B, 3, len(state.FIELDS))
