"""Dream's top-p / top-k truncation, fused: the cutoff value of one position in a few passes over its row.

Both rules keep the entries whose tempered logit zs is >= a cutoff (reference.truncation_keep): top-k's
is the k-th largest value, top-p's the largest value d whose tail mass(zs >= d) exceeds top_p (so the
first entry past the nucleus stays, and ties stay together). With both, the cutoff is the larger one:
the largest entry value d with P(d) = count(zs >= d) >= k  or  mass(zs >= d) > top_p * sum. P is
monotone (true below the cutoff, false above), so the cutoff is found by bracketing, not sorting:

  pass 0      m, s (finite softmax of zs, one-exp online update), the smallest finite value, #(+inf);
              +inf entries decide at once: top-p keeps only them, top-k when there are >= k of them.
  pass 1..b   NT thresholds inside the bracket [lo, hi] (the first pass: m - 0, 1/2, 1, 2, ..., 16 and
              the minimum; then NT evenly spaced values), per lane count(zs >= t) and mass(zs >= t) for
              each, plus the min / max of the entries inside the bracket. The bracket shrinks to
              [largest t with P, the value before the smallest t without]; it is done when it holds a
              single value (its min == max, or lo == hi).

Each pass reads the row again (from L2: a 253 KB bf16 row at LLaDA's vocabulary). Passes over the logits
per position: 1 + b + 1 (pass 0, b bracket passes, the main pass). b, counted on this kernel at V = 126464
(`benchmarks/truncation_passes.py`): 5 on model-like rows (log-Zipf head over noise) for top_p = 0.95 and
for top_k = 50, i.e. 7 passes; 4-5 on Gaussian rows, 1-4 on evenly spread values. Each pass divides the
bracket's value range by NT or collapses it onto its data, so b grows with log_NT(range / bf16 spacing
at the cutoff). The mass is summed per lane
in fp32, in another order than the reference's cumsum, so the kept set can differ only where a tail
mass lies within fp32 rounding of top_p * sum (tests/parity.py). No sort, no [B, G, V] temporary.
On the split path every program of a position searches the whole row (redundantly, from L2) and then
folds its own chunk: no cross-program barrier.
"""

from __future__ import annotations

import triton
import triton.language as tl

from warmkern.triton.entries import skip_codes, tile_z
from warmkern.triton.fastmath import exp_neg_abs

NT = tl.constexpr(8)  # thresholds per bracket pass (one named accumulator pair each: no [., NT] layouts)
LOG2E = tl.constexpr(1.4426950408889634)


def passes_over_logits(bracket_passes: int) -> int:
    """Reads of the row a truncated position makes: pass 0, the bracket passes, the main pass."""
    return 2 + bracket_passes


@triton.jit
def tile_y(row_ptr, urow_ptr, vs, V, sp_ptr, sp_i, sp_next, n_sp, cfg1, inv_t, prior, bias,
           HAS_CFG: tl.constexpr, HAS_PRIOR: tl.constexpr, R: tl.constexpr, E: tl.constexpr, FULL: tl.constexpr):
    """zs of an [R, E] tile as truncation sees it: every entry but suppress_ids (mask_id and the pick /
    score lists take part); NaN compares as -inf."""
    z, sp_i, sp_next = tile_z(row_ptr, urow_ptr, vs, V, sp_ptr, sp_i, sp_next, n_sp, cfg1, prior, bias, HAS_CFG,
                              HAS_PRIOR, False, R, E, FULL)
    return z * inv_t, sp_i, sp_next


@triton.jit
def stats_tile(m, s, lo, n_inf, y):
    """Fold a tile into pass 0's per-lane state (one-exp online softmax of the finite values)."""
    pinf = y == float("inf")
    n_inf += pinf.to(tl.int32)
    y = tl.where(pinf, float("-inf"), y)
    diff = y - m
    up = diff > 0.0
    d = exp_neg_abs(diff)
    s = tl.where(up, tl.fma(s, d, 1.0), s + d)
    m = tl.maximum(m, y)
    lo = tl.minimum(lo, tl.where(y > float("-inf"), y, float("inf")))
    return m, s, lo, n_inf


