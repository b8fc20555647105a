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

Each pass reads the row again (from L2: a 253 KB bf16 row at LLaDA's vocabulary); b is 2-4 on logits
like a model's (a sparse top of the distribution), and at most ~11 for adversarial values (each pass
divides the bracket's value range by NT or collapses it onto its data). The mass is summed per lane
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

NT = tl.constexpr(8)  # thresholds per bracket pass
LOG2E = tl.constexpr(1.4426950408889634)


def passes_over_logits(bracket_passes: int) -> int:
    """Reads of the row a truncated position makes: pass 0, the bracket passes, the main pass."""
    return 2 + bracket_passes


@triton.jit
def tile_y(row_ptr, urow_ptr, vs, V, sp_ptr, sp_i, sp_next, n_sp, cfg1, inv_t, prior, bias,
           HAS_CFG: tl.constexpr, HAS_PRIOR: tl.constexpr, TB: tl.constexpr):
    """zs of a tile as truncation sees it: every entry but suppress_ids (mask_id and the pick / score
    lists take part), NaN -> -inf."""
    z, sp_i, sp_next = tile_z(row_ptr, urow_ptr, vs, V, sp_ptr, sp_i, sp_next, n_sp, cfg1, prior, bias, HAS_CFG,
                              HAS_PRIOR, False, TB)
    return z * inv_t, sp_i, sp_next


@triton.jit
def pass_stats(row_ptr, urow_ptr, V, sp_ptr, n_sp, cfg1, inv_t, prior, bias, HAS_CFG: tl.constexpr,
               HAS_PRIOR: tl.constexpr, TB: tl.constexpr):
    """Pass 0: (max, sum of exp(zs - max), min) over the finite zs, and the number of +inf entries."""
    m = tl.full([TB], float("-inf"), tl.float32)
    s = tl.zeros([TB], tl.float32)
    lo = tl.full([TB], float("inf"), tl.float32)
    n_inf = tl.zeros([TB], tl.int32)
    sp_i, sp_next = skip_codes(sp_ptr, n_sp, 0)
    for vs in range(0, V, TB):
        y, sp_i, sp_next = tile_y(row_ptr, urow_ptr, vs, V, sp_ptr, sp_i, sp_next, n_sp, cfg1, inv_t, prior, bias,
                                  HAS_CFG, HAS_PRIOR, TB)
        pinf = y == float("inf")
        n_inf += pinf.to(tl.int32)
        y = tl.where(pinf, float("-inf"), y)
        diff = y - m
        up = diff > 0.0
        d = exp_neg_abs(diff)
        s = tl.where(up, tl.fma(s, d, 1.0), s + d)
        m = tl.maximum(m, y)
        lo = tl.minimum(lo, tl.where(y > float("-inf"), y, float("inf")))
    mx = tl.max(m, 0)
    s_all = tl.sum(s * exp_neg_abs(tl.maximum(m - mx, -1e30)), 0)
    return mx, s_all, tl.min(lo, 0), tl.sum(n_inf, 0)


@triton.jit
def pass_bracket(row_ptr, urow_ptr, V, sp_ptr, n_sp, cfg1, inv_t, prior, bias, thr, lo, hi, m, TOPK: tl.constexpr,
                 TOPP: tl.constexpr, HAS_CFG: tl.constexpr, HAS_PRIOR: tl.constexpr, TB: tl.constexpr):
    """One bracket pass: count(zs >= t) and mass(zs >= t) for the NT thresholds `thr`, and the min / max
    of the entries in [lo, hi]. Per-lane accumulators, one reduction after the loop."""
    cnt = tl.zeros([TB, NT], tl.int32)
    mass = tl.zeros([TB, NT], tl.float32)
    mn = tl.full([TB], float("inf"), tl.float32)
    mx = tl.full([TB], float("-inf"), tl.float32)
    sp_i, sp_next = skip_codes(sp_ptr, n_sp, 0)
    for vs in range(0, V, TB):
        y, sp_i, sp_next = tile_y(row_ptr, urow_ptr, vs, V, sp_ptr, sp_i, sp_next, n_sp, cfg1, inv_t, prior, bias,
                                  HAS_CFG, HAS_PRIOR, TB)
        ge = y[:, None] >= thr[None, :]
        if TOPK:
            cnt += ge.to(tl.int32)
        if TOPP:
            e = tl.exp2((y - m) * LOG2E)  # y <= m here (no +inf under top-p); -inf -> 0
            mass += tl.where(ge, e[:, None], 0.0)
        inb = (y >= lo) & (y <= hi)
        mn = tl.minimum(mn, tl.where(inb, y, float("inf")))
        mx = tl.maximum(mx, tl.where(inb, y, float("-inf")))
    return tl.sum(cnt, 0), tl.sum(mass, 0), tl.min(mn, 0), tl.max(mx, 0)


@triton.jit
def prev_float(x):
    """The largest fp32 below x (finite x; below 0.0 is the smallest negative subnormal)."""
    bits = x.to(tl.int32, bitcast=True)
    bits = tl.where(x > 0.0, bits - 1, tl.where(x == 0.0, -2147483647, bits + 1))
    return bits.to(tl.float32, bitcast=True)


@triton.jit
def thresholds(lo, hi, m, lo_f, first):
    """NT test values in [lo, hi]: m minus 0, 1/2, 1, ..., 2^(NT-3) and the minimum on the first pass (the
    top of a model's distribution is sparse), then NT evenly spaced values ending at hi."""
    j = tl.arange(0, NT)
    geo = tl.where(j == NT - 1, lo_f, m - tl.where(j == 0, 0.0, tl.exp2((j - 2).to(tl.float32))))
    f = (j + 1).to(tl.float32) / NT
    lin = tl.where(j == NT - 1, hi, lo * (1.0 - f) + hi * f)
    t = tl.where(first, geo, lin)
    return tl.minimum(tl.maximum(t, lo), hi)


@triton.jit
def cutoff(row_ptr, urow_ptr, V, sp_ptr, n_sp, cfg1, inv_t, prior, bias, top_k, top_p, TOPK: tl.constexpr,
           TOPP: tl.constexpr, HAS_CFG: tl.constexpr, HAS_PRIOR: tl.constexpr, TB: tl.constexpr):
    """The truncation cutoff on zs of one position (-inf: keep everything). See the module docstring."""
    m, s, lo_f, n_inf = pass_stats(row_ptr, urow_ptr, V, sp_ptr, n_sp, cfg1, inv_t, prior, bias, HAS_CFG,
                                   HAS_PRIOR, TB)
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
        thr = thresholds(lo, hi, m, lo_f, npass == 0)
        cnt, mass, mn, mx = pass_bracket(row_ptr, urow_ptr, V, sp_ptr, n_sp, cfg1, inv_t, prior, bias, thr, lo, hi,
                                         m, TOPK, TOPP, HAS_CFG, HAS_PRIOR, TB)
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
