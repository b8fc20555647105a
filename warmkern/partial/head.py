"""head_token_stats: token_stats of `hidden @ weight.T + bias` without ever holding [B, G, V] logits. **Spec.**

The LM head's output columns are vocabulary shards: one GEMM per `chunk` columns gives a [B, G, chunk]
tile, which is reduced to a partial state (state.py) and dropped before the next tile is computed, so peak
memory is O(B·G·chunk) instead of O(B·G·V) (plus the fp32 upcast a sampler would add). Truncation needs its
rounds (truncation.py), each of which recomputes the tiles: top_k costs 2 GEMM passes, top_p 6.

x0 equals token_stats(F.linear(hidden, weight, bias)) except at near ties: a tile's GEMM may round a logit
differently from the full GEMM (another blocking of the same dot products), which can swap two candidates
whose logits agree to the last bits. Scores agree within the parity contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from warmkern.partial import protocol


class HeadChunks:
    """The LM head's vocabulary chunks as shards: `collect` computes each tile, runs fn on it, keeps fn's result."""

    def __init__(self, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                 uncond_hidden: torch.Tensor | None, chunk: int) -> None:
        self.hidden, self.weight, self.bias, self.uncond, self.chunk = hidden, weight, bias, uncond_hidden, chunk
        self.vocab_total = weight.shape[0]

    def _tile(self, h: torch.Tensor | None, a: int, b: int) -> torch.Tensor | None:
        if h is None:
            return None
        # 2-D input: one GEMM on the weight rows in place (a 3-D input went through bmm + a copy of the tile)
        flat = F.linear(h.reshape(-1, h.shape[-1]), self.weight[a:b], None if self.bias is None else self.bias[a:b])
        return flat.view(*h.shape[:-1], b - a)

    def collect(self, fn: protocol.Piece) -> torch.Tensor:
        out = []
        for a in range(0, self.vocab_total, self.chunk):
            b = min(a + self.chunk, self.vocab_total)
            out.append(fn(self._tile(self.hidden, a, b), self._tile(self.uncond, a, b), a))
        return torch.stack(out)


def head_stats(impl: Any, hidden: torch.Tensor, weight: torch.Tensor, x: torch.Tensor, *,
               bias: torch.Tensor | None, uncond_hidden: torch.Tensor | None, chunk: int,
               kw: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The chunked head over `impl`'s shard passes (the reference's, or a backend's kernels once they exist)."""
    kw = {k: v for k, v in kw.items() if k != "uncond_logits"}
    kw["seed"] = kw["seed"] if kw.get("row_seeds") is None else kw["row_seeds"]
    kw["step"] = kw["step"] if kw.get("step_tensor") is None else kw["step_tensor"]
    kw = {k: v for k, v in kw.items() if k in protocol.STATS_KW}
    return protocol.sharded_token_stats(HeadChunks(hidden, weight, bias, uncond_hidden, chunk), x, kw, impl)


def head_token_stats(
    hidden: torch.Tensor, weight: torch.Tensor, x: torch.Tensor, *, bias: torch.Tensor | None = None,
    uncond_hidden: torch.Tensor | None = None, chunk: int = 8192, mask_id: int, temperature: float = 0.0,
    score: str = "prob", score_temperature: str = "none", suppress_ids: Sequence[int] = (),
    pick_suppress_ids: Sequence[int] = (), score_suppress_ids: Sequence[int] = (), cfg_scale: float = 0.0,
    seed: int = 0, row_seeds: torch.Tensor | None = None, step: int = 0, step_tensor: torch.Tensor | None = None,
    top_k: int = 0, top_p: float = 1.0, prior_ids: torch.Tensor | None = None,
    prior_bias: torch.Tensor | float | None = None, position_offset: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x0, score, p_cur) of token_stats(F.linear(hidden, weight, bias)), one vocabulary chunk at a time."""
    kw = dict(locals())
    for name in ("hidden", "weight", "x", "bias", "uncond_hidden", "chunk"):
        kw.pop(name)
    return head_stats(protocol.reference_impl(), hidden, weight, x, bias=bias, uncond_hidden=uncond_hidden,
                      chunk=chunk, kw=kw)
