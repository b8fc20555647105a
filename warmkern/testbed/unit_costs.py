"""`python -m warmkern.testbed.unit_costs`: wall time of one dLLM forward and one drafter step, alone and batched.

The table's per-sample wall times move with the load of a shared machine; forward counts do not. This measures
the two unit prices under the same conditions (interleaved, median of repeats), so that a method's cost can be
read as dLLM NFE x dLLM forward + drafter forwards x drafter step, and checked against the table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from transformers import DynamicCache

from warmkern.testbed import data, task
from warmkern.testbed.checkpoints import GEN_LENGTH, Pair, load_pair


def _inputs(pair: Pair, batch: int):
    """The dLLM's input at the first step (prompt + masked answer) and the drafter's state after its prompt."""
    probs = task.problems("test", batch)
    ids, pm = data.encode_prompts(pair.dtok, [p.prompt for p in probs])
    x = torch.cat([ids, torch.full((batch, GEN_LENGTH), pair.mask_id)], 1)
    am = torch.cat([pm, torch.ones((batch, GEN_LENGTH), dtype=pm.dtype)], 1)
    side, pair.atok.padding_side = pair.atok.padding_side, "left"
    enc = pair.atok([p.prompt + data.DRAFT_SEP for p in probs], add_special_tokens=False, return_tensors="pt",
                    padding=True)
    pair.atok.padding_side = side
    return (x, am), (enc.input_ids, enc.attention_mask)


@torch.no_grad()
def _drafter_step(pair: Pair, ids: torch.Tensor, am: torch.Tensor, new: int) -> None:
    """Prefill, then `new` single-token cached steps (the loop of `drafting.greedy_generate`, without the EOS
    bookkeeping); the prefill is excluded from the returned time by the caller's subtraction."""
    cache = DynamicCache()
    pos = (am.cumsum(1) - 1).clamp(min=0)
    nxt = pair.drafter(input_ids=ids, attention_mask=am, position_ids=pos, cache=cache).logits[:, -1].argmax(-1)
    p = pos[:, -1] + 1
    for _ in range(new):
        am = torch.cat([am, torch.ones_like(am[:, :1])], 1)
        nxt = pair.drafter(input_ids=nxt[:, None], attention_mask=am, position_ids=p[:, None],
                           cache=cache).logits[:, -1].argmax(-1)
        p = p + 1


def measure(batch: int, repeats: int) -> dict[str, float]:
    """Median milliseconds of one dLLM forward and one drafter step (cached, after a 34-token prompt+draft)."""
    pair = load_pair("calibrated")
    (x, am), (ids, dam) = _inputs(pair, batch)
    times: dict[str, list[float]] = {"dllm_forward_ms": [], "drafter_step_ms": []}
    for _ in range(repeats + 1):  # the first round warms up and is dropped
        t0 = time.perf_counter()
        with torch.no_grad():
            pair.dllm(input_ids=x, attention_mask=am)
        t1 = time.perf_counter()
        _drafter_step(pair, ids, dam, 0)
        t2 = time.perf_counter()
        _drafter_step(pair, ids, dam, 34)
        t3 = time.perf_counter()
        times["dllm_forward_ms"].append(1e3 * (t1 - t0))
        times["drafter_step_ms"].append(1e3 * ((t3 - t2) - (t2 - t1)) / 34)
    return {k: statistics.median(v[1:]) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 100])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    for b in args.batches:
        r = measure(b, args.repeats)
        print(f"batch {b:4d}: dLLM forward {r['dllm_forward_ms']:.2f} ms ({r['dllm_forward_ms'] / b:.3f} ms/sample), "
              f"drafter step {r['drafter_step_ms']:.2f} ms ({r['drafter_step_ms'] / b:.3f} ms/sample)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
