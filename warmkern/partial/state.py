"""The partial state of `token_stats` over one vocabulary shard, its merge and its finalisation. **Spec.**

token_stats is one reduction over the vocabulary per position. Cut the vocabulary into shards
[vocab_start, vocab_start + V) of a vocab_total vocabulary; each shard reduces its slice to a state of
STATE_WIDTH fp32 fields (below); `merge` combines two states of adjacent shards (the lower one first)
exactly as the one-pass reduction over both would, up to fp32 summation order in the exp-sums; `finalize`
turns the merged state into (x0, score, p_cur). Ids (mask_id, suppression lists, the prior, x) are global
and may fall in any shard; the Gumbel noise is Philox keyed by the global index (rng.vocab_words), so a
shard draws exactly its slice of the one-device noise and the sampled x0 is *identical*, not just close.

Fields of one position (the index is an int32 stored bit for bit in the fp32 tensor):
  best, best_idx, best_zt  max over candidates of the pick value (z, or z/T + Gumbel) with the lowest global
                           index attaining it, and the score logit zt at that index (prob score of x0)
  alive                    1 if some candidate has a logit > -inf (else the position is dead)
  m, s                     max of zt and sum exp(zt - m); s counts the +inf entries when m = +inf
  ent                      sum of exp(zt - m) (zt - m) over the finite entries (entropy score only)
  c1, c2                   the two largest zt among candidates (margin score only)
  zt_cur                   zt of the current token x (-inf when x is not in the shard or is the mask)
Truncation (top_k / top_p) is decided before this pass and arrives as a per-position `cutoff` on the
tempered logits (warmkern.partial.truncation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from warmkern import reference, rng
from warmkern.schema import STATE_WIDTH

NEG_INF = float("-inf")
POS_INF = float("inf")
FIELDS = ("best", "best_idx", "best_zt", "alive", "m", "s", "ent", "c1", "c2", "zt_cur")
BEST, BEST_IDX, BEST_ZT, ALIVE, M, S, ENT, C1, C2, ZT_CUR = range(len(FIELDS))
assert len(FIELDS) == STATE_WIDTH


def _candidates(v: int, vocab_start: int, mask_id: int, pick_suppress_ids: Sequence[int], device) -> torch.Tensor:
    """[v] bool: global ids of the shard that may be proposed as x0."""
    ids = torch.arange(vocab_start, vocab_start + v, device=device)
    cand = ids != mask_id
    for i in pick_suppress_ids:
        cand &= ids != i
    return cand


def _top2(vals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two largest values of the last dim (a multiset: equal values both count); -inf pads."""
    if vals.shape[-1] >= 2:
        t = vals.topk(2, dim=-1).values
        return t[..., 0], t[..., 1]
    return vals[..., 0], torch.full_like(vals[..., 0], NEG_INF)


