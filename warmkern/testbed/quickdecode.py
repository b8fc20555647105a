"""Minimal decoders used only to watch training (the real evaluation goes through `warmkern.generate`).

Kept independent of the sampler so training can run (and be monitored) before or without it.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def dllm_greedy(model, prompt: torch.Tensor, prompt_mask: torch.Tensor, gen_length: int, mask_id: int,
                per_step: int = 2) -> torch.Tensor:
    """Low-confidence greedy unmasking, `per_step` tokens per forward; returns the [B, G] answer ids."""
    b = prompt.shape[0]
    x = torch.cat([prompt, torch.full((b, gen_length), mask_id, dtype=torch.long)], 1)
    am = torch.cat([prompt_mask, torch.ones((b, gen_length), dtype=torch.long)], 1)
    p = prompt.shape[1]
    for _ in range((gen_length + per_step - 1) // per_step):
        masked = x[:, p:] == mask_id
        if not masked.any():
            break
        logits = model(input_ids=x, attention_mask=am).logits[:, p:].float()
        logits[..., mask_id] = -float("inf")
        conf, tok = logits.softmax(-1).max(-1)
        conf = torch.where(masked, conf, -1.0)
        k = torch.clamp(masked.sum(1), max=per_step)
        order = conf.argsort(1, descending=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(gen_length).expand(b, -1))
        pick = (rank < k[:, None]) & masked
        x[:, p:] = torch.where(pick, tok, x[:, p:])
    return x[:, p:]


@torch.no_grad()
def drafter_greedy(model, tok, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy continuation of each prompt with a left-padded batch; returns the decoded new text."""
    enc = tok(prompts, add_special_tokens=False, return_tensors="pt", padding=True)
    out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id)
    return tok.batch_decode(out[:, enc.input_ids.shape[1]:], skip_special_tokens=True)
