"""select: per-row top-k / threshold / factor transfer and remasking, in place, by rank counting.

The spec's total order (eligible first, NaN scores last, score descending, position ascending) is
packed into one int64 key per position: ((orderable(score) + 1) << 31) | (G - 1 - g) for eligible
positions and 0 for the others. Keys are unique, so a position's rank is the number of window keys
greater than its own: one [CHUNK, CHUNK] comparison per pair of CHUNK-position pieces of the window
(a single one for a 32-position semi-autoregressive block), no sort, few registers. Only positions
in [lo, hi) are read or written. Dream's alg_temp (top-k rule) orders by score * fp32(1/alg_temp) +
Gumbel (stream 3, counter n = g, the row's seed): the first k are a sample without replacement.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from warmkern.triton import config, launch, workspace
from warmkern.triton.common import noise_key, orderable, position_gumbel

RULES = {"k": 0, "threshold": 1, "factor": 2}
CHUNK = tl.constexpr(32)


@triton.jit
def order_keys(score, member, pos, G):
    return tl.where(member, ((orderable(score) + 1) << 31) | (G - 1 - pos.to(tl.int64)), 0)


@triton.jit
def window_keys(b64, pos, lo, hi, G, score_ptr, ss_b, x0_ptr, s0_b, pcur_ptr, sp_b, x_ptr, sx_b, prov_ptr, sv_b,
                mask_id, rth, inv_alg, nkey, nstep, REMASK: tl.constexpr, ALG: tl.constexpr):
    """(key, rkey, score, x0) of positions `pos`: transfer-order and remask-order keys (0 outside
    [lo, hi) or for non-members). Scores come from other programs in the fused kernel: `.cg` loads
    read them via L2. ALG: the transfer order is that of score * inv_alg + Gumbel (Philox key nkey)."""
    win = (pos >= lo) & (pos < hi)
    sc = tl.load(score_ptr + b64 * ss_b + pos, mask=win, other=0.0, cache_modifier=".cg")
    x0 = tl.load(x0_ptr + b64 * s0_b + pos, mask=win, other=0, cache_modifier=".cg")
    xv = tl.load(x_ptr + b64 * sx_b + pos, mask=win, other=0)
    order = sc
    if ALG:
        order = sc * inv_alg + position_gumbel(nkey, nstep, 3, pos)
    key = order_keys(order, (xv == mask_id) & (x0 != mask_id) & win, pos, G)
    rkey = key
    if REMASK:
        pc = tl.load(pcur_ptr + b64 * sp_b + pos, mask=win, other=1.0, cache_modifier=".cg")
        prov = tl.load(prov_ptr + b64 * sv_b + pos, mask=win, other=0) != 0
        rkey = order_keys(-pc, prov & win & (xv != mask_id) & (pc < rth), pos, G)  # lowest p_cur first
    return key, rkey, sc, x0


@triton.jit
def count_greater(kj, key):
    """For each key: how many of kj are greater (keys are unique, so this is its rank)."""
    return tl.sum((kj[None, :] > key[:, None]).to(tl.int32), 1)


@triton.jit
def ranks(kptr, key, lo, hi):
    """Ranks of `key` among the window's keys in scratch."""
    rank = tl.zeros(key.shape, tl.int32)
    for j0 in range(lo, hi, CHUNK):
        j = j0 + tl.arange(0, CHUNK)
        rank += count_greater(tl.load(kptr + j, mask=j < hi, other=0, cache_modifier=".cg"), key)
    return rank


@triton.jit
def factor_fail(key, rank, sc, factor):
    """The first rank at which the factor rule (r + 2) * (1 - score_r) <= factor fails (rank 0 never)."""
    ok = ((rank + 2).to(tl.float32) * (1.0 - sc) <= factor) | (rank == 0)
    return tl.min(tl.where((key != 0) & (~ok), rank, 2147483647), 0)


@triton.jit
def transfer_mask(key, rank, sc, k, threshold, first_fail, RULE: tl.constexpr):
    if RULE == 0:
        return (key != 0) & (rank.to(tl.int64) < k)
    elif RULE == 1:
        return (key != 0) & ((sc >= threshold) | (rank == 0))
    else:
        return (key != 0) & (rank < first_fail)


@triton.jit
def apply_chunk(b64, pos, transfer, remask, x0, x_ptr, sx_b, prov_ptr, sv_b, mask_id):
    """x = x0 where transferred, mask_id where remasked; provisional cleared on both."""
    change = transfer | remask
    tl.store(x_ptr + b64 * sx_b + pos, tl.where(transfer, x0, mask_id), mask=change)
    tl.store(prov_ptr + b64 * sv_b + pos, tl.zeros(pos.shape, tl.int1), mask=change)
    return tl.sum(transfer.to(tl.int64), 0), tl.sum(remask.to(tl.int64), 0)


