"""Public ops: validate once, pick a backend, call it through a `torch.library` custom op.

Under torch.compile the custom op is what gets traced; in eager its implementation is called directly
(same code, without torch.library's per-call overhead).

Each op is registered as `warmkern::<name>` with a fake (meta) implementation so `torch.compile`
can trace a sampler step without looking inside the kernels. The backend is a plain string
argument of the op, resolved in Python before the call (so `auto` is decided outside the graph).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Optional

import torch
from torch import Tensor

from warmkern import backends
from warmkern import validation as V

_INT = (torch.int64,)
_BOOL = (torch.bool,)
_F32 = (torch.float32,)


# ----------------------------------------------------------------------------- custom ops
def _call(op: torch.library.CustomOpDef, impl: Callable[..., Any], *args: Any) -> Any:
    """Trace the custom op under torch.compile / export; call its implementation directly in eager.

    Both run the same code. In eager, torch.library's per-call schema handling costs ~110 us for the
    21-argument denoise_step: a fifth of the whole fused C++ step at LLaDA shapes with B = 1.
    """
    if torch.compiler.is_compiling():
        return op(*args)
    return impl(*args)


def _warm_embed_impl(
    weight: Tensor, x: Tensor, draft: Tensor, keep: Tensor, out: Tensor,
    mask_id: int, alpha: Tensor, scale: float, backend: str,
) -> None:
    backends.module(backend).warm_embed(weight, x, draft, keep, mask_id=mask_id, alpha=alpha, scale=scale, out=out)


_warm_embed_op = torch.library.custom_op("warmkern::warm_embed", mutates_args=("out",))(_warm_embed_impl)


@_warm_embed_op.register_fake
def _(weight, x, draft, keep, out, mask_id, alpha, scale, backend):
    return None


def _token_stats_impl(
    logits: Tensor, x: Tensor, uncond_logits: Optional[Tensor], mask_id: int, temperature: float,
    score: str, score_temperature: str, suppress_ids: list[int], demote_ids: list[int],
    cfg_scale: float, seed: int, step: int, backend: str,
) -> tuple[Tensor, Tensor, Tensor]:
    x0, sc, p_cur = backends.module(backend).token_stats(
        logits, x, mask_id=mask_id, temperature=temperature, score=score,
        score_temperature=score_temperature, suppress_ids=tuple(suppress_ids),
        demote_ids=tuple(demote_ids), uncond_logits=uncond_logits, cfg_scale=cfg_scale,
        seed=seed, step=step,
    )
    return x0, sc, p_cur


_token_stats_op = torch.library.custom_op("warmkern::token_stats", mutates_args=())(_token_stats_impl)


@_token_stats_op.register_fake
def _(logits, x, uncond_logits, mask_id, temperature, score, score_temperature, suppress_ids,
      demote_ids, cfg_scale, seed, step, backend):
    b, g = logits.shape[:2]
    return (
        logits.new_empty((b, g), dtype=torch.int64),
        logits.new_empty((b, g), dtype=torch.float32),
        logits.new_empty((b, g), dtype=torch.float32),
    )


def _select_impl(
    score: Tensor, x0: Tensor, p_cur: Tensor, x: Tensor, provisional: Tensor, mask_id: int,
    lo: Tensor, hi: Tensor, k: Optional[Tensor], threshold: Optional[float], factor: Optional[float],
    remask_threshold: Optional[float], remask_max: Optional[int], backend: str,
) -> tuple[Tensor, Tensor]:
    nt, nr = backends.module(backend).select(
        score, x0, p_cur, x, provisional, mask_id=mask_id, lo=lo, hi=hi, k=k, threshold=threshold,
        factor=factor, remask_threshold=remask_threshold, remask_max=remask_max,
    )
    return nt, nr


_select_op = torch.library.custom_op("warmkern::select", mutates_args=("x", "provisional"))(_select_impl)


@_select_op.register_fake
def _(score, x0, p_cur, x, provisional, mask_id, lo, hi, k, threshold, factor, remask_threshold,
      remask_max, backend):
    b = x.shape[0]
    return x.new_empty((b,), dtype=torch.int64), x.new_empty((b,), dtype=torch.int64)


def _denoise_step_impl(
    logits: Tensor, x: Tensor, provisional: Tensor, uncond_logits: Optional[Tensor], mask_id: int,
    lo: Tensor, hi: Tensor, k: Optional[Tensor], threshold: Optional[float], factor: Optional[float],
    remask_threshold: Optional[float], remask_max: Optional[int], temperature: float, score: str,
    score_temperature: str, suppress_ids: list[int], demote_ids: list[int], cfg_scale: float,
    seed: int, step: int, backend: str,
) -> tuple[Tensor, Tensor]:
    nt, nr = backends.module(backend).denoise_step(
        logits, x, provisional, mask_id=mask_id, lo=lo, hi=hi, k=k, threshold=threshold,
        factor=factor, remask_threshold=remask_threshold, remask_max=remask_max,
        temperature=temperature, score=score, score_temperature=score_temperature,
        suppress_ids=tuple(suppress_ids), demote_ids=tuple(demote_ids),
        uncond_logits=uncond_logits, cfg_scale=cfg_scale, seed=seed, step=step,
    )
    return nt, nr


_denoise_step_op = torch.library.custom_op("warmkern::denoise_step", mutates_args=("x", "provisional"))(
    _denoise_step_impl
)


@_denoise_step_op.register_fake
def _(logits, x, provisional, uncond_logits, mask_id, lo, hi, k, threshold, factor,
      remask_threshold, remask_max, temperature, score, score_temperature, suppress_ids,
      demote_ids, cfg_scale, seed, step, backend):
    b = x.shape[0]
    return x.new_empty((b,), dtype=torch.int64), x.new_empty((b,), dtype=torch.int64)


# ----------------------------------------------------------------------------- validation helpers
def _check_stats_args(
    logits: Tensor, x: Tensor, mask_id: int, temperature: float, score: str, score_temperature: str,
    suppress_ids: Sequence[int], demote_ids: Sequence[int], uncond_logits: Tensor | None,
    cfg_scale: float, seed: int, step: int, check_values: bool,
) -> tuple[int, float, tuple[int, ...], tuple[int, ...], float, int, int]:
    V.check_tensor("logits", logits, dtypes=V.FLOAT_DTYPES, ndim=3)
    b, g, vocab = logits.shape
    dev = logits.device
    V.check_tensor("x", x, dtypes=_INT, ndim=2, shape=(b, g), device=dev)
    if uncond_logits is not None:
        V.check_tensor("uncond_logits", uncond_logits, dtypes=V.FLOAT_DTYPES, ndim=3, shape=(b, g, vocab), device=dev)
    if vocab < 2:
        raise ValueError(f"logits: expected a vocabulary of at least 2 entries, got shape {tuple(logits.shape)}")
    mask_id = V.check_id("mask_id", mask_id, vocab)
    temperature = V.check_float("temperature", temperature, lo=0.0)
    V.check_score(score, score_temperature, temperature)
    sup = V.check_id_list("suppress_ids", suppress_ids, vocab)
    dem = V.check_id_list("demote_ids", demote_ids, vocab)
    cfg_scale = V.check_float("cfg_scale", cfg_scale)
    seed = V.check_int("seed", seed, lo=0, hi=V.INT64_MAX)
    step = V.check_int("step", step, lo=0, hi=2**32 - 1)
    if check_values:
        V.check_ids("x", x, vocab)
    return mask_id, temperature, sup, dem, cfg_scale, seed, step


def _check_select_args(
    b: int, g: int, dev: torch.device, lo: object, hi: object, k: object, threshold: object,
    factor: object, remask_threshold: object, remask_max: object, check_values: bool,
) -> tuple[Tensor, Tensor, Tensor | None, float | None, float | None, float | None, int | None]:
    chosen = [n for n, v in (("k", k), ("threshold", threshold), ("factor", factor)) if v is not None]
    if len(chosen) != 1:
        raise ValueError(f"k/threshold/factor: expected exactly one of them, got {chosen or 'none'}")
    lo_t = V.per_row_tensor("lo", lo, b, dev, dtype=torch.int64, check_values=check_values, lo=0, hi=g)
    hi_t = V.per_row_tensor("hi", hi, b, dev, dtype=torch.int64, check_values=check_values, lo=0, hi=g)
    if check_values and bool((lo_t > hi_t).any()):
        raise ValueError("lo/hi: expected lo <= hi for every row")
    k_t = None if k is None else V.per_row_tensor("k", k, b, dev, dtype=torch.int64, check_values=check_values, lo=0)
    thr = None if threshold is None else V.check_float("threshold", threshold)
    fac = None if factor is None else V.check_float("factor", factor, lo=0.0)
    rth = None if remask_threshold is None else V.check_float("remask_threshold", remask_threshold, lo=0.0, hi=1.0)
    rmax = None if remask_max is None else V.check_int("remask_max", remask_max, lo=0)
    return lo_t, hi_t, k_t, thr, fac, rth, rmax


# ----------------------------------------------------------------------------- public API
def warm_embed(
    weight: Tensor, x: Tensor, draft: Tensor, keep: Tensor, *, mask_id: int, alpha: float | Tensor,
    scale: float = 1.0, out: Tensor | None = None, backend: str | None = None, check_values: bool = True,
) -> Tensor:
    """Embeddings `[B, G, D]` of the generation region with the draft interpolated (see reference)."""
    V.check_tensor("weight", weight, dtypes=V.FLOAT_DTYPES, ndim=2)
    vocab, d = weight.shape
    dev = weight.device
    V.check_tensor("x", x, dtypes=_INT, ndim=2, device=dev)
    b, g = x.shape
    V.check_tensor("draft", draft, dtypes=_INT, ndim=2, shape=(b, g), device=dev)
    V.check_tensor("keep", keep, dtypes=_BOOL, ndim=2, shape=(b, g), device=dev)
    mask_id = V.check_id("mask_id", mask_id, vocab)
    alpha_t = V.per_row_tensor("alpha", alpha, b, dev, dtype=torch.float32, check_values=check_values, lo=0.0, hi=1.0)
    scale = V.check_float("scale", scale)
    if out is None:
        out = torch.empty((b, g, d), dtype=weight.dtype, device=dev)
    else:
        V.check_tensor("out", out, dtypes=(weight.dtype,), ndim=3, shape=(b, g, d), device=dev)
        if not out.is_contiguous():
            raise ValueError(f"out: expected a contiguous tensor, got stride {out.stride()}")
    if check_values:
        V.check_ids("x", x, vocab)
        V.check_ids("draft", draft, vocab, allow_minus_one=True)
    name = backends.resolve(backend, dev)
    _call(_warm_embed_op, _warm_embed_impl, weight, x, draft, keep, out, mask_id, alpha_t, scale, name)
    return out


def token_stats(
    logits: Tensor, x: Tensor, *, mask_id: int, temperature: float = 0.0, score: str = "prob",
    score_temperature: str = "none", suppress_ids: Sequence[int] = (), demote_ids: Sequence[int] = (),
    uncond_logits: Tensor | None = None, cfg_scale: float = 0.0, seed: int = 0, step: int = 0,
    backend: str | None = None, check_values: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    """(x0, score, p_cur) per position in one pass over the vocabulary (see reference)."""
    mask_id, temperature, sup, dem, cfg_scale, seed, step = _check_stats_args(
        logits, x, mask_id, temperature, score, score_temperature, suppress_ids, demote_ids,
        uncond_logits, cfg_scale, seed, step, check_values,
    )
    name = backends.resolve(backend, logits.device)
    return _call(
        _token_stats_op, _token_stats_impl,
        logits, x, uncond_logits, mask_id, temperature, score, score_temperature, list(sup), list(dem),
        cfg_scale, seed, step, name,
    )


def select(
    score: Tensor, x0: Tensor, p_cur: Tensor, x: Tensor, provisional: Tensor, *, mask_id: int,
    lo: int | Tensor, hi: int | Tensor, k: int | Tensor | None = None, threshold: float | None = None,
    factor: float | None = None, remask_threshold: float | None = None, remask_max: int | None = None,
    backend: str | None = None, check_values: bool = True,
) -> tuple[Tensor, Tensor]:
    """Transfer / remask in place; returns (n_transfer[B], n_remask[B]) (see reference)."""
    V.check_tensor("x", x, dtypes=_INT, ndim=2)
    b, g = x.shape
    dev = x.device
    V.check_tensor("score", score, dtypes=_F32, ndim=2, shape=(b, g), device=dev)
    V.check_tensor("x0", x0, dtypes=_INT, ndim=2, shape=(b, g), device=dev)
    V.check_tensor("p_cur", p_cur, dtypes=_F32, ndim=2, shape=(b, g), device=dev)
    V.check_tensor("provisional", provisional, dtypes=_BOOL, ndim=2, shape=(b, g), device=dev)
    if isinstance(mask_id, bool) or not isinstance(mask_id, int) or mask_id < 0:
        raise ValueError(f"mask_id: expected a non-negative int token id, got {mask_id!r}")
    lo_t, hi_t, k_t, thr, fac, rth, rmax = _check_select_args(
        b, g, dev, lo, hi, k, threshold, factor, remask_threshold, remask_max, check_values
    )
    name = backends.resolve(backend, dev)
    return _call(
        _select_op, _select_impl, score, x0, p_cur, x, provisional, mask_id, lo_t, hi_t, k_t, thr, fac, rth, rmax, name
    )


def denoise_step(
    logits: Tensor, x: Tensor, provisional: Tensor, *, mask_id: int, lo: int | Tensor, hi: int | Tensor,
    k: int | Tensor | None = None, threshold: float | None = None, factor: float | None = None,
    remask_threshold: float | None = None, remask_max: int | None = None, temperature: float = 0.0,
    score: str = "prob", score_temperature: str = "none", suppress_ids: Sequence[int] = (),
    demote_ids: Sequence[int] = (), uncond_logits: Tensor | None = None, cfg_scale: float = 0.0,
    seed: int = 0, step: int = 0, backend: str | None = None, check_values: bool = True,
) -> tuple[Tensor, Tensor]:
    """token_stats + select fused: one denoising step, x/provisional updated in place."""
    mask_id, temperature, sup, dem, cfg_scale, seed, step = _check_stats_args(
        logits, x, mask_id, temperature, score, score_temperature, suppress_ids, demote_ids,
        uncond_logits, cfg_scale, seed, step, check_values,
    )
    b, g = x.shape
    dev = x.device
    V.check_tensor("provisional", provisional, dtypes=_BOOL, ndim=2, shape=(b, g), device=dev)
    lo_t, hi_t, k_t, thr, fac, rth, rmax = _check_select_args(
        b, g, dev, lo, hi, k, threshold, factor, remask_threshold, remask_max, check_values
    )
    name = backends.resolve(backend, dev)
    return _call(
        _denoise_step_op, _denoise_step_impl,
        logits, x, provisional, uncond_logits, mask_id, lo_t, hi_t, k_t, thr, fac, rth, rmax,
        temperature, score, score_temperature, list(sup), list(dem), cfg_scale, seed, step, name,
    )
