"""Ask the model for the window rows only: their logits, or their final hidden states for the fused head.

A denoising step reads the logits of one block (the window), yet LLaDA's loop computes [B, L, V] logits every
step: at L = 384, V = 126464 that is 194 MB of fp32 and an LM-head GEMM over 12x more rows than needed. The
transformer layers still run on the whole sequence (attention is bidirectional); only the head is cut:

- `logits`: HF's `logits_to_keep` (an index tensor) when the model's forward takes one; otherwise a forward
  pre-hook on `get_output_embeddings()` hands the head only the window rows.
- `hidden`: the same pre-hook keeps the head's input rows of the window (the model's own final norm already
  applied, whatever the architecture) and lets the head run on zero rows; `ops.head_token_stats` then does the
  head GEMM chunk by chunk with the statistics, so the window's logits never exist either.

Rows are those predicting the window: [start, start + length), or one earlier with Dream's logits shift.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from warmkern.models import ModelAdapter, _forward_of
from warmkern.partial import protocol


@dataclass
class OutputHead:
    """The LM head as `F.linear(hidden, weight, bias)` (an nn.Linear, checked once)."""

    module: torch.nn.Module
    weight: Tensor
    bias: Tensor | None


def output_head(model: object) -> OutputHead | None:
    """The model's output embedding when it is a plain linear layer (what the fused head reproduces), else None."""
    get = getattr(model, "get_output_embeddings", None)
    try:
        head = get() if callable(get) else None
    except (NotImplementedError, AttributeError):
        return None
    if not isinstance(head, torch.nn.Linear):
        return None
    return OutputHead(head, head.weight.detach(), None if head.bias is None else head.bias.detach())


def takes_index_logits_to_keep(model: object) -> bool:
    """Whether forward takes `logits_to_keep` as an index tensor (HF >= 4.50: `int | torch.Tensor`)."""
    try:
        p = inspect.signature(_forward_of(model)).parameters.get("logits_to_keep")
    except (TypeError, ValueError):
        return False
    return p is not None and "Tensor" in str(p.annotation)


class _HeadRows:
    """Forward pre-hook on the LM head: feed it rows [a, b) only, or keep them and feed it no row at all."""

    def __init__(self, head: torch.nn.Module, a: int, b: int, keep_hidden: bool) -> None:
        self.a, self.b, self.keep_hidden = a, b, keep_hidden
        self.hidden: Tensor | None = None
        self.handle = head.register_forward_pre_hook(self._hook)

    def _hook(self, module: torch.nn.Module, args: tuple) -> tuple:
        h = args[0]
        if h.dim() != 3:
            raise ValueError(f"model: expected the LM head's input to be [B, L, D], got {tuple(h.shape)}")
        if not self.keep_hidden:
            return (h[:, self.a : self.b], *args[1:])
        self.hidden = h[:, self.a : self.b]
        return (h[:, :0], *args[1:])

    def close(self) -> None:
        self.handle.remove()


def window_rows(adapter: ModelAdapter, start: int, length: int) -> tuple[int, int]:
    """Sequence rows whose logits predict positions [start, start + length)."""
    if adapter.logits_shift:
        if start < 1:
            raise ValueError("logits_shift: needs a prompt of at least one token (position i is read at i-1)")
        return start - 1, start + length - 1
    return start, start + length


def window_forward(adapter: ModelAdapter, *, start: int, length: int, hidden: bool, **inputs: Any) -> Tensor:
    """[B, length, V] logits of the window rows, or (hidden=True) their [B, length, D] head inputs.

    `inputs` are ModelAdapter.forward's (input_ids / inputs_embeds, attention_mask, position_ids).
    """
    a, b = window_rows(adapter, start, length)
    head = output_head(adapter.model)
    if not hidden and takes_index_logits_to_keep(adapter.model):
        keep = torch.arange(a, b, device=adapter.device)
        return _checked(adapter.forward(**inputs, extra={"logits_to_keep": keep}), length, "logits_to_keep")
    if head is None:
        raise ValueError(f"window logits: the model ({type(adapter.model).__name__}) takes no index logits_to_keep "
                         "and its get_output_embeddings() is not an nn.Linear; use full logits")
    rows = _HeadRows(head.module, a, b, keep_hidden=hidden)
    try:
        logits = adapter.forward(**inputs)
    finally:
        rows.close()
    if not hidden:
        return _checked(logits, length, "the LM head's input rows")
    if rows.hidden is None:
        raise ValueError("window hidden states: the model never called its get_output_embeddings() module")
    return rows.hidden


