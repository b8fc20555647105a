"""select: per-row top-k / threshold / factor transfer and remasking, in place, by rank counting.

The spec's total order (eligible first, NaN scores last, score descending, position ascending) is
packed into one int64 key per position: ((orderable(score) + 1) << 31) | (G - 1 - g) for eligible
positions and 0 for the others. Keys are unique, so a position's rank is the number of window keys
greater than its own: one [BLOCK_G, CHUNK] comparison per CHUNK window positions (one for a
32-position semi-autoregressive block), no sort. Only positions in [lo, hi) are read or written.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from warmkern.triton import config, launch
from warmkern.triton.common import orderable

RULES = {"k": 0, "threshold": 1, "factor": 2}
CHUNK = 32


@triton.jit
def order_keys(score, member, pos, G):
    return tl.where(member, ((orderable(score) + 1) << 31) | (G - 1 - pos.to(tl.int64)), 0)


@triton.jit
def window_keys(b64, pos, lo, hi, G, score_ptr, ss_b, x0_ptr, s0_b, pcur_ptr, sp_b, x_ptr, sx_b, prov_ptr, sv_b,
                mask_id, rth, REMASK: tl.constexpr):
    """(key, rkey, inputs) of positions `pos` (a vector): transfer order and remask order keys.
    Scores come from other programs in the fused kernel: `.cg` loads read them through L2."""
    win = (pos >= lo) & (pos < hi)
    sc = tl.load(score_ptr + b64 * ss_b + pos, mask=win, other=0.0, cache_modifier=".cg")
    x0 = tl.load(x0_ptr + b64 * s0_b + pos, mask=win, other=0, cache_modifier=".cg").to(tl.int64)
    xv = tl.load(x_ptr + b64 * sx_b + pos, mask=win, other=0)
    elig = (xv == mask_id) & (x0 != mask_id) & win
    key = order_keys(sc, elig, pos, G)
    rkey = key
    prov = win & (pos < 0)
    if REMASK:
        pc = tl.load(pcur_ptr + b64 * sp_b + pos, mask=win, other=1.0, cache_modifier=".cg")
        prov = tl.load(prov_ptr + b64 * sv_b + pos, mask=win, other=0) != 0
        cand = prov & win & (xv != mask_id) & (pc < rth)
        rkey = order_keys(-pc, cand, pos, G)  # lowest p_cur first, ties by position
    return key, rkey, sc, x0, xv, prov, win


@triton.jit
def select_row(b, G, score_ptr, ss_b, x0_ptr, s0_b, pcur_ptr, sp_b, x_ptr, sx_b, prov_ptr, sv_b,
               nt_ptr, nr_ptr, mask_id, lo_ptr, hi_ptr, k_ptr, threshold, factor, rth, rmax,
               RULE: tl.constexpr, REMASK: tl.constexpr, BLOCK_G: tl.constexpr):
    """Selection and in-place update of the window [lo, hi) of batch row b."""
    b64 = b.to(tl.int64)
    lo = tl.load(lo_ptr + b).to(tl.int32)
    hi = tl.load(hi_ptr + b).to(tl.int32)
    pos = lo + tl.arange(0, BLOCK_G)
    key, rkey, sc, x0, xv, prov, win = window_keys(b64, pos, lo, hi, G, score_ptr, ss_b, x0_ptr, s0_b, pcur_ptr,
                                                   sp_b, x_ptr, sx_b, prov_ptr, sv_b, mask_id, rth, REMASK)
    rank = tl.zeros([BLOCK_G], tl.int32)
    rrank = tl.zeros([BLOCK_G], tl.int32)
    for j0 in range(lo, hi, CHUNK):  # every window position j: rank_i += [key_j > key_i]
        kj, rkj, _s, _x0, _xv, _p, _w = window_keys(b64, j0 + tl.arange(0, CHUNK), lo, hi, G, score_ptr, ss_b, x0_ptr,
                                                    s0_b, pcur_ptr, sp_b, x_ptr, sx_b, prov_ptr, sv_b, mask_id, rth,
                                                    REMASK)
        rank += tl.sum((kj[None, :] > key[:, None]).to(tl.int32), 1)
        if REMASK:
            rrank += tl.sum((rkj[None, :] > rkey[:, None]).to(tl.int32), 1)
    elig = key != 0
    if RULE == 0:
        transfer = elig & (rank.to(tl.int64) < tl.load(k_ptr + b))
    elif RULE == 1:
        transfer = elig & ((sc >= threshold) | (rank == 0))
    else:
        # factor: the leading run of ranks r with (r + 2) * (1 - score_r) <= factor (rank 0 always)
        ok = ((rank + 2).to(tl.float32) * (1.0 - sc) <= factor) | (rank == 0)
        first_fail = tl.min(tl.where(elig & (~ok), rank, BLOCK_G), 0)
        transfer = elig & (rank < first_fail)
    if REMASK:
        remask = (rkey != 0) & (rrank < rmax)
    else:
        remask = win & (pos < 0)
    tl.store(x_ptr + b64 * sx_b + pos, tl.where(transfer, x0, tl.where(remask, mask_id, xv)), mask=win)
    if REMASK:
        tl.store(prov_ptr + b64 * sv_b + pos, (prov & (~transfer) & (~remask)).to(tl.int1), mask=win)
    else:
        prov = tl.load(prov_ptr + b64 * sv_b + pos, mask=win & transfer, other=0) != 0
        tl.store(prov_ptr + b64 * sv_b + pos, (prov & (~transfer)).to(tl.int1), mask=win & transfer)
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
    tail = [k if k is not None else lo, launch.fp32(threshold or 0.0), launch.fp32(factor or 0.0),
            launch.fp32(remask_threshold or 0.0), g if remask_max is None else min(int(remask_max), g)]
    return tail, dict(RULE=rule, REMASK=remask, BLOCK_G=config.next_pow2(g))


def select(score, x0, p_cur, x, provisional, *, mask_id, lo, hi, k=None, threshold=None, factor=None,
           remask_threshold=None, remask_max=None):
    """Triton select (reference signature); one launch, no host synchronisation."""
    b, g = x.shape
    dev = x.device
    if b * g == 0:
        zero = torch.zeros((b,), dtype=torch.int64, device=dev)
        return zero, zero.clone()
    nt = torch.empty((b,), dtype=torch.int64, device=dev)  # every row's program writes its counts
    nr = torch.empty_like(nt)
    tail, meta = rule_args(g, k, threshold, factor, remask_threshold, remask_max, lo)
    args = [g, score, score.stride(0), x0, x0.stride(0), p_cur, p_cur.stride(0), x, x.stride(0), provisional,
            provisional.stride(0), nt, nr, mask_id, lo, hi, *tail]
    launch.run(select_kernel, (b,), args, {**meta, "num_warps": config.select_warps(g)}, device=dev, op="select")
    return nt, nr
