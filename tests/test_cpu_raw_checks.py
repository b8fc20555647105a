"""The C++ entry points re-check everything they index with (issue 12, items 1, 2, 3 and 14).

warmkern.ops validates before any kernel runs, but torch.ops.warmkern_cpu.* can be called directly
(and ops.py passes check_values=False values through unchecked), so the kernels must refuse bad
arguments themselves: a RuntimeError naming the argument, never undefined behaviour. They also
refuse to write into a tensor whose elements overlap (an expanded x / provisional) or into an
inference tensor outside inference mode, and accept uncond_logits of another float dtype than
logits (the reference does: both are read as fp32). Ids the spec defines outside the vocabulary (x of
token_stats / denoise_step: p_cur 0; x / draft of warm_embed: a zero row and `status`) are never read.
"""

from __future__ import annotations

import pytest
import torch
from cpu_cases import ISAS, needs_cpu_ext, use_isa

from warmkern import cpu, reference

pytestmark = needs_cpu_ext

B, G, V, MASK = 2, 6, 97, 96
OP = torch.ops.warmkern_cpu if cpu.unavailable_reason() is None else None


def select_args(**over):
    """Arguments of a valid raw select call (positional order of the schema), with overrides."""
    gen = torch.Generator().manual_seed(0)
    x = torch.full((B, G), MASK)
    x[:, 0] = 5
    args = dict(
        score=torch.rand(B, G, generator=gen), x0=torch.randint(0, MASK, (B, G), generator=gen),
        p_cur=torch.rand(B, G, generator=gen), x=x, provisional=x != MASK, mask_id=MASK,
        lo=torch.zeros(B, dtype=torch.int64), hi=torch.full((B,), G), k=torch.ones(B, dtype=torch.int64),
        threshold=None, factor=None, remask_threshold=0.5, remask_max=1, alg_temp=0.0, seed=0, row_seeds=None, step=0,
        step_tensor=None,
    )
    args.update(over)
    return list(args.values())


def stats_args(**over):
    gen = torch.Generator().manual_seed(1)
    x = torch.full((B, G), MASK)
    x[:, 1] = 7
    args = dict(
        logits=torch.randn(B, G, V, generator=gen), x=x, uncond_logits=None, mask_id=MASK, temperature=0.0,
        score="prob", score_temperature="none", suppress_ids=[], pick_suppress_ids=[], score_suppress_ids=[],
        cfg_scale=0.0, seed=0, row_seeds=None, step=0, step_tensor=None, top_k=0, top_p=1.0, prior_ids=None,
        prior_bias=None,
    )
    args.update(over)
    return list(args.values())


def step_args(**over):
    gen = torch.Generator().manual_seed(2)
    x = torch.full((B, G), MASK)
    x[:, 0] = 5
    args = dict(
        logits=torch.randn(B, G, V, generator=gen), x=x, provisional=x != MASK, uncond_logits=None, mask_id=MASK,
        lo=torch.zeros(B, dtype=torch.int64), hi=torch.full((B,), G), k=torch.ones(B, dtype=torch.int64),
        threshold=None, factor=None, remask_threshold=0.5, remask_max=1, alg_temp=0.0, temperature=0.0, score="prob",
        score_temperature="none", suppress_ids=[], pick_suppress_ids=[], score_suppress_ids=[], cfg_scale=0.0, seed=0,
        row_seeds=None, step=0, step_tensor=None, top_k=0, top_p=1.0, prior_ids=None, prior_bias=None,
    )
    args.update(over)
    return list(args.values())


def embed_args(**over):
    gen = torch.Generator().manual_seed(3)
    x = torch.full((B, G), MASK)
    x[:, 0] = 5
    args = dict(
        weight=torch.randn(V, 8, generator=gen), x=x, draft=torch.full((B, G), 3),
        keep=torch.ones(B, G, dtype=torch.bool), out=torch.empty(B, G, 8), mask_id=MASK,
        alpha=torch.full((B,), 0.5), scale=1.0, status=None,
    )
    args.update(over)
    return list(args.values())