@triton.jit
def select_small(b64, lo, hi, G, score_ptr, ss_b, x0_ptr, s0_b, pcur_ptr, sp_b, x_ptr, sx_b, prov_ptr, sv_b,
                 mask_id, k, threshold, factor, rth, rmax, inv_alg, nkey, nstep, RULE: tl.constexpr,
                 REMASK: tl.constexpr, ALG: tl.constexpr):
    """A window of <= CHUNK positions: everything in registers, one [CHUNK, CHUNK] comparison."""
    pos = lo + tl.arange(0, CHUNK)
    key, rkey, sc, x0 = window_keys(b64, pos, lo, hi, G, score_ptr, ss_b, x0_ptr, s0_b, pcur_ptr, sp_b, x_ptr, sx_b,
                                    prov_ptr, sv_b, mask_id, rth, inv_alg, nkey, nstep, REMASK, ALG)
    rank = count_greater(key, key)
    first_fail = 0
    if RULE == 2:
        first_fail = factor_fail(key, rank, sc, factor)
    transfer = transfer_mask(key, rank, sc, k, threshold, first_fail, RULE)
    remask = transfer & (pos < 0)
    if REMASK:
        remask = (rkey != 0) & (count_greater(rkey, rkey) < rmax)
    return apply_chunk(b64, pos, transfer, remask, x0, x_ptr, sx_b, prov_ptr, sv_b, mask_id)


@triton.jit
def select_large(b64, lo, hi, G, score_ptr, ss_b, x0_ptr, s0_b, pcur_ptr, sp_b, x_ptr, sx_b, prov_ptr, sv_b, kptr,
                 mask_id, k, threshold, factor, rth, rmax, inv_alg, nkey, nstep, RULE: tl.constexpr,
                 REMASK: tl.constexpr, ALG: tl.constexpr):
    """Any window: the keys go to scratch first (kptr: [2, G] int64), so ranks are counted against
    the inputs as they were even after earlier chunks have been updated in place."""
    for c0 in range(lo, hi, CHUNK):
        pos = c0 + tl.arange(0, CHUNK)
        key, rkey, _sc, _x0 = window_keys(b64, pos, lo, hi, G, score_ptr, ss_b, x0_ptr, s0_b, pcur_ptr, sp_b, x_ptr,
                                          sx_b, prov_ptr, sv_b, mask_id, rth, inv_alg, nkey, nstep, REMASK, ALG)
        tl.store(kptr + pos, key, mask=pos < hi)
        if REMASK:
            tl.store(kptr + G + pos, rkey, mask=pos < hi)
    tl.debug_barrier()  # the scratch keys are read back by other threads of this program
    first_fail = 2147483647
    if RULE == 2:
        for c0 in range(lo, hi, CHUNK):
            pos = c0 + tl.arange(0, CHUNK)
            key = tl.load(kptr + pos, mask=pos < hi, other=0, cache_modifier=".cg")
            sc = tl.load(score_ptr + b64 * ss_b + pos, mask=pos < hi, other=0.0, cache_modifier=".cg")
            first_fail = tl.minimum(first_fail, factor_fail(key, ranks(kptr, key, lo, hi), sc, factor))
    nt = tl.zeros([], tl.int64)
    nr = tl.zeros([], tl.int64)
    for c0 in range(lo, hi, CHUNK):
        pos = c0 + tl.arange(0, CHUNK)
        win = pos < hi
        key = tl.load(kptr + pos, mask=win, other=0, cache_modifier=".cg")
        sc = tl.load(score_ptr + b64 * ss_b + pos, mask=win, other=0.0, cache_modifier=".cg")
        transfer = transfer_mask(key, ranks(kptr, key, lo, hi), sc, k, threshold, first_fail, RULE)
        remask = transfer & (pos < 0)
        if REMASK:
            rkey = tl.load(kptr + G + pos, mask=win, other=0, cache_modifier=".cg")
            remask = (rkey != 0) & (ranks(kptr + G, rkey, lo, hi) < rmax)
        x0 = tl.load(x0_ptr + b64 * s0_b + pos, mask=transfer, other=0, cache_modifier=".cg")
        n1, n2 = apply_chunk(b64, pos, transfer, remask, x0, x_ptr, sx_b, prov_ptr, sv_b, mask_id)
        nt += n1
        nr += n2
    return nt, nr


