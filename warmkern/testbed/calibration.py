"""`python -m warmkern.testbed.calibration`: does the dLLM's p(token) separate right from wrong draft tokens?

Prior skepticism remasks an injected token when the dLLM's probability for it, with the token visible,
falls below a threshold. That only works if the model was trained to judge visible tokens; this prints,
for the drafter's real drafts of validation problems, how p(token) is distributed over the draft tokens
that match the reference solution and over those that do not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from warmkern.testbed import data, task
from warmkern.testbed.checkpoints import GEN_LENGTH, load_pair
from warmkern.testbed.drafting import draft_problems


def visible_token_probs(dllm, prompt: torch.Tensor, prompt_mask: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
    """[B, G] probability the dLLM gives each answer token while that token is visible (nothing masked):
    exactly what remasking compares with its threshold."""
    with torch.no_grad():
        logits = dllm(input_ids=torch.cat([prompt, answer], 1),
                      attention_mask=torch.cat([prompt_mask, torch.ones_like(answer)], 1)).logits[:, prompt.shape[1]:]
    return logits.float().softmax(-1).gather(-1, answer[..., None])[..., 0]


def draft_token_probs(dllm: str | Path, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(p, ok): the dLLM's probability of every draft token of the first `n` validation drafts, and whether it
    equals the reference solution's token at that position."""
    pair = load_pair(dllm)
    probs = task.problems("validation", n)
    draft = draft_problems(pair, probs, n).batches[0]
    ids, pm, gold = data.dllm_batch(pair.dtok, probs, GEN_LENGTH)
    return visible_token_probs(pair.dllm, ids, pm, draft), draft == gold


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dllm", default="calibrated",
                    help="calibrated | uncalibrated (the shipped dLLMs) or a saved dLLM directory")
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    p, ok = draft_token_probs(args.dllm, args.n)
    print(f"{args.n} validation drafts: {100 * float(ok.float().mean()):.1f}% of draft tokens are correct")
    for name, sel in (("correct", p[ok]), ("wrong", p[~ok])):
        below = ", ".join(f"p < {t}: {100 * float((sel < t).float().mean()):.1f}%" for t in (0.3, 0.5, 0.9))
        print(f"  {name:7s} tokens: mean p {float(sel.mean()):.3f}; {below}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