@triton.jit
def pass_stats(row_ptr, urow_ptr, V, sp_ptr, n_sp, cfg1, inv_t, prior, bias, HAS_CFG: tl.constexpr,
               HAS_PRIOR: tl.constexpr, R: tl.constexpr, E: tl.constexpr):
    """Pass 0: (max, sum of exp(zs - max), min) over the finite zs, and the number of +inf entries."""
    m = tl.full([R, E], float("-inf"), tl.float32)
    s = tl.zeros([R, E], tl.float32)
    lo = tl.full([R, E], float("inf"), tl.float32)
    n_inf = tl.zeros([R, E], tl.int32)
    sp_i, sp_next = skip_codes(sp_ptr, n_sp, 0)
    v_full = V // (R * E) * (R * E)
    for vs in range(0, v_full, R * E):
        y, sp_i, sp_next = tile_y(row_ptr, urow_ptr, vs, V, sp_ptr, sp_i, sp_next, n_sp, cfg1, inv_t, prior, bias,
                                  HAS_CFG, HAS_PRIOR, R, E, True)
        m, s, lo, n_inf = stats_tile(m, s, lo, n_inf, y)
    if v_full < V:
        y, sp_i, sp_next = tile_y(row_ptr, urow_ptr, v_full, V, sp_ptr, sp_i, sp_next, n_sp, cfg1, inv_t, prior,
                                  bias, HAS_CFG, HAS_PRIOR, R, E, False)
        m, s, lo, n_inf = stats_tile(m, s, lo, n_inf, y)
    mx = tl.max(tl.max(m, 1), 0)
    s_all = tl.sum(tl.sum(s * exp_neg_abs(tl.maximum(m - mx, -1e30)), 1), 0)
    return mx, s_all, tl.min(tl.min(lo, 1), 0), tl.sum(tl.sum(n_inf, 1), 0)


@triton.jit
def acc_ge(c, ms, y, e, t, TOPK: tl.constexpr, TOPP: tl.constexpr):
    """Per-row count / mass of the tile's entries with zs >= t (float counts: exact below 2^24)."""
    ge = y >= t
    if TOPK:
        c += tl.sum(tl.where(ge, 1.0, 0.0), 1)
    if TOPP:
        ms += tl.sum(tl.where(ge, e, 0.0), 1)
    return c, ms


@triton.jit
def threshold(lo, hi, m, lo_f, first, j: tl.constexpr):
    """The j-th test value in [lo, hi]: m minus 0, 1/2, 1, ..., 2^(NT-3) and the minimum on the first pass
    (the top of a model's distribution is sparse), then NT evenly spaced values ending at hi."""
    if j == NT - 1:
        geo = lo_f
        lin = hi
    else:
        geo = m - (0.0 if j == 0 else 2.0 ** (j - 2))
        f: tl.constexpr = (j + 1) / NT
        lin = lo * (1.0 - f) + hi * f
    return tl.minimum(tl.maximum(tl.where(first, geo, lin), lo), hi)


@triton.jit
def vec8(a0, a1, a2, a3, a4, a5, a6, a7):
    """[NT] vector of eight scalars (the post-pass decision works on vectors)."""
    j = tl.arange(0, NT)
    v = tl.where(j == 0, a0, tl.where(j == 1, a1, tl.where(j == 2, a2, tl.where(j == 3, a3, a4))))
    return tl.where(j == 5, a5, tl.where(j == 6, a6, tl.where(j == 7, a7, v)))


