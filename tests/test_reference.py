"""Hand-computed cases for every op and mode of the reference (the spec), small V, explicit answers."""

import math

import pytest
import torch

from warmkern import reference as ref
from warmkern import rng

MASK = 0
NEG_INF = float("-inf")


def _row(*vals):
    return torch.tensor([[list(vals)]], dtype=torch.float32)  # [1, 1, V]


# ----------------------------------------------------------------------------- warm_embed
def test_warm_embed_three_cases_and_scale():
    w = torch.arange(12, dtype=torch.float32).reshape(4, 3)  # V=4, D=3; row MASK=0 is [0,1,2]
    x = torch.tensor([[2, MASK, MASK, MASK]])
    draft = torch.tensor([[1, 3, -1, 3]])
    keep = torch.tensor([[True, True, True, False]])
    out = ref.warm_embed(w, x, draft, keep, mask_id=MASK, alpha=0.25, scale=2.0)
    expected = torch.stack([
        2 * w[2],                            # decoded: its own token
        2 * (0.75 * w[MASK] + 0.25 * w[3]),  # masked, kept draft: interpolated
        2 * w[MASK],                         # no prior (-1)
        2 * w[MASK],                         # prior dropped by keep
    ]).unsqueeze(0)
    assert torch.equal(out, expected)


def test_warm_embed_alpha_per_row_and_out_buffer():
    w = torch.randn(6, 5)
    x = torch.full((2, 3), MASK)
    draft = torch.full((2, 3), 4)
    keep = torch.ones(2, 3, dtype=torch.bool)
    out = torch.empty(2, 3, 5)
    res = ref.warm_embed(w, x, draft, keep, mask_id=MASK, alpha=torch.tensor([0.0, 1.0]), out=out)
    assert res is out
    assert torch.equal(out[0], w[MASK].expand(3, 5))
    assert torch.equal(out[1], w[4].expand(3, 5))


def test_warm_embed_bf16_rounds_once():
    w = torch.randn(5, 8).to(torch.bfloat16)
    x = torch.tensor([[MASK]])
    out = ref.warm_embed(w, x, torch.tensor([[3]]), torch.tensor([[True]]), mask_id=MASK, alpha=0.3)
    want = (0.7 * w[MASK].float() + 0.3 * w[3].float()).to(torch.bfloat16)
    assert out.dtype == torch.bfloat16 and torch.equal(out[0, 0], want)


# ----------------------------------------------------------------------------- token_stats
def test_greedy_prob_score_and_p_cur():
    # V = 4, mask 0. z = [5, 1, 2, 2]: the mask entry is largest but never chosen; tie 2/3 -> 2.
    logits = _row(5.0, 1.0, 2.0, 2.0)
    x0, sc, pc = ref.token_stats(logits, torch.tensor([[3]]), mask_id=MASK)
    e = torch.tensor([5.0, 1.0, 2.0, 2.0]).exp()
    p = e / e.sum()
    assert x0.item() == 2
    assert sc.item() == pytest.approx(p[2].item(), rel=1e-6)
    assert pc.item() == pytest.approx(p[3].item(), rel=1e-6)  # belief in the current token 3


def test_p_cur_zero_for_masked_positions():
    _, _, pc = ref.token_stats(_row(0.0, 1.0, 2.0), torch.tensor([[MASK]]), mask_id=MASK)
    assert pc.item() == 0.0


def test_margin_and_entropy_by_hand():
    logits = _row(0.0, 3.0, 1.0, 2.0)
    e = torch.tensor([0.0, 3.0, 1.0, 2.0]).exp()
    p = e / e.sum()
    _, margin, _ = ref.token_stats(logits, torch.tensor([[MASK]]), mask_id=MASK, score="margin")
    assert margin.item() == pytest.approx((p[1] - p[3]).item(), rel=1e-6)
    _, ent, _ = ref.token_stats(logits, torch.tensor([[MASK]]), mask_id=MASK, score="entropy")
    assert ent.item() == pytest.approx((p * p.log()).sum().item(), rel=1e-6)
    assert ent.item() <= 0


