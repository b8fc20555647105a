"""Shared pieces of the sampler tests (no tests here): tiny models and eager LLaDA / Dream re-statements.

The eager loops are written from the algorithms' descriptions, one row and one step at a time, with
the spec's documented conventions (x0 never mask_id; ties broken by position; demoted tokens ranked
last but still eligible). They share nothing with warmkern's ops except the Philox noise at T > 0.
"""

from __future__ import annotations

import functools

import torch

from warmkern import rng, tiny


@functools.cache
def tiny_pair():
    """(model, tokenizer) of the tiny random dLLM, built once per test session."""
    return tiny.dllm(seed=0)


def special_ids(tok) -> dict:
    return {"mask_id": tok.mask_token_id, "eos_id": tok.eos_token_id, "eot_id": int(tok.convert_tokens_to_ids("[EOT]"))}


PROMPTS = ["tom has 3 apples and ann gives him 4 more", "how many coins", "sue ate two pears"]


def prompts(tok, b: int):
    """Left-padded prompt ids and attention mask for the first b prompts (different lengths)."""
    return tiny.encode_prompts(tok, PROMPTS[:b])


def logits_of(model, x, am):
    out = model(x, attention_mask=am) if am is not None else model(x)
    return out.logits.float()


def _order(conf: list[float], positions: list[int]) -> list[int]:
    """Positions by confidence descending, then position ascending."""
    return sorted(positions, key=lambda g: (-conf[g], g))


@torch.no_grad()
def eager_llada(
    model, prompt, am, *, steps, gen_length, block_length, mask_id, cfg_scale=0.0, temperature=0.0,
    logits_eos_inf=False, confidence_eos_eot_inf=False, eos_id=0, eot_id=0, threshold=None, factor=None, seed=0,
):
    """LLaDA's generate (plus Fast-dLLM's threshold / factor rules), re-stated eagerly."""
    b, p = prompt.shape
    g_len = gen_length
    x = torch.full((b, p + g_len), mask_id, dtype=torch.long)
    x[:, :p] = prompt
    if am is not None:
        am = torch.cat([am, torch.ones((b, g_len), dtype=am.dtype)], dim=1)
    n_blocks = g_len // block_length
    per_block = steps // n_blocks
    step = 0
    for blk in range(n_blocks):
        s0, s1 = p + blk * block_length, p + (blk + 1) * block_length
        m0 = (x[:, s0:s1] == mask_id).sum(1)
        # LLaDA's get_num_transfer_tokens: base = m // steps, the first m % steps steps take one more.
        counts = [[int(m0[r]) // per_block + (1 if i < int(m0[r]) % per_block else 0) for i in range(per_block)]
                  for r in range(b)]
        for i in range(per_block):
            if not (x[:, s0:s1] == mask_id).any():
                break  # threshold / factor modes end a block once it has no masks
            if cfg_scale > 0:
                un = x.clone()
                un[:, :p] = mask_id
                both = logits_of(model, torch.cat([x, un]), None if am is None else torch.cat([am, am]))
                c, u = both[:b], both[b:]
                z = u + torch.tensor(cfg_scale + 1.0) * (c - u)
            else:
                z = logits_of(model, x, am)
            z = z[:, p:]
            if logits_eos_inf:
                z[:, :, eos_id] = float("-inf")
            pick = z.clone()
            if temperature > 0:
                noise = rng.gumbel_noise(seed, step, b * g_len, z.shape[-1]).reshape(z.shape)
                pick = z * torch.tensor(1.0 / temperature) + noise
            pick[:, :, mask_id] = float("-inf")
            x0 = pick.argmax(-1)
            prob = torch.softmax(z, dim=-1)
            conf = prob.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
            if confidence_eos_eot_inf:
                conf = conf.masked_fill((x0 == eos_id) | (x0 == eot_id), float("-inf"))
            for r in range(b):
                row = x[r, p:]
                elig = [gi for gi in range(s0 - p, s1 - p) if row[gi] == mask_id]
                order = _order(conf[r].tolist(), elig)
                last = i == per_block - 1
                if threshold is None and factor is None:
                    chosen = order[: counts[r][i]]
                elif last:
                    chosen = order  # steps bound the block: its last planned step commits the rest
                elif threshold is not None:
                    chosen = [gi for gi in order if conf[r, gi] >= threshold] or order[:1]
                else:
                    chosen = order[:1]
                    for rank, gi in enumerate(order[1:], start=2):
                        if float(torch.tensor(rank + 1.0) * (1.0 - conf[r, gi])) > factor:
                            break
                        chosen.append(gi)
                for gi in chosen:
                    row[gi] = x0[r, gi]
            step += 1
    return x


@torch.no_grad()
def eager_dream(model, prompt, *, steps, gen_length, mask_id, score="prob", eps=1e-3):
    """Dream's diffusion_generate (alg maskgit_plus / topk_margin, temperature 0, shifted logits) eagerly."""
    b, p = prompt.shape
    x = torch.full((b, p + gen_length), mask_id, dtype=torch.long)
    x[:, :p] = prompt
    timesteps = torch.linspace(1, eps, steps + 1)
    for i in range(steps):
        mask_index = x == mask_id
        z = logits_of(model, x, None)
        z = torch.cat([z[:, :1], z[:, :-1]], dim=1)  # position i is predicted at i - 1
        prob = torch.softmax(z, dim=-1)
        pick = z.clone()
        pick[:, :, mask_id] = float("-inf")
        x0 = pick.argmax(-1)
        if score == "prob":
            conf = prob.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
        else:
            top = prob.clone()
            top[:, :, mask_id] = float("-inf")
            t2 = top.topk(2, dim=-1).values
            conf = t2[..., 0] - t2[..., 1]
        t, s = timesteps[i], timesteps[i + 1]
        num_mask = mask_index.sum() / mask_index.shape[0]
        n = int(num_mask * (1 - s / t)) if i < steps - 1 else int(num_mask)
        for r in range(b):
            elig = [gi for gi in range(p, p + gen_length) if mask_index[r, gi]]
            for gi in _order(conf[r].tolist(), elig)[:n]:
                x[r, gi] = x0[r, gi]
    return x
