"""The wave-2 rules of the spec, by hand: +inf logits, temperature overflow, truncation (top-p/top-k),
the draft prior, LLaDA's EOS/EOT quirk lists, per-row seeds, Dream's alg_temp, warm_embed's status."""

from __future__ import annotations

import math

import pytest
import torch

from warmkern import reference as ref
from warmkern import rng

MASK = 0
INF = float("inf")
NEG_INF = float("-inf")


def _row(*vals):
    return torch.tensor([[list(vals)]], dtype=torch.float32)


def _stats(logits, x=MASK, **kw):
    return [t.item() for t in ref.token_stats(logits, torch.tensor([[x]]), mask_id=MASK, **kw)]


# ----------------------------------------------------------------------------- +inf is the winner
@pytest.mark.parametrize("temperature", [0.0, 1.3])
def test_plus_inf_logit_wins_and_takes_all_probability(temperature):
    x0, sc, pc = _stats(_row(1.0, 2.0, INF, 3.0), x=3, temperature=temperature, seed=2)
    assert x0 == 2 and sc == 1.0 and pc == 0.0


def test_several_plus_inf_logits_share_probability_lowest_index_wins():
    z = _row(INF, 2.0, INF, INF, 0.0)  # entry 0 is the mask: in the softmax, never x0
    assert _stats(z) == [2, pytest.approx(1 / 3), 0.0]
    assert _stats(z, score="entropy")[1] == pytest.approx(-math.log(3))
    assert _stats(z, score="margin")[1] == 0.0  # 1/3 - 1/3
    assert _stats(_row(INF, 2.0, INF, 1.0), score="margin")[1] == pytest.approx(1 / 2)  # the mask's third is no rival


def test_temperature_overflow_is_a_plus_inf_logit():
    # 3e38 * fp32(1/0.5) overflows: both entries become +inf; the lowest index wins under the noise
    x0, sc, _ = _stats(_row(0.0, 1.0, 3e38, 3e38), temperature=0.5, score_temperature="sampling", seed=1)
    assert x0 == 2 and sc == pytest.approx(0.5)


def test_dead_only_without_a_candidate_above_minus_inf():
    x0, sc, pc = _stats(_row(INF, NEG_INF, float("nan")), x=1)
    assert (x0, sc, pc) == (MASK, NEG_INF, 0.0)


def test_p_cur_of_an_out_of_range_id_is_zero():
    _, _, pc = _stats(_row(0.0, 1.0, 2.0), x=7)
    assert pc == 0.0


# ----------------------------------------------------------------------------- truncation (Dream)
def test_top_p_keeps_the_first_entry_past_the_nucleus():
    z = _row(0.0, 3.0, 2.0, 1.0, 2.5)  # mask 0; p ~ [.02, .46, .17, .06, .28]
    p = torch.softmax(z[0, 0], -1)
    keep = ref.truncation_keep(z, 0, 0.5)[0, 0].tolist()
    assert keep == [False, True, False, False, True]  # mass above 2.5 is .46 <= .5: kept; above 2 is .74
    x0, sc, _ = _stats(z, top_p=0.5)
    assert x0 == 1 and sc == pytest.approx((p[1] / (p[1] + p[4])).item(), rel=1e-6)


def test_top_p_keeps_ties_together_and_top_p_zero_keeps_the_top_group():
    z = _row(0.0, 2.0, 2.0, 1.0)
    assert ref.truncation_keep(z, 0, 0.3)[0, 0].tolist() == [False, True, True, False]
    assert ref.truncation_keep(z, 0, 0.0)[0, 0].tolist() == [False, True, True, False]


def test_top_k_keeps_ties_at_the_kth_value():
    z = _row(5.0, 3.0, 1.0, 3.0, 0.0)
    assert ref.truncation_keep(z, 2, 1.0)[0, 0].tolist() == [True, True, False, True, False]
    assert ref.truncation_keep(z, 5, 1.0) is None and ref.truncation_keep(z, 0, 1.0) is None


def test_top_p_then_top_k_and_the_mask_takes_part():
    z = _row(4.0, 3.0, 2.0, 1.0)  # the mask entry 0 is the largest: it counts in the nucleus, never x0
    keep = ref.truncation_keep(z, 2, 0.95)[0, 0].tolist()
    assert keep == [True, True, False, False]
    x0, sc, _ = _stats(z, top_k=2, top_p=0.95)
    e = torch.tensor([4.0, 3.0]).exp()
    assert x0 == 1 and sc == pytest.approx((e[1] / e.sum()).item(), rel=1e-6)


def test_truncation_uses_the_tempered_distribution_and_samples_only_kept_entries():
    z = torch.tensor([[[0.0, 2.0, 1.9, -5.0, -6.0]]]).expand(1, 400, 5).contiguous()
    x = torch.full((1, 400), MASK)
    x0, _, _ = ref.token_stats(z, x, mask_id=MASK, temperature=2.0, top_k=2, seed=5)
    assert set(x0.unique().tolist()) == {1, 2}
    x0, _, _ = ref.token_stats(z, x, mask_id=MASK, temperature=2.0, seed=5)
    assert {3, 4} & set(x0.unique().tolist())  # without truncation the tail is sampled too


