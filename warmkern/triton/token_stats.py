"""token_stats: (x0, score, p_cur) of every position in one launch, one pass over the vocabulary.

Grid (B*G*nsplit,): program -> (position, vocabulary split); `stats_pass` has the device code. The
split count comes from the occupancy the compiled kernel really gets (`launch.slots`), so the grid
fills one wave of resident programs when B*G alone cannot.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from warmkern.triton import config, launch, workspace
from warmkern.triton.stats import NFIELDS
from warmkern.triton.stats_pass import position_stats

MODES = {"prob": 0, "margin": 1, "entropy": 2, "random": 3}


@triton.jit
def token_stats_kernel(logits_ptr, sl_b, sl_g, uncond_ptr, su_b, su_g, x_ptr, sx_b, G, V, nsplit, tiles_per_split,
                       mask_id, mask_sup, inv_t, cfg1, sp_ptr, n_sp, dem_ptr, n_dem, seed, step, part_ptr, cnt_ptr,
                       x0_ptr, score_ptr, pcur_ptr,
                       HAS_CFG: tl.constexpr, SAMPLE: tl.constexpr, SCALE_T: tl.constexpr, MODE: tl.constexpr,
                       SEED_MODE: tl.constexpr, STEP_PTR: tl.constexpr, PACKED: tl.constexpr, BLOCK: tl.constexpr,
                       MAX_SPLIT: tl.constexpr):
    """Grid (B*G*nsplit,): program -> (position, vocabulary split)."""
    pid = tl.program_id(0)
    pos = pid // nsplit
    split = pid % nsplit
    b = pos // G
    g = pos % G
    done, x0, sc, p_cur = position_stats(
        logits_ptr, sl_b, sl_g, uncond_ptr, su_b, su_g, x_ptr, sx_b, b, g, G, V, split, nsplit, tiles_per_split,
        mask_id, mask_sup, inv_t, cfg1, sp_ptr, n_sp, dem_ptr, n_dem, seed, step, part_ptr, cnt_ptr,
        HAS_CFG, SAMPLE, SCALE_T, MODE, SEED_MODE, STEP_PTR, PACKED, BLOCK, MAX_SPLIT)
    if done:
        tl.store(x0_ptr + pos, x0)
        tl.store(score_ptr + pos, sc)
        tl.store(pcur_ptr + pos, p_cur)


@dataclass
class Plan:
    """Everything a launch needs; `kernels-report` compiles exactly this (from meta tensors)."""

    kernel: object
    grid: tuple[int, ...]
    args: list
    meta: dict
    cfg: config.StatsConfig
    outputs: tuple  # the tensors the op returns


def packed(*tensors) -> bool:
    """bf16 rows that start on 4-byte boundaries: the vocabulary loop loads them as int32 pairs."""
    return all(t.dtype == torch.bfloat16 and t.data_ptr() % 4 == 0 and t.stride(0) % 2 == 0 and t.stride(1) % 2 == 0
               for t in tensors)


def stats_args(logits, x, uncond_logits, mask_id, temperature, score, score_temperature, suppress_ids, demote_ids,
               cfg_scale, seed, step, cc=None):
    """(head, tail, meta): kernel arguments around the shape/split ints, shared with denoise_step."""
    b = logits.shape[0]
    dev = logits.device
    seed_v, seed_mode = launch.seed_arg(seed, b, dev)
    step_v, step_ptr = launch.step_arg(step, dev)
    sp, n_sp, mask_sup = launch.special_ids(mask_id, tuple(suppress_ids), dev)
    u = uncond_logits if uncond_logits is not None else logits
    head = [logits, logits.stride(0), logits.stride(1), u, u.stride(0), u.stride(1), x, x.stride(0)]
    tail = [mask_id, mask_sup, launch.fp32(1.0 / temperature if temperature > 0 else 1.0), launch.fp32(cfg_scale + 1.0),
            sp, n_sp, launch.id_tensor(tuple(demote_ids), dev), len(demote_ids), seed_v, step_v]
    cfg = config.stats_tile(logits.shape[2], config.on_gpu(dev), temperature > 0, config.capability(dev, cc))
    meta = dict(HAS_CFG=uncond_logits is not None, SAMPLE=temperature > 0, SCALE_T=score_temperature == "sampling",
                MODE=MODES[score], SEED_MODE=seed_mode, STEP_PTR=step_ptr, PACKED=packed(logits, u), BLOCK=cfg.block_v,
                MAX_SPLIT=config.MAX_SPLIT, num_warps=cfg.num_warps, enable_fp_fusion=False)
    if cfg.maxnreg:
        meta["maxnreg"] = cfg.maxnreg
    return cfg, head, tail, meta


def plan(logits, x, *, mask_id, temperature=0.0, score="prob", score_temperature="none", suppress_ids=(),
         demote_ids=(), uncond_logits=None, cfg_scale=0.0, seed=0, step=0, slots_fn=launch.slots, cc=None) -> Plan:
    """The token_stats launch for these inputs: split sized from the kernel's real occupancy (`cc`: the
    target a meta-tensor plan is made for, else the device's)."""
    b, g, v = logits.shape
    dev = logits.device
    cfg, head, tail, meta = stats_args(logits, x, uncond_logits, mask_id, temperature, score, score_temperature,
                                       suppress_ids, demote_ids, cfg_scale, seed, step, cc)
    outs = [torch.empty((b, g), dtype=dt, device=dev) for dt in (torch.int64, torch.float32, torch.float32)]

    def args_for(c: config.StatsConfig) -> list:
        ws = workspace.get(dev, b * g, 0, b * g * c.nsplit * NFIELDS if c.nsplit > 1 else 0)
        return [*head, g, v, c.nsplit, c.tiles_per_split, *tail, ws.floats, ws.counters, *outs]

    cfg = config.split(cfg, v, b * g, slots_fn(token_stats_kernel, args_for(cfg.probe()), meta, dev))
    return Plan(token_stats_kernel, (b * g * cfg.nsplit,), args_for(cfg), meta, cfg, tuple(outs))


def token_stats(logits, x, *, mask_id, temperature=0.0, score="prob", score_temperature="none", suppress_ids=(),
                demote_ids=(), uncond_logits=None, cfg_scale=0.0, seed=0, step=0):
    """Triton token_stats (reference signature; seed/step may also be device int64 tensors): one launch."""
    b, g, _ = logits.shape
    if b * g == 0:
        return tuple(torch.empty((b, g), dtype=dt, device=logits.device)
                     for dt in (torch.int64, torch.float32, torch.float32))
    p = plan(logits, x, mask_id=mask_id, temperature=temperature, score=score, score_temperature=score_temperature,
             suppress_ids=suppress_ids, demote_ids=demote_ids, uncond_logits=uncond_logits, cfg_scale=cfg_scale,
             seed=seed, step=step)
    launch.run(p.kernel, p.grid, p.args, p.meta, device=logits.device, op="token_stats")
    return p.outputs
