"""select: per-row top-k / threshold / factor transfer and remasking, in place, without argsort.

The spec's total order (eligible first, NaN scores last, score descending, position ascending) is
packed into one int64 key per position: ((orderable(score) + 1) << 31) | (G - 1 - g) for eligible
positions and 0 for the others. Keys are unique, so "the first n in order" is exactly
`key >= n-th largest key`, read off one bitonic `tl.sort` of the row; no rank is materialised.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from warmkern import launches
from warmkern.triton import config
from warmkern.triton.common import from_orderable, orderable

RULES = {"k": 0, "threshold": 1, "factor": 2}


@triton.jit
def nth_key(sorted_keys, n, BLOCK_G: tl.constexpr):
    """The n-th largest key (1-based) of a descending-sorted row; 0 when n <= 0."""
    r = tl.arange(0, BLOCK_G)
    return tl.max(tl.where(r == n - 1, sorted_keys, 0), 0)


@triton.jit
def order_keys(score, member, G, BLOCK_G: tl.constexpr):
    pos = tl.arange(0, BLOCK_G).to(tl.int64)
    return tl.where(member, ((orderable(score) + 1) << 31) | (G - 1 - pos), 0)


@triton.jit
def select_row(b, G, score_ptr, ss_b, x0_ptr, s0_b, pcur_ptr, sp_b, x_ptr, sx_b, prov_ptr, sv_b,
               nt_ptr, nr_ptr, mask_id, lo_ptr, hi_ptr, k_ptr, threshold, factor, rth, rmax,
               RULE: tl.constexpr, REMASK: tl.constexpr, BLOCK_G: tl.constexpr):
    """Selection and in-place update of batch row b (reads go through L2: see denoise_step)."""
    b64 = b.to(tl.int64)
    pos = tl.arange(0, BLOCK_G)
    inr = pos < G
    sc = tl.load(score_ptr + b64 * ss_b + pos, mask=inr, other=0.0, cache_modifier=".cg")
    x0 = tl.load(x0_ptr + b64 * s0_b + pos, mask=inr, other=0, cache_modifier=".cg")
    xv = tl.load(x_ptr + b64 * sx_b + pos, mask=inr, other=0)
    prov = tl.load(prov_ptr + b64 * sv_b + pos, mask=inr, other=0) != 0
    lo = tl.load(lo_ptr + b)
    hi = tl.load(hi_ptr + b)
    win = (pos >= lo) & (pos < hi) & inr
    elig = (xv == mask_id) & (x0 != mask_id) & win
    n_elig = tl.sum(elig.to(tl.int32), 0)
    key = order_keys(sc, elig, G, BLOCK_G)
    if RULE == 1:
        transfer = elig & ((sc >= threshold) | (key == tl.max(key, 0)))
    else:
        skeys = tl.sort(key, descending=True)
        if RULE == 0:
            n = tl.minimum(tl.maximum(tl.load(k_ptr + b), 0), n_elig.to(tl.int64))
        else:
            # factor: largest n with (r+2)*(1-score_r) <= factor for every rank r < n (rank 0 always)
            ssc = from_orderable((skeys >> 31) - 1)
            ok = ((pos + 2).to(tl.float32) * (1.0 - ssc) <= factor) | (pos == 0)
            first_fail = tl.min(tl.where((pos < n_elig) & (~ok), pos, BLOCK_G), 0)
            n = tl.minimum(first_fail, n_elig)
        transfer = elig & (key >= nth_key(skeys, n, BLOCK_G)) & (n > 0)
    if REMASK:
        pc = tl.load(pcur_ptr + b64 * sp_b + pos, mask=inr, other=1.0, cache_modifier=".cg")
        cand = prov & win & (xv != mask_id) & (pc < rth)
        rkey = order_keys(-pc, cand, G, BLOCK_G)  # lowest p_cur first, ties by position
        lim = tl.minimum(rmax, tl.sum(cand.to(tl.int32), 0))
        remask = cand & (rkey >= nth_key(tl.sort(rkey, descending=True), lim, BLOCK_G)) & (lim > 0)
    else:
        remask = win & (pos < 0)
    new_x = tl.where(transfer, x0, tl.where(remask, mask_id, xv))
    tl.store(x_ptr + b64 * sx_b + pos, new_x, mask=win)
    tl.store(prov_ptr + b64 * sv_b + pos, (prov & (~transfer) & (~remask)).to(tl.int1), mask=win)
    tl.store(nt_ptr + b, tl.sum(transfer.to(tl.int64), 0))
    tl.store(nr_ptr + b, tl.sum(remask.to(tl.int64), 0))


@triton.jit
def select_kernel(G, score_ptr, ss_b, x0_ptr, s0_b, pcur_ptr, sp_b, x_ptr, sx_b, prov_ptr, sv_b,
                  nt_ptr, nr_ptr, mask_id, lo_ptr, hi_ptr, k_ptr, threshold, factor, rth, rmax,
                  RULE: tl.constexpr, REMASK: tl.constexpr, BLOCK_G: tl.constexpr):
    """Grid (B,): one program per batch row."""
    select_row(tl.program_id(0), G, score_ptr, ss_b, x0_ptr, s0_b, pcur_ptr, sp_b, x_ptr, sx_b, prov_ptr, sv_b,
               nt_ptr, nr_ptr, mask_id, lo_ptr, hi_ptr, k_ptr, threshold, factor, rth, rmax,
               RULE, REMASK, BLOCK_G)


def rule_args(g, k, threshold, factor, remask_threshold, remask_max, lo):
    """(k tensor, threshold, factor, remask threshold, remask max) kernel args + constexprs."""
    rule = 0 if k is not None else (1 if threshold is not None else 2)
    remask = remask_threshold is not None
    tail = [k if k is not None else lo, float(threshold or 0.0), float(factor or 0.0),
            float(remask_threshold or 0.0), g if remask_max is None else min(int(remask_max), g)]
    return tail, dict(RULE=rule, REMASK=remask, BLOCK_G=config.next_pow2(g))


def select(score, x0, p_cur, x, provisional, *, mask_id, lo, hi, k=None, threshold=None, factor=None,
           remask_threshold=None, remask_max=None):
    """Triton select (reference signature); one launch, no host synchronisation."""
    b, g = x.shape
    if b * g == 0:
        zero = torch.zeros((b,), dtype=torch.int64, device=x.device)
        return zero, zero.clone()
    nt = torch.empty((b,), dtype=torch.int64, device=x.device)  # every row's program writes its counts
    nr = torch.empty_like(nt)
    tail, meta = rule_args(g, k, threshold, factor, remask_threshold, remask_max, lo)
    select_kernel[(b,)](g, score, score.stride(0), x0, x0.stride(0), p_cur, p_cur.stride(0), x, x.stride(0),
                        provisional, provisional.stride(0), nt, nr, mask_id, lo, hi, *tail, **meta,
                        num_warps=config.select_warps(g))
    launches.count("select")
    return nt, nr
