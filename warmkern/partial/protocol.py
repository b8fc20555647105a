"""token_stats over vocabulary shards: the rounds, whoever holds the shards.

A `Shards` object owns the logits of some vocabulary shards and can run a function on each of them and
return the results of *every* shard in vocabulary order: a process group (warmkern.distributed: each
rank runs it on its shard, one all-gather), or the LM head's column chunks (head.py: one GEMM per chunk
and round). The driver below is the same for both: truncation rounds (truncation.py) if top_k/top_p ask
for them, the state round, the merge in shard order and the finalisation (state.py).
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Protocol

import torch

from warmkern import schema
from warmkern.partial import state as st
from warmkern.partial import truncation as tr

Piece = Callable[[torch.Tensor, "torch.Tensor | None", int], torch.Tensor]

# token_stats' keyword arguments, by the tables: the one-device op's, and which shard op reads which
STATS_KW = {a.name: a.default for a in schema.TOKEN_STATS.args if a.public and not a.positional}
STATS_KW[schema.POSITION_OFFSET.name] = schema.POSITION_OFFSET.default  # rows that are a window of the region
PARTIAL_KW = tuple(a.name for a in schema.TOKEN_STATS_PARTIAL.args if a.public and not a.positional
                   and a.name not in ("vocab_start", "vocab_total", "uncond_logits", "cutoff"))
TRANSFORM_KW = tuple(a.name for a in schema.TRANSFORM if a.name != "uncond_logits")


class Shards(Protocol):
    vocab_total: int

    def collect(self, fn: Piece) -> torch.Tensor:
        """fn(logits, uncond_logits, vocab_start) on every shard; [S, ...] results in vocabulary order."""
        ...


def stats_kwargs(op: str, kw: dict[str, Any]) -> dict[str, Any]:
    """token_stats' keyword arguments with the table's defaults; unknown names raise like a signature would."""
    unknown = sorted(set(kw) - set(STATS_KW))
    if unknown:
        raise TypeError(f"{op}: unexpected keyword argument(s) {unknown} (token_stats takes {sorted(STATS_KW)})")
    missing = [n for n, d in STATS_KW.items() if d is schema.REQUIRED and n not in kw]
    if missing:
        raise TypeError(f"{op}: missing required keyword argument(s) {missing}")
    return {**STATS_KW, **kw}


def reference_impl() -> SimpleNamespace:
    """The shard passes of the spec, called without validation (head.py's reference path)."""
    from warmkern.partial.state import token_stats_partial

    return SimpleNamespace(token_stats_partial=token_stats_partial, truncation_partial=tr.truncation_partial,
                           nucleus_partial=tr.nucleus_partial)


def truncation_cutoff(shards: Shards, kw: dict[str, Any], impl: Any) -> torch.Tensor | None:
    """[B, G] cutoff on the tempered logits (None when top_k / top_p are off): rounds 1-5."""
    total = shards.vocab_total
    k = kw["top_k"] if 0 < kw["top_k"] < total else 0
    if k == 0 and not kw["top_p"] < 1.0:
        return None
    tkw = {n: kw[n] for n in TRANSFORM_KW}
    parts = shards.collect(lambda lg, un, start: torch.cat(
        impl.truncation_partial(lg, vocab_start=start, vocab_total=total, uncond_logits=un, top_k=k, **tkw), dim=-1))
    cutoff = tr.kth_largest(parts[..., 2:], k) if k else None
    if kw["top_p"] < 1.0:
        m, s = tr.merge_softmax(parts[..., :2])
        hist = lambda level, prefix: shards.collect(
            lambda lg, un, start: impl.nucleus_partial(lg, vocab_start=start, vocab_total=total, uncond_logits=un,
                                                       zs_max=m, prefix=prefix, level=level, **tkw))
        cp = tr.nucleus_cutoff(hist, s, kw["top_p"])
        cutoff = cp if cutoff is None else torch.maximum(cutoff, cp)
    return cutoff


def sharded_token_stats(
    shards: Shards, x: torch.Tensor, kw: dict[str, Any], impl: Any,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x0, score, p_cur) of token_stats over every shard of `shards`; kw = stats_kwargs(...) minus uncond."""
    total = shards.vocab_total
    cutoff = truncation_cutoff(shards, kw, impl)
    pkw = {n: kw[n] for n in PARTIAL_KW}
    wire = st.wire_fields(kw["score"], kw["temperature"], kw["score_temperature"], kw["score_suppress_ids"])
    states = shards.collect(
        lambda lg, un, start: impl.token_stats_partial(lg, x, vocab_start=start, vocab_total=total, uncond_logits=un,
                                                       cutoff=cutoff, **pkw)[..., list(wire)])
    merged = st.merge_states(st.unpack(states, wire))
    return st.finalize(merged, x, mask_id=kw["mask_id"], score=kw["score"], vocab_total=total, seed=kw["seed"],
                       step=kw["step"], position_offset=kw["position_offset"])


class SplitShards:
    """Whole logits cut into shards of the given sizes, in one process (tests, and a model of what the
    distributed path does: the merged result must not depend on the cut)."""

    def __init__(self, logits: torch.Tensor, uncond_logits: torch.Tensor | None, sizes: list[int]) -> None:
        if sum(sizes) != logits.shape[-1] or min(sizes) < 1:
            raise ValueError(f"sizes: expected positive shard sizes summing to {logits.shape[-1]}, got {sizes}")
        self.logits, self.uncond, self.sizes = logits, uncond_logits, sizes
        self.vocab_total = logits.shape[-1]

    def collect(self, fn: Piece) -> torch.Tensor:
        out, start = [], 0
        for n in self.sizes:
            un = None if self.uncond is None else self.uncond[..., start : start + n]
            out.append(fn(self.logits[..., start : start + n], un, start))
            start += n
        return torch.stack(out)


def ops_impl(backend: str | None, check_values: bool) -> SimpleNamespace:
    """The shard passes through `warmkern.ops` (validated; value checks on each op's first call only)."""
    from warmkern import ops

    names = ("token_stats_partial", "truncation_partial", "nucleus_partial")
    first = {name: check_values for name in names}

    def bound(name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            cv, first[name] = first[name], False
            return getattr(ops, name)(*args, backend=backend, check_values=cv, **kwargs)

        return call

    return SimpleNamespace(**{name: bound(name) for name in names})
