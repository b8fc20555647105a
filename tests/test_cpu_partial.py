"""Parity of the C++ token_stats_partial against the spec (warmkern/partial/state.py), field by field.

Shards of a 2600-entry vocabulary at different vocab_start (uneven sizes, starts that are and are not a multiple
of 4: the Philox lanes), with the mask / suppressed / prior ids and x inside and outside the shard, every score
mode, T = 0 and T > 0, CFG, +inf rows and truncation cutoffs. best_idx, alive, best and the other compared
values (m, c1, c2, best_zt, zt_cur) are bit-identical; the exp-sums s and ent are within tests/parity.py's
score tolerance. End to end: the merged and finalised cpu states of 2-3 shards are ops.token_stats on the whole
logits (x0 identical, also sampled).
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

import pytest
import torch
from cpu_cases import ISAS, needs_cpu_ext, use_isa
from parity import ATOL, RTOL
from test_partial import CASES, CUTS, INF_ROWS, MASK, _inputs, assert_same_stats, sharded

from warmkern import ops
from warmkern.partial import protocol
from warmkern.partial import state as S

pytestmark = needs_cpu_ext

VT = 2600
SHARDS = {"first": (0, 1301), "misaligned": (1301, 782), "last": (2083, 517)}  # 1301 % 4 = 1, 2083 % 4 = 3
IDS = dict(mask_id=1500, suppress_ids=(5, 1400, 2500), pick_suppress_ids=(1302, 2100, 7),
           score_suppress_ids=(10, 1700, 2599))
TEMPS = {"greedy": dict(), "sampled": dict(temperature=0.8, seed=torch.tensor([3, 2**40 + 7])),
         "scaled": dict(temperature=0.6, score_temperature="sampling", seed=11, step=5)}
EXACT = ("best", "best_idx", "best_zt", "alive", "m", "c1", "c2", "zt_cur")


def assert_same_state(got: torch.Tensor, want: torch.Tensor) -> None:
    """Identical fields but the exp-sums (s, ent: summation order), which parity.py's tolerance covers."""
    assert got.shape == want.shape and got.dtype == torch.float32
    for f, name in enumerate(S.FIELDS):
        a, w = got[..., f].contiguous(), want[..., f].contiguous()
        if name == "best_idx":
            assert torch.equal(a.view(torch.int32), w.view(torch.int32)), f"best_idx {a.view(torch.int32)} != {w}"
        elif name in EXACT:
            assert torch.equal(a.isnan(), w.isnan()) and torch.equal(a.nan_to_num(), w.nan_to_num()), (name, a, w)
        else:
            torch.testing.assert_close(a, w, rtol=RTOL, atol=ATOL, equal_nan=True, msg=name)


def _shard_inputs(start: int, n: int, dtype: torch.dtype, cfg: bool, seed: int):
    gen = torch.Generator().manual_seed(seed)
    logits = (torch.randn(2, 6, n, generator=gen) * 3).to(dtype)
    uncond = (torch.randn(2, 6, n, generator=gen) * 3).to(dtype) if cfg else None
    x = torch.randint(0, VT, (2, 6), generator=gen)
    x[:, 0] = IDS["mask_id"]
    x[:, 1] = start + torch.randint(0, n, (2,), generator=gen)  # inside the shard
    x[0, 2], x[1, 2] = 1700, 2100  # score- / pick-suppressed ids
    prior = torch.randint(-1, VT, (2, 6), generator=gen)
    prior[:, 3] = start + n // 2  # inside the shard
    return logits, uncond, x, prior


