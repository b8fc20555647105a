"""Shared pieces of the sampler tests (no tests here): tiny models and eager LLaDA / Dream re-statements.

`eager_llada` transcribes LLaDA's generate.py line for line (plus Fast-dLLM's threshold / factor rules),
`eager_dream` Dream's diffusion_generate. They depart from the originals only where the spec documents a
convention: x0 never is mask_id (it is excluded from the argmax, not from the softmax), ties go to the
lower position, and the random numbers are the shared Philox (`rng.gumbel_noise(row seeds, step, G, V)`,
step = `noise_step(block, i)`) instead of torch's generator. They share nothing else with warmkern's ops.
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
    return (out if isinstance(out, torch.Tensor) else out.logits).float()


def _order(conf: list[float], positions: list[int]) -> list[int]:
    """Positions by confidence descending, then position ascending."""
    return sorted(positions, key=lambda g: (-conf[g], g))


def noise_step(block: int, i: int, n_blocks: int) -> int:
    """The Philox step of step i of a block (warmkern's documented key: block + n_blocks * i)."""
    return block + n_blocks * i


def add_gumbel_noise(logits, temperature, noise):
    """LLaDA's add_gumbel_noise: at T = 0 the *same* tensor comes back; else a new one whose argmax is
    Gumbel-max sampling (exp(z) / (-log u)^T has the argmax of z / T + g). `noise` covers the answer."""
    if temperature == 0:
        return logits
    out = logits.clone()
    p = logits.shape[1] - noise.shape[1]
    out[:, p:] = logits[:, p:] * torch.tensor(1.0 / temperature) + noise
    return out


def llada_counts(block_mask_index, steps: int) -> list[list[int]]:
    """LLaDA's get_num_transfer_tokens: an even split, the first `remainder` steps one more."""
    mask_num = block_mask_index.sum(dim=1).tolist()
    return [[m // steps + (1 if i < m % steps else 0) for i in range(steps)] for m in mask_num]


def _chosen(conf_row, k_llada, threshold, factor, last) -> list[int]:
    """LLaDA's per-row topk (ties by position), or Fast-dLLM's threshold / factor rule."""
    order = sorted((g for g in range(len(conf_row)) if conf_row[g] > float("-inf")), key=lambda g: (-conf_row[g], g))
    if threshold is None and factor is None:
        return order[:k_llada]
    if last:
        return order  # steps bound the block: its last planned step commits the rest
    if threshold is not None:
        return [g for g in order if conf_row[g] >= threshold] or order[:1]
    chosen = order[:1]
    for rank, g in enumerate(order[1:], start=2):
        if float(torch.tensor(rank + 1.0) * (1.0 - torch.tensor(conf_row[g]))) > factor:
            break
        chosen.append(g)
    return chosen


@torch.no_grad()
def eager_llada(
    model, prompt, attention_mask, *, steps, gen_length, block_length, mask_id, cfg_scale=0.0, temperature=0.0,
    logits_eos_inf=False, confidence_eos_eot_inf=False, eos_id=0, eot_id=0, threshold=None, factor=None, seed=0,
):
    """LLaDA's generate.py transcribed (eos_id / eot_id stand for its 126081 / 126348), plus Fast-dLLM's rules."""
    b, p = prompt.shape
    x = torch.full((b, p + gen_length), mask_id, dtype=torch.long)
    x[:, :p] = prompt.clone()
    if attention_mask is not None:
        attention_mask = torch.cat([attention_mask, torch.ones((b, gen_length), dtype=attention_mask.dtype)], dim=-1)
    prompt_index = x != mask_id
    num_blocks = gen_length // block_length
    steps = steps // num_blocks
    seeds = rng.row_seeds(seed, b) if not isinstance(seed, torch.Tensor) else seed
    for num_block in range(num_blocks):
        block_end = p + (num_block + 1) * block_length
        num_transfer_tokens = llada_counts(x[:, block_end - block_length : block_end] == mask_id, steps)
        for i in range(steps):
            mask_index = x == mask_id
            if not mask_index[:, :block_end].any():
                break  # threshold / factor modes end a block once it has no masks
            if cfg_scale > 0.0:
                un_x = x.clone()
                un_x[prompt_index] = mask_id
                am = None if attention_mask is None else torch.cat([attention_mask, attention_mask], dim=0)
                logits = logits_of(model, torch.cat([x, un_x], dim=0), am)
                logits, un_logits = torch.chunk(logits, 2, dim=0)
                logits = un_logits + (cfg_scale + 1) * (logits - un_logits)
            else:
                logits = logits_of(model, x, attention_mask)
            if logits_eos_inf:
                logits[:, :, eos_id] = -torch.inf
            noise = rng.gumbel_noise(seeds, noise_step(num_block, i, num_blocks), gen_length, logits.shape[-1])
            logits_with_noise = add_gumbel_noise(logits, temperature, noise)
            x0 = torch.argmax(logits_with_noise.index_fill(-1, torch.tensor([mask_id]), -torch.inf), dim=-1)
            if confidence_eos_eot_inf:
                logits_with_noise[:, :, eos_id] = logits[:, :, eot_id] = -torch.inf
            p_ = torch.softmax(logits, dim=-1)
            x0_p = torch.gather(p_, dim=-1, index=x0.unsqueeze(-1)).squeeze(-1)
            x0_p[:, block_end:] = -torch.inf
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, -torch.inf)
            for j in range(b):
                for g in _chosen(confidence[j].tolist(), num_transfer_tokens[j][i], threshold, factor, i == steps - 1):
                    x[j, g] = x0[j, g]
    return x


def dream_top_p(logits, top_p):
    """Dream's top_p_logits: sort descending, cumulative softmax, drop entries past top_p (the first past it stays)."""
    sorted_logits, sorted_indices = torch.sort(logits, descending=True)
    cumulative = torch.cumsum(torch.softmax(sorted_logits, dim=-1), dim=-1)
    remove = cumulative > top_p
    remove[..., 1:] = remove[..., :-1].clone()
    remove[..., 0] = False
    mask = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, sorted_indices, remove)
    return logits.masked_fill(mask, torch.finfo(logits.dtype).min)


def dream_top_k(logits, top_k):
    """Dream's top_k_logits: drop entries below the k-th largest (ties stay)."""
    top_k = min(top_k, logits.size(-1))
    remove = logits < torch.topk(logits, top_k)[0][..., -1, None]
    return logits.masked_fill(remove, torch.finfo(logits.dtype).min)


def dream_sample_tokens(logits, mask_id, score, top_p=None, top_k=None):
    """Dream's sample_tokens at temperature 0 (x0 never mask_id: the spec's convention)."""
    if top_p is not None and top_p < 1:
        logits = dream_top_p(logits, top_p)
    if top_k is not None:
        logits = dream_top_k(logits, top_k)
    probs = torch.softmax(logits, dim=-1)
    candidates = probs.index_fill(-1, torch.tensor([mask_id]), -1.0)
    confidence, x0 = candidates.max(dim=-1)
    if score == "margin":
        top2 = candidates.topk(2, dim=-1).values
        confidence = top2[:, 0] - top2[:, 1].clamp(min=0)
    elif score == "entropy":
        confidence = torch.sum(probs * torch.log(probs + 1e-10), dim=-1)
    return confidence, x0


def _keep(step, x, logits):
    return x


def _same(step, x, logits):
    return logits


@torch.no_grad()
def eager_dream(model, prompt, *, steps, gen_length, mask_id, score="prob", eps=1e-3, top_p=None, top_k=None,
                logits_hook=_same, tokens_hook=_keep):
    """Dream's diffusion_generate at temperature 0 (alg maskgit_plus / topk_margin / entropy, shifted logits),
    re-stated: hooks, top-p / top-k truncation, k = int(masked * (1 - s / t)) on linspace(1, eps, steps + 1)."""
    b, p = prompt.shape
    x = torch.full((b, p + gen_length), mask_id, dtype=torch.long)
    x[:, :p] = prompt
    timesteps = torch.linspace(1, eps, steps + 1)
    x = tokens_hook(None, x, None)
    for i in range(steps):
        mask_index = x == mask_id
        logits = logits_of(model, x, None)
        logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)  # position i is predicted at i - 1
        logits = logits_hook(i, x, logits)
        confidence, x0 = dream_sample_tokens(logits[mask_index], mask_id, score, top_p, top_k)
        t, s = timesteps[i], timesteps[i + 1]
        num_mask = mask_index.sum() / mask_index.shape[0]
        n = int(num_mask * (1 - s / t)) if i < steps - 1 else int(num_mask)
        full = torch.full(x.shape, -torch.inf)
        full[mask_index] = confidence
        proposed = torch.full_like(x, mask_id)
        proposed[mask_index] = x0
        for r in range(b):
            for gi in _order(full[r].tolist(), [g for g in range(x.shape[1]) if mask_index[r, g]])[:n]:
                x[r, gi] = proposed[r, gi]
        x = tokens_hook(i, x, logits)
    return x