def _softmax_fields(zt: torch.Tensor, entropy: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(m, s, ent) of reference.softmax_parts' convention: +inf rows count their +inf entries."""
    m = zt.amax(dim=-1)
    fm = torch.where(torch.isfinite(m), m, torch.zeros_like(m)).unsqueeze(-1)
    d = zt - fm
    e = torch.exp(d)
    s = torch.where(m == POS_INF, (zt == POS_INF).sum(dim=-1).to(torch.float32), e.sum(dim=-1))
    ent = torch.zeros_like(m)
    if entropy:
        ent = torch.where(e > 0, e * d, torch.zeros_like(e)).sum(dim=-1)
    return m, s, ent


def token_stats_partial(
    logits: torch.Tensor, x: torch.Tensor, *, vocab_start: int, vocab_total: int,
    uncond_logits: torch.Tensor | None = None, mask_id: int, temperature: float = 0.0, score: str = "prob",
    score_temperature: str = "none", suppress_ids: Sequence[int] = (), pick_suppress_ids: Sequence[int] = (),
    score_suppress_ids: Sequence[int] = (), cfg_scale: float = 0.0, seed: int = 0,
    row_seeds: torch.Tensor | None = None, step: int = 0, step_tensor: torch.Tensor | None = None,
    prior_ids: torch.Tensor | None = None, prior_bias: torch.Tensor | float | None = None,
    cutoff: torch.Tensor | None = None, position_offset: int = 0,
) -> torch.Tensor:
    """[B, G, STATE_WIDTH] fp32 state of the shard `logits` = entries [vocab_start, vocab_start + V)."""
    b, g, v = logits.shape
    dev = logits.device
    z = reference.combined_logits(logits, suppress_ids=suppress_ids, uncond_logits=uncond_logits,
                                  cfg_scale=cfg_scale, prior_ids=prior_ids, prior_bias=prior_bias,
                                  vocab_start=vocab_start)
    zs = z * reference.inverse_temperature(temperature)
    if cutoff is not None:
        drop = zs < cutoff.unsqueeze(-1)
        z, zs = z.masked_fill(drop, NEG_INF), zs.masked_fill(drop, NEG_INF)
    cand = _candidates(v, vocab_start, mask_id, pick_suppress_ids, dev)
    state = torch.empty((b, g, STATE_WIDTH), dtype=torch.float32, device=dev)
    if temperature > 0:
        seeds = rng.row_seeds(seed if row_seeds is None else row_seeds, b, dev)
        noise = rng.gumbel_noise(seeds, step if step_tensor is None else step_tensor, g, v, device=dev,
                                 vocab_start=vocab_start, vocab_total=vocab_total, position_start=position_offset)
        pick = (zs + noise).masked_fill(~cand, NEG_INF)
    else:
        pick = z.masked_fill(~cand, NEG_INF)
    best = pick.amax(dim=-1, keepdim=True)
    idx = torch.where(pick == best, torch.arange(v, device=dev), v).amin(dim=-1, keepdim=True)  # lowest index
    state[..., BEST] = best.squeeze(-1)
    state[..., BEST_IDX] = (idx.squeeze(-1) + vocab_start).to(torch.int32).view(torch.float32)
    state[..., ALIVE] = (z.masked_fill(~cand, NEG_INF).amax(dim=-1) > NEG_INF).to(torch.float32)

    zt = zs if score_temperature == "sampling" else z
    local = [i - vocab_start for i in score_suppress_ids if vocab_start <= i < vocab_start + v]
    if local:
        zt = zt.clone()
        zt[..., local] = NEG_INF
    state[..., BEST_ZT] = zt.gather(-1, idx).squeeze(-1)
    state[..., M], state[..., S], state[..., ENT] = _softmax_fields(zt, score == "entropy")
    c1 = c2 = torch.full((b, g), NEG_INF, device=dev)
    if score == "margin":
        c1, c2 = _top2(zt.masked_fill(~cand, NEG_INF))
    state[..., C1], state[..., C2] = c1, c2
    own = (x >= vocab_start) & (x < vocab_start + v) & (x != mask_id)
    cur = zt.gather(-1, torch.where(own, x - vocab_start, 0).unsqueeze(-1)).squeeze(-1)
    state[..., ZT_CUR] = torch.where(own, cur, torch.full_like(cur, NEG_INF))
    return state


# ----------------------------------------------------------------------------- the wire
def wire_fields(score: str, temperature: float, score_temperature: str, score_suppress_ids: Sequence[int]) -> tuple:
    """The fields a merge needs for this call; the others follow from them or are unused (what ranks exchange).

    At T = 0 alive is best > -inf and, without score suppression, the score logit of x0 is `best` itself
    (a dead position's score is -inf whatever it is); ent / c1, c2 serve only their score mode. Greedy prob:
    5 fields, 20 bytes per position.
    """
    fields = {BEST, BEST_IDX, M, S, ZT_CUR}
    if temperature > 0:
        fields.add(ALIVE)
    if score == "prob" and (temperature > 0 or len(score_suppress_ids) or score_temperature == "sampling"):
        fields.add(BEST_ZT)
    fields |= {"margin": {C1, C2}, "entropy": {ENT}}.get(score, set())
    return tuple(sorted(fields))


def unpack(packed: torch.Tensor, fields: tuple) -> torch.Tensor:
    """Full states [..., STATE_WIDTH] from the wire_fields columns: derived fields rebuilt, unused ones neutral."""
    full = torch.zeros((*packed.shape[:-1], STATE_WIDTH), dtype=torch.float32, device=packed.device)
    full[..., [C1, C2]] = NEG_INF
    full[..., list(fields)] = packed
    if ALIVE not in fields:
        full[..., ALIVE] = (full[..., BEST] > NEG_INF).to(torch.float32)
    if BEST_ZT not in fields:
        full[..., BEST_ZT] = full[..., BEST]
    return full


# ----------------------------------------------------------------------------- merge
def rescale(m_i: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Factor taking an exp-sum relative to m_i to one relative to m >= m_i (+inf maxima count entries)."""
    finite = torch.exp(torch.where(m_i == NEG_INF, NEG_INF, m_i - torch.where(torch.isfinite(m), m, 0.0)))
    return torch.where(m == POS_INF, (m_i == POS_INF).to(torch.float32), torch.where(m == NEG_INF, 0.0, finite))


def merge(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """State of shards a then b (a holds the lower global ids: ties of the pick go to a)."""
    out = torch.empty_like(a)
    take_b = (b[..., BEST] > a[..., BEST]).unsqueeze(-1)
    for f in (BEST, BEST_IDX, BEST_ZT):
        out[..., f] = torch.where(take_b.squeeze(-1), b[..., f], a[..., f])
    out[..., ALIVE] = torch.maximum(a[..., ALIVE], b[..., ALIVE])
    m = torch.maximum(a[..., M], b[..., M])
    ka, kb = rescale(a[..., M], m), rescale(b[..., M], m)
    out[..., M] = m
    out[..., S] = a[..., S] * ka + b[..., S] * kb
    out[..., ENT] = _ent_part(a, m, ka) + _ent_part(b, m, kb)
    out[..., C1] = torch.maximum(a[..., C1], b[..., C1])
    out[..., C2] = torch.maximum(torch.minimum(a[..., C1], b[..., C1]), torch.maximum(a[..., C2], b[..., C2]))
    out[..., ZT_CUR] = torch.maximum(a[..., ZT_CUR], b[..., ZT_CUR])
    return out


def _ent_part(st: torch.Tensor, m: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """sum e (zt - m) of one side relative to the merged max: k (ent_i + (m_i - m) s_i)."""
    shift = st[..., M] - m
    part = k * (st[..., ENT] + shift * st[..., S])
    return torch.where((k > 0) & (st[..., S] > 0) & torch.isfinite(m), part, 0.0)  # k = 0: nothing (not 0·inf)


def merge_states(states: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """Fold [S, B, G, STATE_WIDTH] states in shard order (deterministic: every rank folds the same way)."""
    out = states[0]
    for st in states[1:]:
        out = merge(out, st)
    return out


# ----------------------------------------------------------------------------- finalize
def prob(val: torch.Tensor, m: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """p of a score logit `val` under (m, s), exactly reference.softmax_parts' p for that entry."""
    fm = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.where(m == POS_INF, (val == POS_INF).to(torch.float32), torch.exp(val - fm))
    return torch.where(s > 0, e / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(e))


def finalize(
    state: torch.Tensor, x: torch.Tensor, *, mask_id: int, score: str, vocab_total: int,
    seed: int | torch.Tensor = 0, step: int | torch.Tensor = 0, position_offset: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x0, score, p_cur) of a merged state, by reference.token_stats' rules."""
    b, g, _ = state.shape
    dead = state[..., ALIVE] == 0
    x0 = torch.where(dead, mask_id, state[..., BEST_IDX].contiguous().view(torch.int32).to(torch.int64))
    m, s = state[..., M], state[..., S]
    if score == "prob":
        sc = prob(state[..., BEST_ZT], m, s)
    elif score == "margin":
        sc = prob(state[..., C1], m, s) - prob(state[..., C2], m, s).clamp(min=0.0)
    elif score == "entropy":
        safe = torch.where(s > 0, s, torch.ones_like(s))
        ent = torch.where(s > 0, state[..., ENT] / safe - torch.log(safe), torch.zeros_like(s))
        sc = torch.where(m == POS_INF, -torch.log(s), ent)
    else:
        seeds = rng.row_seeds(seed, b, state.device)
        sc = rng.position_uniforms(seeds, step, rng.STREAM_RANDOM_SCORE, g, device=state.device,
                                   position_start=position_offset).reshape(b, g)
    sc = sc.to(torch.float32).masked_fill(dead, NEG_INF)
    cur = (x != mask_id) & (x >= 0) & (x < vocab_total) & ~dead
    p_cur = torch.where(cur, prob(state[..., ZT_CUR], m, s), torch.zeros_like(m))
    return x0, sc, p_cur
