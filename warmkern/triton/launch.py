"""Host side shared by every Triton launch: device guard, seed/step/id arguments, occupancy, the launch.

- Every launch runs under its tensors' device (`device_context`): Triton launches on the *current*
  device and that device's current stream, so logits on cuda:1 while cuda:0 is current would
  otherwise run on the wrong device.
- `seed` / `step` are Python ints, or `row_seeds` ([B], 0-d or [1] int64: per-row seeds, a stride-0
  view for one shared seed) and `step_tensor` (0-d int64) device tensors, so a captured CUDA graph can
  be replayed with an advancing step: nothing is baked in.
- In the interpreter (CPU tensors) launches are serialised by a lock: the interpreter's grid state
  and the per-device workspace are shared by every Python thread (issue 12.15). On a GPU, launches
  from several threads go to their streams' own workspaces and need no lock.
- Device id lists are cached forever (no eviction: a captured graph keeps their addresses) and are
  created eagerly only: building one while a stream is captured would be a host-to-device copy.
- No host sync, and no allocation but the outputs once the workspace is warm (tests count both).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import numpy as np
import torch

from warmkern import launches
from warmkern.triton import config, hw

_IDS: dict[tuple[tuple[int, ...], str, torch.device], torch.Tensor] = {}
_SLOTS: dict[tuple, int] = {}
INTERPRETER_LOCK = threading.RLock()  # one interpreted op at a time (plan + launch), see the module docstring


def device_context(device: torch.device) -> contextlib.AbstractContextManager:
    """The device guard of a launch (tests replace it to record what it was entered with)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def serialised(device: torch.device) -> contextlib.AbstractContextManager:
    """Held around an op's plan and launch: the interpreter lock on CPU tensors, nothing on a GPU."""
    return INTERPRETER_LOCK if device.type == "cpu" else contextlib.nullcontext()


def run(kernel, grid: tuple[int, ...], args: list, meta: dict, *, device: torch.device, op: str) -> None:
    """Launch `kernel` on `device` (and that device's current stream) and count the launch."""
    with device_context(device), serialised(device):
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


IN_SOFTMAX = 1  # flag bits of a special id's code (id * 8 + flags)
CANDIDATE = 2
SUPPRESSED = 4  # -inf everywhere, truncation included (pick + score suppressed ids still take part in it)
MAX_CODED_VOCAB = 2**28


def special_codes(mask_id: int, suppress: tuple[int, ...], pick_suppress: tuple[int, ...],
                  score_suppress: tuple[int, ...]) -> tuple[int, ...]:
    """Sorted codes id * 8 + flags of every id that is not a plain entry (mask_id and the three lists).

    The vocabulary loop leaves them out (-inf) and the position's last program adds each one after
    the loop by its flags: IN_SOFTMAX (mask_id, pick_suppress_ids: in the score softmax, never x0),
    CANDIDATE (score_suppress_ids: may be x0, out of the softmax); suppress_ids get neither and are
    SUPPRESSED (the truncation search leaves them out too; every other special id takes part in it).
    """
    sup, pick, score = set(suppress), set(pick_suppress) | {mask_id}, set(score_suppress)
    codes = []
    for v in sorted(sup | pick | score):
        flags = SUPPRESSED if v in sup else (0 if v in score else IN_SOFTMAX) | (0 if v in pick else CANDIDATE)
        codes.append(v * 8 + flags)
    return tuple(codes)


def special_ids(mask_id: int, suppress: tuple[int, ...], pick_suppress: tuple[int, ...],
                score_suppress: tuple[int, ...], vocab: int, device: torch.device) -> tuple[torch.Tensor, int]:
    """(int32 tensor of `special_codes`, their count) for the kernels."""
    if vocab >= MAX_CODED_VOCAB:
        raise ValueError(f"logits: expected a vocabulary below {MAX_CODED_VOCAB} entries, got {vocab}")
    codes = special_codes(mask_id, tuple(suppress), tuple(pick_suppress), tuple(score_suppress))
    return _ids(codes, torch.int32, device), len(codes)


def shard_special_ids(mask_id: int, suppress: tuple[int, ...], pick_suppress: tuple[int, ...],
                      score_suppress: tuple[int, ...], vocab_start: int, vocab: int, vocab_total: int,
                      device: torch.device) -> tuple[torch.Tensor, int]:
    """`special_ids` of a vocabulary shard [vocab_start, vocab_start + vocab): the global ids' codes that fall in
    it, shifted to shard-local ids (flags kept), so the shard's loop treats them as the one-device loop does."""
    if vocab_total >= MAX_CODED_VOCAB:
        raise ValueError(f"vocab_total: expected a vocabulary below {MAX_CODED_VOCAB} entries, got {vocab_total}")
    codes = special_codes(mask_id, tuple(suppress), tuple(pick_suppress), tuple(score_suppress))
    local = tuple(c - 8 * vocab_start for c in codes if vocab_start <= (c >> 3) < vocab_start + vocab)
    return _ids(local, torch.int32, device), len(local)


def fp32(value: float) -> float:
    """The fp32 value of a Python float (what the kernel's fp32 argument holds), without torch."""
    return float(np.float32(value))


def seed_arg(seed: int, row_seeds: torch.Tensor | None, b: int, device: torch.device) -> tuple[object, int, int]:
    """(kernel argument, its row stride, SEED_MODE): 0 = the int `seed` for every row, 1 = `row_seeds`
    (int64 on the launch device: [B], or 0-d / [1] shared by every row, read with stride 0)."""
    if row_seeds is None:
        return int(seed), 0, 0
    if (not isinstance(row_seeds, torch.Tensor) or row_seeds.dtype != torch.int64 or row_seeds.device != device
            or tuple(row_seeds.shape) not in ((), (1,), (b,))):
        got = (f"{row_seeds.dtype} of shape {tuple(row_seeds.shape)} on {row_seeds.device}"
               if isinstance(row_seeds, torch.Tensor) else type(row_seeds).__name__)
        raise ValueError(f"row_seeds: expected an int64 tensor of shape (), (1,) or ({b},) on {device}, got {got}")
    stride = row_seeds.stride(0) if row_seeds.dim() == 1 and row_seeds.shape[0] > 1 else 0
    return row_seeds, stride, 1


def step_arg(step: int, step_tensor: torch.Tensor | None, device: torch.device) -> tuple[object, bool]:
    """(kernel argument, STEP_PTR): the int `step`, or `step_tensor` (0-d or [1] int64 on the launch device)."""
    if step_tensor is None:
        return int(step), False
    if (not isinstance(step_tensor, torch.Tensor) or step_tensor.dtype != torch.int64
            or step_tensor.device != device or step_tensor.numel() != 1 or step_tensor.dim() > 1):
        got = (f"{step_tensor.dtype} of shape {tuple(step_tensor.shape)} on {step_tensor.device}"
               if isinstance(step_tensor, torch.Tensor) else type(step_tensor).__name__)
        raise ValueError(f"step_tensor: expected a 0-d int64 tensor on {device}, got {got}")
    return step_tensor, True


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
