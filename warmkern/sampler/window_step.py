"""`generate(..., lm_head='window' | 'fused')`: a step's statistics from the block's rows only.

A step reads one block of the region, yet the model's full logits are [B, P + G, V]. Here the model computes the
block's rows only (warmkern.window: HF's `logits_to_keep`, or a pre-hook on the output embedding), or stops at
its head's input so that `ops.head_token_stats` does the head GEMM chunk by chunk with the statistics. The
block's rows keep the Philox positions they have in the region (`position_offset`), so the tokens are those of
lm_head='full'. Positions outside the block get x0 = mask_id, score = -inf, p_cur = 0: the selection never
reads them (its window is the block).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from warmkern.models import ModelAdapter
from warmkern.sampler.config import SamplerConfig
from warmkern.window import WindowStats, output_head, takes_index_logits_to_keep

_MODES = {"window": "logits", "fused": "fused"}  # generate's lm_head -> WindowStats' mode
_PER_POSITION = ("prior_ids",)  # [B, G] statistics arguments, cut to the block's columns


class WindowStep:
    """(x0, score, p_cur) over the region, computed for the step's window of columns only."""

    def __init__(self, adapter: ModelAdapter, config: SamplerConfig) -> None:
        head = output_head(adapter.model)
        if head is None and (config.lm_head == "fused" or not takes_index_logits_to_keep(adapter.model)):
            raise ValueError(
                f"lm_head: expected 'full' for this model ({type(adapter.model).__name__}: its "
                "get_output_embeddings() is not an nn.Linear"
                + ("" if config.lm_head == "fused" else " and its forward takes no index logits_to_keep")
                + f"), got {config.lm_head!r}"
            )
        self.mask_id = config.mask_id
        self.stats = WindowStats(adapter, _MODES[config.lm_head], vocab_group=config.vocab_group,
                                 backend=config.backend)

    def __call__(self, inputs: dict[str, Any], region: Tensor, region_start: int, window: tuple[int, int],
                 stats_kw: dict[str, Any], check_values: bool) -> tuple[Tensor, Tensor, Tensor]:
        """Run the model on `inputs` for the rows of region columns [lo, hi); region_start = its first column."""
        lo, hi = window
        kw = {n: v for n, v in stats_kw.items() if n != "uncond_logits"}  # the CFG half comes from the rows
        for name in _PER_POSITION:
            if isinstance(kw.get(name), Tensor):
                kw[name] = kw[name][:, lo:hi]
        x0w, score_w, p_cur_w = self.stats(region[:, lo:hi], start=region_start + lo, position_offset=lo,
                                           stats_kw=kw, check_values=check_values, **inputs)
        b, g = region.shape
        x0 = torch.full((b, g), self.mask_id, dtype=torch.int64, device=region.device)
        score = torch.full((b, g), float("-inf"), dtype=torch.float32, device=region.device)
        p_cur = torch.zeros((b, g), dtype=torch.float32, device=region.device)
        x0[:, lo:hi], score[:, lo:hi], p_cur[:, lo:hi] = x0w, score_w, p_cur_w
        return x0, score, p_cur
