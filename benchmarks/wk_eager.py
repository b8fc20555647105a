"""The baselines users run today, written in plain PyTorch for the benchmark (not part of warmkern).

`eager_denoise_step` is the idiomatic LLaDA-style step: the whole [B, G, V] logits tensor goes
through a float64 Gumbel perturbation (torch.rand), a full float64 softmax, a gather of the chosen
token's probability, and a per-row top-k over the window. It is written from the published maths
(Gumbel-max in exponential form, low-confidence remasking), not copied from any repository.
`window_only=True` is the savvy variant that slices the window rows first.
"""

from __future__ import annotations

import torch


def eager_denoise_step(
    logits: torch.Tensor,
    x: torch.Tensor,
    *,
    mask_id: int,
    lo: int,
    hi: int,
    k: int,
    temperature: float,
    score: str = "prob",
    window_only: bool = False,
) -> torch.Tensor:
    """Commit the k most confident masked window positions of each row of x in place; returns x."""
    if window_only:
        logits, xs = logits[:, lo:hi], x[:, lo:hi]
        lo_w, hi_w = 0, hi - lo
    else:
        xs, lo_w, hi_w = x, lo, hi
    if temperature > 0:
        # Gumbel-max written as exp(z) / E**T with E = -log(U): the usual float64 formulation.
        z64 = logits.to(torch.float64)
        e = -torch.log(torch.rand_like(z64))
        x0 = (z64.exp() / e.pow(temperature)).argmax(dim=-1)
    else:
        x0 = logits.argmax(dim=-1)
    p = torch.softmax(logits.to(torch.float64), dim=-1)
    if score == "prob":
        conf = p.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
    elif score == "margin":
        top2 = p.topk(2, dim=-1).values
        conf = top2[..., 0] - top2[..., 1]
    elif score == "entropy":
        conf = (p * torch.log(p.clamp_min(1e-300))).sum(dim=-1)  # negative entropy: higher = surer
    else:
        raise ValueError(f"score: unsupported {score!r}")
    masked = xs == mask_id
    pos = torch.arange(xs.shape[1], device=xs.device)
    in_window = (pos >= lo_w) & (pos < hi_w)
    conf = torch.where(masked & in_window, conf, torch.full_like(conf, float("-inf")))
    x0 = torch.where(masked, x0, xs)
    transfer = torch.zeros_like(masked)
    for row in range(xs.shape[0]):  # per-row top-k, as the reference samplers do (k may vary per row)
        transfer[row, conf[row].topk(k).indices] = True
    xs.copy_(torch.where(transfer, x0, xs))
    return x


def dream_top_p_logits(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Dream's top_p_logits: sort all of V, cumulative softmax, drop what lies past top_p (keep the first)."""
    sorted_logits, sorted_indices = torch.sort(logits, descending=True)
    cumulative = torch.cumsum(torch.softmax(sorted_logits, dim=-1), dim=-1)
    remove = cumulative > top_p
    remove[..., 1:] = remove[..., :-1].clone()
    remove[..., 0] = False
    mask = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, sorted_indices, remove)
    return logits.masked_fill(mask, torch.finfo(logits.dtype).min)


def dream_top_k_logits(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Dream's top_k_logits: drop the logits below the k-th largest."""
    kth = torch.topk(logits, min(top_k, logits.shape[-1]))[0][..., -1, None]
    return logits.masked_fill(logits < kth, torch.finfo(logits.dtype).min)


def eager_dream_step(
    logits: torch.Tensor,
    x: torch.Tensor,
    *,
    mask_id: int,
    lo: int,
    hi: int,
    k: int,
    temperature: float,
    top_p: float = 1.0,
    top_k: int = 0,
    window_only: bool = False,
) -> torch.Tensor:
    """Dream's sample_tokens (maskgit_plus) + top-k commit, in plain PyTorch: tempered fp32 logits, top_p then
    top_k truncation (a sort of all V per position), softmax, Categorical sample (T > 0) or argmax, the
    confidence p(x0), and the k most confident masked window positions committed in place; returns x."""
    if window_only:
        logits, xs = logits[:, lo:hi], x[:, lo:hi]
        lo_w, hi_w = 0, hi - lo
    else:
        xs, lo_w, hi_w = x, lo, hi
    masked = xs == mask_id
    z = logits[masked].float()  # Dream truncates the logits of every masked position
    if temperature > 0:
        z = z / temperature
    if top_p < 1:
        z = dream_top_p_logits(z, top_p)
    if top_k:
        z = dream_top_k_logits(z, top_k)
    probs = torch.softmax(z, dim=-1)
    if temperature > 0:
        x0m = torch.multinomial(probs, 1).squeeze(-1)
        confm = probs.gather(-1, x0m.unsqueeze(-1)).squeeze(-1)
    else:
        confm, x0m = probs.max(dim=-1)
    conf = torch.full(xs.shape, float("-inf"))
    x0 = xs.clone()
    conf[masked], x0[masked] = confm, x0m
    pos = torch.arange(xs.shape[1], device=xs.device)
    conf = torch.where((pos >= lo_w) & (pos < hi_w), conf, torch.full_like(conf, float("-inf")))
    transfer = torch.zeros_like(masked)
    for row in range(xs.shape[0]):
        transfer[row, conf[row].topk(k).indices] = True
    xs.copy_(torch.where(transfer, x0, xs))
    return x


def eager_warm_embed(
    weight: torch.Tensor,
    x: torch.Tensor,
    draft: torch.Tensor,
    keep: torch.Tensor,
    *,
    mask_id: int,
    alpha: float,
) -> torch.Tensor:
    """Embedding lookup, then the draft interpolation patched into the masked, kept slots."""
    emb = torch.nn.functional.embedding(x, weight)
    use = (x == mask_id) & keep & (draft >= 0)
    mixed = (1.0 - alpha) * weight[mask_id].float() + alpha * weight[draft.clamp(min=0)].float()
    return torch.where(use.unsqueeze(-1), mixed.to(weight.dtype), emb)