@triton.jit
def bracket_tile(ca, ma, c0, m0, c1, m1, c2, m2, c3, m3, c4, m4, c5, m5, c6, m6, c7, m7, mn, mx, y, m, lo, hi,
                 t0, t1, t2, t3, t4, t5, t6, t7, TOPK: tl.constexpr, TOPP: tl.constexpr):
    """Fold a tile into a bracket pass: entries >= hi into (ca, ma), the max of those <= hi into mx (per
    lane); the per-threshold pairs and the bracket's min only in a tile that holds a bracket entry."""
    e = y  # unused without top-p
    if TOPP:
        e = tl.exp2((y - m) * LOG2E)  # y <= m here (no +inf under top-p); -inf -> 0
    ca, ma = acc_ge(ca, ma, y, e, hi, TOPK, TOPP)
    below = y < hi
    upto = below | (y == hi)
    mx = tl.maximum(mx, tl.max(tl.where(upto, y, float("-inf")), 1))  # [R]: a thread's E entries, in-thread
    inb = upto & (y >= lo)  # the bracket [lo, hi]
    if tl.max(tl.max(inb.to(tl.int32), 1), 0) > 0:  # uniform: after the first pass, few tiles take it
        yb = tl.where(below, y, float("-inf"))  # entries >= hi are in (ca, ma) already
        c0, m0 = acc_ge(c0, m0, yb, e, t0, TOPK, TOPP)
        c1, m1 = acc_ge(c1, m1, yb, e, t1, TOPK, TOPP)
        c2, m2 = acc_ge(c2, m2, yb, e, t2, TOPK, TOPP)
        c3, m3 = acc_ge(c3, m3, yb, e, t3, TOPK, TOPP)
        c4, m4 = acc_ge(c4, m4, yb, e, t4, TOPK, TOPP)
        c5, m5 = acc_ge(c5, m5, yb, e, t5, TOPK, TOPP)
        c6, m6 = acc_ge(c6, m6, yb, e, t6, TOPK, TOPP)
        c7, m7 = acc_ge(c7, m7, yb, e, t7, TOPK, TOPP)
        mn = tl.minimum(mn, tl.min(tl.where(inb, y, float("inf")), 1))
    return ca, ma, c0, m0, c1, m1, c2, m2, c3, m3, c4, m4, c5, m5, c6, m6, c7, m7, mn, mx


@triton.jit
def pass_bracket(row_ptr, urow_ptr, V, sp_ptr, n_sp, cfg1, inv_t, prior, bias, lo, hi, m, lo_f, first,
                 TOPK: tl.constexpr, TOPP: tl.constexpr, HAS_CFG: tl.constexpr, HAS_PRIOR: tl.constexpr,
                 R: tl.constexpr, E: tl.constexpr):
    """One bracket pass: (thresholds, count(zs >= t), mass(zs >= t)) as [NT] vectors, and the min / max of
    the entries in [lo, hi]. Entries >= hi add to every threshold (one accumulator pair); the per-threshold
    work runs only in tiles that hold an entry of the bracket."""
    t0 = threshold(lo, hi, m, lo_f, first, 0)
    t1 = threshold(lo, hi, m, lo_f, first, 1)
    t2 = threshold(lo, hi, m, lo_f, first, 2)
    t3 = threshold(lo, hi, m, lo_f, first, 3)
    t4 = threshold(lo, hi, m, lo_f, first, 4)
    t5 = threshold(lo, hi, m, lo_f, first, 5)
    t6 = threshold(lo, hi, m, lo_f, first, 6)
    t7 = threshold(lo, hi, m, lo_f, first, 7)
    z = tl.zeros([R], tl.float32)
    ca, ma, c0, m0, c1, m1, c2, m2, c3, m3, c4, m4, c5, m5, c6, m6, c7, m7 = (z, z, z, z, z, z, z, z, z, z, z, z, z,
                                                                              z, z, z, z, z)
    mn = tl.full([R], float("inf"), tl.float32)  # per row of the tile: the same instructions as [R, E] and
    mx = tl.full([R], float("-inf"), tl.float32)  # 2 (E - 1) fewer registers live across the loop
    sp_i, sp_next = skip_codes(sp_ptr, n_sp, 0)
    v_full = V // (R * E) * (R * E)
    for vs in range(0, v_full, R * E):
        y, sp_i, sp_next = tile_y(row_ptr, urow_ptr, vs, V, sp_ptr, sp_i, sp_next, n_sp, cfg1, inv_t, prior, bias,
                                  HAS_CFG, HAS_PRIOR, R, E, True)
        ca, ma, c0, m0, c1, m1, c2, m2, c3, m3, c4, m4, c5, m5, c6, m6, c7, m7, mn, mx = bracket_tile(
            ca, ma, c0, m0, c1, m1, c2, m2, c3, m3, c4, m4, c5, m5, c6, m6, c7, m7, mn, mx, y, m, lo, hi,
            t0, t1, t2, t3, t4, t5, t6, t7, TOPK, TOPP)
    if v_full < V:
        y, sp_i, sp_next = tile_y(row_ptr, urow_ptr, v_full, V, sp_ptr, sp_i, sp_next, n_sp, cfg1, inv_t, prior,
                                  bias, HAS_CFG, HAS_PRIOR, R, E, False)
        ca, ma, c0, m0, c1, m1, c2, m2, c3, m3, c4, m4, c5, m5, c6, m6, c7, m7, mn, mx = bracket_tile(
            ca, ma, c0, m0, c1, m1, c2, m2, c3, m3, c4, m4, c5, m5, c6, m6, c7, m7, mn, mx, y, m, lo, hi,
            t0, t1, t2, t3, t4, t5, t6, t7, TOPK, TOPP)
    thr = vec8(t0, t1, t2, t3, t4, t5, t6, t7)
    cnt = vec8(tl.sum(c0, 0), tl.sum(c1, 0), tl.sum(c2, 0), tl.sum(c3, 0), tl.sum(c4, 0), tl.sum(c5, 0),
               tl.sum(c6, 0), tl.sum(c7, 0))
    mass = vec8(tl.sum(m0, 0), tl.sum(m1, 0), tl.sum(m2, 0), tl.sum(m3, 0), tl.sum(m4, 0), tl.sum(m5, 0),
                tl.sum(m6, 0), tl.sum(m7, 0))
    # count / mass of zs >= t: the entries >= hi (ca, ma) plus those in [t, hi); mx: the largest entry <= hi
    return thr, tl.sum(ca, 0) + cnt, tl.sum(ma, 0) + mass, tl.min(mn, 0), tl.max(mx, 0)


