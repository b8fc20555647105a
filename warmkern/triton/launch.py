"""Host side shared by every Triton launch: device guard, seed/step/id arguments, occupancy, the launch.

- Every launch runs under its tensors' device (`device_context`): Triton launches on the *current*
  device and that device's current stream, so logits on cuda:1 while cuda:0 is current would
  otherwise run on the wrong device.
- `seed` / `step` may be Python ints or device int64 tensors (0-d; a seed may also be [B], one per
  row), so a captured CUDA graph can be replayed with an advancing step: nothing is baked in.
- Device id lists are cached forever (no eviction: a captured graph keeps their addresses) and are
  created eagerly only: building one while a stream is captured would be a host-to-device copy.
- No host sync, and no allocation but the outputs once the workspace is warm (tests count both).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch

from warmkern import launches
from warmkern.triton import config, hw

_IDS: dict[tuple[tuple[int, ...], str, torch.device], torch.Tensor] = {}
_SLOTS: dict[tuple, int] = {}


def device_context(device: torch.device) -> contextlib.AbstractContextManager:
    """The device guard of a launch (tests replace it to record what it was entered with)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def run(kernel, grid: tuple[int, ...], args: list, meta: dict, *, device: torch.device, op: str) -> None:
    """Launch `kernel` on `device` (and that device's current stream) and count the launch."""
    with device_context(device):
        kernel[grid](*args, **meta)
        launches.count(op)


def _ids(ids: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    key = (ids, str(dtype), device)
    t = _IDS.get(key)
    if t is None:
        if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
            raise RuntimeError(f"warmkern triton: id list {list(ids)} is first used inside a CUDA-graph capture; "
                               "run the step once eagerly with the same ids before capturing")
        t = torch.tensor(ids or (0,), dtype=dtype, device=device)
        _IDS[key] = t
    return t


def id_tensor(ids: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Id list as an int64 tensor (a dummy element when empty: kernels loop over n, never read it)."""
    return _ids(tuple(ids), torch.int64, device)


def special_ids(mask_id: int, suppress_ids: tuple[int, ...], device: torch.device) -> tuple[torch.Tensor, int, int]:
    """Sorted ids the vocabulary loop sets to -inf (suppressed ones + mask_id), their count, and
    whether mask_id itself is suppressed (else it rejoins the softmax after the loop)."""
    ids = tuple(sorted(set(suppress_ids) | {mask_id}))
    return _ids(ids, torch.int32, device), len(ids), int(mask_id in set(suppress_ids))


def fp32(value: float) -> float:
    """The fp32 value of a Python float (what the kernel's fp32 argument holds), without torch."""
    return float(np.float32(value))


def seed_arg(seed: int | torch.Tensor, b: int, device: torch.device) -> tuple[object, int]:
    """(kernel argument, SEED_MODE): 0 = int, 1 = 0-d int64 tensor, 2 = [B] int64 tensor (per row)."""
    if isinstance(seed, torch.Tensor):
        if seed.dtype != torch.int64 or seed.device != device or seed.dim() > 1 or (seed.dim() == 1 and
                                                                                     seed.shape[0] != b):
            raise ValueError(f"seed: expected an int or an int64 tensor of shape () or ({b},) on {device}, got "
                             f"{seed.dtype} of shape {tuple(seed.shape)} on {seed.device}")
        return (seed, 1) if seed.dim() == 0 else (seed.contiguous(), 2)
    return int(seed), 0


def step_arg(step: int | torch.Tensor, device: torch.device) -> tuple[object, bool]:
    """(kernel argument, STEP_PTR): a Python int, or a 0-d int64 tensor on the launch device."""
    if isinstance(step, torch.Tensor):
        if step.dtype != torch.int64 or step.device != device or step.dim() != 0:
            raise ValueError(f"step: expected an int or a 0-d int64 tensor on {device}, got {step.dtype} of shape "
                             f"{tuple(step.shape)} on {step.device}")
        return step, True
    return int(step), False


def device_gpu(device: torch.device) -> hw.Gpu:
    """The occupancy-relevant numbers of a real CUDA device."""
    p = torch.cuda.get_device_properties(device)
    return hw.Gpu(p.name, p.major * 10 + p.minor, p.multi_processor_count, 0.0, 0.0,
                  getattr(p, "shared_memory_per_multiprocessor", 228 * 1024),
                  getattr(p, "regs_per_multiprocessor", 65536),
                  getattr(p, "max_threads_per_multi_processor", 2048) // 32)


def slots(kernel, args: list, meta: dict, device: torch.device) -> int:
    """Programs resident at once (SMs x CTAs per SM) for this kernel as compiled for `device`."""
    if device.type != "cuda":
        return config.INTERP_SLOTS
    key = (kernel.fn.__name__, device.index, tuple(sorted(meta.items())),
           tuple(a.dtype if isinstance(a, torch.Tensor) else type(a) for a in args))
    if key not in _SLOTS:
        with device_context(device):
            compiled = kernel.warmup(*args, grid=(1,), **meta)
            compiled._init_handles()  # loads the cubin: n_regs is known from then on
        gpu = device_gpu(device)
        per_sm = hw.blocks_per_sm(gpu, compiled.n_regs, compiled.metadata.shared, meta["num_warps"])
        _SLOTS[key] = gpu.sms * max(per_sm, 1)
    return _SLOTS[key]


SlotsFn = Callable[[object, list, dict, torch.device], int]
