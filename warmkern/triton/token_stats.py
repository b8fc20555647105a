"""token_stats: one pass over the vocabulary per position (online softmax + every statistic at once).

A program owns one position (or one vocabulary chunk of it on the split path). Per tile it updates:
running max / rescaled sum (softmax), the entropy accumulator sum e*(zt - m), the (Gumbel-perturbed)
argmax over entries != mask_id with zt at that argmax, the top-2 allowed zt (margin) and zt of the
current token. Logits are read once; nothing of size B*G*V is written. On the split path each program
stores its partial state and the row's last program (atomic counter) merges the partials in split
order, so the result does not depend on which program finishes last.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from warmkern import launches
from warmkern.triton import config, workspace
from warmkern.triton.common import position_uniform, vocab_gumbel

MODES = {"prob": 0, "margin": 1, "entropy": 2, "random": 3}
NFIELDS = 9  # partial state fields, see _store_partial


@triton.jit
def chunk_stats(row_ptr, urow_ptr, v_begin, v_end, xcur, mask_id, inv_t, cfg1, sup_ptr, n_sup,
                seed, step, row, groups,
                HAS_CFG: tl.constexpr, SAMPLE: tl.constexpr, SCALE_T: tl.constexpr, MODE: tl.constexpr,
                BLOCK: tl.constexpr):
    """Partial state of vocabulary entries [v_begin, v_end) of one position (v_begin % BLOCK == 0)."""
    ninf = float("-inf")
    m = ninf
    s = 0.0
    acc = 0.0
    best = ninf
    best_idx = 0
    zt_best = ninf
    top1 = ninf
    top2 = ninf
    zt_cur = ninf
    for vs in range(v_begin, v_end, BLOCK):
        offs = vs + tl.arange(0, BLOCK)
        inb = offs < v_end
        z = tl.load(row_ptr + offs, mask=inb, other=0.0).to(tl.float32)
        if HAS_CFG:
            u = tl.load(urow_ptr + offs, mask=inb, other=0.0).to(tl.float32)
            z = u + cfg1 * (z - u)
        z = tl.where((z != z) | (~inb), ninf, z)  # NaN policy: NaN counts as -inf
        for i in range(n_sup):
            z = tl.where(offs == tl.load(sup_ptr + i), ninf, z)
        if SCALE_T:
            zt = z * inv_t
        else:
            zt = z
        if SAMPLE:
            pick = z * inv_t + vocab_gumbel(seed, step, 0, row, groups, vs, BLOCK)
        else:
            pick = z
        pick = tl.where((offs == mask_id) | (~inb), ninf, pick)
        # argmax, leftmost on ties, in one reduction (block reductions, not loads, bound the GPU loop)
        tmax, tpos = tl.max(pick, 0, return_indices=True, return_indices_tie_break_left=True)
        if tmax > best:
            best = tmax
            best_idx = vs + tpos
            if SAMPLE or SCALE_T:
                zt_best = tl.max(tl.where(offs == vs + tpos, zt, ninf), 0)
            else:
                zt_best = tmax  # greedy: zt is pick away from the mask lane
        # online softmax of zt (over the whole vocabulary, mask_id included)
        m_new = tl.maximum(m, tl.max(zt, 0))
        m_safe = tl.where(m_new == ninf, 0.0, m_new)
        scale = tl.exp(m - m_safe)
        e = tl.exp(zt - m_safe)
        if MODE == 2:
            # where() before the product: 0 * -inf would be NaN (harmless but noisy)
            acc = scale * (acc + s * tl.where(s > 0.0, m - m_safe, 0.0))
            acc += tl.sum(e * tl.where(e > 0.0, zt - m_safe, 0.0), 0)
        s = s * scale + tl.sum(e, 0)
        m = m_new
        if MODE == 1:
            za = tl.where((offs == mask_id) | (~inb), ninf, zt)
            t1, i1 = tl.max(za, 0, return_indices=True, return_indices_tie_break_left=True)
            t2 = tl.max(tl.where(offs == vs + i1, ninf, za), 0)
            top2 = tl.maximum(tl.minimum(top1, t1), tl.maximum(top2, t2))
            top1 = tl.maximum(top1, t1)
        if (xcur >= vs) & (xcur < vs + BLOCK):  # only the tile holding x pays this reduction
            zt_cur = tl.max(tl.where(offs == xcur, zt, ninf), 0)
    return m, s, acc, best, best_idx, zt_best, top1, top2, zt_cur


@triton.jit
def merge_stats(m, s, acc, best, best_idx, zt_best, top1, top2, zt_cur,
                m2, s2, acc2, best2, idx2, zt_best2, t1b, t2b, zt_cur2):
    """Merge the state of a later vocabulary chunk (second) into an earlier one (first)."""
    m_new = tl.maximum(m, m2)
    m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
    sc1 = tl.exp(m - m_safe)
    sc2 = tl.exp(m2 - m_safe)
    acc = sc1 * (acc + s * tl.where(s > 0.0, m - m_safe, 0.0)) + sc2 * (
        acc2 + s2 * tl.where(s2 > 0.0, m2 - m_safe, 0.0))
    s = s * sc1 + s2 * sc2
    later = best2 > best  # strict: the earlier chunk wins ties (leftmost argmax)
    best_idx = tl.where(later, idx2, best_idx)
    zt_best = tl.where(later, zt_best2, zt_best)
    best = tl.maximum(best, best2)
    top2 = tl.maximum(tl.minimum(top1, t1b), tl.maximum(top2, t2b))
    top1 = tl.maximum(top1, t1b)
    zt_cur = tl.maximum(zt_cur, zt_cur2)
    return m_new, s, acc, best, best_idx, zt_best, top1, top2, zt_cur


@triton.jit
def finalize_stats(m, s, acc, best, best_idx, zt_best, top1, top2, zt_cur, xcur, mask_id, dem_ptr, n_dem,
                   seed, step, row, MODE: tl.constexpr):
    """(x0, score, p_cur) of one position from its full-vocabulary state (spec conventions)."""
    dead = (best == float("-inf")) | (best == float("inf"))  # no finite allowed logit
    # +inf reaches m (without killing the row) only through a +inf mask_id logit: the spec then takes
    # m = 0, so s = inf and every finite p is 0 (entropy NaN). s == 0 only on dead rows.
    pinf = m == float("inf")
    mm = tl.where((m == float("-inf")) | pinf, 0.0, m)
    s = tl.where(pinf, float("inf"), tl.where(s > 0.0, s, 1.0))
    x0 = tl.where(dead, mask_id, best_idx.to(tl.int64))
    if MODE == 0:
        sc = tl.exp(zt_best - mm) / s
    elif MODE == 1:
        p2 = tl.exp(top2 - mm) / s
        sc = tl.exp(top1 - mm) / s - tl.maximum(p2, 0.0)
    elif MODE == 2:
        sc = tl.where(pinf, float("nan"), acc / s - tl.log(s))
    else:
        sc = position_uniform(seed, step, 1, row)
    for i in range(n_dem):
        sc = tl.where(x0 == tl.load(dem_ptr + i), float("-inf"), sc)
    sc = tl.where(dead, float("-inf"), sc)
    p_cur = tl.where((xcur != mask_id) & (~dead), tl.exp(zt_cur - mm) / s, 0.0)
    return x0, sc, p_cur


@triton.jit
def store_partial(ws_ptr, m, s, acc, best, best_idx, zt_best, top1, top2, zt_cur):
    tl.store(ws_ptr + 0, m)
    tl.store(ws_ptr + 1, s)
    tl.store(ws_ptr + 2, acc)
    tl.store(ws_ptr + 3, best)
    tl.store(ws_ptr + 4, best_idx.to(tl.int32).to(tl.float32, bitcast=True))
    tl.store(ws_ptr + 5, zt_best)
    tl.store(ws_ptr + 6, top1)
    tl.store(ws_ptr + 7, top2)
    tl.store(ws_ptr + 8, zt_cur)


@triton.jit
def load_partial(ws_ptr):
    # .cg: read through L2, where the other programs' stores are visible after the counter
    m = tl.load(ws_ptr + 0, cache_modifier=".cg")
    s = tl.load(ws_ptr + 1, cache_modifier=".cg")
    acc = tl.load(ws_ptr + 2, cache_modifier=".cg")
    best = tl.load(ws_ptr + 3, cache_modifier=".cg")
    idx = tl.load(ws_ptr + 4, cache_modifier=".cg").to(tl.int32, bitcast=True)
    zt_best = tl.load(ws_ptr + 5, cache_modifier=".cg")
    top1 = tl.load(ws_ptr + 6, cache_modifier=".cg")
    top2 = tl.load(ws_ptr + 7, cache_modifier=".cg")
    zt_cur = tl.load(ws_ptr + 8, cache_modifier=".cg")
    return m, s, acc, best, idx, zt_best, top1, top2, zt_cur


@triton.jit
def row_stats(logits_ptr, sl_b, sl_g, uncond_ptr, su_b, su_g, x_ptr, sx_b, b, g, row, split, V,
              mask_id, inv_t, cfg1, sup_ptr, n_sup, dem_ptr, n_dem, seed, step, part_ptr, cnt_ptr, chunk,
              HAS_CFG: tl.constexpr, SAMPLE: tl.constexpr, SCALE_T: tl.constexpr, MODE: tl.constexpr,
              NSPLIT: tl.constexpr, BLOCK: tl.constexpr):
    """One program's share of a position's stats. Returns (done, x0, score, p_cur): `done` is true
    for the program that holds the full result (always when NSPLIT == 1, else the row's last)."""
    b64 = b.to(tl.int64)
    g64 = g.to(tl.int64)
    row_ptr = logits_ptr + b64 * sl_b + g64 * sl_g
    urow_ptr = uncond_ptr + b64 * su_b + g64 * su_g
    xcur = tl.load(x_ptr + b64 * sx_b + g64)
    groups = (V + 3) // 4
    v_begin = split * chunk
    v_end = tl.minimum(v_begin + chunk, V)
    st = chunk_stats(row_ptr, urow_ptr, v_begin, v_end, xcur, mask_id, inv_t, cfg1, sup_ptr, n_sup,
                     seed, step, row, groups, HAS_CFG, SAMPLE, SCALE_T, MODE, BLOCK)
    done = True
    if NSPLIT > 1:
        row_part = part_ptr + row.to(tl.int64) * (NSPLIT * 9)
        store_partial(row_part + split * 9, *st)
        tl.debug_barrier()
        done = tl.atomic_add(cnt_ptr + row, 1) == NSPLIT - 1
        if done:
            st = load_partial(row_part)
            for i in tl.static_range(1, NSPLIT):
                st = merge_stats(*st, *load_partial(row_part + i * 9))
            tl.atomic_xchg(cnt_ptr + row, 0)  # leave the counter zeroed for the next call
    x0, sc, p_cur = finalize_stats(*st, xcur, mask_id, dem_ptr, n_dem, seed, step, row, MODE)
    return done, x0, sc, p_cur


@triton.jit
def token_stats_kernel(logits_ptr, sl_b, sl_g, uncond_ptr, su_b, su_g, x_ptr, sx_b, G, V,
                       mask_id, inv_t, cfg1, sup_ptr, n_sup, dem_ptr, n_dem, seed, step,
                       part_ptr, cnt_ptr, chunk, x0_ptr, score_ptr, pcur_ptr,
                       HAS_CFG: tl.constexpr, SAMPLE: tl.constexpr, SCALE_T: tl.constexpr,
                       MODE: tl.constexpr, NSPLIT: tl.constexpr, BLOCK: tl.constexpr):
    """Grid (B*G*NSPLIT,): program -> (position row, vocabulary split)."""
    pid = tl.program_id(0)
    row = pid // NSPLIT
    split = pid % NSPLIT
    b = row // G
    g = row % G
    done, x0, sc, p_cur = row_stats(
        logits_ptr, sl_b, sl_g, uncond_ptr, su_b, su_g, x_ptr, sx_b, b, g, row, split, V, mask_id, inv_t,
        cfg1, sup_ptr, n_sup, dem_ptr, n_dem, seed, step, part_ptr, cnt_ptr, chunk,
        HAS_CFG, SAMPLE, SCALE_T, MODE, NSPLIT, BLOCK)
    if done:
        tl.store(x0_ptr + row, x0)
        tl.store(score_ptr + row, sc)
        tl.store(pcur_ptr + row, p_cur)


@functools.lru_cache(maxsize=64)
def id_tensor(ids: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Id list as an int64 tensor (a dummy element when empty: kernels loop over n, never read it).

    Cached: a host-to-device copy is not allowed while a CUDA graph captures the step.
    """
    return torch.tensor(ids or (0,), dtype=torch.int64, device=device)


def stats_args(logits, x, uncond_logits, mask_id, temperature, score, score_temperature, suppress_ids,
               demote_ids, cfg_scale, seed, step, rows=None):
    """Positional kernel arguments shared by token_stats and denoise_step, plus the config.

    `rows`: how many positions will really be computed (sizes the vocabulary split); default B*G.
    """
    b, g, v = logits.shape
    dev = logits.device
    cfg = config.stats_config(b * g if rows is None else rows, v, config.sm_count(dev), dev.type == "cuda")
    inv_t = float(torch.tensor(1.0 / temperature if temperature > 0 else 1.0, dtype=torch.float32))
    has_cfg = uncond_logits is not None
    u = uncond_logits if has_cfg else logits
    part = torch.empty((b * g * cfg.nsplit * NFIELDS,) if cfg.nsplit > 1 else (1,), dtype=torch.float32, device=dev)
    cnt = workspace.counters(dev, b * g)
    args = [logits, logits.stride(0), logits.stride(1), u, u.stride(0), u.stride(1), x, x.stride(0)]
    tail = [mask_id, inv_t, float(cfg_scale + 1.0), id_tensor(tuple(suppress_ids), dev), len(suppress_ids),
            id_tensor(tuple(demote_ids), dev), len(demote_ids), int(seed), int(step), part, cnt, cfg.chunk]
    meta = dict(HAS_CFG=has_cfg, SAMPLE=temperature > 0, SCALE_T=score_temperature == "sampling",
                MODE=MODES[score], NSPLIT=cfg.nsplit, BLOCK=cfg.block_v)
    return cfg, args, tail, meta


def token_stats(logits, x, *, mask_id, temperature=0.0, score="prob", score_temperature="none",
                suppress_ids=(), demote_ids=(), uncond_logits=None, cfg_scale=0.0, seed=0, step=0):
    """Triton token_stats (reference signature); one launch whatever the split."""
    b, g, v = logits.shape
    dev = logits.device
    x0 = torch.empty((b, g), dtype=torch.int64, device=dev)
    sc = torch.empty((b, g), dtype=torch.float32, device=dev)
    pc = torch.empty((b, g), dtype=torch.float32, device=dev)
    if b * g == 0:
        return x0, sc, pc
    cfg, args, tail, meta = stats_args(logits, x, uncond_logits, mask_id, temperature, score, score_temperature,
                                       suppress_ids, demote_ids, cfg_scale, seed, step)
    grid = (b * g * cfg.nsplit,)
    token_stats_kernel[grid](*args, g, v, *tail, x0, sc, pc, **meta, num_warps=cfg.num_warps,
                             enable_fp_fusion=False)
    launches.count("token_stats")
    return x0, sc, pc
