"""Launch configurations, chosen from the shape and the device (plus env overrides), never autotuned.

Autotuning needs a driver (it fails in the interpreter) and makes CUDA-graph capture and the
kernels-report depend on timing noise, so every choice here is a pure function of its inputs.
Env overrides (tests use them to force tile and split paths on tiny shapes):
WARMKERN_TRITON_BLOCK_V, WARMKERN_TRITON_SPLIT, WARMKERN_TRITON_BLOCK_D, WARMKERN_TRITON_WARPS,
WARMKERN_TRITON_WINDOW_HINT.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

GPU_BLOCK_V = 4096  # vocabulary tile on GPU (issue: 4k-16k elements)
INTERP_BLOCK_V = 8192  # the interpreter is fastest with few, big tiles
GPU_BLOCK_D = 1024
INTERP_SM_COUNT = 4  # pretend SM count off-GPU, so small B*G exercises the split path
# denoise_step skips positions outside [lo, hi), which the host cannot see without a sync: size its
# split for a semi-autoregressive block of this many positions (LLaDA's block length).
WINDOW_HINT = 32


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else None


def next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def sm_count(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return INTERP_SM_COUNT


@dataclass(frozen=True)
class StatsConfig:
    """token_stats / denoise_step launch: vocabulary tile, split count, split chunk, warps."""

    block_v: int
    nsplit: int
    chunk: int
    num_warps: int


def stats_config(rows: int, vocab: int, sms: int, on_gpu: bool) -> StatsConfig:
    """Tile the vocabulary; split it across programs when `rows` cannot fill ~2 waves of SMs."""
    block_v = _env_int("WARMKERN_TRITON_BLOCK_V") or (GPU_BLOCK_V if on_gpu else INTERP_BLOCK_V)
    block_v = max(16, min(next_pow2(block_v), next_pow2(vocab)))
    tiles = -(-vocab // block_v)
    forced = _env_int("WARMKERN_TRITON_SPLIT")
    if forced is not None:
        nsplit = forced
    elif rows < 2 * sms:
        nsplit = -(-2 * sms // max(rows, 1))
    else:
        nsplit = 1
    nsplit = max(1, min(nsplit, tiles))
    chunk = -(-tiles // nsplit) * block_v
    nsplit = -(-vocab // chunk)  # drop empty trailing splits
    # 16 warps x 4096: 8 elements (one 16-byte bf16 vector) per thread per tile, and registers low
    # enough for 2-4 resident blocks per SM (kernels-report: 57-102 regs; 8 warps needed 80-166)
    warps = _env_int("WARMKERN_TRITON_WARPS") or (16 if on_gpu else 4)
    return StatsConfig(block_v=block_v, nsplit=nsplit, chunk=chunk, num_warps=warps)


def window_rows(b: int, g: int) -> int:
    """Rows a denoise_step is expected to compute: B * min(G, window hint)."""
    return b * min(g, _env_int("WARMKERN_TRITON_WINDOW_HINT") or WINDOW_HINT)


def select_warps(g: int) -> int:
    """Warps of the per-row selection program (a bitonic sort over next_pow2(G) 64-bit keys)."""
    return 4 if g <= 512 else 8


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