@triton.jit
def select_row(b, lo, hi, G, score_ptr, ss_b, x0_ptr, s0_b, pcur_ptr, sp_b, x_ptr, sx_b, prov_ptr, sv_b, key_ptr,
               nt_ptr, nr_ptr, mask_id, k_ptr, threshold, factor, rth, rmax, inv_alg, seed, seed_stride, step,
               RULE: tl.constexpr, REMASK: tl.constexpr, ALG: tl.constexpr, SEED_MODE: tl.constexpr,
               STEP_PTR: tl.constexpr):
    """Selection and in-place update of the window [lo, hi) (int32) of batch row b (key_ptr: [B, 2, G]
    int64 scratch, used only by windows longer than CHUNK)."""
    b64 = b.to(tl.int64)
    k = 0
    if RULE == 0:
        k = tl.load(k_ptr + b)
    nkey = 0
    nstep = 0
    if ALG:
        nkey, _row, nstep = noise_key(seed, seed_stride, step, b, 0, SEED_MODE, STEP_PTR)
    if hi - lo <= CHUNK:
        nt, nr = select_small(b64, lo, hi, G, score_ptr, ss_b, x0_ptr, s0_b, pcur_ptr, sp_b, x_ptr, sx_b, prov_ptr,
                              sv_b, mask_id, k, threshold, factor, rth, rmax, inv_alg, nkey, nstep, RULE, REMASK, ALG)
    else:
        nt, nr = select_large(b64, lo, hi, G, score_ptr, ss_b, x0_ptr, s0_b, pcur_ptr, sp_b, x_ptr, sx_b, prov_ptr,
                              sv_b, key_ptr + b64 * 2 * G, mask_id, k, threshold, factor, rth, rmax, inv_alg, nkey,
                              nstep, RULE, REMASK, ALG)
    tl.store(nt_ptr + b, nt)
    tl.store(nr_ptr + b, nr)


@triton.jit
def select_kernel(G, score_ptr, ss_b, x0_ptr, s0_b, pcur_ptr, sp_b, x_ptr, sx_b, prov_ptr, sv_b, key_ptr,
                  nt_ptr, nr_ptr, mask_id, lo_ptr, hi_ptr, k_ptr, threshold, factor, rth, rmax, inv_alg, seed,
                  seed_stride, step, RULE: tl.constexpr, REMASK: tl.constexpr, ALG: tl.constexpr,
                  SEED_MODE: tl.constexpr, STEP_PTR: tl.constexpr):
    """Grid (B,): one program per batch row."""
    b = tl.program_id(0)
    select_row(b, tl.load(lo_ptr + b).to(tl.int32), tl.load(hi_ptr + b).to(tl.int32), G, score_ptr, ss_b, x0_ptr,
               s0_b, pcur_ptr, sp_b, x_ptr, sx_b, prov_ptr, sv_b, key_ptr, nt_ptr, nr_ptr, mask_id, k_ptr, threshold,
               factor, rth, rmax, inv_alg, seed, seed_stride, step, RULE, REMASK, ALG, SEED_MODE, STEP_PTR)


def rule_args(b, g, k, threshold, factor, remask_threshold, remask_max, lo, alg_temp, seed, row_seeds, step,
              step_tensor, device):
    """(k tensor, threshold, factor, remask threshold, remask max, 1/alg_temp, seed, its stride, step) kernel
    args + constexprs."""
    rule = 0 if k is not None else (1 if threshold is not None else 2)
    remask = remask_threshold is not None
    alg = alg_temp > 0
    seed_v, seed_stride, seed_mode = launch.seed_arg(seed, row_seeds, b, device)
    step_v, step_ptr = launch.step_arg(step, step_tensor, device)
    tail = [k if k is not None else lo, launch.fp32(threshold or 0.0), launch.fp32(factor or 0.0),
            launch.fp32(remask_threshold or 0.0), g if remask_max is None else min(int(remask_max), g),
            launch.fp32(1.0 / alg_temp if alg else 1.0), seed_v, seed_stride, step_v]
    return tail, dict(RULE=rule, REMASK=remask, ALG=alg, SEED_MODE=seed_mode, STEP_PTR=step_ptr)


def select(score, x0, p_cur, x, provisional, *, mask_id, lo, hi, k=None, threshold=None, factor=None,
           remask_threshold=None, remask_max=None, alg_temp=0.0, seed=0, row_seeds=None, step=0, step_tensor=None):
    """Triton select (the reference's signature); one launch, no host synchronisation."""
    b, g = x.shape
    dev = x.device
    if b * g == 0:
        zero = torch.zeros((b,), dtype=torch.int64, device=dev)
        return zero, zero.clone()
    if alg_temp > 0 and k is None:
        raise ValueError(f"alg_temp: expected 0 unless the top-k rule (k) is used, got {alg_temp}")
    nt = torch.empty((b,), dtype=torch.int64, device=dev)  # every row's program writes its counts
    nr = torch.empty_like(nt)
    tail, meta = rule_args(b, g, k, threshold, factor, remask_threshold, remask_max, lo, alg_temp, seed, row_seeds,
                           step, step_tensor, dev)
    with launch.serialised(dev):
        keys = workspace.get(dev, 0, 2 * b * g).ints
        args = [g, score, score.stride(0), x0, x0.stride(0), p_cur, p_cur.stride(0), x, x.stride(0), provisional,
                provisional.stride(0), keys, nt, nr, mask_id, lo, hi, *tail]
        warps = config.select_warps(g, meta["ALG"])
        launch.run(select_kernel, (b,), args, {**meta, "num_warps": warps}, device=dev, op="select")
    return nt, nr
