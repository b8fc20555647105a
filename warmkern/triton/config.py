"""Launch configurations, chosen from the shape and the device (plus env overrides), never autotuned.

Autotuning needs a driver (it fails in the interpreter) and makes CUDA-graph capture and the
kernels-report depend on timing noise, so every choice here is a pure function of its inputs.
Env overrides (tests use them to force tile and split paths on tiny shapes):
WARMKERN_TRITON_BLOCK_V, WARMKERN_TRITON_SPLIT, WARMKERN_TRITON_BLOCK_D, WARMKERN_TRITON_WARPS,
WARMKERN_TRITON_WINDOW, WARMKERN_TRITON_BLOCK_T (the truncation passes' tile).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

GPU_BLOCK_V = 2048  # vocabulary tile on GPU: one 16-byte bf16 vector per thread with 8 warps
GPU_STATS_WARPS = 8
# register caps of the stats kernels (ptxas otherwise takes ~100-160 and gets 1-2 CTAs per SM):
# greedy loops need ~72 -> 3 CTAs of 8 warps per SM on sm_90, i.e. 24 KB of prefetched logits in
# flight per SM for 3.35-4.8 TB/s; sm_80 (1.6-2 TB/s, and ptxas needs a few more registers there)
# keeps 2 CTAs, 16 KB. T > 0 (Philox + Gumbel in the loop, issue-bound) keeps 2 CTAs.
# kernels-report asserts 0 spills for all of them. Where 80 spills on sm_90 (kernels-report, LLaDA shapes:
# margin / entropy scores, whose post-loop code keeps more live, and the draft prior's id + bias), the
# greedy cap is 96: 88 still spills at B = 1, and 88 or 96 both give 2 CTAs per SM (16 KB in flight).
# On sm_80, margin / entropy at T > 0 with CFG spill at 128 on the split path (B = 1): 136 -> 1 CTA.
GREEDY_MAXNREG = {90: 80, 80: 96}
GREEDY_HEAVY_MAXNREG = {90: 96, 80: 96}
SAMPLE_MAXNREG = 128
SAMPLE_HEAVY_CFG_MAXNREG = {90: 128, 80: 136}
DEFAULT_CC = 90  # the target a meta-tensor plan is made for when none is given
INTERP_BLOCK_V = 8192  # the interpreter is fastest with few, big tiles
INTERP_BLOCK_T = 2048  # truncation passes: [BLOCK_T / E, E] tiles, E entries of a row per thread
GPU_TRUNC_E = 8  # 16 bytes of bf16 per thread and pass: the loads vectorise, per-row accumulators stay in-thread
GPU_TRUNC_E_CFG = 4  # with CFG a pass holds two tiles: E = 8 spills at the 128 cap (margin T > 0 + prior), 4 does not
INTERP_TRUNC_E = 4
GPU_BLOCK_D = 1024
MAX_SPLIT = 32  # most programs one position's vocabulary is split across (merged in one tree)
INTERP_SLOTS = 8  # pretend resident programs off-GPU, so small shapes exercise the split path
# denoise_step computes only the window [lo, hi), which the host cannot see without a sync: its grid
# has this many programs per batch row (LLaDA's block length); a larger window loops.
WINDOW = 32


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else None


def on_gpu(device) -> bool:
    """GPU launch configuration for CUDA tensors and for meta tensors (kernels-report plans GPU launches
    from meta tensors); the interpreter configuration for CPU tensors."""
    return device.type != "cpu"


def capability(device, cc: int | None = None) -> int:
    """The compute capability a launch on `device` is planned for (`cc` when given: kernels-report)."""
    if cc is not None:
        return cc
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return major * 10 + minor
    return DEFAULT_CC


def next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


@dataclass(frozen=True)
class StatsConfig:
    """token_stats / denoise_step launch: vocabulary tile, warps, split count and tiles per split."""

    block_v: int
    num_warps: int
    nsplit: int = 1
    tiles_per_split: int = 1
    maxnreg: int | None = None
    block_t: int = 128  # tile of the truncation passes and of the rare +inf count: [block_t / trunc_e, trunc_e]
    trunc_e: int = 1

    @property
    def tiles(self) -> int:
        return self.nsplit * self.tiles_per_split

    def probe(self) -> StatsConfig:
        """The configuration occupancy is measured on: nsplit 2, so the split-merge code is compiled in."""
        return StatsConfig(self.block_v, self.num_warps, 2, self.tiles_per_split, self.maxnreg, self.block_t,
                           self.trunc_e)


def stats_tile(vocab: int, on_gpu: bool, sample: bool, cc: int = DEFAULT_CC, truncate: bool = False,
               prior: bool = False, cfg: bool = False, heavy: bool = False) -> StatsConfig:
    """Tile, warps and register cap (what the kernel is compiled for) for a compute-capability-cc GPU;
    `split` decides the split."""
    block_v = _env_int("WARMKERN_TRITON_BLOCK_V") or (GPU_BLOCK_V if on_gpu else INTERP_BLOCK_V)
    block_v = max(16, min(next_pow2(block_v), next_pow2(vocab)))
    warps = _env_int("WARMKERN_TRITON_WARPS") or (GPU_STATS_WARPS if on_gpu else 4)
    trunc_e = (GPU_TRUNC_E_CFG if cfg else GPU_TRUNC_E) if on_gpu else INTERP_TRUNC_E
    block_t = _env_int("WARMKERN_TRITON_BLOCK_T") or (32 * warps * trunc_e if on_gpu else INTERP_BLOCK_T)
    block_t = max(16, min(next_pow2(block_t), next_pow2(vocab)))
    trunc_e = min(trunc_e, block_t)
    tiles = -(-vocab // block_v)
    maxnreg = None
    if on_gpu:
        maxnreg = register_cap(90 if cc >= 90 else 80, sample or truncate, heavy, prior, cfg)
    return StatsConfig(block_v=block_v, num_warps=warps, nsplit=1, tiles_per_split=tiles, maxnreg=maxnreg,
                       block_t=block_t, trunc_e=trunc_e)


def register_cap(cc: int, sample: bool, heavy: bool, prior: bool, cfg: bool) -> int:
    """The stats kernels' register cap on target cc (see the caps above). heavy: margin / entropy score."""
    if sample:
        return SAMPLE_HEAVY_CFG_MAXNREG[cc] if heavy and cfg else SAMPLE_MAXNREG
    return GREEDY_HEAVY_MAXNREG[cc] if heavy or prior else GREEDY_MAXNREG[cc]


