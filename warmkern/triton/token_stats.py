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
                       mask_id, inv_t, cfg1, sp_ptr, n_sp, seed, seed_stride, step, prior_ptr, spr_b, bias_ptr,
                       spr_bias, top_k, top_p, part_ptr, cnt_ptr, x0_ptr, score_ptr, pcur_ptr,
                       HAS_CFG: tl.constexpr, SAMPLE: tl.constexpr, SCALE_T: tl.constexpr, MODE: tl.constexpr,
                       SEED_MODE: tl.constexpr, STEP_PTR: tl.constexpr, PACKED: tl.constexpr, PRIOR: tl.constexpr,
                       TOPK: tl.constexpr, TOPP: tl.constexpr, TRUNC: tl.constexpr, BLOCK: tl.constexpr,
                       TR: tl.constexpr, TE: tl.constexpr, MAX_SPLIT: tl.constexpr):
    """Grid (B*G*nsplit,): program -> (position, vocabulary split)."""
    pid = tl.program_id(0)
    pos = pid // nsplit
    split = pid % nsplit
    b = pos // G
    g = pos % G
    done, x0, sc, p_cur = position_stats(
        logits_ptr, sl_b, sl_g, uncond_ptr, su_b, su_g, x_ptr, sx_b, b, g, V, split, nsplit, tiles_per_split,
        mask_id, inv_t, cfg1, sp_ptr, n_sp, seed, seed_stride, step, prior_ptr, spr_b, bias_ptr, spr_bias, top_k,
        top_p, part_ptr, cnt_ptr, G, HAS_CFG, SAMPLE, SCALE_T, MODE, SEED_MODE, STEP_PTR, PACKED, PRIOR, TOPK, TOPP,
        TRUNC, BLOCK, TR, TE, MAX_SPLIT)
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


@dataclass(frozen=True)
class StatsArgs:
    """token_stats' arguments (the reference's names), shared by token_stats and denoise_step's plans."""

    mask_id: int
    temperature: float = 0.0
    score: str = "prob"
    score_temperature: str = "none"
    suppress_ids: tuple = ()
    pick_suppress_ids: tuple = ()
    score_suppress_ids: tuple = ()
    cfg_scale: float = 0.0
    seed: int = 0
    row_seeds: object = None
    step: int = 0
    step_tensor: object = None
    top_k: int = 0
    top_p: float = 1.0
    prior_ids: object = None
    prior_bias: object = None


def prior_args(prior_ids, prior_bias, logits) -> tuple[list, int]:
    """([prior_ptr, its row stride, bias (float or tensor), its row stride], PRIOR constexpr)."""
    if prior_ids is None:
        return [logits, 0, 0.0, 0], 0
    if prior_bias is None:
        raise ValueError("prior_bias: expected a float or a float32 tensor with prior_ids, got None")
    if isinstance(prior_bias, torch.Tensor):
        bias = prior_bias.reshape(-1)
        if bias.dtype != torch.float32 or bias.device != logits.device or bias.numel() not in (1, logits.shape[0]):
            raise ValueError(f"prior_bias: expected a float or a float32 tensor of shape ({logits.shape[0]},) on "
                             f"{logits.device}, got {bias.dtype} of shape {tuple(prior_bias.shape)}")
        return [prior_ids, prior_ids.stride(0), bias, bias.stride(0) if bias.numel() > 1 else 0], 2
    return [prior_ids, prior_ids.stride(0), launch.fp32(prior_bias), 0], 1


