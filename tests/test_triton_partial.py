"""Triton token_stats_partial (issue 16 item 1) against the spec, warmkern/partial/state.py: field by field on
shards anywhere in the vocabulary, and end to end (the merged, finalised shard states are the one-device op)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from parity import ATOL, NEAR_TIE_RTOL, RTOL
from test_partial import INF_ROWS  # +inf, tied and dead rows of the spec's own shard tests

from warmkern import launches, ops
from warmkern.partial import protocol, state

pytest.importorskip("triton")

INF = float("inf")
MASK = 33
B, G, VT = 2, 4, 97
# (vocab_start, V): aligned and unaligned starts (Philox counter groups of 4 straddled), a width-7 tail
SHARDS = {"head": (0, 30), "mid": (32, 20), "unaligned": (50, 40), "tail": (90, 7), "odd": (1, 95)}
# mask (33) in "mid", suppress / pick / score lists with ids in several shards and some outside each one
LISTS = dict(suppress_ids=(7, 45, 96), pick_suppress_ids=(31, 52, 91), score_suppress_ids=(2, 55, 94))
EXACT = ("best", "best_idx", "best_zt", "alive", "m", "c1", "c2", "zt_cur")


def _inputs(seed: int, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    logits = (torch.randn(B, G, VT, generator=gen) * 3).to(dtype)
    x = torch.randint(0, VT, (B, G), generator=gen)
    x[:, 0] = MASK
    x[0, 1], x[1, 1] = 31, 55  # a pick-suppressed and a score-suppressed current token
    return logits, x


def _both(logits, x, vs, kw):
    """(triton, reference) states of the shard [vs, vs + V) through warmkern.ops."""
    shard = logits[..., vs[0]:vs[0] + vs[1]]
    args = dict(vocab_start=vs[0], vocab_total=logits.shape[-1], mask_id=MASK, **kw)
    if "uncond_logits" in kw:
        args["uncond_logits"] = kw["uncond_logits"][..., vs[0]:vs[0] + vs[1]]
    return (ops.token_stats_partial(shard, x, backend="triton", **args),
            ops.token_stats_partial(shard, x, backend="reference", **args))


def assert_states_match(got: torch.Tensor, want: torch.Tensor, sampled: bool) -> None:
    """Comparisons and picks bit-identical; the exp-sums (s, ent) within the parity score tolerance. ent is
    compared where the softmax max is finite (with a +inf max the spec leaves it unused: merge and finalize
    never read it). At T > 0 `best` is z/T + Gumbel, whose outer log is the kernels' log2 * ln2 (fastmath):
    within the parity contract's near-tie tolerance, as the one-device kernel's perturbed values are."""
    assert got.shape == want.shape and got.dtype == want.dtype == torch.float32
    if sampled:
        torch.testing.assert_close(got[..., state.BEST], want[..., state.BEST], rtol=NEAR_TIE_RTOL, atol=0)
    for name in EXACT[1:] if sampled else EXACT:
        f = state.FIELDS.index(name)
        a, w = got[..., f].contiguous(), want[..., f].contiguous()
        assert torch.equal(a.view(torch.int32), w.view(torch.int32)) or torch.equal(a, w), (name, a, w)
    torch.testing.assert_close(got[..., state.S], want[..., state.S], rtol=RTOL, atol=ATOL)
    finite = torch.isfinite(want[..., state.M])
    torch.testing.assert_close(got[..., state.ENT][finite], want[..., state.ENT][finite], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("temperature", [0.0, 0.7])
@pytest.mark.parametrize("score", ["prob", "margin", "entropy", "random"])
@pytest.mark.parametrize("shard", list(SHARDS))
def test_shard_state_is_the_spec_field_by_field(shard, score, temperature):
    logits, x = _inputs(len(shard) * 7 + len(score))
    x[1, 2] = SHARDS[shard][0]  # a current token at the shard's first id
    kw = dict(score=score, temperature=temperature, seed=11, step=3, **LISTS)
    got, want = _both(logits, x, SHARDS[shard], kw)
    assert_states_match(got, want, temperature > 0)


EXTRA = {
    "cfg-sampling-row-seeds": dict(cfg=True, cfg_scale=0.5, temperature=1.3, score_temperature="sampling",
                                   seed=torch.tensor([4, 2**40 + 1]), score="entropy"),
    "prior-step-tensor-offset": dict(prior=True, prior_bias=torch.tensor([2.0, -1.5]), temperature=0.5,
                                     step=torch.tensor(5), position_offset=7, score="margin"),
    "prior-float-greedy": dict(prior=True, prior_bias=30.0, score="prob", **LISTS),
    "cutoff-sampled": dict(cut=True, temperature=0.8, seed=3, score="prob", **LISTS),
    "cutoff-greedy-margin": dict(cut=True, score="margin"),
}


def _extra(case: str, dtype=torch.float32):
    logits, x = _inputs(sum(map(ord, case)), dtype)
    kw = dict(EXTRA[case])
    gen = torch.Generator().manual_seed(5)
    if kw.pop("cfg", False):
        kw["uncond_logits"] = (torch.randn(B, G, VT, generator=gen) * 3).to(dtype)
    if kw.pop("prior", False):
        kw["prior_ids"] = torch.tensor([[-1, 52, 10, 95], [33, 0, 60, 7]])  # none, pick-suppressed, ..., suppressed
    if kw.pop("cut", False):  # the 6th largest tempered logit: entries below it are removed in every shard
        zs = logits.float() * (1 / kw["temperature"] if kw.get("temperature") else 1.0)
        kw["cutoff"] = zs.topk(6, dim=-1).values[..., -1].contiguous()
        kw["cutoff"][0, 0] = -INF  # no truncation at one position
    return logits, x, kw


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shard", ["mid", "unaligned"])
@pytest.mark.parametrize("case", list(EXTRA))
def test_cfg_prior_cutoff_seeds_and_offsets_field_by_field(case, shard, dtype):
    logits, x, kw = _extra(case, dtype)
    got, want = _both(logits, x, SHARDS[shard], kw)
    assert_states_match(got, want, kw.get("temperature", 0.0) > 0)


@pytest.mark.parametrize("score", ["prob", "margin", "entropy"])
@pytest.mark.parametrize("temperature", [0.0, 0.5])
def test_infinite_tied_and_dead_rows_field_by_field(score, temperature):
    logits = torch.tensor(INF_ROWS).unsqueeze(0)
    x = torch.tensor([[0, 1, 0, 3, 0, 1, 0, 2]])
    kw = dict(score=score, temperature=temperature, seed=1, score_suppress_ids=(6,))
    if temperature:
        kw["score_temperature"] = "sampling"
    for start, width in ((0, 1), (1, 2), (3, 1), (4, 4), (0, 8)):
        got = ops.token_stats_partial(logits[..., start:start + width], x, vocab_start=start, vocab_total=8,
                                      mask_id=3, backend="triton", **kw)
        want = ops.token_stats_partial(logits[..., start:start + width], x, vocab_start=start, vocab_total=8,
                                       mask_id=3, backend="reference", **kw)
        assert_states_match(got, want, temperature > 0)


def _triton_impl():
    """The shard passes with token_stats_partial on Triton (the truncation rounds stay on the reference)."""
    impl = protocol.ops_impl("reference", check_values=True)
    impl.token_stats_partial = protocol.ops_impl("triton", check_values=True).token_stats_partial
    return impl


E2E = {
    "greedy-lists": dict(**LISTS),
    "sampled-row-seeds-margin": dict(temperature=0.7, seed=torch.tensor([1, 2**40 + 3]), score="margin"),
    "entropy-sampling-top-k": dict(temperature=0.5, seed=3, score="entropy", score_temperature="sampling", top_k=7),
    "random-top-p-lists": dict(score="random", temperature=0.9, seed=8, step=torch.tensor(2), top_p=0.8, **LISTS),
    "cfg-prior-sampled": dict(cfg_scale=0.5, temperature=1.0, seed=2, prior_bias=torch.tensor([1.0, 4.0])),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("sizes", [[48, 49], [30, 41, 26]], ids=str)
@pytest.mark.parametrize("case", list(E2E))
def test_merged_triton_shards_are_the_one_device_op(case, sizes, dtype):
    logits, x = _inputs(sum(map(ord, case)), dtype)
    kw = dict(E2E[case])
    uncond = None
    if "cfg_scale" in kw:
        uncond = (torch.randn(B, G, VT, generator=torch.Generator().manual_seed(1)) * 3).to(dtype)
        kw["prior_ids"] = torch.tensor([[-1, 52, 10, 95], [33, 0, 60, 7]])
    want = ops.token_stats(logits, x, mask_id=MASK, uncond_logits=uncond, backend="reference", **kw)
    full = protocol.stats_kwargs("test", dict(kw, mask_id=MASK))
    full.pop("uncond_logits")
    launches.reset()
    got = protocol.sharded_token_stats(protocol.SplitShards(logits, uncond, sizes), x, full, _triton_impl())
    assert launches.snapshot().get("token_stats_partial") == len(sizes)  # the Triton kernel ran, once per shard
    assert torch.equal(got[0], want[0]), (got[0], want[0])
    torch.testing.assert_close(got[1], want[1], rtol=RTOL, atol=ATOL, equal_nan=True)
    torch.testing.assert_close(got[2], want[2], rtol=RTOL, atol=ATOL)


def test_empty_positions_and_a_explicit_request_on_the_op_path():
    st = ops.token_stats_partial(torch.randn(0, 3, 10), torch.zeros(0, 3, dtype=torch.int64), vocab_start=0,
                                 vocab_total=10, mask_id=3, backend="triton")
    assert st.shape == (0, 3, len(state.FIELDS))


SASS = """
import importlib, json, torch
from warmkern.triton import report
tp = importlib.import_module("warmkern.triton.token_stats_partial")  # the package re-exports the function
rows = []
v = report.LLADA["V"] // 2 + 4  # LLaDA's vocabulary on 2 ranks (rank 1 starts at 63228: an unaligned start too)
logits = torch.empty(1, 32, v, dtype=torch.bfloat16, device="meta")
x = torch.empty(1, 32, dtype=torch.int64, device="meta")
cut = torch.empty(1, 32, dtype=torch.float32, device="meta")
for name, kw in [("prob T=0", dict(score="prob")), ("entropy T>0 CFG cutoff", dict(
        score="entropy", temperature=0.7, uncond_logits=logits, cfg_scale=1.5, cutoff=cut)),
        ("margin T>0 unaligned", dict(score="margin", temperature=0.7, vocab_start=63228))]:
    kw = dict(dict(vocab_start=0), **kw)
    p = tp.plan(logits, x, vocab_total=report.LLADA["V"], mask_id=report.LLADA["mask_id"], seed=1, step=2,
                suppress_ids=report.LLADA["suppress"], cc=90, **kw)
    a = report.analyse(p.kernel, p.args, p.meta, 90)
    rows.append(dict(variant=name, regs=a["regs"], local=a["local_bytes"], stack=a["stack_bytes"],
                     spill=a["spill_bytes"]))
print(json.dumps(rows))
"""


@pytest.mark.skipif(os.environ.get("WARMKERN_SKIP_AOT") == "1", reason="WARMKERN_SKIP_AOT=1")
def test_compiles_for_sm90_at_llada_shard_shapes_without_spills():
    import json

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # real compiles, not the interpreter
    proc = subprocess.run([sys.executable, "-c", SASS], capture_output=True, text=True, env=env, timeout=1200,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(rows) == 3
    for r in rows:
        assert r["local"] == r["stack"] == r["spill"] == 0 and 0 < r["regs"] <= 255, r