def test_entropy_is_exact_with_suppressed_entries():
    logits = _row(0.0, 1.0, 1.0, 7.0)
    _, ent, _ = ref.token_stats(logits, torch.tensor([[MASK]]), mask_id=MASK, score="entropy", suppress_ids=(3,))
    # remaining: exp(0), e, e -> p = [1, e, e] / (1 + 2e)
    p = torch.tensor([1.0, math.e, math.e]) / (1 + 2 * math.e)
    assert ent.item() == pytest.approx((p * p.log()).sum().item(), rel=1e-6)


def test_suppress_ids_never_chosen_and_zero_probability():
    logits = _row(0.0, 9.0, 1.0, 2.0)
    x0, sc, pc = ref.token_stats(logits, torch.tensor([[1]]), mask_id=MASK, suppress_ids=(1,))
    assert x0.item() == 3 and pc.item() == 0.0
    e = torch.tensor([0.0, 1.0, 2.0]).exp()
    assert sc.item() == pytest.approx((e[2] / e.sum()).item(), rel=1e-6)


def test_pick_suppress_ids_are_never_x0_but_stay_in_the_softmax():
    x0, sc, pc = ref.token_stats(_row(0.0, 1.0, 5.0), torch.tensor([[2]]), mask_id=MASK, pick_suppress_ids=(2,))
    e = torch.tensor([0.0, 1.0, 5.0]).exp()
    assert x0.item() == 1
    assert sc.item() == pytest.approx((e[1] / e.sum()).item(), rel=1e-6)
    assert pc.item() == pytest.approx((e[2] / e.sum()).item(), rel=1e-6)


def test_score_suppress_ids_leave_the_softmax_but_may_be_x0():
    x0, sc, _ = ref.token_stats(_row(0.0, 1.0, 5.0), torch.tensor([[MASK]]), mask_id=MASK, score_suppress_ids=(2,))
    assert x0.item() == 2 and sc.item() == 0.0  # chosen, with probability 0 in the renormalised softmax
    x0, sc, _ = ref.token_stats(_row(0.0, 1.0, 5.0, 2.0), torch.tensor([[MASK]]), mask_id=MASK,
                                score_suppress_ids=(2,), pick_suppress_ids=(2,))
    e = torch.tensor([0.0, 1.0, 2.0]).exp()
    assert x0.item() == 3 and sc.item() == pytest.approx((e[2] / e.sum()).item(), rel=1e-6)


def test_cfg_combination():
    c = _row(0.0, 1.0, 3.0)
    u = _row(0.0, 2.0, 0.0)
    x0, sc, _ = ref.token_stats(c, torch.tensor([[MASK]]), mask_id=MASK, uncond_logits=u, cfg_scale=1.0)
    z = torch.tensor([0.0, 0.0, 6.0])  # u + 2 (c - u)
    assert x0.item() == 2
    assert sc.item() == pytest.approx((z.exp() / z.exp().sum())[2].item(), rel=1e-6)


def test_score_temperature_sampling_uses_softmax_of_z_over_t():
    logits = _row(0.0, 1.0, 2.0)
    t = 0.5
    x0, sc, _ = ref.token_stats(logits, torch.tensor([[MASK]]), mask_id=MASK, temperature=t,
                                score_temperature="sampling", seed=4)
    zt = torch.tensor([0.0, 1.0, 2.0]) * ref.inverse_temperature(t)
    p = zt.exp() / zt.exp().sum()
    assert sc.item() == pytest.approx(p[x0.item()].item(), rel=1e-6)


