"""The reference ops: readable, vectorised PyTorch. **This file is the spec.**

Every other backend (C++ in csrc/, Triton in warmkern/triton/) must reproduce these results: the
same tokens and selections, scores within fp32 summation-order noise. All ops work on the
*generation region* (`[B, G, ...]` views of the answer part of the sequence) and do their float
math in fp32 whatever the input dtype. Inputs are assumed valid: `warmkern.ops` validates.

Conventions fixed here (and documented in README):
- The logits a position reads (`combined_logits`): CFG u + (s+1)(c-u), NaN -> -inf, suppress_ids ->
  -inf, then + prior_bias on the prior token. Temperature multiplies by fp32(1/T) (never divides;
  T whose fp32 inverse is not finite is rejected); an overflow to +inf is a +inf logit.
- +inf logits win: a softmax over entries some of which are +inf is uniform over the +inf entries
  (the limit of those logits growing together); the lowest-index +inf entry is the argmax, also
  under Gumbel noise (inf + g = inf).
- Truncation (Dream's top_p then top_k, on the tempered logits, every entry of the softmax taking
  part): top_p keeps entry v iff the tempered-softmax mass of entries with a strictly greater value
  is <= top_p (ties stay together); top_k keeps entries >= the k-th largest value (ties at the k-th
  stay). Removed entries are -inf for the sample and for every score.
- x0 is chosen among the candidates: entries != mask_id and not in pick_suppress_ids. The score
  softmax runs over the whole (truncated) vocabulary minus score_suppress_ids. "margin" is
  p(1st) - p(2nd) among the candidates. An empty score softmax gives p = 0 everywhere.
- A position with no candidate logit > -inf is dead: x0 = mask_id, score = -inf, p_cur = 0, never
  transferred. p_cur of an id outside [0, V) is 0 (never read out of bounds).
- Random numbers: the shared Philox (rng.py), keyed by the row's seed and the position g in the
  generation region, never by the batch index, so a row decodes the same alone or in any batch.
- Selection order: score descending, then position ascending; NaN scores rank last. Dream's
  alg_temp ranks by score/alg_temp + Gumbel (sampling without replacement).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from warmkern import rng
from warmkern.schema import SCORE_MODES, SCORE_TEMPERATURES, SELECT, TOKEN_STATS  # noqa: F401  (modes: spec)

NEG_INF = float("-inf")
POS_INF = float("inf")


# ----------------------------------------------------------------------------- warm_embed
def warm_embed(
    weight: torch.Tensor,
    x: torch.Tensor,
    draft: torch.Tensor,
    keep: torch.Tensor,
    *,
    out: torch.Tensor | None = None,
    mask_id: int,
    alpha: float | torch.Tensor,
    scale: float = 1.0,
    status: torch.Tensor | None = None,
) -> torch.Tensor:
    """Input embeddings of the generation region with the draft interpolated into masked slots.

    x != mask_id            -> scale * W[x]
    keep and draft >= 0     -> scale * ((1 - a) * W[mask] + a * W[draft])   (fp32, one rounding)
    otherwise               -> scale * W[mask]
    A position whose x is outside [0, V) or whose draft is outside [-1, V) gets a zero row, and
    `status` (int32 [1], when given) is set to 1: the op never reads out of bounds, and the caller
    learns of the bad id at its next host sync instead of feeding garbage to the model.
    """
    b = x.shape[0]
    vocab = weight.shape[0]
    bad = (x < 0) | (x >= vocab) | (draft < -1) | (draft >= vocab)
    xs = torch.where(bad, mask_id, x)
    ds = torch.where(bad, -1, draft)
    a = torch.as_tensor(alpha, dtype=torch.float32, device=weight.device).reshape(-1)
    a = a.expand(b).reshape(b, 1, 1)
    w_tok = weight[xs].float()  # [B, G, D]; gather before casting: never a V x D fp32 copy
    w_mask = weight[mask_id].float().expand_as(w_tok)
    w_draft = weight[ds.clamp(min=0)].float()
    mixed = (1.0 - a) * w_mask + a * w_draft
    interp = (xs == mask_id) & keep & (ds >= 0)
    vec = torch.where((xs != mask_id).unsqueeze(-1), w_tok, w_mask)
    vec = torch.where(interp.unsqueeze(-1), mixed, vec)
    vec = torch.where(bad.unsqueeze(-1), 0.0, vec)
    res = (vec * float(scale)).to(weight.dtype)
    if status is not None:
        status.copy_(torch.maximum(status, bad.any().to(status.dtype).reshape(1)))
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
    prior_ids: torch.Tensor | None = None,
    prior_bias: torch.Tensor | None = None,
    vocab_start: int = 0,
) -> torch.Tensor:
    """fp32 logits every statistic reads: CFG (u + (s+1)(c-u)), NaN -> -inf, suppression (-inf), prior.

    The prior adds prior_bias[b] to the logit of token prior_ids[b, g] (-1 = none) after suppression,
    so a suppressed token stays -inf; it precedes temperature, truncation, sampling and every score.
    `logits` may be the vocabulary slice starting at global id `vocab_start` (ids are global).
    """
    z = logits.float()
    if uncond_logits is not None:
        u = uncond_logits.float()
        z = u + torch.tensor(cfg_scale + 1.0, dtype=torch.float32) * (z - u)
    z = torch.where(torch.isnan(z), NEG_INF, z)
    b, _, v = z.shape
    local = [i - vocab_start for i in suppress_ids if vocab_start <= i < vocab_start + v]
    if local:
        z[..., local] = NEG_INF
    if prior_ids is not None:
        hit = torch.arange(vocab_start, vocab_start + v, device=z.device) == prior_ids.unsqueeze(-1)  # -1 never hits
        bias = torch.as_tensor(prior_bias, dtype=torch.float32, device=z.device).reshape(-1).expand(b)
        z = torch.where(hit, z + bias.reshape(b, 1, 1), z)
    return z


def softmax_parts(zt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(p, m, s) of the spec's softmax over the last dim: e = exp(zt - m), s = sum e, p = e / s.

    Rows holding +inf are uniform over their +inf entries (m = +inf, s = their count); rows with no
    entry > -inf have p = 0 (m = -inf, s = 0). Kernels count +inf entries apart from the exp-sum.
    """
    m = zt.amax(dim=-1, keepdim=True)
    finite_m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.exp(zt - finite_m)
    pinf = zt == POS_INF
    n_inf = pinf.sum(dim=-1, keepdim=True).to(torch.float32)
    e = torch.where((m == POS_INF).expand_as(e), pinf.to(torch.float32), e)
    s = e.sum(dim=-1, keepdim=True)
    s = torch.where(m == POS_INF, n_inf, s)
    p = torch.where(s > 0, e / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(e))
    return p, m, s


