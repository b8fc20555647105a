"""Running the table's methods: every row decodes the same problems with the same seed; only the method changes.

Cost is counted per sample, as a batch-of-one run would pay it: dLLM forwards (`GenerationStats.nfe_per_row`),
the drafter's sequential forwards, and wall time both at the evaluation batch (the whole table's throughput)
and alone (batch 1, on the first `latency_n` problems), the drafter's time included for warm rows.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import torch
from tqdm import tqdm

from warmkern import WarmStart, generate
from warmkern.testbed import data, task
from warmkern.testbed.checkpoints import GEN_LENGTH, Pair, load_pair
from warmkern.testbed.drafting import Drafts, draft_problems
from warmkern.testbed.methods import Method, RowResult, drafter_method


@dataclass(frozen=True)
class Setting:
    """What the rows of one table section share."""

    probs: list[task.Problem]
    batch: int
    block_length: int = GEN_LENGTH
    seed: int = 0
    latency_n: int = 0


def problem_seeds(seed: int, first: int, count: int) -> torch.Tensor:
    """[count] per-problem seeds of problems first, first + 1, ...: (seed << 32) + index (Philox key: index, seed).

    `generate` keys every random number by the row's seed, never by its place in the batch, so an int seed
    would give every problem the *same* warm-start keep mask (one draw for the whole table: at rho = 0.75 the
    seed-0 mask drops 12 of 32 positions, where 8 are expected, and a fixed budget then plans 12 steps for
    every problem). A seed per problem draws an independent mask for each, the same one alone or in a batch,
    and the same one for every row of the table (paired comparisons stay paired).
    """
    if not 0 <= seed < 2**31:
        raise ValueError(f"seed: expected 0 <= seed < 2**31 (it is the high word of the per-problem seeds), got {seed}")
    return (seed << 32) + torch.arange(first, first + count, dtype=torch.int64)


def _decode(pair: Pair, m: Method, probs: list[task.Problem], draft: torch.Tensor | None, s: Setting, first: int):
    """One `generate` call over `probs` = problems first, first + 1, ... of the setting (greedy, steps = G), each
    with its own seed (`problem_seeds`); returns (answer texts, stats, seconds)."""
    ids, pm = data.encode_prompts(pair.dtok, [p.prompt for p in probs])
    ws = None if m.kind == "cold" else WarmStart(draft, fill_tail=pair.eos_id, **m.warm_start_kwargs())
    t0 = time.perf_counter()
    x, st = generate(
        pair.dllm, ids, attention_mask=pm, steps=GEN_LENGTH, gen_length=GEN_LENGTH, block_length=s.block_length,
        temperature=0.0, mask_id=pair.mask_id, eos_id=pair.eos_id, eot_id=pair.eos_id, threshold=m.threshold,
        warm_start=ws, seed=problem_seeds(s.seed, first, len(probs)), return_stats=True,
    )
    seconds = time.perf_counter() - t0
    return pair.dtok.batch_decode(x[:, ids.shape[1]:]), st, seconds


def run_method(pair: Pair, m: Method, s: Setting, drafts: Drafts, alone: Drafts, bar) -> RowResult:
    """One table row: accuracy and cost of method `m` on the setting's problems."""
    res = RowResult(name=m.name, params=m.describe(), dllm=pair.dllm_name, block_length=s.block_length, key=m.key)
    warm = m.kind == "warm"
    for j, i in enumerate(range(0, len(s.probs), s.batch)):
        chunk = s.probs[i:i + s.batch]
        texts, st, seconds = _decode(pair, m, chunk, drafts.batches[j] if warm else None, s, i)
        res.wall_s += seconds
        res.backend = st.backend
        res.correct.extend(task.extract_answer(t) == p.answer for t, p in zip(texts, chunk))
        res.nfe.extend(st.nfe_per_row)
        res.model_s += st.time_model_s
        res.sampler_s += st.time_sampler_s
        res.remasked += st.remasked
        res.injected += st.injected
        if not res.examples:
            res.examples = texts[:2]
        bar.update(1)
    for k, p in enumerate(s.probs[: s.latency_n]):  # alone: what one request costs, its draft included
        _, _, seconds = _decode(pair, m, [p], alone.batches[k] if warm else None, s, k)
        res.latency_s.append(seconds + (alone.batch_seconds[k] if warm else 0.0))
    if s.latency_n:
        bar.update(1)
    if warm:  # the draft is part of a warm start's cost
        res.wall_s += drafts.seconds
        res.draft_s = drafts.seconds
        res.drafter_forwards = list(drafts.forwards)
    return res


def drafter_row(s: Setting, drafts: Drafts, alone: Drafts) -> RowResult:
    m = drafter_method()
    res = RowResult(name=m.name, params=m.describe(), key=m.key, wall_s=drafts.seconds, draft_s=drafts.seconds)
    res.correct = [task.extract_answer(t) == p.answer for t, p in zip(drafts.texts, s.probs)]
    res.drafter_forwards = list(drafts.forwards)
    res.latency_s = list(alone.batch_seconds)
    return res


def evaluate(s: Setting, methods: dict[str, list[Method]], block_lengths: tuple[int, ...] = (GEN_LENGTH,),
             desc: str = "eval", with_drafter: bool = True) -> list[RowResult]:
    """Every method of every dLLM (name -> rows) at every block length; drafts are made once and shared."""
    n_batches = (len(s.probs) + s.batch - 1) // s.batch
    per_row = n_batches + (1 if s.latency_n else 0)
    total = n_batches + sum(len(ms) for ms in methods.values()) * len(block_lengths) * per_row
    rows: list[RowResult] = []
    with tqdm(total=total, desc=desc, unit="batch", file=sys.stderr) as bar:
        cache: dict[tuple, tuple[Drafts, Drafts]] = {}
        for name, ms in methods.items():
            pair = load_pair(name)
            vocab = tuple(sorted(pair.dtok.get_vocab().items()))
            if vocab not in cache:  # the drafts depend on the dLLM only through its tokenizer
                cache[vocab] = (draft_problems(pair, s.probs, s.batch, bar),
                                draft_problems(pair, s.probs[: s.latency_n], 1))
                if with_drafter and not rows:
                    rows.append(drafter_row(s, *cache[vocab]))
            for blk in block_lengths:
                sb = Setting(s.probs, s.batch, blk, s.seed, s.latency_n)
                rows.extend(run_method(pair, m, sb, *cache[vocab], bar) for m in ms)
    return rows
