"""The per-position statistics state: per-tile update, merge of partial states, final (x0, score, p_cur).

A state is 7 values (per lane in the vocabulary loop, then per program, then per position), over the
*plain* entries: every id but mask_id and the suppress / pick_suppress / score_suppress lists, which
the loop leaves out and the position's last program adds after it (`stats_pass.add_specials`). A plain
entry is in the score softmax and a candidate for x0, so:
  m    max of zt (the margin's top-1)      s    sum of exp(zt - m)
  acc  sum of exp(zt - m) * (zt - m)       t2   second largest zt (margin)
  best, idx, ztb  the maximum of the (perturbed) pick, its vocabulary index and zt there
Greedy (T = 0) picks zt itself, so best = ztb = m and only idx is tracked in the loop. The update
is the one-exp online softmax: d = exp(-|zt - m|) rescales either the old sum or the new term.
+inf entries: once m is +inf, s and acc are meaningless (finalize does not read them): the score
softmax is then uniform over the +inf entries, which the last program counts in a rare extra pass.
Merging states is associative and commutative up to fp32 rounding, and `reduce_state` runs fixed
trees, so results never depend on which program finishes first.
"""

from __future__ import annotations

import triton
import triton.language as tl

from warmkern.triton.fastmath import exp_neg_abs, exp_precise, log_precise

NFIELDS = 7
NO_INDEX = tl.constexpr(2147483647)
BIG = tl.constexpr(1e30)  # clamp for (zt - m): 0 * (-inf) never happens, and s * BIG stays finite


@triton.jit
def lane_state(BLOCK: tl.constexpr):
    """The empty state, per lane."""
    ninf = tl.full([BLOCK], float("-inf"), tl.float32)
    zero = tl.zeros([BLOCK], tl.float32)
    return ninf, zero, zero, ninf, ninf, tl.full([BLOCK], NO_INDEX, tl.int32), ninf


@triton.jit
def tile_update(m, s, acc, t2, best, idx, ztb, zt, pick, vs, MODE: tl.constexpr, SAMPLE: tl.constexpr):
    """Fold one tile into the per-lane state (elementwise only: no reduction in the loop).

    zt: fp32 scores of the tile (-inf at excluded entries; NaN counts as -inf), pick: the perturbed
    values when SAMPLE, vs: the tile's first vocabulary index (stored, the lane adds its offset).
    """
    diff = zt - m
    up = diff > 0.0  # NaN (both -inf, or a NaN logit) -> False: the lane is unchanged
    d = exp_neg_abs(diff)
    if MODE == 2:
        dc = tl.minimum(tl.maximum(diff, -BIG), BIG)
        acc = tl.where(up, d * tl.fma(-s, dc, acc), tl.fma(d, dc, acc))
    s = tl.where(up, tl.fma(s, d, 1.0), s + d)
    if MODE == 1:
        t2 = tl.maximum(t2, tl.minimum(m, zt))  # zt is NaN-free in margin mode
    m = tl.maximum(m, zt)
    if SAMPLE:
        win = pick > best  # strict: the earliest tile keeps a tie
        best = tl.where(win, pick, best)
        idx = tl.where(win, vs, idx)
        ztb = tl.where(win, zt, ztb)
    else:
        idx = tl.where(up, vs, idx)
    return m, s, acc, t2, best, idx, ztb


@triton.jit
def merge_state(m1, s1, a1, u1, b1, i1, y1, m2, s2, a2, u2, b2, i2, y2):
    """Merge two partial states (of disjoint vocabulary entries): the pairwise form of `reduce_state`."""
    m = tl.maximum(m1, m2)
    d1 = tl.maximum(m1 - m, -BIG)  # NaN (both -inf) -> -BIG: that side is empty
    d2 = tl.maximum(m2 - m, -BIG)
    e1 = exp_neg_abs(d1)
    e2 = exp_neg_abs(d2)
    s = s1 * e1 + s2 * e2
    a = e1 * (a1 + s1 * d1) + e2 * (a2 + s2 * d2)
    u = tl.maximum(tl.minimum(m1, m2), tl.maximum(u1, u2))
    take2 = (b2 > b1) | ((b2 == b1) & (i2 < i1))  # total order: larger pick, then lower index
    return m, s, a, u, tl.maximum(b1, b2), tl.where(take2, i2, i1), tl.where(take2, y2, y1)


@triton.jit
def reduce_state(m, s, acc, t2, best, idx, ztb, MODE: tl.constexpr, SAMPLE: tl.constexpr):
    """Merge a vector of partial states (lanes of a program, or the splits of a position) into one.

    Plain max / sum / min reductions (fixed trees on the GPU, vectorised in the interpreter), as many
    as the mode needs; greedy states carry best = ztb = m.
    """
    mx, at = tl.max(m, 0, return_indices=True, return_indices_tie_break_left=True)
    d = tl.maximum(m - mx, -BIG)
    e = exp_neg_abs(d)
    s_all = tl.sum(s * e, 0)
    a_all = 0.0
    if MODE == 2:
        a_all = tl.sum(e * (acc + s * d), 0)
    t2_all = float("-inf")
    if MODE == 1:
        lanes = tl.arange(0, m.shape[0])
        t2_all = tl.maximum(tl.max(tl.where(lanes == at, float("-inf"), m), 0), tl.max(t2, 0))
    if SAMPLE:
        b_all = tl.max(best, 0)
    else:
        b_all = mx
        best = m
    i_all = tl.min(tl.where(best == b_all, idx, NO_INDEX), 0)
    if SAMPLE:
        y_all = tl.max(tl.where(idx == i_all, ztb, float("-inf")), 0)
    else:
        y_all = mx
    return mx, s_all, a_all, t2_all, b_all, i_all, y_all