def truncation_keep(zs: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor | None:
    """Entries Dream's top_p then top_k keep, on the tempered logits zs; None when both are off.

    top_p (< 1): keep v iff the softmax(zs) mass of entries with a value strictly greater than zs_v is
    <= top_p (Dream keeps the first entry past top_p; ties stay together). top_k (1 <= k < V): keep
    v iff zs_v >= the k-th largest value (ties at the k-th value stay). The mass is the fp32 p summed in
    descending order in fp64 and rounded to fp32 (torch's CPU cumsum did this implicitly; CUDA's sums in
    fp32, so the spec says it explicitly and is the same on every device); backends agree with it except
    where it lies within rounding of top_p.
    """
    v = zs.shape[-1]
    keep = None
    if top_p < 1.0:
        q = softmax_parts(zs)[0]
        vals, idx = zs.sort(dim=-1, descending=True, stable=True)
        cum = q.gather(-1, idx).to(torch.float64).cumsum(dim=-1).to(torch.float32)
        # entries strictly greater than vals[i]: searchsorted over the ascending -vals
        n_greater = torch.searchsorted((-vals).contiguous(), (-vals).contiguous(), right=False)
        above = torch.where(n_greater > 0, cum.gather(-1, (n_greater - 1).clamp(min=0)), torch.zeros_like(cum))
        keep = torch.empty_like(zs, dtype=torch.bool).scatter_(-1, idx, above <= top_p)
    if 0 < top_k < v:
        kth = zs.topk(top_k, dim=-1).values[..., -1:]
        keep_k = zs >= kth
        keep = keep_k if keep is None else keep & keep_k
    return keep


def _first_argmax(pick: torch.Tensor) -> torch.Tensor:
    """Index of the maximum, lowest index on ties (+inf included)."""
    m = pick.amax(dim=-1, keepdim=True)
    v = pick.shape[-1]
    idx = torch.arange(v, device=pick.device).expand_as(pick)
    return torch.where(pick == m, idx, v).amin(dim=-1)


def _score(mode: str, p: torch.Tensor, zt_parts: tuple, x0: torch.Tensor, cand: torch.Tensor,
           seeds: torch.Tensor, step: int | torch.Tensor) -> torch.Tensor:
    """The confidence of x0 by `mode` (see the module docstring)."""
    zt, m, s = zt_parts
    if mode == "prob":
        return p.gather(-1, x0.clamp(max=p.shape[-1] - 1).unsqueeze(-1)).squeeze(-1)
    if mode == "margin":
        top2 = p.masked_fill(~cand, NEG_INF).topk(2, dim=-1).values
        return top2[..., 0] - top2[..., 1].clamp(min=0.0)
    if mode == "entropy":
        finite = torch.isfinite(m)
        logp = (zt - torch.where(finite, m, torch.zeros_like(m))) - torch.log(torch.where(s > 0, s, 1.0))
        ent = torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(dim=-1)
        n_inf = s.squeeze(-1)
        return torch.where((m == POS_INF).squeeze(-1), -torch.log(n_inf), ent)
    b, g = x0.shape
    return rng.position_uniforms(seeds, step, rng.STREAM_RANDOM_SCORE, g, device=x0.device).reshape(b, g)


def token_stats(
    logits: torch.Tensor,
    x: torch.Tensor,
    *,
    uncond_logits: torch.Tensor | None = None,
    mask_id: int,
    temperature: float = 0.0,
    score: str = "prob",
    score_temperature: str = "none",
    suppress_ids: Sequence[int] = (),
    pick_suppress_ids: Sequence[int] = (),
    score_suppress_ids: Sequence[int] = (),
    cfg_scale: float = 0.0,
    seed: int = 0,
    row_seeds: torch.Tensor | None = None,
    step: int = 0,
    step_tensor: torch.Tensor | None = None,
    top_k: int = 0,
    top_p: float = 1.0,
    prior_ids: torch.Tensor | None = None,
    prior_bias: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per position: proposed token x0, its confidence score, and p of the current token.

    Returns (x0 [B,G] int64, score [B,G] fp32, p_cur [B,G] fp32); conventions in the module
    docstring. Noise comes from the shared Philox keyed by row_seeds[b] (or `seed` for every row)
    and step_tensor (or `step`).
    """
    b, g, v = logits.shape
    dev = logits.device
    seeds = rng.row_seeds(seed if row_seeds is None else row_seeds, b, dev)
    step_v = step if step_tensor is None else step_tensor
    z = combined_logits(logits, suppress_ids=suppress_ids, uncond_logits=uncond_logits, cfg_scale=cfg_scale,
                        prior_ids=prior_ids, prior_bias=prior_bias)
    inv_t = inverse_temperature(temperature)
    zs = z * inv_t
    keep = truncation_keep(zs, top_k, top_p)
    if keep is not None:
        z, zs = z.masked_fill(~keep, NEG_INF), zs.masked_fill(~keep, NEG_INF)

    cand = torch.ones(v, dtype=torch.bool, device=dev)
    cand[mask_id] = False
    if len(pick_suppress_ids):
        cand[list(pick_suppress_ids)] = False
    pick = zs + rng.gumbel_noise(seeds, step_v, g, v, device=dev) if temperature > 0 else z
    x0 = _first_argmax(pick.masked_fill(~cand, NEG_INF))
    dead = z.masked_fill(~cand, NEG_INF).amax(dim=-1) == NEG_INF
    x0 = torch.where(dead, mask_id, x0)

    zt = zs if score_temperature == "sampling" else z
    if len(score_suppress_ids):
        zt = zt.clone()
        zt[..., list(score_suppress_ids)] = NEG_INF
    p, m, s = softmax_parts(zt)
    sc = _score(score, p, (zt, m, s), x0, cand, seeds, step_v).to(torch.float32)
    sc = sc.masked_fill(dead, NEG_INF)

    cur = (x != mask_id) & (x >= 0) & (x < v)
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


def alg_temp_keys(score: torch.Tensor, alg_temp: float, seeds: torch.Tensor, step: int | torch.Tensor) -> torch.Tensor:
    """Dream's alg_temp: score * fp32(1/alg_temp) + Gumbel (stream 3, one draw per position).

    The first k of this order are an exact sample without replacement from softmax(score / alg_temp),
    which is what Dream's torch.multinomial draws.
    """
    b, g = score.shape
    inv = torch.tensor(1.0 / alg_temp, dtype=torch.float32)
    noise = rng.position_gumbels(seeds, step, rng.STREAM_ALG_TEMP, g, device=score.device).reshape(b, g)
    return score.float() * inv + noise


def _window(g: int, lo: torch.Tensor, hi: torch.Tensor, device) -> torch.Tensor:
    pos = torch.arange(g, device=device)
    return (pos >= lo.reshape(-1, 1)) & (pos < hi.reshape(-1, 1))


def _transfer(score: torch.Tensor, eligible: torch.Tensor, rank: torch.Tensor, k, threshold, factor) -> torch.Tensor:
    """Positions each rule commits: top-k, threshold (at least the first), or factor (Fast-dLLM)."""
    g = score.shape[1]
    if k is not None:
        return eligible & (rank < k.reshape(-1, 1).to(rank.dtype))
    if threshold is not None:
        return eligible & ((score >= threshold) | (rank == 0))
    # r-th position in order (1-based) passes when (r+1)*(1-score) <= factor; rank 1 always.
    r1 = (rank + 1).to(torch.float32)
    ok = ((r1 + 1.0) * (1.0 - score.float()) <= torch.tensor(factor, dtype=torch.float32)) | (rank == 0)
    ok = ok & eligible
    # n = length of the leading run of passing ranks: first failing rank among eligible.
    fail_rank = torch.where(eligible & ~ok, rank, torch.full_like(rank, g))
    n = torch.minimum(fail_rank.amin(dim=-1, keepdim=True), eligible.sum(dim=-1, keepdim=True))
    return eligible & (rank < n)


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
    alg_temp: float = 0.0,
    seed: int = 0,
    row_seeds: torch.Tensor | None = None,
    step: int = 0,
    step_tensor: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Transfer (commit x0) and remask positions of each row in place; returns (n_transfer, n_remask).

    eligible = x == mask_id & x0 != mask_id & lo <= g < hi. Exactly one rule among:
    top-k (first min(k, #eligible) in order), threshold (score >= threshold, at least the first),
    factor (largest n >= 1 with (r+1)*(1-score_r) <= factor for every rank r <= n, in fp32).
    alg_temp > 0 (top-k only, Dream): the order is that of alg_temp_keys, a sample without replacement.
    Remask (prior skepticism): provisional in-window positions with p_cur < remask_threshold,
    lowest p_cur first (ties by position), at most remask_max per row.
    """
    b, g = x.shape
    dev = x.device
    window = _window(g, lo, hi, dev)
    eligible = (x == mask_id) & (x0 != mask_id) & window
    order = score
    if alg_temp > 0:
        seeds = rng.row_seeds(seed if row_seeds is None else row_seeds, b, dev)
        order = alg_temp_keys(score, alg_temp, seeds, step if step_tensor is None else step_tensor)
    transfer = _transfer(score, eligible, selection_rank(order, eligible), k, threshold, factor)

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
    uncond_logits: torch.Tensor | None = None,
    mask_id: int,
    lo: torch.Tensor,
    hi: torch.Tensor,
    k: torch.Tensor | None = None,
    threshold: float | None = None,
    factor: float | None = None,
    remask_threshold: float | None = None,
    remask_max: int | None = None,
    alg_temp: float = 0.0,
    temperature: float = 0.0,
    score: str = "prob",
    score_temperature: str = "none",
    suppress_ids: Sequence[int] = (),
    pick_suppress_ids: Sequence[int] = (),
    score_suppress_ids: Sequence[int] = (),
    cfg_scale: float = 0.0,
    seed: int = 0,
    row_seeds: torch.Tensor | None = None,
    step: int = 0,
    step_tensor: torch.Tensor | None = None,
    top_k: int = 0,
    top_p: float = 1.0,
    prior_ids: torch.Tensor | None = None,
    prior_bias: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """token_stats + select: one denoising step on the generation region, x/provisional in place.

    Only rows inside [lo, hi) influence the result, so fused kernels may skip the others.
    """
    args = locals()
    stats_kw = {n: args[n] for n in _TOKEN_STATS_KW}
    rule_kw = {n: args[n] for n in _SELECT_KW}
    x0, sc, p_cur = token_stats(logits, x, **stats_kw)
    return select(sc, x0, p_cur, x, provisional, **rule_kw)



# denoise_step's arguments of each half, by the op tables (warmkern.schema)
_TOKEN_STATS_KW = tuple(n for n in TOKEN_STATS.names if n not in ("logits", "x"))
_SELECT_KW = tuple(n for n in SELECT.names if n not in ("score", "x0", "p_cur", "x", "provisional"))


# ----------------------------------------------------------------------------- vocabulary shards (issue 16)
# The shard passes' spec lives in warmkern/partial/ (state layout, merges, truncation rounds); the reference
# backend exposes them here like every other op (resolved on first use: warmkern.partial imports this module).
_PARTIAL = {"token_stats_partial": "warmkern.partial.state", "truncation_partial": "warmkern.partial.truncation",
            "nucleus_partial": "warmkern.partial.truncation", "head_token_stats": "warmkern.partial.head"}


def __getattr__(name: str):
    if name in _PARTIAL:
        import importlib

        return getattr(importlib.import_module(_PARTIAL[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
