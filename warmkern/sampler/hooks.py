"""Dream's generation hooks: user code that edits the logits before a step or the tokens after it.

Dream's `diffusion_generate` calls `generation_tokens_hook_func(None, x, None)` once before the loop,
then per step `logits = generation_logits_hook_func(i, x, logits)` after the forward and
`x = generation_tokens_hook_func(i, x, logits)` after the update: `x` is the whole sequence [B, L]
(prompt and answer) and `logits` [B, L, V] are aligned with it (shifted for Dream-style models, so
logits[:, i] predicts x[:, i]). `generate` calls them the same way, so constrained decoding written for
Dream (fixed spans, banned tokens) ports unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor

from warmkern.sampler.config import Hook

LOGITS_HOOK = "generation_logits_hook_func"
TOKENS_HOOK = "generation_tokens_hook_func"


def aligned(logits: Tensor, shift: bool) -> Tensor:
    """Full-sequence logits with logits[:, i] predicting position i (Dream's `cat([l[:, :1], l[:, :-1]])`)."""
    return torch.cat([logits[:, :1], logits[:, :-1]], dim=1) if shift else logits


def _returned(name: str, out: object, like: Tensor, what: str) -> Tensor:
    """The hook's result, checked: a tensor of `like`'s shape, device and kind (a clear error naming the hook)."""
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}: expected it to return a {what} tensor, got {type(out).__name__}")
    kind_ok = out.dtype == torch.int64 if like.dtype == torch.int64 else out.dtype.is_floating_point
    if tuple(out.shape) != tuple(like.shape) or out.device != like.device or not kind_ok:
        raise ValueError(
            f"{name}: expected it to return a {what} tensor of shape {tuple(like.shape)} on {like.device}, "
            f"got {str(out.dtype).replace('torch.', '')} of shape {tuple(out.shape)} on {out.device}"
        )
    return out


def run_logits_hook(hook: Hook, step: int, x: Tensor, logits: Tensor) -> Tensor:
    """`logits = hook(step, x, logits)`: [B, L, V] aligned logits in, the same shape out."""
    return _returned(LOGITS_HOOK, hook(step, x, logits), logits, "float")


def run_tokens_hook(hook: Hook, step: int | None, x: Tensor, logits: Tensor | None) -> None:
    """`x = hook(step, x, logits)`, written back into `x` (in place, so the sampler's buffers see it)."""
    out = _returned(TOKENS_HOOK, hook(step, x, logits), x, "int64")
    if out is not x:
        x.copy_(out)