def expanded(t: torch.Tensor) -> torch.Tensor:
    """A [B, G] tensor whose rows are one stride-0 row (every row aliases the first)."""
    return t[:1].expand(t.shape[0], t.shape[1])


def int_tensor(*values):
    return torch.tensor(values, dtype=torch.int64)


SELECT_BAD = {
    "remask_max=-1": ("remask_max", dict(remask_max=-1)),
    "remask_max=-5 no threshold": ("remask_max", dict(remask_max=-5, remask_threshold=None)),
    "k negative": ("k", dict(k=int_tensor(1, -1))),
    "k wrong size": ("k", dict(k=int_tensor(1, 1, 1))),
    "k float": ("k", dict(k=torch.ones(B))),
    "lo negative": ("lo", dict(lo=int_tensor(-1, 0))),
    "lo above hi": ("lo", dict(lo=int_tensor(3, 0), hi=int_tensor(2, G))),
    "hi above G": ("hi", dict(hi=int_tensor(G + 1, G))),
    "hi wrong size": ("hi", dict(hi=int_tensor(G, G, G))),
    "lo float": ("lo", dict(lo=torch.zeros(B))),
    "score shape": ("score", dict(score=torch.rand(B, G + 1))),
    "score dtype": ("score", dict(score=torch.rand(B, G, dtype=torch.float64))),
    "x0 dtype": ("x0", dict(x0=torch.zeros(B, G, dtype=torch.int32))),
    "x0 shape": ("x0", dict(x0=torch.zeros(B, G - 1, dtype=torch.int64))),
    "p_cur dtype": ("p_cur", dict(p_cur=torch.rand(B, G, dtype=torch.float16))),
    "x dtype": ("x", dict(x=torch.full((B, G), MASK, dtype=torch.int32))),
    "x rank": ("x", dict(x=torch.full((B, G, 1), MASK))),
    "provisional dtype": ("provisional", dict(provisional=torch.zeros(B, G, dtype=torch.uint8))),
    "provisional shape": ("provisional", dict(provisional=torch.zeros(B, G + 2, dtype=torch.bool))),
    "no rule": ("k/threshold/factor", dict(k=None)),
    "two rules": ("k/threshold/factor", dict(threshold=0.5)),
    "alg_temp negative": ("alg_temp", dict(alg_temp=-0.5)),
    "alg_temp inverse overflows": ("alg_temp", dict(alg_temp=1e-45)),
    "alg_temp without k": ("alg_temp", dict(alg_temp=0.5, k=None, threshold=0.5)),
    "row_seeds dtype": ("row_seeds", dict(row_seeds=torch.ones(B, dtype=torch.int32))),
    "row_seeds size": ("row_seeds", dict(row_seeds=int_tensor(1, 2, 3))),
    "step_tensor dtype": ("step_tensor", dict(step_tensor=torch.tensor(1.0))),
    "step_tensor size": ("step_tensor", dict(step_tensor=int_tensor(1, 2))),
    "step_tensor range": ("step_tensor", dict(step_tensor=torch.tensor(2**32))),
    "step negative": ("step", dict(step=-1)),
}


@pytest.mark.parametrize("case", list(SELECT_BAD), ids=str)
def test_select_rejects(case):
    name, over = SELECT_BAD[case]
    with pytest.raises(RuntimeError, match=f"{name}:"):
        OP.select(*select_args(**over))


