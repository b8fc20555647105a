"""How many bracket passes the fused top-p / top-k cutoff search (`warmkern/triton/truncate.py`) makes per
position, counted in the Triton interpreter on the kernel itself at LLaDA's vocabulary (V = 126464, bf16).

    TRITON_INTERPRET=1 python benchmarks/truncation_passes.py [--positions 4] [--seed 0]

The kernel's own `pass_bracket` is wrapped (the interpreter's rewritten-function cache) so every call is
counted, and the resulting x0 / scores are checked against the reference. Passes over the logits per
position = 1 (pass 0) + bracket passes + 1 (the main pass). Row families: a model-like row (log-Zipf
head over Gaussian noise, the shape of an LM's logits), plain Gaussian logits, and an adversarial row
(values spread evenly over a range, no sparse top). `kernels-report` models BRACKET_PASSES from this.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's warmkern, not an installed one


def rows(kind: str, n: int, vocab: int, gen):
    import torch

    if kind == "model-like":
        rank = torch.randperm(vocab, generator=gen).to(torch.float32) + 1.0
        base = -1.3 * torch.log(rank) + 0.5 * torch.randn(vocab, generator=gen)
        return torch.stack([base[torch.randperm(vocab, generator=gen)] * (1.0 + 0.5 * i) for i in range(n)])
    if kind == "gaussian":
        return 3.0 * torch.randn(n, vocab, generator=gen)
    return torch.linspace(-20.0, 20.0, vocab).repeat(n, 1) + 1e-3 * torch.randn(n, vocab, generator=gen)


def count_passes(logits, **kw) -> tuple[list[int], bool]:
    """(bracket passes per position, parity with the reference) of one token_stats call."""
    import torch
    from triton.runtime.interpreter import InterpretedFunction

    from warmkern import reference
    from warmkern import triton as wt
    from warmkern.triton import truncate

    calls = []
    fn = truncate.pass_bracket
    orig = fn.rewrite()

    def counted(*args, **kwargs):
        calls.append(1)
        return orig(*args, **kwargs)

    InterpretedFunction.rewritten_fn[fn.fn] = counted
    os.environ["WARMKERN_TRITON_SPLIT"] = "1"  # one program per position (split programs each search the row)
    per_position = []
    try:
        for g in range(logits.shape[1]):
            calls.clear()
            x = torch.full((1, 1), kw["mask_id"], dtype=torch.int64)
            wt.token_stats(logits[:, g:g + 1], x, **kw)
            per_position.append(len(calls))
    finally:
        InterpretedFunction.rewritten_fn[fn.fn] = orig
        del os.environ["WARMKERN_TRITON_SPLIT"]
    x = torch.full(logits.shape[:2], kw["mask_id"], dtype=torch.int64)
    got = wt.token_stats(logits, x, **kw)
    want = reference.token_stats(logits, x, **kw)
    same = torch.equal(got[0], want[0]) and torch.allclose(got[1], want[1], rtol=1e-5, atol=1e-7)
    return per_position, same


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--positions", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        print("run with TRITON_INTERPRET=1 (the count wraps an interpreted kernel helper)")
        return 2
    import torch

    vocab = 126464
    gen = torch.Generator().manual_seed(args.seed)
    print("| rows | T | top_p | top_k | bracket passes per position | passes over the logits | x0 = reference |")
    print("|---|---|---|---|---|---|---|")
    for kind in ("model-like", "gaussian", "adversarial"):
        logits = rows(kind, args.positions, vocab, gen).to(torch.bfloat16).unsqueeze(0)
        for temperature, top_p, top_k in ((0.0, 0.95, 0), (0.0, 1.0, 50), (0.7, 0.95, 50)):
            kw = dict(mask_id=vocab - 1, temperature=temperature, top_p=top_p, top_k=top_k, score="prob", seed=3)
            passes, same = count_passes(logits, **kw)
            print(f"| {kind} | {temperature} | {top_p} | {top_k} | {passes} | {[2 + n for n in passes]} | {same} |")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
