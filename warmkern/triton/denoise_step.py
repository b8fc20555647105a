"""denoise_step: token_stats + select in ONE launch, computing only the window [lo, hi).

Grid (B * W * nsplit,), W = config.window(G): program (b, w, split) computes positions
lo + w, lo + w + W, ... < hi of row b (rows outside the window influence nothing, so they are never
read). The program completing a position (the only one, or the last of its splits by atomic counter)
writes (x0, score, p_cur) to workspace scratch and increments its row's counter; the program that
completes the row's last window position runs that row's selection and in-place update (an empty
window is selected by program (b, 0, 0)). Counters return to 0, so no memset.
Memory ordering: a CTA barrier then an acq_rel atomic publishes a program's stores; the selecting
program reads scratch with .cg loads (L2, coherent), never stale L1 lines.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from warmkern.triton import config, launch, workspace
from warmkern.triton.select import rule_args, select_row
from warmkern.triton.stats import NFIELDS
from warmkern.triton.stats_pass import position_stats
from warmkern.triton.token_stats import Plan, StatsArgs, stats_args


@triton.jit
def denoise_step_kernel(logits_ptr, sl_b, sl_g, uncond_ptr, su_b, su_g, x_ptr, sx_b, G, V, nsplit, tiles_per_split,
                        mask_id, inv_t, cfg1, sp_ptr, n_sp, seed, seed_stride, step, prior_ptr, spr_b, bias_ptr,
                        spr_bias, top_k, top_p, part_ptr, cnt_ptr, bcnt_ptr, W, ix_ptr, kx_ptr, sc_ptr, pc_ptr,
                        prov_ptr, sv_b, nt_ptr, nr_ptr, lo_ptr, hi_ptr, k_ptr, threshold, factor, rth, rmax, inv_alg,
                        sel_seed, sel_seed_stride, sel_step, HAS_CFG: tl.constexpr, SAMPLE: tl.constexpr,
                        SCALE_T: tl.constexpr, MODE: tl.constexpr, SEED_MODE: tl.constexpr, STEP_PTR: tl.constexpr,
                        PACKED: tl.constexpr, PRIOR: tl.constexpr, TOPK: tl.constexpr, TOPP: tl.constexpr,
                        TRUNC: tl.constexpr, BLOCK: tl.constexpr, TR: tl.constexpr, TE: tl.constexpr,
                        MAX_SPLIT: tl.constexpr, RULE: tl.constexpr, REMASK: tl.constexpr, ALG: tl.constexpr):
    pid = tl.program_id(0)
    split = pid % nsplit
    b = pid // nsplit // W
    w = pid // nsplit % W
    lo = tl.load(lo_ptr + b).to(tl.int32)
    hi = tl.load(hi_ptr + b).to(tl.int32)
    row_last = (hi <= lo) & (w == 0) & (split == 0)  # an empty window: nobody else will select
    base = b * G  # int32 (B*G < 2^31): one register live across the loops, not two
    for g in range(lo + w, hi, W):
        done, x0, sc, p_cur = position_stats(
            logits_ptr, sl_b, sl_g, uncond_ptr, su_b, su_g, x_ptr, sx_b, b, g, V, split, nsplit, tiles_per_split,
            mask_id, inv_t, cfg1, sp_ptr, n_sp, seed, seed_stride, step, prior_ptr, spr_b, bias_ptr, spr_bias, top_k,
            top_p, part_ptr, cnt_ptr, G, HAS_CFG, SAMPLE, SCALE_T, MODE, SEED_MODE, STEP_PTR, PACKED, PRIOR, TOPK,
            TOPP, TRUNC, BLOCK, TR, TE, MAX_SPLIT)
        if done:
            tl.store(ix_ptr + base + g, x0)
            tl.store(sc_ptr + base + g, sc)
            tl.store(pc_ptr + base + g, p_cur)
            tl.debug_barrier()
            if tl.atomic_add(bcnt_ptr + b, 1) == hi - lo - 1:
                tl.atomic_xchg(bcnt_ptr + b, 0)
                row_last = True
    if row_last:
        select_row(b, lo, hi, G, sc_ptr, G, ix_ptr, G, pc_ptr, G, x_ptr, sx_b, prov_ptr, sv_b, kx_ptr, nt_ptr, nr_ptr,
                   mask_id, k_ptr, threshold, factor, rth, rmax, inv_alg, sel_seed, sel_seed_stride, sel_step, RULE,
                   REMASK, ALG, SEED_MODE, STEP_PTR)


RULE_KW = ("k", "threshold", "factor", "remask_threshold", "remask_max", "alg_temp")


def plan(logits, x, provisional, *, lo, hi, uncond_logits=None, slots_fn=launch.slots, cc=None, **kw) -> Plan:
    """The denoise_step launch for these inputs (split sized from the kernel's real occupancy; `cc`: the
    target a meta-tensor plan is made for, else the device's). `kw`: the selection rule (RULE_KW) and
    token_stats' arguments (StatsArgs)."""
    b, g, v = logits.shape
    dev = logits.device
    rule = {n: kw.pop(n, None) for n in RULE_KW}
    a = StatsArgs(**kw)
    cfg, head, tail, meta = stats_args(logits, x, uncond_logits, a, cc)
    rtail, rmeta = rule_args(b, g, rule["k"], rule["threshold"], rule["factor"], rule["remask_threshold"],
                             rule["remask_max"], lo, rule["alg_temp"] or 0.0, a.seed, a.row_seeds, a.step,
                             a.step_tensor, dev)
    meta = {**meta, "RULE": rmeta["RULE"], "REMASK": rmeta["REMASK"], "ALG": rmeta["ALG"]}
    win = config.window(g)
    nt = torch.empty((b,), dtype=torch.int64, device=dev)  # every row's selecting program writes its counts
    nr = torch.empty((b,), dtype=torch.int64, device=dev)

    def args_for(c: config.StatsConfig) -> list:
        # counters: B*G per position, then B per row; floats: scores, p_cur, then partial states
        # ints: x0, then the selection's order keys (2 per position)
        ws = workspace.get(dev, b * g + b, 3 * b * g, 2 * b * g + (b * g * c.nsplit * NFIELDS if c.nsplit > 1 else 0))
        fl = ws.floats
        return [*head, g, v, c.nsplit, c.tiles_per_split, *tail, fl[2 * b * g:], ws.counters, ws.counters[b * g:],
                win, ws.ints, ws.ints[b * g:], fl, fl[b * g:], provisional, provisional.stride(0), nt, nr, lo, hi,
                *rtail]

    cfg = config.split(cfg, v, b * win, slots_fn(denoise_step_kernel, args_for(cfg.probe()), meta, dev))
    return Plan(denoise_step_kernel, (b * win * cfg.nsplit,), args_for(cfg), meta, cfg, (nt, nr))


def denoise_step(logits, x, provisional, *, uncond_logits=None, mask_id, lo, hi, k=None, threshold=None, factor=None,
                 remask_threshold=None, remask_max=None, alg_temp=0.0, temperature=0.0, score="prob",
                 score_temperature="none", suppress_ids=(), pick_suppress_ids=(), score_suppress_ids=(), cfg_scale=0.0,
                 seed=0, row_seeds=None, step=0, step_tensor=None, top_k=0, top_p=1.0, prior_ids=None,
                 prior_bias=None):
    """Triton denoise_step (the reference's signature): one launch, x / provisional updated in place.
    Passes over the logits per window position: 1, or 2 + the truncation search's bracket passes."""
    b, g, _ = logits.shape
    if b * g == 0:
        return (torch.zeros((b,), dtype=torch.int64, device=logits.device),
                torch.zeros((b,), dtype=torch.int64, device=logits.device))
    if alg_temp > 0 and k is None:
        raise ValueError(f"alg_temp: expected 0 unless the top-k rule (k) is used, got {alg_temp}")
    with launch.serialised(logits.device):
        p = plan(logits, x, provisional, lo=lo, hi=hi, uncond_logits=uncond_logits, k=k, threshold=threshold,
                 factor=factor, remask_threshold=remask_threshold, remask_max=remask_max, alg_temp=alg_temp,
                 mask_id=mask_id, temperature=temperature, score=score, score_temperature=score_temperature,
                 suppress_ids=tuple(suppress_ids), pick_suppress_ids=tuple(pick_suppress_ids),
                 score_suppress_ids=tuple(score_suppress_ids), cfg_scale=cfg_scale, seed=seed, row_seeds=row_seeds,
                 step=step, step_tensor=step_tensor, top_k=top_k, top_p=top_p, prior_ids=prior_ids,
                 prior_bias=prior_bias)
        launch.run(p.kernel, p.grid, p.args, p.meta, device=logits.device, op="denoise_step")
    return p.outputs