STATS_BAD = {
    "mask_id=V": ("mask_id", dict(mask_id=V)),
    "mask_id=-1": ("mask_id", dict(mask_id=-1)),
    "x dtype": ("x", dict(x=torch.full((B, G), MASK, dtype=torch.int32))),
    "x shape": ("x", dict(x=torch.full((B, G + 1), MASK))),
    "logits rank": ("logits", dict(logits=torch.randn(B, V))),
    "logits dtype": ("logits", dict(logits=torch.randn(B, G, V, dtype=torch.float64))),
    "logits int": ("logits", dict(logits=torch.ones(B, G, V, dtype=torch.int64))),
    "logits last stride": ("logits", dict(logits=torch.randn(B, G, 2 * V)[:, :, ::2])),
    "uncond shape": ("uncond_logits", dict(uncond_logits=torch.randn(B, G, V + 1))),
    "uncond dtype": ("uncond_logits", dict(uncond_logits=torch.randn(B, G, V, dtype=torch.float64))),
    "uncond last stride": ("uncond_logits", dict(uncond_logits=torch.randn(B, G, 2 * V)[:, :, ::2])),
    "suppress id": ("suppress_ids", dict(suppress_ids=[3, V])),
    "suppress negative": ("suppress_ids", dict(suppress_ids=[-1])),
    "pick_suppress id": ("pick_suppress_ids", dict(pick_suppress_ids=[V + 5])),
    "score_suppress negative": ("score_suppress_ids", dict(score_suppress_ids=[-2])),
    "row_seeds dtype": ("row_seeds", dict(row_seeds=torch.ones(B))),
    "row_seeds shape": ("row_seeds", dict(row_seeds=torch.ones(B, 1, dtype=torch.int64))),
    "step_tensor dtype": ("step_tensor", dict(step_tensor=torch.tensor(1, dtype=torch.int32))),
    "step_tensor negative": ("step_tensor", dict(step_tensor=torch.tensor(-1))),
    "top_k negative": ("top_k", dict(top_k=-1)),
    "top_p above 1": ("top_p", dict(top_p=1.5)),
    "top_p nan": ("top_p", dict(top_p=float("nan"))),
    "prior_ids shape": ("prior_ids", dict(prior_ids=torch.zeros(B, G + 1, dtype=torch.int64),
                                          prior_bias=torch.ones(1))),
    "prior_ids dtype": ("prior_ids", dict(prior_ids=torch.zeros(B, G, dtype=torch.int32), prior_bias=torch.ones(1))),
    "prior_bias missing": ("prior_bias", dict(prior_ids=torch.zeros(B, G, dtype=torch.int64))),
    "prior_bias size": ("prior_bias", dict(prior_ids=torch.zeros(B, G, dtype=torch.int64), prior_bias=torch.ones(3))),
    "prior_bias dtype": ("prior_bias", dict(prior_ids=torch.zeros(B, G, dtype=torch.int64),
                                            prior_bias=torch.ones(B, dtype=torch.float64))),
    "temperature inverse overflows": ("temperature", dict(temperature=1e-45)),
    "score": ("score", dict(score="bogus")),
    "score_temperature": ("score_temperature", dict(score_temperature="Sampling")),
    "temperature": ("temperature", dict(temperature=-1.0)),
    "temperature nan": ("temperature", dict(temperature=float("nan"))),
    "seed": ("seed", dict(seed=-1)),
    "step": ("step", dict(step=2**32)),
}


@pytest.mark.parametrize("case", list(STATS_BAD), ids=str)
def test_token_stats_rejects(case):
    name, over = STATS_BAD[case]
    with pytest.raises(RuntimeError, match=f"{name}:"):
        OP.token_stats(*stats_args(**over))


STEP_BAD = {
    **{k: v for k, v in SELECT_BAD.items() if v[0] not in ("score", "x0", "p_cur")},
    **STATS_BAD,
}


@pytest.mark.parametrize("case", list(STEP_BAD), ids=str)
def test_denoise_step_rejects(case):
    name, over = STEP_BAD[case]
    with pytest.raises(RuntimeError, match=f"{name}:"):
        OP.denoise_step(*step_args(**over))


