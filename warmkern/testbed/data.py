"""Turning problems into tensors for each model (shared by training and evaluation)."""

from __future__ import annotations

import torch
from transformers import PreTrainedTokenizerBase

from warmkern.testbed.task import Problem

DRAFT_SEP = "\n"  # drafter prompt = problem text + DRAFT_SEP; it then writes the solution


def encode_prompts(tok: PreTrainedTokenizerBase, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompt ids + attention mask (the layout `warmkern.generate` expects)."""
    rows = [tok(t, add_special_tokens=False).input_ids for t in texts]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = 1
    return ids, mask


def encode_answers(tok: PreTrainedTokenizerBase, texts: list[str], gen_length: int) -> torch.Tensor:
    """Answer ids padded with EOS to exactly `gen_length` (truncated if longer, which the task never is)."""
    out = torch.full((len(texts), gen_length), tok.eos_token_id, dtype=torch.long)
    for i, t in enumerate(texts):
        r = tok(t, add_special_tokens=False).input_ids[: gen_length - 1]
        out[i, : len(r)] = torch.tensor(r)
    return out


def dllm_batch(tok: PreTrainedTokenizerBase, probs: list[Problem], gen_length: int):
    """(prompt ids, prompt mask, answer ids) for a batch of problems."""
    ids, mask = encode_prompts(tok, [p.prompt for p in probs])
    return ids, mask, encode_answers(tok, [p.solution for p in probs], gen_length)


def drafter_batch(tok: PreTrainedTokenizerBase, probs: list[Problem]):
    """Right-padded (ids, attention mask, labels) with the loss only on the solution + EOS."""
    rows, labels = [], []
    for p in probs:
        a = tok(p.prompt + DRAFT_SEP, add_special_tokens=False).input_ids
        b = [*tok(p.solution, add_special_tokens=False).input_ids, tok.eos_token_id]
        rows.append(a + b)
        labels.append([-100] * len(a) + b)
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
    lab = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (r, lb) in enumerate(zip(rows, labels)):
        ids[i, : len(r)] = torch.tensor(r)
        lab[i, : len(lb)] = torch.tensor(lb)
        mask[i, : len(r)] = 1
    return ids, mask, lab
