"""The per-position statistics state: per-tile update, merge of partial states, final (x0, score, p_cur).

A state is 7 values (per lane in the vocabulary loop, then per program, then per position):
  m    max of the allowed zt (mask_id and suppressed ids are excluded in the loop; the mask_id
       entry joins the softmax in `finalize`, so m is also the margin's top-1)
  s    sum of exp(zt - m)                  acc  sum of exp(zt - m) * (zt - m)   (entropy only)
  t2   second largest allowed zt (margin)  best, idx, ztb  the argmax of the (perturbed) pick,
                                                            its vocabulary index and zt there
Greedy (T = 0) picks zt itself, so best = ztb = m and only idx is tracked in the loop. The update
is the one-exp online softmax: d = exp(-|zt - m|) rescales either the old sum or the new term.
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
    """The softmax state with one more entry (the mask_id logit, left out of the loop)."""
    m2 = tl.maximum(m, zt)
    d1 = tl.maximum(m - m2, -BIG)
    d2 = tl.maximum(zt - m2, -BIG)
    e1 = exp_neg_abs(d1)
    e2 = exp_neg_abs(d2)
    return m2, s * e1 + e2, e1 * (acc + s * d1) + e2 * d2


@triton.jit
def finalize(m_a, s, acc, t2, best, idx, ztb, zt_mask, zt_cur, has_cur, u_rand, mask_id, dem_ptr, n_dem,
             MODE: tl.constexpr):
    """(x0, score, p_cur) of one position from its full-vocabulary state (spec conventions).

    zt_mask / zt_cur: zt of mask_id and of the current token, has_cur: x != mask_id (computed before
    the vocabulary loop, so only these few values, not x, stay live across it), u_rand: the
    position's uniform (random score).
    """
    m, s, acc = add_entry(m_a, s, acc, zt_mask)
    dead = (best == float("-inf")) | (best == float("inf"))  # no finite allowed logit
    # +inf reaches m (without killing the row) only through a +inf mask_id logit: the spec then takes
    # m = 0, so s = inf and every finite p is 0 (entropy NaN). s == 0 only on dead rows.
    pinf = m == float("inf")
    mm = tl.where((m == float("-inf")) | pinf, 0.0, m)
    s = tl.where(pinf, float("inf"), tl.where(s > 0.0, s, 1.0))
    x0 = tl.where(dead, mask_id, idx.to(tl.int64))
    if MODE == 0:
        sc = tl.div_rn(exp_precise(ztb - mm), s)
    elif MODE == 1:
        p2 = tl.div_rn(exp_precise(t2 - mm), s)
        sc = tl.div_rn(exp_precise(m_a - mm), s) - tl.maximum(p2, 0.0)
    elif MODE == 2:
        sc = tl.where(pinf, float("nan"), tl.div_rn(acc, s) - log_precise(s))
    else:
        sc = u_rand
    for i in range(n_dem):
        sc = tl.where(x0 == tl.load(dem_ptr + i), float("-inf"), sc)
    sc = tl.where(dead, float("-inf"), sc)
    p_cur = tl.where(has_cur & (~dead), tl.div_rn(exp_precise(zt_cur - mm), s), 0.0)
    return x0, sc, p_cur
