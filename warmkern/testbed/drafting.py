"""The testbed's drafter path: KV-cached greedy AR drafts in batches, stopped at EOS, with their cost.

A warm start is only as cheap as its draft, so the draft is produced the cheap way (one prefill, then one
single-token forward per character with the key/value cache; a row leaves the batch at its EOS) and its
cost is counted: the sequential forwards each row needs (what drafting that row alone takes) and wall time.
The draft is then bridged to the dLLM's vocabulary through text, as `WarmStart.from_causal_lm` does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from warmkern.testbed import data
from warmkern.testbed.checkpoints import GEN_LENGTH, Pair
from warmkern.testbed.task import Problem
from warmkern.warmstart import draft_from_texts

MAX_NEW_TOKENS = 64  # characters; the longest solution + EOS is ~45


@torch.no_grad()
def greedy_generate(model, tok, prompts: list[str], max_new_tokens: int) -> tuple[list[list[int]], list[int]]:
    """Greedy continuation of left-padded prompts with a KV cache: (new ids per row without EOS, forwards per row).

    A row's forwards are the sequential steps a batch-of-one run takes: the prefill yields its first token and
    each further token costs one single-token forward, up to and including its EOS (or `max_new_tokens`).
    Finished rows leave the batch (their cache rows are dropped), so a batch costs what its unfinished rows do.
    """
    side = tok.padding_side
    tok.padding_side = "left"
    try:
        enc = tok(prompts, add_special_tokens=False, return_tensors="pt", padding=True)
    finally:
        tok.padding_side = side
    am = enc.attention_mask
    pos = (am.cumsum(1) - 1).clamp(min=0)
    cache = DynamicCache()
    logits = model(input_ids=enc.input_ids, attention_mask=am, position_ids=pos, cache=cache,
                   use_cache=True).logits[:, -1]
    rows: list[list[int]] = [[] for _ in prompts]
    forwards = [max_new_tokens] * len(prompts)
    alive = torch.arange(len(prompts))
    nxt_pos = pos[:, -1] + 1
    for step in range(max_new_tokens):
        nxt = logits.argmax(-1)
        finished = nxt == tok.eos_token_id
        for r, t, f in zip(alive.tolist(), nxt.tolist(), finished.tolist()):
            if f:
                forwards[r] = step + 1
            else:
                rows[r].append(t)
        keep = ~finished
        if not bool(keep.any()) or step + 1 == max_new_tokens:
            break
        if not bool(keep.all()):
            cache.batch_select_indices(keep.nonzero()[:, 0])
            alive, nxt, am, nxt_pos = alive[keep], nxt[keep], am[keep], nxt_pos[keep]
        am = torch.cat([am, torch.ones_like(am[:, :1])], 1)
        logits = model(input_ids=nxt[:, None], attention_mask=am, position_ids=nxt_pos[:, None], cache=cache,
                       use_cache=True).logits[:, -1]
        nxt_pos = nxt_pos + 1
    return rows, forwards


@dataclass
class Drafts:
    """The drafter's output for a problem list, cut into the evaluation's batches."""

    batches: list[torch.Tensor] = field(default_factory=list)  # [b, G] dLLM-vocabulary drafts, EOS-filled tail
    texts: list[str] = field(default_factory=list)
    forwards: list[int] = field(default_factory=list)  # per problem: sequential drafter forwards (batch of one)
    seconds: float = 0.0  # wall time for all of them at the evaluation batch size
    batch_seconds: list[float] = field(default_factory=list)  # wall time of each batch (batch 1: per problem)
    batch: int = 0


def draft_problems(pair: Pair, probs: list[Problem], batch: int, bar=None) -> Drafts:
    """Draft every problem in batches of `batch`; the tail after the draft is the dLLM's EOS."""
    out = Drafts(batch=batch)
    for i in range(0, len(probs), batch):
        chunk = probs[i:i + batch]
        t0 = time.perf_counter()
        ids, fwd = greedy_generate(pair.drafter, pair.atok, [p.prompt + data.DRAFT_SEP for p in chunk],
                                   MAX_NEW_TOKENS)
        texts = pair.atok.batch_decode(ids, skip_special_tokens=True)
        out.batches.append(draft_from_texts(texts, pair.dtok, GEN_LENGTH, fill_tail=pair.eos_id))
        out.batch_seconds.append(time.perf_counter() - t0)
        out.texts.extend(texts)
        out.forwards.extend(fwd)
        if bar is not None:
            bar.update(1)
    out.seconds = sum(out.batch_seconds)
    return out
