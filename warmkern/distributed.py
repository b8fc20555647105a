"""Vocabulary-parallel sampling over torch.distributed: each rank holds a vocabulary shard of the logits.

A column-parallel LM head (Megatron / vLLM / sglang tensor parallelism) leaves rank r with the logits of
its vocabulary slice [vocab_start, vocab_start + V_r). Instead of all-gathering [B, G, V] logits, each rank
reduces its slice to a partial state (warmkern.partial: 20-28 bytes per position), the ranks all-gather the
states (O(B·G) bytes per rank), and every rank merges them in vocabulary order and runs the selection: every
rank ends with the same x, equal to what the one-device `warmkern.ops` gives on the whole logits (tokens
identical, also when sampling: the Philox counters are keyed by the global vocabulary index).

Every rank must call with the same arguments (x, seeds, rules); a fingerprint of the scalar ones travels
with each all-gather, so a mismatch raises on every rank instead of returning different tokens (one that
changes the payload size or the number of rounds, e.g. score mode or top_k, fails inside the collective
like any mismatched collective does). Rounds
(all-gathers) per call: 1, 2 with top_k, 6 with top_p (warmkern.partial.truncation), +1 the first time
when vocab_total is not given (to learn it).
"""

from __future__ import annotations

import inspect
import zlib
from typing import Any

import torch
import torch.distributed as dist

from warmkern import ops, schema
from warmkern import validation as V
from warmkern.partial import protocol

HEADER = 4  # int32 words in front of every all-gathered piece: vocab_start, V_shard, fingerprint, round
_TRUNCATION = ("top_k", "top_p")  # token_stats arguments no shard op takes: checked here by their table rows


def _gather(t: torch.Tensor, group: Any) -> torch.Tensor:
    """[world, *t.shape] all-gather in group rank order (one collective)."""
    world = dist.get_world_size(group)
    out = t.new_empty((world * t.numel(),))
    gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor  # renamed in torch 2.13
    gather(out, t.contiguous().reshape(-1), group=group)
    return out.view(world, *t.shape)


def _tiling(starts: list[int], sizes: list[int], total: int | None) -> list[int]:
    """Rank order of the shards by vocab_start; raises unless they tile [0, total) exactly."""
    order = sorted(range(len(starts)), key=lambda r: starts[r])
    end = 0
    for r in order:
        if starts[r] != end:
            break
        end += sizes[r]
    else:
        if total is None or end == total:
            return order
    raise ValueError(f"vocab_start: expected the ranks' shards to tile [0, vocab_total = {total}) without gaps or "
                     f"overlaps, got (vocab_start, V) per rank {list(zip(starts, sizes))}")


def vocab_layout(logits_shard: torch.Tensor, vocab_start: int, group: Any = None) -> int:
    """vocab_total from one all-gather of every rank's (vocab_start, V); checks the shards tile it."""
    mine = torch.tensor([vocab_start, logits_shard.shape[-1]], dtype=torch.int64, device=logits_shard.device)
    got = _gather(mine, group).tolist()
    starts, sizes = [g[0] for g in got], [g[1] for g in got]
    _tiling(starts, sizes, None)
    return sum(sizes)


def rank_order_layout(vocab_shard: int, group: Any = None, device: torch.device | str = "cpu") -> tuple[int, int]:
    """(vocab_start, vocab_total) of this rank when the shards lie in rank order (Megatron's column-parallel
    head: rank r holds the r-th slice); one all-gather of the shard sizes."""
    sizes = _gather(torch.tensor([vocab_shard], dtype=torch.int64, device=device), group).reshape(-1).tolist()
    rank = dist.get_rank(group)
    return sum(sizes[:rank]), sum(sizes)


