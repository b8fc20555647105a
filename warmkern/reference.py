"""The reference ops: readable, vectorised PyTorch. **This file is the spec.**

Every other backend (C++ in csrc/, Triton in warmkern/triton/) must reproduce these results: the
same tokens and selections, scores within fp32 summation-order noise. All ops work on the
*generation region* (`[B, G, ...]` views of the answer part of the sequence) and do their float
math in fp32 whatever the input dtype. Inputs are assumed valid: `warmkern.ops` validates.

Conventions fixed here (and documented in README):
- x0 is chosen among entries != mask_id; the softmax runs over the whole vocabulary.
- "margin" is p(1st) - p(2nd) among entries != mask_id (the candidates x0 is drawn from).
- NaN logits count as -inf; a position with no finite allowed logit gets x0 = mask_id,
  score = -inf, p_cur = 0 and is never transferred.
- Selection order: score descending, then position ascending; NaN scores rank last.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from warmkern import rng
from warmkern.schema import SCORE_MODES, SCORE_TEMPERATURES  # noqa: F401  (part of the spec)

NEG_INF = float("-inf")


# ----------------------------------------------------------------------------- warm_embed
def warm_embed(
    weight: torch.Tensor,
    x: torch.Tensor,
    draft: torch.Tensor,
    keep: torch.Tensor,
    *,
    mask_id: int,
    alpha: float | torch.Tensor,
    scale: float = 1.0,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Input embeddings of the generation region with the draft interpolated into masked slots.

    x != mask_id            -> scale * W[x]
    keep and draft >= 0     -> scale * ((1 - a) * W[mask] + a * W[draft])   (fp32, one rounding)
    otherwise               -> scale * W[mask]
    """
    b = x.shape[0]
    a = torch.as_tensor(alpha, dtype=torch.float32, device=weight.device).reshape(-1)
    a = a.expand(b).reshape(b, 1, 1)
    w_tok = weight[x].float()  # [B, G, D]; gather before casting: never a V x D fp32 copy
    w_mask = weight[mask_id].float().expand_as(w_tok)
    w_draft = weight[draft.clamp(min=0)].float()
    mixed = (1.0 - a) * w_mask + a * w_draft
    interp = (x == mask_id) & keep & (draft >= 0)
    vec = torch.where((x != mask_id).unsqueeze(-1), w_tok, w_mask)
    vec = torch.where(interp.unsqueeze(-1), mixed, vec)
    res = (vec * float(scale)).to(weight.dtype)
    if out is None:
        return res
    out.copy_(res)
    return out


# ----------------------------------------------------------------------------- token_stats
def inverse_temperature(temperature: float) -> torch.Tensor:
    """fp32(1/T) (1 when T = 0): every backend multiplies by this exact value, never divides."""
    return torch.tensor(1.0 / temperature if temperature > 0 else 1.0, dtype=torch.float32)


def combined_logits(
    logits: torch.Tensor,
    *,
    suppress_ids: Sequence[int] = (),
    uncond_logits: torch.Tensor | None = None,
    cfg_scale: float = 0.0,
) -> torch.Tensor:
    """fp32 logits after CFG (u + (s+1)(c-u)), NaN -> -inf and suppression (-inf)."""
    z = logits.float()
    if uncond_logits is not None:
        u = uncond_logits.float()
        z = u + torch.tensor(cfg_scale + 1.0, dtype=torch.float32) * (z - u)
    z = torch.where(torch.isnan(z), NEG_INF, z)
    if len(suppress_ids):
        z[..., list(suppress_ids)] = NEG_INF
    return z