# ----------------------------------------------------------------------------- the draft prior
def test_prior_adds_bias_to_the_draft_token_before_everything():
    z = torch.tensor([[[0.0, 2.0, 1.5], [0.0, 2.0, 1.5]]])
    x = torch.full((1, 2), MASK)
    prior = torch.tensor([[2, -1]])
    x0, sc, _ = ref.token_stats(z, x, mask_id=MASK, prior_ids=prior, prior_bias=torch.tensor([1.0]))
    zp = torch.tensor([0.0, 2.0, 2.5])
    assert x0.tolist() == [[2, 1]]
    assert sc[0, 0].item() == pytest.approx(torch.softmax(zp, -1)[2].item(), rel=1e-6)
    assert sc[0, 1].item() == pytest.approx(torch.softmax(z[0, 1], -1)[1].item(), rel=1e-6)


def test_prior_never_revives_a_suppressed_token_and_precedes_temperature():
    x0, _, _ = _stats(_row(0.0, 2.0, 1.5), prior_ids=torch.tensor([[2]]), prior_bias=torch.tensor([9.0]),
                      suppress_ids=(2,))
    assert x0 == 1
    _, sc, _ = _stats(_row(0.0, 2.0, 1.5), prior_ids=torch.tensor([[2]]), prior_bias=torch.tensor([1.0]),
                      temperature=0.5, score_temperature="sampling", seed=3)
    p = torch.softmax(torch.tensor([0.0, 2.0, 2.5]) * 2.0, -1)
    assert sc in (pytest.approx(p[1].item(), rel=1e-6), pytest.approx(p[2].item(), rel=1e-6))


# ----------------------------------------------------------------------------- per-row seeds
@pytest.mark.parametrize("score", ["prob", "random"])
def test_a_row_decodes_the_same_alone_and_in_a_batch(score):
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 9)
    x = torch.full((3, 4), MASK)
    seeds = torch.tensor([5, 6, 7])
    batch = ref.token_stats(logits, x, mask_id=MASK, temperature=1.0, score=score, row_seeds=seeds, step=3)
    for b in range(3):
        alone = ref.token_stats(logits[b : b + 1], x[b : b + 1], mask_id=MASK, temperature=1.0, score=score,
                                seed=int(seeds[b]), step=3)
        assert all(torch.equal(u[b : b + 1], w) for u, w in zip(batch, alone))


def test_step_tensor_equals_int_step():
    logits = torch.randn(2, 3, 7)
    x = torch.full((2, 3), MASK)
    a = ref.token_stats(logits, x, mask_id=MASK, temperature=1.0, step=4, seed=1)
    b = ref.token_stats(logits, x, mask_id=MASK, temperature=1.0, step_tensor=torch.tensor(4), seed=1)
    assert all(torch.equal(u, w) for u, w in zip(a, b))


# ----------------------------------------------------------------------------- alg_temp (Dream)
def test_alg_temp_orders_by_score_over_alg_temp_plus_gumbel():
    score = torch.tensor([[0.9, 0.1, 0.5, 0.7]])
    x = torch.full((1, 4), MASK)
    prov = torch.zeros(1, 4, dtype=torch.bool)
    x0 = torch.tensor([[11, 12, 13, 14]])
    ref.select(score, x0, torch.zeros(1, 4), x, prov, mask_id=MASK, lo=torch.tensor([0]), hi=torch.tensor([4]),
               k=torch.tensor([2]), alg_temp=0.5, seed=9, step=1)
    keys = score * torch.tensor(2.0) + rng.position_gumbels(9, 1, rng.STREAM_ALG_TEMP, 4)
    top = keys[0].topk(2).indices.tolist()
    assert sorted(g for g in range(4) if x[0, g] != MASK) == sorted(top)


def test_alg_temp_frequencies_follow_softmax_of_score_over_alg_temp():
    """k = 1 of 3: Gumbel-max over score/alg_temp is a categorical draw from softmax(score/alg_temp)."""
    n = 3000
    score = torch.tensor([[0.2, 0.5, 0.9]]).expand(n, 3).contiguous()
    x = torch.full((n, 3), MASK)
    ref.select(score, torch.ones(n, 3, dtype=torch.long), torch.zeros(n, 3), x, torch.zeros(n, 3, dtype=torch.bool),
               mask_id=MASK, lo=torch.zeros(n, dtype=torch.long), hi=torch.full((n,), 3),
               k=torch.ones(n, dtype=torch.long), alg_temp=0.25, row_seeds=torch.arange(n), step=0)
    counts = (x != MASK).sum(0).double()
    want = torch.softmax(torch.tensor([0.2, 0.5, 0.9]) / 0.25, -1).double() * n
    chi2 = (((counts - want) ** 2) / want).sum().item()
    assert chi2 < 13.82  # chi-square, 2 degrees of freedom, p = 0.001


# ----------------------------------------------------------------------------- warm_embed status
def test_warm_embed_out_of_range_ids_give_zero_rows_and_set_status():
    w = torch.randn(5, 3)
    x = torch.tensor([[MASK, 9, 2, MASK]])
    draft = torch.tensor([[1, 1, 1, 7]])
    keep = torch.ones(1, 4, dtype=torch.bool)
    status = torch.zeros(1, dtype=torch.int32)
    out = ref.warm_embed(w, x, draft, keep, mask_id=MASK, alpha=0.5, status=status)
    assert status.item() == 1
    assert torch.equal(out[0, 1], torch.zeros(3)) and torch.equal(out[0, 3], torch.zeros(3))
    assert torch.equal(out[0, 2], w[2])
    ok = torch.zeros(1, dtype=torch.int32)
    ref.warm_embed(w, x.clamp(max=4), draft.clamp(max=4), keep, mask_id=MASK, alpha=0.5, status=ok)
    assert ok.item() == 0