class GroupShards:
    """The shards of a process group: `collect` runs fn on this rank's shard and all-gathers the results."""

    def __init__(self, logits: torch.Tensor, uncond: torch.Tensor | None, vocab_start: int, vocab_total: int | None,
                 group: Any, fingerprint: int) -> None:
        self.logits, self.uncond, self.vocab_start, self.group = logits, uncond, int(vocab_start), group
        self.vocab_total = vocab_layout(logits, vocab_start, group) if vocab_total is None else int(vocab_total)
        self.fingerprint, self.round = fingerprint, 0
        self.order: list[int] | None = None

    def collect(self, fn: protocol.Piece) -> torch.Tensor:
        piece = fn(self.logits, self.uncond, self.vocab_start).to(torch.float32)
        self.round += 1
        head = torch.tensor([self.vocab_start, self.logits.shape[-1], self.fingerprint, self.round],
                            dtype=torch.int32, device=piece.device).view(torch.float32)
        got = _gather(torch.cat([head, piece.reshape(-1)]), self.group)
        heads = got[:, :HEADER].contiguous().view(torch.int32).tolist()
        if len({(h[2], h[3]) for h in heads}) != 1:
            raise ValueError("distributed: the ranks called with different arguments (x's shape, seeds, score, rules "
                             f"or truncation differ between ranks: fingerprints/rounds {[h[2:] for h in heads]})")
        if self.order is None:
            self.order = _tiling([h[0] for h in heads], [h[1] for h in heads], self.vocab_total)
        return got[self.order, HEADER:].reshape(len(heads), *piece.shape)


def _fingerprint(x: torch.Tensor, kw: dict[str, Any]) -> int:
    """crc32 of the scalar arguments every rank must share (tensors by shape only: no host sync)."""
    desc = [tuple(x.shape)]
    for name in sorted(kw):
        v = kw[name]
        desc.append((name, tuple(v.shape) if isinstance(v, torch.Tensor) else v))
    return zlib.crc32(repr(desc).encode()) & 0x7FFFFFFF


def _check_truncation(kw: dict[str, Any]) -> None:
    for name in _TRUNCATION:
        arg = schema.TOKEN_STATS.arg(name)
        kw[name] = V.CHECKS[arg.check](arg, kw[name], None)


def token_stats(logits_shard: torch.Tensor, x: torch.Tensor, *, vocab_start: int, group: Any = None,
                vocab_total: int | None = None, backend: str | None = None, check_values: bool = True,
                **kw: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`ops.token_stats` of the whole vocabulary from this rank's shard; the same (x0, score, p_cur) on every rank.

    `position_offset` (keyword, default 0): the rows are a window of the generation region starting there
    (Philox counters follow the region's positions).
    """
    kw = protocol.stats_kwargs("distributed.token_stats", kw)
    _check_truncation(kw)
    uncond = kw.pop("uncond_logits")
    shards = GroupShards(logits_shard, uncond, vocab_start, vocab_total, group, _fingerprint(x, kw))
    return protocol.sharded_token_stats(shards, x, kw, protocol.ops_impl(backend, check_values))


_SELECT_KW = tuple(a.name for a in schema.SELECT.args if a.public and not a.positional)


def denoise_step(logits_shard: torch.Tensor, x: torch.Tensor, provisional: torch.Tensor, *, vocab_start: int,
                 group: Any = None, vocab_total: int | None = None, backend: str | None = None,
                 check_values: bool = True, **kw: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """`ops.denoise_step` from this rank's vocabulary shard: x / provisional updated identically on every rank."""
    names = {a.name for a in schema.DENOISE_STEP.args if a.public and not a.positional}  # the whole region
    unknown = sorted(set(kw) - names)
    if unknown:
        raise TypeError(f"distributed.denoise_step: unexpected keyword argument(s) {unknown}")
    stats_kw = {n: v for n, v in kw.items() if n in protocol.STATS_KW}
    rule_kw = {n: v for n, v in kw.items() if n in _SELECT_KW}
    x0, score, p_cur = token_stats(logits_shard, x, vocab_start=vocab_start, group=group, vocab_total=vocab_total,
                                   backend=backend, check_values=check_values, **stats_kw)
    return ops.select(score, x0, p_cur, x, provisional, backend=backend, check_values=check_values, **rule_kw)


def _signature(fn: Any, op: schema.OpSchema) -> inspect.Signature:
    """fn's own parameters with its **kw replaced by the op's public keyword arguments (help(), IDEs)."""
    own = [p for p in inspect.signature(fn).parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    taken = {p.name for p in own}
    extra = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=p.default, annotation=p.annotation)
             for n, p in inspect.signature(getattr(ops, op.name)).parameters.items()
             if p.kind is inspect.Parameter.KEYWORD_ONLY and n not in taken]
    return inspect.Signature(own + extra)


token_stats.__signature__ = _signature(token_stats, schema.TOKEN_STATS)  # type: ignore[attr-defined]
denoise_step.__signature__ = _signature(denoise_step, schema.DENOISE_STEP)  # type: ignore[attr-defined]