@triton.jit
def prev_float(x):
    """The largest fp32 below x (finite x; below 0.0 is the smallest negative subnormal)."""
    bits = x.to(tl.int32, bitcast=True)
    bits = tl.where(x > 0.0, bits - 1, tl.where(x == 0.0, -2147483647, bits + 1))
    return bits.to(tl.float32, bitcast=True)


@triton.jit
def cutoff(row_ptr, urow_ptr, V, sp_ptr, n_sp, cfg1, inv_t, prior, bias, top_k, top_p, TOPK: tl.constexpr,
           TOPP: tl.constexpr, HAS_CFG: tl.constexpr, HAS_PRIOR: tl.constexpr, R: tl.constexpr, E: tl.constexpr):
    """The truncation cutoff on zs of one position (-inf: keep everything). See the module docstring."""
    m, s, lo_f, n_inf = pass_stats(row_ptr, urow_ptr, V, sp_ptr, n_sp, cfg1, inv_t, prior, bias, HAS_CFG,
                                   HAS_PRIOR, R, E)
    inf_wins = n_inf > 0
    if TOPK:
        inf_wins = n_inf >= top_k
        if TOPP:
            inf_wins = n_inf > 0
    cut = tl.where(inf_wins, float("inf"), float("-inf"))
    done = inf_wins | (m == float("-inf"))  # +inf entries decide, or no finite entry to cut
    target = top_p * s
    lo = lo_f
    hi = m
    npass = 0
    while not done:
        thr, cnt, mass, mn, mx = pass_bracket(row_ptr, urow_ptr, V, sp_ptr, n_sp, cfg1, inv_t, prior, bias, lo, hi,
                                              m, lo_f, npass == 0, TOPK, TOPP, HAS_CFG, HAS_PRIOR, R, E)
        ok = thr < float("-inf")  # all False
        if TOPK:
            ok = ok | (cnt >= top_k)
        if TOPP:
            ok = ok | (mass > target)
        new_lo = tl.max(tl.where(ok, thr, float("-inf")), 0)
        keep_all = (npass == 0) & (new_lo == float("-inf"))  # P fails even at the minimum
        lo = tl.maximum(tl.maximum(lo, new_lo), mn)
        hi = tl.minimum(tl.minimum(hi, mx), prev_float(tl.min(tl.where(ok, float("inf"), thr), 0)))
        single = (mn == mx) | (lo >= hi)  # the bracket holds one value: the cutoff
        cut = tl.where(keep_all, float("-inf"), tl.where(single, tl.where(mn == mx, mn, lo), cut))
        done = keep_all | single
        npass += 1
    return cut