@triton.jit
def reduce_lanes(m, s, acc, t2, best, idx, ztb, MODE: tl.constexpr, SAMPLE: tl.constexpr, BLOCK: tl.constexpr):
    """The program's state from its per-lane state: the one reduction after the loop."""
    idx = tl.where(idx == NO_INDEX, NO_INDEX, idx + tl.arange(0, BLOCK))
    return reduce_state(m, s, acc, t2, best, idx, ztb, MODE, SAMPLE)


@triton.jit
def store_partial(ptr, m, s, acc, t2, best, idx, ztb):
    tl.store(ptr + 0, m)
    tl.store(ptr + 1, s)
    tl.store(ptr + 2, acc)
    tl.store(ptr + 3, t2)
    tl.store(ptr + 4, best)
    tl.store(ptr + 5, idx.to(tl.float32, bitcast=True))
    tl.store(ptr + 6, ztb)


@triton.jit
def merge_partials(ptr, nsplit, MODE: tl.constexpr, SAMPLE: tl.constexpr, MAX_SPLIT: tl.constexpr):
    """Merge the `nsplit` stored partial states of a position: all loads at once (one L2 round trip,
    `.cg`: the other programs' stores are visible there after the counter), then fixed trees."""
    i = tl.arange(0, MAX_SPLIT)
    ok = i < nsplit
    p = ptr + i * 7
    ninf = float("-inf")
    m = tl.load(p + 0, mask=ok, other=ninf, cache_modifier=".cg")
    s = tl.load(p + 1, mask=ok, other=0.0, cache_modifier=".cg")
    acc = tl.load(p + 2, mask=ok, other=0.0, cache_modifier=".cg")
    t2 = tl.load(p + 3, mask=ok, other=ninf, cache_modifier=".cg")
    best = tl.load(p + 4, mask=ok, other=ninf, cache_modifier=".cg")
    idx = tl.load(p + 5, mask=ok, other=0.0, cache_modifier=".cg").to(tl.int32, bitcast=True)
    ztb = tl.load(p + 6, mask=ok, other=ninf, cache_modifier=".cg")
    return reduce_state(m, s, acc, t2, best, tl.where(ok, idx, NO_INDEX), ztb, MODE, SAMPLE)


@triton.jit
def add_entry(m, s, acc, zt):
    """The softmax state with one more entry (a special id's logit, left out of the loop)."""
    m2 = tl.maximum(m, zt)
    d1 = tl.maximum(m - m2, -BIG)
    d2 = tl.maximum(zt - m2, -BIG)
    e1 = exp_neg_abs(d1)
    e2 = exp_neg_abs(d2)
    return m2, s * e1 + e2, e1 * (acc + s * d1) + e2 * d2


@triton.jit
def prob_of(zt, m, s, n_inf):
    """p of an entry whose score-softmax value is zt (the spec's softmax_parts): uniform over the n_inf
    +inf entries when there are any, else exp(zt - m) / s; an empty softmax (s = 0) gives 0."""
    mm = tl.where(m == float("-inf"), 0.0, m)
    finite = tl.where(s > 0.0, tl.div_rn(exp_precise(zt - mm), tl.where(s > 0.0, s, 1.0)), 0.0)
    uniform = tl.where(zt == float("inf"), tl.div_rn(1.0, n_inf.to(tl.float32)), 0.0)
    return tl.where(n_inf > 0, uniform, finite)


@triton.jit
def finalize(m, s, acc, m1, t2, best, idx, ztb, n_inf, zt_cur, has_cur, u_rand, mask_id, MODE: tl.constexpr):
    """(x0, score, p_cur) of one position from its full state (spec conventions).

    (m, s, acc, n_inf): the score softmax (finite part, count of +inf entries); m1, t2: the two largest
    score-softmax values among the x0 candidates (margin); (best, idx, ztb): the pick's maximum, its
    index and its score-softmax value; zt_cur / has_cur: the current token's value and whether it has
    one (x != mask_id, in range); u_rand: the position's uniform (random score).
    """
    dead = best == float("-inf")  # no candidate above -inf
    x0 = tl.where(dead, mask_id, idx.to(tl.int64))
    if MODE == 0:
        sc = prob_of(ztb, m, s, n_inf)
    elif MODE == 1:
        sc = prob_of(m1, m, s, n_inf) - tl.maximum(prob_of(t2, m, s, n_inf), 0.0)
    elif MODE == 2:
        s1 = tl.where(s > 0.0, s, 1.0)
        uniform = -log_precise(tl.maximum(n_inf, 1).to(tl.float32))
        sc = tl.where(n_inf > 0, uniform, tl.div_rn(acc, s1) - log_precise(s1))
    else:
        sc = u_rand
    sc = tl.where(dead, float("-inf"), sc)
    p_cur = tl.where(has_cur & (~dead), prob_of(zt_cur, m, s, n_inf), 0.0)
    return x0, sc, p_cur