def both(logits, x, **kw):
    want = ops.token_stats_partial(logits, x, backend="reference", **kw)
    got = ops.token_stats_partial(logits, x, backend="cpu", **kw)
    return got, want


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("cfg", [False, True], ids=["plain", "cfg"])
@pytest.mark.parametrize("temp", list(TEMPS))
@pytest.mark.parametrize("score", ["prob", "margin", "entropy", "random"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shard", list(SHARDS))
def test_shard_state_is_the_spec_field_by_field(monkeypatch, shard, dtype, score, temp, cfg, isa):
    use_isa(monkeypatch, isa)
    start, n = SHARDS[shard]
    logits, uncond, x, prior = _shard_inputs(start, n, dtype, cfg, seed=start + 7 * cfg)
    kw = dict(vocab_start=start, vocab_total=VT, uncond_logits=uncond, cfg_scale=1.5 if cfg else 0.0, score=score,
              prior_ids=prior, prior_bias=torch.tensor([2.0, 40.0]), position_offset=3, **IDS, **TEMPS[temp])
    assert_same_state(*both(logits, x, **kw))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("temp", list(TEMPS))
@pytest.mark.parametrize("shard", list(SHARDS))
def test_a_cutoff_truncates_like_the_spec(monkeypatch, shard, temp, isa):
    """Per-position cutoffs on the tempered logits, -inf (none) on some positions, NaN (none) on one."""
    use_isa(monkeypatch, isa)
    start, n = SHARDS[shard]
    logits, _, x, prior = _shard_inputs(start, n, torch.float32, False, seed=start + 1)
    zs = logits * (1.0 / TEMPS[temp].get("temperature", 1.0))
    cutoff = zs.quantile(0.9, dim=-1)
    cutoff[:, 0] = float("-inf")
    cutoff[1, 1] = float("nan")
    cutoff[0, 4] = zs[0, 4].max() + 1  # everything removed: a dead position
    for score in ("prob", "margin", "entropy"):
        kw = dict(vocab_start=start, vocab_total=VT, score=score, prior_ids=prior, prior_bias=1.0, cutoff=cutoff,
                  **IDS, **TEMPS[temp])
        assert_same_state(*both(logits, x, **kw))


@pytest.mark.parametrize("score", ["prob", "margin", "entropy"])
@pytest.mark.parametrize("temperature", [0.0, 0.5])
@pytest.mark.parametrize("start", [0, 3, 5])
def test_infinite_tied_and_dead_rows_are_the_spec(score, temperature, start):
    """+inf entries (counted, not summed), ties across shards, all -inf and NaN rows, fp32 overflow of z / T."""
    rows = torch.tensor(INF_ROWS).unsqueeze(0)
    x = torch.tensor([[0, 1, 0, 0, 0, 1, 0, 2]])
    kw = dict(vocab_total=8, mask_id=MASK, score=score, temperature=temperature, seed=1, pick_suppress_ids=(4,),
              score_suppress_ids=(6,))
    if temperature:
        kw["score_temperature"] = "sampling"
    cut = torch.full((1, 8), -1e30)
    for cutoff in (None, cut):
        assert_same_state(*both(rows[..., start:], x, vocab_start=start, cutoff=cutoff, **kw))


def test_argument_errors_name_the_argument():
    logits, x = torch.randn(1, 2, 10), torch.zeros(1, 2, dtype=torch.int64)
    with pytest.raises(RuntimeError, match="vocab_total"):
        torch.ops.warmkern_cpu.token_stats_partial(logits, 5, 12, x, None, 3, 0.0, "prob", "none", [], [], [], 0.0, 0,
                                                   None, 0, None, None, None, None, 0)
    with pytest.raises(RuntimeError, match="cutoff"):
        torch.ops.warmkern_cpu.token_stats_partial(logits, 0, 12, x, None, 3, 0.0, "prob", "none", [], [], [], 0.0, 0,
                                                   None, 0, None, None, None, torch.zeros(1, 3), 0)
    with pytest.raises(RuntimeError, match="mask_id"):
        torch.ops.warmkern_cpu.token_stats_partial(logits, 0, 12, x, None, 12, 0.0, "prob", "none", [], [], [], 0.0,
                                                   0, None, 0, None, None, None, None, 0)


def _cpu_impl() -> SimpleNamespace:
    """The cpu state pass through ops (validated: seeds normalised); the truncation rounds from the spec."""
    ref = protocol.reference_impl()
    return SimpleNamespace(token_stats_partial=functools.partial(ops.token_stats_partial, backend="cpu"),
                           truncation_partial=ref.truncation_partial, nucleus_partial=ref.nucleus_partial)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("cut", ["two-uneven", "four-uneven", "width-one"])
@pytest.mark.parametrize("case", list(CASES))
def test_merged_cpu_shards_are_the_one_device_op(case, cut, dtype):
    logits, uncond, x, kw = _inputs(case, dtype)
    want = ops.token_stats(logits, x, mask_id=MASK, uncond_logits=uncond, backend="reference", **kw)
    assert_same_stats(sharded(logits, uncond, x, kw, CUTS[cut], _cpu_impl()), want)
    got_cpu = ops.token_stats(logits, x, mask_id=MASK, uncond_logits=uncond, backend="cpu", **kw)
    assert torch.equal(got_cpu[0], want[0])


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_merged_cpu_shards_of_a_large_vocabulary(temperature):
    """Chunk and fast-span boundaries inside the shards: 3 shards of a 5000-entry vocabulary, a window of rows."""
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 4, 5000, generator=gen).to(torch.bfloat16) * 4
    x = torch.randint(0, 5000, (2, 4), generator=gen)
    kw = dict(mask_id=4097, temperature=temperature, seed=torch.tensor([1, 2]), score="margin",
              suppress_ids=(2049, 4999), position_offset=7)
    impl = _cpu_impl()
    full = protocol.stats_kwargs("test", kw)
    full.pop("uncond_logits")
    got = protocol.sharded_token_stats(protocol.SplitShards(logits, None, [2049, 1950, 1001]), x, full, impl)
    big = torch.cat([torch.zeros(2, 7, 5000, dtype=logits.dtype), logits], dim=1)  # the region the window is in
    xb = torch.cat([torch.zeros(2, 7, dtype=torch.int64), x], dim=1)
    rkw = {k: v for k, v in kw.items() if k != "position_offset"}
    want = ops.token_stats(big, xb, backend="reference", **rkw)
    assert_same_stats(got, tuple(t[:, 7:] for t in want))