def test_gumbel_choice_by_hand():
    logits = torch.randn(2, 3, 7)
    x = torch.full((2, 3), MASK)
    t, seed, step = 0.7, 11, 5
    x0, _, _ = ref.token_stats(logits, x, mask_id=MASK, temperature=t, seed=seed, step=step)
    g = rng.gumbel_noise(seed, step, 3, 7)  # [1, 3, 7]: an int seed is every row's seed
    pert = logits * ref.inverse_temperature(t) + g
    pert[..., MASK] = NEG_INF
    assert torch.equal(x0, pert.argmax(-1))


def test_random_score_from_stream_one():
    _, sc, _ = ref.token_stats(torch.randn(2, 3, 5), torch.full((2, 3), MASK), mask_id=MASK, score="random",
                               seed=8, step=2)
    assert torch.equal(sc, rng.position_uniforms(8, 2, rng.STREAM_RANDOM_SCORE, 3).expand(2, 3))


def test_nan_policy():
    logits = torch.tensor([[[1.0, float("nan"), NEG_INF], [float("nan"), float("nan"), 2.0]]])
    x = torch.tensor([[2, 1]])
    x0, sc, pc = ref.token_stats(logits, x, mask_id=MASK)
    # row 0: entries 1, 2 are NaN/-inf -> no finite allowed logit
    assert x0[0, 0].item() == MASK and sc[0, 0].item() == NEG_INF and pc[0, 0].item() == 0.0
    # row 1: NaN counts as -inf, entry 2 is the only finite one
    assert x0[0, 1].item() == 2 and sc[0, 1].item() == pytest.approx(1.0)
    assert pc[0, 1].item() == 0.0  # current token 1 has NaN logit -> p = 0


def test_strided_and_half_precision_inputs():
    full = torch.randn(2, 10, 9)
    view = full[:, 3:8]  # a [B, G, V] view with a row stride
    x = torch.full((2, 5), MASK)
    a = ref.token_stats(view, x, mask_id=MASK)
    b = ref.token_stats(view.contiguous(), x, mask_id=MASK)
    for s, t in zip(a, b):
        assert torch.equal(s, t)
    x0h, _, _ = ref.token_stats(view.to(torch.bfloat16), x, mask_id=MASK)
    assert torch.equal(x0h, view.to(torch.bfloat16).float().masked_fill(
        torch.arange(9) == MASK, NEG_INF).argmax(-1))


# ----------------------------------------------------------------------------- select
def _sel(score, x, x0=None, *, prov=None, p_cur=None, lo=0, hi=None, **kw):
    score = torch.tensor([score], dtype=torch.float32)
    x = torch.tensor([x])
    g = x.shape[1]
    x0 = torch.tensor([x0]) if x0 is not None else torch.arange(10, 10 + g).unsqueeze(0)
    prov = torch.tensor([prov]) if prov is not None else torch.zeros(1, g, dtype=torch.bool)
    p_cur = torch.tensor([p_cur], dtype=torch.float32) if p_cur is not None else torch.zeros(1, g)
    hi = g if hi is None else hi
    nt, nr = ref.select(score, x0, p_cur, x, prov, mask_id=MASK, lo=torch.tensor([lo]), hi=torch.tensor([hi]), **kw)
    return x[0].tolist(), prov[0].tolist(), nt.item(), nr.item()


M = MASK


def test_topk_order_and_ties_by_position():
    x, _, nt, _ = _sel([0.5, 0.9, 0.5, 0.5, 0.1], [M, M, M, M, M], k=torch.tensor([3]))
    assert x == [10, 11, 12, M, M] and nt == 3  # 0.9, then the tie 0.5 by position (0 before 2)


def test_topk_respects_window_and_eligibility():
    x, _, nt, _ = _sel([0.9, 0.8, 0.7, 0.6, 0.5], [M, 3, M, M, M], x0=[5, 5, M, 5, 5], lo=1, hi=4, k=torch.tensor([5]))
    # pos 0 outside window, pos 1 decoded, pos 2 has x0 == mask -> only pos 3 is eligible
    assert x == [M, 3, M, 5, M] and nt == 1


