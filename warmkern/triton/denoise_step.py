"""denoise_step: token_stats + select in ONE launch.

Grid (B*G*NSPLIT,). Each program computes its share of one position's stats (rows outside the
window [lo, hi) skip the vocabulary pass: select ignores them). The program completing a position
(the only one, or the row's last split by atomic counter) writes (x0, score, p_cur) to a scratch
buffer and increments its batch row's counter; the program that completes the batch row's last
position runs that row's selection and in-place update. Counters return to 0, so no memset.
Memory ordering: a CTA barrier then an acq_rel atomic publishes a program's stores; the selecting
program reads scratch with .cg loads (L2, coherent), never stale L1 lines.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from warmkern import launches
from warmkern.triton import config, workspace
from warmkern.triton.select import rule_args, select_row
from warmkern.triton.token_stats import row_stats, stats_args


@triton.jit
def denoise_step_kernel(logits_ptr, sl_b, sl_g, uncond_ptr, su_b, su_g, x_ptr, sx_b, G, V,
                        mask_id, inv_t, cfg1, sup_ptr, n_sup, dem_ptr, n_dem, seed, step,
                        part_ptr, cnt_ptr, chunk, x0_ptr, score_ptr, pcur_ptr, bcnt_ptr,
                        prov_ptr, sv_b, nt_ptr, nr_ptr, lo_ptr, hi_ptr, k_ptr, threshold, factor, rth, rmax,
                        HAS_CFG: tl.constexpr, SAMPLE: tl.constexpr, SCALE_T: tl.constexpr,
                        MODE: tl.constexpr, NSPLIT: tl.constexpr, BLOCK: tl.constexpr,
                        RULE: tl.constexpr, REMASK: tl.constexpr, BLOCK_G: tl.constexpr):
    pid = tl.program_id(0)
    row = pid // NSPLIT
    split = pid % NSPLIT
    b = row // G
    g = row % G
    in_win = (g >= tl.load(lo_ptr + b)) & (g < tl.load(hi_ptr + b))
    if in_win:
        done, x0, sc, p_cur = row_stats(
            logits_ptr, sl_b, sl_g, uncond_ptr, su_b, su_g, x_ptr, sx_b, b, g, row, split, V, mask_id, inv_t,
            cfg1, sup_ptr, n_sup, dem_ptr, n_dem, seed, step, part_ptr, cnt_ptr, chunk,
            HAS_CFG, SAMPLE, SCALE_T, MODE, NSPLIT, BLOCK)
        if done:
            tl.store(x0_ptr + row, x0)
            tl.store(score_ptr + row, sc)
            tl.store(pcur_ptr + row, p_cur)
    else:
        done = split == 0  # nothing to compute: one program per position reports it
    if done:
        tl.debug_barrier()
        if tl.atomic_add(bcnt_ptr + b, 1) == G - 1:
            tl.atomic_xchg(bcnt_ptr + b, 0)
            select_row(b, G, score_ptr, G, x0_ptr, G, pcur_ptr, G, x_ptr, sx_b, prov_ptr, sv_b,
                       nt_ptr, nr_ptr, mask_id, lo_ptr, hi_ptr, k_ptr, threshold, factor, rth, rmax,
                       RULE, REMASK, BLOCK_G)


def denoise_step(logits, x, provisional, *, mask_id, lo, hi, k=None, threshold=None, factor=None,
                 remask_threshold=None, remask_max=None, temperature=0.0, score="prob", score_temperature="none",
                 suppress_ids=(), demote_ids=(), uncond_logits=None, cfg_scale=0.0, seed=0, step=0):
    """Triton denoise_step (reference signature): one kernel launch, x/provisional updated in place."""
    b, g, v = logits.shape
    dev = logits.device
    if b * g == 0:
        return torch.zeros((b,), dtype=torch.int64, device=dev), torch.zeros((b,), dtype=torch.int64, device=dev)
    # every batch row's selecting program writes its counts: empty (a memset would be a launch)
    nt = torch.empty((b,), dtype=torch.int64, device=dev)
    nr = torch.empty((b,), dtype=torch.int64, device=dev)
    cfg, args, tail, meta = stats_args(logits, x, uncond_logits, mask_id, temperature, score, score_temperature,
                                       suppress_ids, demote_ids, cfg_scale, seed, step,
                                       rows=config.window_rows(b, g))
    x0 = torch.empty((b, g), dtype=torch.int64, device=dev)
    sc = torch.empty((b, g), dtype=torch.float32, device=dev)
    pc = torch.empty((b, g), dtype=torch.float32, device=dev)
    bcnt = workspace.counters(dev, b * g + b)[b * g:]  # after the per-position counters
    rtail, rmeta = rule_args(g, k, threshold, factor, remask_threshold, remask_max, lo)
    grid = (b * g * cfg.nsplit,)
    denoise_step_kernel[grid](*args, g, v, *tail, x0, sc, pc, bcnt, provisional, provisional.stride(0), nt, nr,
                              lo, hi, *rtail, **meta, **rmeta, num_warps=cfg.num_warps, enable_fp_fusion=False)
    launches.count("denoise_step")
    return nt, nr