def stats_args(logits, x, uncond_logits, a: StatsArgs, cc=None):
    """(cfg, head, tail, meta): kernel arguments around the shape/split ints, shared with denoise_step."""
    b, _, v = logits.shape
    dev = logits.device
    seed_v, seed_stride, seed_mode = launch.seed_arg(a.seed, a.row_seeds, b, dev)
    step_v, step_ptr = launch.step_arg(a.step, a.step_tensor, dev)
    sp, n_sp = launch.special_ids(a.mask_id, a.suppress_ids, a.pick_suppress_ids, a.score_suppress_ids, v, dev)
    prior, prior_mode = prior_args(a.prior_ids, a.prior_bias, logits)
    topk, topp = 0 < a.top_k < v, a.top_p < 1.0
    u = uncond_logits if uncond_logits is not None else logits
    head = [logits, logits.stride(0), logits.stride(1), u, u.stride(0), u.stride(1), x, x.stride(0)]
    inv_t = launch.fp32(1.0 / a.temperature if a.temperature > 0 else 1.0)
    tail = [a.mask_id, inv_t, launch.fp32(a.cfg_scale + 1.0), sp, n_sp, seed_v, seed_stride, step_v, *prior,
            int(a.top_k), launch.fp32(a.top_p)]
    cfg = config.stats_tile(v, config.on_gpu(dev), a.temperature > 0, config.capability(dev, cc), topk or topp,
                             prior_mode != 0, uncond_logits is not None, a.score in ("margin", "entropy"))
    meta = dict(HAS_CFG=uncond_logits is not None, SAMPLE=a.temperature > 0, SCALE_T=a.score_temperature == "sampling",
                MODE=MODES[a.score], SEED_MODE=seed_mode, STEP_PTR=step_ptr, PACKED=packed(logits, u), PRIOR=prior_mode,
                TOPK=topk, TOPP=topp, TRUNC=topk or topp, BLOCK=cfg.block_v, TR=cfg.block_t // cfg.trunc_e,
                TE=cfg.trunc_e, MAX_SPLIT=config.MAX_SPLIT, num_warps=cfg.num_warps, enable_fp_fusion=False)
    if cfg.maxnreg:
        meta["maxnreg"] = cfg.maxnreg
    return cfg, head, tail, meta


def plan(logits, x, *, uncond_logits=None, slots_fn=launch.slots, cc=None, **stats_kw) -> Plan:
    """The token_stats launch for these inputs: split sized from the kernel's real occupancy (`cc`: the
    target a meta-tensor plan is made for, else the device's)."""
    b, g, v = logits.shape
    dev = logits.device
    cfg, head, tail, meta = stats_args(logits, x, uncond_logits, StatsArgs(**stats_kw), cc)
    outs = [torch.empty((b, g), dtype=dt, device=dev) for dt in (torch.int64, torch.float32, torch.float32)]

    def args_for(c: config.StatsConfig) -> list:
        ws = workspace.get(dev, b * g, 0, b * g * c.nsplit * NFIELDS if c.nsplit > 1 else 0)
        return [*head, g, v, c.nsplit, c.tiles_per_split, *tail, ws.floats, ws.counters, *outs]

    cfg = config.split(cfg, v, b * g, slots_fn(token_stats_kernel, args_for(cfg.probe()), meta, dev))
    return Plan(token_stats_kernel, (b * g * cfg.nsplit,), args_for(cfg), meta, cfg, tuple(outs))


def token_stats(logits, x, *, uncond_logits=None, mask_id, temperature=0.0, score="prob", score_temperature="none",
                suppress_ids=(), pick_suppress_ids=(), score_suppress_ids=(), cfg_scale=0.0, seed=0, row_seeds=None,
                step=0, step_tensor=None, top_k=0, top_p=1.0, prior_ids=None, prior_bias=None):
    """Triton token_stats (the reference's signature): one launch. Passes over the logits per position:
    1, or 2 + the truncation search's bracket passes with top_k / top_p (7 on model-like rows; see `truncate`)."""
    b, g, _ = logits.shape
    if b * g == 0:
        return tuple(torch.empty((b, g), dtype=dt, device=logits.device)
                     for dt in (torch.int64, torch.float32, torch.float32))
    with launch.serialised(logits.device):
        p = plan(logits, x, uncond_logits=uncond_logits, mask_id=mask_id, temperature=temperature, score=score,
                 score_temperature=score_temperature, suppress_ids=tuple(suppress_ids),
                 pick_suppress_ids=tuple(pick_suppress_ids), score_suppress_ids=tuple(score_suppress_ids),
                 cfg_scale=cfg_scale, seed=seed, row_seeds=row_seeds, step=step, step_tensor=step_tensor, top_k=top_k,
                 top_p=top_p, prior_ids=prior_ids, prior_bias=prior_bias)
        launch.run(p.kernel, p.grid, p.args, p.meta, device=logits.device, op="token_stats")
    return p.outputs