def test_topk_nan_ranks_last():
    x, _, nt, _ = _sel([float("nan"), NEG_INF, 0.2], [M, M, M], k=torch.tensor([2]))
    assert x == [M, 11, 12] and nt == 2


def test_threshold_and_its_progress_rule():
    x, _, nt, _ = _sel([0.95, 0.3, 0.91, 0.9], [M, M, M, M], threshold=0.9)
    assert x == [10, M, 12, 13] and nt == 3
    x, _, nt, _ = _sel([0.2, 0.4, 0.3], [M, M, M], threshold=0.9)
    assert x == [M, 11, M] and nt == 1  # none passes: the first in order goes


def test_factor_rule():
    # sorted scores 0.9 (r=1), 0.8 (r=2), 0.7 (r=3): (r+1)(1-s) = 0.2, 0.6, 1.2
    x, _, nt, _ = _sel([0.7, 0.9, 0.8], [M, M, M], factor=1.0)
    assert x == [M, 11, 12] and nt == 2
    x, _, nt, _ = _sel([0.1, 0.2], [M, M], factor=0.5)
    assert x == [M, 11] and nt == 1  # rank 1 always


def test_remask_lowest_first_capped_and_not_transferred_same_step():
    x, prov, nt, nr = _sel(
        [0.9, 0.1, 0.1, 0.1, 0.8],
        [M, 21, 22, 23, 24],
        prov=[False, True, True, True, False],
        p_cur=[0.0, 0.2, 0.05, 0.2, 0.01],
        k=torch.tensor([5]),
        remask_threshold=0.3,
        remask_max=2,
    )
    # provisional candidates: pos1 (0.2), pos2 (0.05), pos3 (0.2) -> pos2 first, then the tie
    # 1/3 by position; the cap of 2 keeps pos3. pos4 is not provisional: never remasked.
    assert x == [10, M, M, 23, 24] and nt == 1 and nr == 2
    assert prov == [False, False, False, True, False]


def test_remask_only_inside_window():
    x, _, _, nr = _sel([0.0, 0.0], [21, 22], prov=[True, True], p_cur=[0.0, 0.0], lo=1, hi=2,
                       k=torch.tensor([0]), remask_threshold=0.5)
    assert x == [21, M] and nr == 1


def test_select_rows_are_independent():
    score = torch.tensor([[0.1, 0.9, 0.5], [0.8, 0.2, 0.7]])
    x = torch.full((2, 3), MASK)
    x0 = torch.tensor([[4, 5, 6], [7, 8, 9]])
    prov = torch.zeros(2, 3, dtype=torch.bool)
    nt, _ = ref.select(score, x0, torch.zeros(2, 3), x, prov, mask_id=MASK, lo=torch.tensor([0, 0]),
                       hi=torch.tensor([3, 3]), k=torch.tensor([1, 2]))
    assert x.tolist() == [[M, 5, M], [7, M, 9]] and nt.tolist() == [1, 2]


def test_denoise_step_equals_stats_then_select():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 11)
    x = torch.full((2, 6), MASK)
    x[:, 0] = 3
    prov = torch.zeros(2, 6, dtype=torch.bool)
    prov[:, 0] = True
    kw = dict(mask_id=MASK, lo=torch.tensor([0, 1]), hi=torch.tensor([4, 6]), k=torch.tensor([2, 1]),
              remask_threshold=0.5)
    x_a, prov_a = x.clone(), prov.clone()
    nt_a = ref.denoise_step(logits, x_a, prov_a, temperature=1.0, seed=3, step=2, **kw)
    x0, sc, pc = ref.token_stats(logits, x, mask_id=MASK, temperature=1.0, seed=3, step=2)
    nt_b = ref.select(sc, x0, pc, x, prov, **kw)
    assert torch.equal(x_a, x) and torch.equal(prov_a, prov)
    assert all(torch.equal(a, b) for a, b in zip(nt_a, nt_b))