def _checked(logits: Tensor, length: int, how: str) -> Tensor:
    if logits.shape[1] != length:
        raise ValueError(f"window logits: asked the model for {length} rows through {how}, got logits of shape "
                         f"{tuple(logits.shape)}")
    return logits


MODES = ("full", "logits", "fused")


class WindowStats:
    """(x0, score, p_cur) of one window of rows, computed the way `mode` says; what a sampler step needs.

    full    the model's [B, L, V] logits, read at the window rows
    logits  the model computes the window rows' logits only (window_forward)
    fused   the model stops at its head's input; ops.head_token_stats does the head with the statistics
    With `vocab_group` (a torch.distributed group) the model returns its vocabulary shard of the logits (a
    column-parallel head, shards in rank order) and the statistics come from warmkern.distributed: every rank
    gets the same result. CFG: the forward's rows are [cond; uncond] (2B rows), as the sampler builds them.
    """

    def __init__(self, adapter: ModelAdapter, mode: str = "full", *, vocab_group: Any = None, chunk: int = 8192,
                 backend: str | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
        if mode == "fused" and vocab_group is not None:
            raise ValueError("mode: 'fused' with a vocab_group is not supported yet; use 'logits' or 'full'")
        self.adapter, self.mode, self.group, self.chunk, self.backend = adapter, mode, vocab_group, chunk, backend
        self.layout: tuple[int, int] | None = None  # (vocab_start, vocab_total) of this rank, learnt once

    def _rows(self, start: int, length: int, inputs: dict) -> Tensor:
        if self.mode == "full":
            a, b = window_rows(self.adapter, start, length)
            return self.adapter.forward(**inputs)[:, a:b]
        return window_forward(self.adapter, start=start, length=length, hidden=self.mode == "fused", **inputs)

    def __call__(self, x: Tensor, *, start: int, position_offset: int, stats_kw: dict, check_values: bool = True,
                 **inputs: Any) -> tuple[Tensor, Tensor, Tensor]:
        """Stats of the x.shape[1] rows predicting sequence positions [start, start + len); x = their tokens.

        position_offset: the first row's position in the generation region (keys the Philox noise).
        """
        from warmkern import distributed, ops

        b, length = x.shape
        rows = self._rows(start, length, inputs)
        cond, uncond = rows[:b], (rows[b:] if rows.shape[0] > b else None)
        kw = dict(stats_kw, uncond_logits=uncond, backend=self.backend, check_values=check_values)
        if self.group is not None:
            if self.layout is None:
                self.layout = distributed.rank_order_layout(cond.shape[-1], self.group, cond.device)
            start_v, total = self.layout
            return distributed.token_stats(cond, x, vocab_start=start_v, vocab_total=total, group=self.group,
                                           position_offset=position_offset, **kw)
        if self.mode == "fused":
            head = output_head(self.adapter.model)
            assert head is not None  # window_forward checked it
            kw["uncond_hidden"] = kw.pop("uncond_logits")
            return ops.head_token_stats(cond, head.weight, x, bias=head.bias, chunk=self.chunk,
                                        position_offset=position_offset, **kw)
        noise_free = stats_kw.get("temperature", 0.0) == 0 and stats_kw.get("score", "prob") != "random"
        if position_offset == 0 or noise_free:
            return ops.token_stats(cond, x, **kw)  # the one-device op (fused kernels): no position-keyed noise
        # the window's noise is keyed by its region positions: the one-shard partial-state path takes the offset
        full = protocol.stats_kwargs("window", dict(stats_kw, position_offset=position_offset))
        full.pop("uncond_logits")
        shards = protocol.SplitShards(cond, uncond, [cond.shape[-1]])
        return protocol.sharded_token_stats(shards, x, full, protocol.ops_impl(self.backend, check_values))
