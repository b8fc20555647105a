"""`generate(..., vocab_group=group)`: the step's ops over a column-parallel LM head.

Each rank's model returns the logits of its vocabulary slice (Megatron / vLLM / sglang tensor parallelism:
rank r holds the r-th slice, shards in rank order). The sampler learns every rank's slice once (one
all-gather of the slice sizes, on the first forward) and calls `warmkern.distributed` instead of
`warmkern.ops`: the ranks all-gather small per-position states instead of [B, G, V] logits, and every rank
ends each step with the same tokens, those `generate` gives on the unsplit model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from warmkern import distributed


def check_vocab_group(group: object) -> object:
    """A torch.distributed process group of an initialised default group (None = one device)."""
    if group is None:
        return None
    import torch.distributed as dist

    if not dist.is_available() or not isinstance(group, dist.ProcessGroup):
        raise TypeError(f"vocab_group: expected a torch.distributed ProcessGroup or None, got {type(group).__name__}")
    if not dist.is_initialized():
        raise ValueError("vocab_group: expected a group of an initialised torch.distributed (init_process_group "
                         "first), got a group while torch.distributed is not initialised")
    return group


class VocabShardOps:
    """`token_stats` / `denoise_step` with the ops' signatures, run from this rank's vocabulary shard.

    Give them the caller's backend request unresolved: the shard passes resolve it per op ('auto' takes the
    reference for passes a backend lacks; an explicitly requested backend without them raises).
    """

    def __init__(self, group: Any) -> None:
        self.group = group
        self.layout: tuple[int, int] | None = None  # (vocab_start, vocab_total) of this rank

    def learn(self, shard_vocab: int, device: torch.device) -> int:
        """vocab_total, from one all-gather of every rank's slice size on the first call (collective)."""
        if self.layout is None:
            self.layout = distributed.rank_order_layout(shard_vocab, self.group, device)
        return self.layout[1]

    def _where(self, logits: Tensor) -> dict[str, Any]:
        if self.layout is None:
            self.learn(logits.shape[-1], logits.device)
        assert self.layout is not None
        return dict(vocab_start=self.layout[0], vocab_total=self.layout[1], group=self.group)

    def token_stats(self, logits: Tensor, x: Tensor, **kw: Any) -> tuple[Tensor, Tensor, Tensor]:
        """`ops.token_stats` of the whole vocabulary: the same (x0, score, p_cur) on every rank."""
        return distributed.token_stats(logits, x, **self._where(logits), **kw)

    def denoise_step(self, logits: Tensor, x: Tensor, provisional: Tensor, **kw: Any) -> tuple[Tensor, Tensor]:
        """`ops.denoise_step` of the whole vocabulary: x / provisional updated identically on every rank."""
        return distributed.denoise_step(logits, x, provisional, **self._where(logits), **kw)
