"""The `cpu` backend: thin Python wrappers over the fused C++ kernels of csrc/ (torch.ops.warmkern_cpu).

ops.py calls these with normalised, validated arguments (alpha/k/lo/hi as [B] tensors, id lists as
tuples, `out` given). The fake impls registered here let torch.compile and opcheck trace the
warmkern_cpu ops without running them.

The kernels pick AVX-512, AVX2 or baseline code at run time from the CPU (the wheel is built for
generic x86-64/aarch64); WARMKERN_CPU_ISA=base|avx2|avx512 caps the choice (read on every call),
which the tests use to check every variant against the reference.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

_IMPORT_ERROR: str | None = None
try:
    from warmkern import _C  # noqa: F401  (registers torch.ops.warmkern_cpu)
except Exception as err:  # pragma: no cover - depends on the build
    _IMPORT_ERROR = f"{type(err).__name__}: {err}"

_OPS = ("warm_embed", "token_stats", "select", "denoise_step")


def _registered() -> bool:
    try:
        return all(hasattr(torch.ops.warmkern_cpu, name) for name in _OPS)
    except (AttributeError, RuntimeError):  # pragma: no cover - namespace missing
        return False


def unavailable_reason() -> str | None:
    """None when the extension is built and its kernels are registered."""
    if _IMPORT_ERROR is not None:
        return (
            "the C++ extension warmkern._C is not built (installed with WARMKERN_NO_EXT=1, or the build "
            f"failed: {_IMPORT_ERROR}); rebuild with `pip install --no-build-isolation -e .`"
        )
    if not _registered():
        return "warmkern._C is stale (no warmkern_cpu kernels); rebuild with `pip install --no-build-isolation -e .`"
    return None


# ----------------------------------------------------------------------------- fake impls
if _IMPORT_ERROR is None and _registered():

    @torch.library.register_fake("warmkern_cpu::warm_embed")
    def _(weight, x, draft, keep, out, mask_id, alpha, scale):
        return None

    @torch.library.register_fake("warmkern_cpu::token_stats")
    def _(logits, x, uncond_logits, mask_id, temperature, score, score_temperature, suppress_ids, demote_ids,
          cfg_scale, seed, step):
        b, g = logits.shape[:2]
        return (
            logits.new_empty((b, g), dtype=torch.int64),
            logits.new_empty((b, g), dtype=torch.float32),
            logits.new_empty((b, g), dtype=torch.float32),
        )

    @torch.library.register_fake("warmkern_cpu::select")
    def _(score, x0, p_cur, x, provisional, mask_id, lo, hi, k, threshold, factor, remask_threshold, remask_max):
        b = x.shape[0]
        return x.new_empty((b,), dtype=torch.int64), x.new_empty((b,), dtype=torch.int64)

    @torch.library.register_fake("warmkern_cpu::denoise_step")
    def _(logits, x, provisional, uncond_logits, mask_id, lo, hi, k, threshold, factor, remask_threshold,
          remask_max, temperature, score, score_temperature, suppress_ids, demote_ids, cfg_scale, seed, step):
        b = x.shape[0]
        return x.new_empty((b,), dtype=torch.int64), x.new_empty((b,), dtype=torch.int64)


# ----------------------------------------------------------------------------- backend API
def warm_embed(
    weight: torch.Tensor, x: torch.Tensor, draft: torch.Tensor, keep: torch.Tensor, *, mask_id: int,
    alpha: torch.Tensor, scale: float = 1.0, out: torch.Tensor,
) -> torch.Tensor:
    """Embeddings with the draft interpolated into masked slots, written into `out` (see reference)."""
    torch.ops.warmkern_cpu.warm_embed(weight, x, draft, keep, out, int(mask_id), alpha, float(scale))
    return out


def token_stats(
    logits: torch.Tensor, x: torch.Tensor, *, mask_id: int, temperature: float = 0.0, score: str = "prob",
    score_temperature: str = "none", suppress_ids: Sequence[int] = (), demote_ids: Sequence[int] = (),
    uncond_logits: torch.Tensor | None = None, cfg_scale: float = 0.0, seed: int = 0, step: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x0, score, p_cur) in one streaming pass per position (see reference.token_stats)."""
    return torch.ops.warmkern_cpu.token_stats(
        logits, x, uncond_logits, int(mask_id), float(temperature), score, score_temperature,
        list(suppress_ids), list(demote_ids), float(cfg_scale), int(seed), int(step),
    )


def select(
    score: torch.Tensor, x0: torch.Tensor, p_cur: torch.Tensor, x: torch.Tensor, provisional: torch.Tensor, *,
    mask_id: int, lo: torch.Tensor, hi: torch.Tensor, k: torch.Tensor | None = None,
    threshold: float | None = None, factor: float | None = None, remask_threshold: float | None = None,
    remask_max: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Transfer / remask in place by the spec's order; returns (n_transfer, n_remask)."""
    return torch.ops.warmkern_cpu.select(
        score, x0, p_cur, x, provisional, int(mask_id), lo, hi, k, threshold, factor, remask_threshold, remask_max,
    )


def denoise_step(
    logits: torch.Tensor, x: torch.Tensor, provisional: torch.Tensor, *, mask_id: int, lo: torch.Tensor,
    hi: torch.Tensor, k: torch.Tensor | None = None, threshold: float | None = None, factor: float | None = None,
    remask_threshold: float | None = None, remask_max: int | None = None, temperature: float = 0.0,
    score: str = "prob", score_temperature: str = "none", suppress_ids: Sequence[int] = (),
    demote_ids: Sequence[int] = (), uncond_logits: torch.Tensor | None = None, cfg_scale: float = 0.0,
    seed: int = 0, step: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """token_stats on the window rows + select, fused; x / provisional updated in place."""
    return torch.ops.warmkern_cpu.denoise_step(
        logits, x, provisional, uncond_logits, int(mask_id), lo, hi, k, threshold, factor, remask_threshold,
        remask_max, float(temperature), score, score_temperature, list(suppress_ids), list(demote_ids),
        float(cfg_scale), int(seed), int(step),
    )