EMBED_BAD = {
    "mask_id=V": ("mask_id", dict(mask_id=V)),
    "status dtype": ("status", dict(status=torch.zeros(1, dtype=torch.int64))),
    "status shape": ("status", dict(status=torch.zeros(2, dtype=torch.int32))),
    "status float": ("status", dict(status=torch.zeros(1))),
    "draft shape": ("draft", dict(draft=torch.zeros(B, G + 1, dtype=torch.int64))),
    "keep dtype": ("keep", dict(keep=torch.ones(B, G))),
    "alpha size": ("alpha", dict(alpha=torch.full((B + 1,), 0.5))),
    "alpha dtype": ("alpha", dict(alpha=torch.ones(B, dtype=torch.int64))),
    "out dtype": ("out", dict(out=torch.empty(B, G, 8, dtype=torch.float64))),
    "out shape": ("out", dict(out=torch.empty(B, G, 9))),
    "out overlap": ("out", dict(out=torch.empty(1, 1, 8).expand(B, G, 8))),
    "weight rank": ("weight", dict(weight=torch.randn(V))),
    "weight dtype": ("weight", dict(weight=torch.randn(V, 8, dtype=torch.float64))),
}


@pytest.mark.parametrize("case", list(EMBED_BAD), ids=str)
def test_warm_embed_rejects(case):
    name, over = EMBED_BAD[case]
    with pytest.raises(RuntimeError, match=f"{name}:"):
        OP.warm_embed(*embed_args(**over))


# ----------------------------------------------------------------------------- ids outside the vocabulary
OUTSIDE = (V, -1, 10**9, -(10**9))


def test_token_stats_gives_p_cur_zero_for_ids_outside_the_vocabulary():
    x = torch.tensor([[MASK, V, -1, 10**9, 5, -(10**9)]] * B)
    x0, _, pc = OP.token_stats(*stats_args(x=x))
    assert torch.equal(pc[:, 1:4], torch.zeros(B, 3)) and torch.equal(pc[:, 5], torch.zeros(B))
    assert (pc[:, 4] > 0).all()
    want = reference.token_stats(stats_args(x=x)[0], x, mask_id=MASK)
    assert torch.equal(x0, want[0])
    torch.testing.assert_close(pc, want[2], rtol=1e-5, atol=1e-6)


def test_denoise_step_remasks_provisional_ids_outside_the_vocabulary():
    """p_cur of an id outside [0, V) is 0: below any remask threshold, never read."""
    for bad in OUTSIDE:
        x = torch.full((B, G), MASK)
        x[:, 0] = bad
        args = step_args(x=x, provisional=x != MASK)
        _, nr = OP.denoise_step(*args)
        assert nr.tolist() == [1] * B and (args[1][:, 0] == MASK).all()


@pytest.mark.parametrize("isa", ISAS)
def test_warm_embed_zero_rows_and_status_for_ids_outside_the_table(monkeypatch, isa):
    use_isa(monkeypatch, isa)
    for bad in OUTSIDE:
        x = torch.full((B, G), MASK)
        x[:, 0] = 5
        x[0, 1] = bad
        draft = torch.full((B, G), 3)
        draft[1, 2] = bad if bad != -1 else -2
        status = torch.zeros(1, dtype=torch.int32)
        args = embed_args(x=x, draft=draft, status=status)
        OP.warm_embed(*args)
        out = args[4]
        want = reference.warm_embed(args[0], x, draft, args[3], mask_id=MASK, alpha=args[6])
        assert status.item() == 1
        assert torch.equal(out[0, 1], torch.zeros(8)) and torch.equal(out[1, 2], torch.zeros(8))
        torch.testing.assert_close(out, want, rtol=1e-6, atol=1e-6)
    status = torch.full((1,), 3, dtype=torch.int32)  # an earlier error code is kept (max)
    OP.warm_embed(*embed_args(status=status, x=torch.full((B, G), V)))
    assert status.item() == 3
    status = torch.zeros(1, dtype=torch.int32)
    OP.warm_embed(*embed_args(status=status))  # all ids fine: untouched
    assert status.item() == 0