def split(cfg: StatsConfig, vocab: int, programs: int, slots: int) -> StatsConfig:
    """Split the vocabulary of each of `programs` work items so the grid fills `slots` resident
    programs (SMs x CTAs per SM at the kernel's real occupancy) in one wave, never overfilling it."""
    tiles = -(-vocab // cfg.block_v)
    forced = _env_int("WARMKERN_TRITON_SPLIT")
    nsplit = forced if forced is not None else max(1, slots // max(programs, 1))
    nsplit = max(1, min(nsplit, tiles, MAX_SPLIT))
    per = -(-tiles // nsplit)
    return StatsConfig(cfg.block_v, cfg.num_warps, nsplit=-(-tiles // per), tiles_per_split=per, maxnreg=cfg.maxnreg,
                       block_t=cfg.block_t, trunc_e=cfg.trunc_e)


def window(g: int) -> int:
    """Programs per batch row of a denoise_step grid: min(G, window)."""
    return max(1, min(g, _env_int("WARMKERN_TRITON_WINDOW") or WINDOW))


@dataclass(frozen=True)
class EmbedConfig:
    block_d: int
    num_warps: int


def embed_config(dim: int, on_gpu: bool) -> EmbedConfig:
    """One program per (position, D tile); a whole row per program in the interpreter."""
    default = GPU_BLOCK_D if on_gpu else 4096
    block_d = _env_int("WARMKERN_TRITON_BLOCK_D") or default
    block_d = max(16, min(next_pow2(block_d), next_pow2(dim)))
    return EmbedConfig(block_d=block_d, num_warps=4)


def select_warps(g: int, alg: bool = False) -> int:
    """Warps of the standalone per-row selection program. alg_temp (a Philox draw per position) takes 8:
    at 4, ptxas for sm_90 spills 8 bytes (kernels-report)."""
    return 4 if g <= 512 and not alg else 8