def token_stats(
    logits: torch.Tensor,
    x: torch.Tensor,
    *,
    mask_id: int,
    temperature: float = 0.0,
    score: str = "prob",
    score_temperature: str = "none",
    suppress_ids: Sequence[int] = (),
    demote_ids: Sequence[int] = (),
    uncond_logits: torch.Tensor | None = None,
    cfg_scale: float = 0.0,
    seed: int = 0,
    step: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per position: proposed token x0, its confidence score, and p of the current token.

    Returns (x0 [B,G] int64, score [B,G] fp32, p_cur [B,G] fp32). See module docstring for the
    conventions; Gumbel noise and random scores come from the shared Philox (rng.py) with row
    r = b*G + g, so every backend draws the same numbers for the same (seed, step).
    """
    b, g, v = logits.shape
    dev = logits.device
    z = combined_logits(logits, suppress_ids=suppress_ids, uncond_logits=uncond_logits, cfg_scale=cfg_scale)
    is_mask = torch.arange(v, device=dev) == mask_id

    # x0: argmax over entries != mask_id (torch.argmax returns the first maximum on ties).
    inv_t = inverse_temperature(temperature)
    if temperature > 0:
        noise = rng.gumbel_noise(seed, step, b * g, v, device=dev).reshape(b, g, v)
        pick = z * inv_t + noise
    else:
        pick = z
    pick = pick.masked_fill(is_mask, NEG_INF)
    x0 = pick.argmax(dim=-1)
    z_allowed = z.masked_fill(is_mask, NEG_INF)
    dead = ~torch.isfinite(z_allowed.amax(dim=-1))  # no finite allowed logit (NaN policy)
    x0 = torch.where(dead, mask_id, x0)

    # p = softmax(z / tau), fp32; log-space pieces kept for entropy.
    zt = z * inv_t if score_temperature == "sampling" else z
    m = zt.amax(dim=-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.exp(zt - m)
    s = e.sum(dim=-1, keepdim=True)
    p = e / s

    if score == "prob":
        sc = p.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
    elif score == "margin":
        top2 = p.masked_fill(is_mask, NEG_INF).topk(2, dim=-1).values
        sc = top2[..., 0] - top2[..., 1].clamp(min=0.0)
    elif score == "entropy":
        logp = (zt - m) - torch.log(s)
        sc = torch.where(e > 0, p * logp, torch.zeros_like(p)).sum(dim=-1)
    elif score == "random":
        sc = rng.position_uniforms(seed, step, rng.STREAM_RANDOM_SCORE, b * g, device=dev).reshape(b, g)
    else:
        raise ValueError(f"score: unknown mode {score!r}")

    if len(demote_ids):
        demoted = torch.isin(x0, torch.tensor(list(demote_ids), device=dev))
        sc = sc.masked_fill(demoted, NEG_INF)
    sc = sc.masked_fill(dead, NEG_INF).to(torch.float32)

    cur = x != mask_id
    p_cur = p.gather(-1, torch.where(cur, x, 0).unsqueeze(-1)).squeeze(-1)
    p_cur = torch.where(cur & ~dead, p_cur, torch.zeros_like(p_cur))
    return x0, sc, p_cur


# ----------------------------------------------------------------------------- select
def selection_rank(score: torch.Tensor, eligible: torch.Tensor) -> torch.Tensor:
    """Rank of each position in the spec's total order (0 = first), ineligible positions last.

    Order: eligible first, then NaN scores last, then score descending, then position ascending.
    Built from stable sorts applied from the least to the most significant key.
    """
    nan = torch.isnan(score)
    s = torch.where(nan, NEG_INF, score.float())
    perm = torch.sort(s, dim=-1, descending=True, stable=True).indices
    for key in (nan, ~eligible):  # less significant first
        k = key.gather(-1, perm).to(torch.int8)
        perm = perm.gather(-1, torch.sort(k, dim=-1, stable=True).indices)
    rank = torch.empty_like(perm)
    rank.scatter_(-1, perm, torch.arange(perm.shape[-1], device=perm.device).expand_as(perm).contiguous())
    return rank


def _window(g: int, lo: torch.Tensor, hi: torch.Tensor, device) -> torch.Tensor:
    pos = torch.arange(g, device=device)
    return (pos >= lo.reshape(-1, 1)) & (pos < hi.reshape(-1, 1))


def select(
    score: torch.Tensor,
    x0: torch.Tensor,
    p_cur: torch.Tensor,
    x: torch.Tensor,
    provisional: torch.Tensor,
    *,
    mask_id: int,
    lo: torch.Tensor,
    hi: torch.Tensor,
    k: torch.Tensor | None = None,
    threshold: float | None = None,
    factor: float | None = None,
    remask_threshold: float | None = None,
    remask_max: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Transfer (commit x0) and remask positions of each row in place; returns (n_transfer, n_remask).

    eligible = x == mask_id & x0 != mask_id & lo <= g < hi. Exactly one rule among:
    top-k (first min(k, #eligible) in order), threshold (score >= threshold, at least the first),
    factor (largest n >= 1 with (r+1)*(1-score_r) <= factor for every rank r <= n, in fp32).
    Remask (prior skepticism): provisional in-window positions with p_cur < remask_threshold,
    lowest p_cur first (ties by position), at most remask_max per row.
    """
    g = x.shape[1]
    dev = x.device
    window = _window(g, lo, hi, dev)
    eligible = (x == mask_id) & (x0 != mask_id) & window
    n_elig = eligible.sum(dim=-1, keepdim=True)
    rank = selection_rank(score, eligible)
    if k is not None:
        transfer = eligible & (rank < k.reshape(-1, 1).to(rank.dtype))
    elif threshold is not None:
        passing = eligible & (score >= threshold)
        transfer = passing | (eligible & (rank == 0))
    else:
        # r-th position in order (1-based) passes when (r+1)*(1-score) <= factor; rank 1 always.
        r1 = (rank + 1).to(torch.float32)
        ok = ((r1 + 1.0) * (1.0 - score.float()) <= torch.tensor(factor, dtype=torch.float32)) | (rank == 0)
        ok = ok & eligible
        # n = length of the leading run of passing ranks: first failing rank among eligible.
        fail_rank = torch.where(eligible & ~ok, rank, torch.full_like(rank, g))
        n = torch.minimum(fail_rank.amin(dim=-1, keepdim=True), n_elig)
        transfer = eligible & (rank < n)

    if remask_threshold is not None:
        cand = provisional & window & (x != mask_id) & (p_cur < remask_threshold)
        rrank = selection_rank(-p_cur.float(), cand)
        limit = g if remask_max is None else int(remask_max)
        remask = cand & (rrank < limit)
    else:
        remask = torch.zeros_like(provisional)

    x.copy_(torch.where(transfer, x0, torch.where(remask, torch.full_like(x, mask_id), x)))
    provisional.copy_(provisional & ~transfer & ~remask)
    return transfer.sum(dim=-1), remask.sum(dim=-1)


def denoise_step(
    logits: torch.Tensor,
    x: torch.Tensor,
    provisional: torch.Tensor,
    *,
    mask_id: int,
    lo: torch.Tensor,
    hi: torch.Tensor,
    k: torch.Tensor | None = None,
    threshold: float | None = None,
    factor: float | None = None,
    remask_threshold: float | None = None,
    remask_max: int | None = None,
    temperature: float = 0.0,
    score: str = "prob",
    score_temperature: str = "none",
    suppress_ids: Sequence[int] = (),
    demote_ids: Sequence[int] = (),
    uncond_logits: torch.Tensor | None = None,
    cfg_scale: float = 0.0,
    seed: int = 0,
    step: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """token_stats + select: one denoising step on the generation region, x/provisional in place.

    Only rows inside [lo, hi) influence the result, so fused kernels may skip the others.
    """
    x0, sc, p_cur = token_stats(
        logits, x, mask_id=mask_id, temperature=temperature, score=score,
        score_temperature=score_temperature, suppress_ids=suppress_ids, demote_ids=demote_ids,
        uncond_logits=uncond_logits, cfg_scale=cfg_scale, seed=seed, step=step,
    )
    return select(
        sc, x0, p_cur, x, provisional, mask_id=mask_id, lo=lo, hi=hi, k=k, threshold=threshold,
        factor=factor, remask_threshold=remask_threshold, remask_max=remask_max,
    )