# ----------------------------------------------------------------------------- WARMKERN_CPU_ISA
@pytest.mark.parametrize("value", ["bogus", "AVX2", "sse"])
def test_unknown_cpu_isa_is_an_error_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("WARMKERN_CPU_ISA", value)
    for call in (lambda: OP.token_stats(*stats_args()), lambda: OP.select(*select_args()),
                 lambda: OP.denoise_step(*step_args()), lambda: OP.warm_embed(*embed_args())):
        with pytest.raises(ValueError, match=f"WARMKERN_CPU_ISA: expected one of base, avx2, avx512.*'{value}'"):
            call()


def test_empty_cpu_isa_means_unset(monkeypatch):
    want = OP.token_stats(*stats_args())
    monkeypatch.setenv("WARMKERN_CPU_ISA", "")
    got = OP.token_stats(*stats_args())
    assert all(torch.equal(a, w) for a, w in zip(got, want))


# ----------------------------------------------------------------------------- written tensors
def test_select_refuses_overlapping_state():
    for name in ("x", "provisional"):
        args = select_args()
        index = 3 if name == "x" else 4
        args[index] = expanded(args[index])
        before = args[index].clone()
        with pytest.raises(RuntimeError, match=rf"{name}: .*more than one element"):
            OP.select(*args)
        assert torch.equal(args[index], before)


def test_denoise_step_refuses_overlapping_state():
    for name, index in (("x", 1), ("provisional", 2)):
        args = step_args()
        args[index] = expanded(args[index])
        with pytest.raises(RuntimeError, match=rf"{name}: .*more than one element"):
            OP.denoise_step(*args)


def test_refuses_overlap_hidden_in_positive_strides():
    """as_strided rows that share elements (strides (1, 1)) overlap just as an expanded tensor does."""
    base = torch.full((B + G,), MASK)
    x = base.as_strided((B, G), (1, 1))
    args = select_args(x=x)
    with pytest.raises(RuntimeError, match=r"x: .*more than one element"):
        OP.select(*args)


def test_accepts_strided_non_overlapping_state():
    """Views of a longer sequence (row stride > G) and transposed layouts are fine."""
    xf = torch.full((B, G + 5), MASK)
    xf[:, 2] = 5
    pf = xf != MASK
    x, prov = xf[:, 2 : 2 + G], pf[:, 2 : 2 + G]
    xt = x.clone().t().contiguous().t()  # column-major
    for xx, pp in ((x, prov), (xt, prov.clone())):
        OP.select(*select_args(x=xx, provisional=pp))


def test_refuses_inference_tensors_outside_inference_mode():
    with torch.inference_mode():
        args = select_args()
        x_inf = args[3].clone()
    args[3] = x_inf
    with pytest.raises(RuntimeError, match=r"x: .*inference"):
        OP.select(*args)
    with torch.inference_mode():  # inside inference mode it is an ordinary write
        OP.select(*args)
    with torch.inference_mode():
        out_inf = torch.empty(B, G, 8)
    with pytest.raises(RuntimeError, match=r"out: .*inference"):
        OP.warm_embed(*embed_args(out=out_inf))


# ----------------------------------------------------------------------------- uncond_logits dtype
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize(("ldt", "udt"), [(torch.bfloat16, torch.float32), (torch.float16, torch.bfloat16),
                                          (torch.float32, torch.float16)], ids=str)
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_uncond_of_another_dtype_matches_reference(monkeypatch, isa, ldt, udt, temperature):
    use_isa(monkeypatch, isa)
    gen = torch.Generator().manual_seed(4)
    logits = (torch.randn(B, G, 1500, generator=gen) * 3).to(ldt)
    uncond = (torch.randn(B, G, 1500, generator=gen) * 3).to(udt)
    x = torch.full((B, G), 1499)
    x[:, ::2] = 17
    kw = dict(mask_id=1499, temperature=temperature, score="margin", uncond_logits=uncond, cfg_scale=0.75, seed=9,
              suppress_ids=(4,))
    want = reference.token_stats(logits, x, **kw)
    got = cpu.token_stats(logits, x, **kw)
    assert torch.equal(got[0], want[0])
    torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[2], want[2], rtol=1e-5, atol=1e-6)
