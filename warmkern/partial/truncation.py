"""Dream's top-p / top-k truncation over vocabulary shards: the per-shard passes and their merges. **Spec.**

Both rules keep the entries whose tempered logit zs is >= a per-position cutoff (reference.truncation_keep):
top_k's cutoff is the k-th largest zs; top_p's is the smallest zs whose "mass strictly above" is <= top_p.
Neither is local to a shard, so truncation takes extra rounds before the state pass (state.py), each one
shard pass + one exchange of O(B·G·small) values:

  round 1  truncation_partial: per shard (max, exp-sum) of zs and its top_k largest values (2 + k floats);
           merged: the global (m, s) and the k-th largest value (top_k's cutoff).
  rounds 2-5 (top_p only)  nucleus_partial: per shard the exp-mass of its entries binned by 8 bits of the
           fp32 ordered key, under the prefix found so far (256 floats); merged: the next 8 bits of the
           smallest key whose mass-above is <= top_p. Four rounds fix all 32 bits, so the cutoff is exact
           up to the fp32 summation order of the masses (as every backend: only a mass within rounding of
           top_p can differ from the reference's sorted cumsum).

Rounds per step: 1 (no truncation), 2 (top_k), 6 (top_p, with or without top_k). Bytes per rank and
position: 4 (2 + k) in round 1, 1 KiB in each top-p round, 20-28 in the state round (state.wire_fields).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from warmkern import reference
from warmkern.schema import NUCLEUS_BINS, NUCLEUS_LEVELS

NEG_INF = float("-inf")
POS_INF = float("inf")
KEY_BITS = 32
_SIGN = 1 << 31
_MASK32 = (1 << 32) - 1


def tempered(
    logits: torch.Tensor, vocab_start: int, *, uncond_logits: torch.Tensor | None, temperature: float,
    suppress_ids: Sequence[int], cfg_scale: float, prior_ids: torch.Tensor | None, prior_bias: torch.Tensor | None,
) -> torch.Tensor:
    """zs of the shard: reference.combined_logits times fp32(1/T), the values truncation reads."""
    z = reference.combined_logits(logits, suppress_ids=suppress_ids, uncond_logits=uncond_logits,
                                  cfg_scale=cfg_scale, prior_ids=prior_ids, prior_bias=prior_bias,
                                  vocab_start=vocab_start)
    return z * reference.inverse_temperature(temperature)


def truncation_partial(
    logits: torch.Tensor, *, vocab_start: int, vocab_total: int, uncond_logits: torch.Tensor | None = None,
    temperature: float = 0.0, suppress_ids: Sequence[int] = (), cfg_scale: float = 0.0,
    prior_ids: torch.Tensor | None = None, prior_bias: torch.Tensor | float | None = None, top_k: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """([B, G, 2] (max, exp-sum) of zs, [B, G, top_k] its top_k largest values, -inf padded) of one shard."""
    zs = tempered(logits, vocab_start, uncond_logits=uncond_logits, temperature=temperature,
                  suppress_ids=suppress_ids, cfg_scale=cfg_scale, prior_ids=prior_ids, prior_bias=prior_bias)
    _, m, s = reference.softmax_parts(zs)
    b, g, v = zs.shape
    top = torch.full((b, g, top_k), NEG_INF, dtype=torch.float32, device=zs.device)
    n = min(top_k, v)
    if n:
        top[..., :n] = zs.topk(n, dim=-1).values
    return torch.cat([m, s], dim=-1), top


def ordered_key(zs: torch.Tensor) -> torch.Tensor:
    """int64 key in [0, 2^32) with key(a) < key(b) iff a < b for non-NaN fp32 (-0.0 is taken as +0.0)."""
    bits = (zs + 0.0).view(torch.int32).to(torch.int64) & _MASK32
    return torch.where(bits >= _SIGN, bits ^ _MASK32, bits | _SIGN)


def key_value(key: torch.Tensor) -> torch.Tensor:
    """The fp32 value of an ordered key (inverse of ordered_key)."""
    bits = torch.where(key >= _SIGN, key ^ _SIGN, key ^ _MASK32)
    return torch.where(bits >= _SIGN, bits - (1 << 32), bits).to(torch.int32).view(torch.float32)


def nucleus_partial(
    logits: torch.Tensor, *, vocab_start: int, vocab_total: int, uncond_logits: torch.Tensor | None = None,
    temperature: float = 0.0, suppress_ids: Sequence[int] = (), cfg_scale: float = 0.0,
    prior_ids: torch.Tensor | None = None, prior_bias: torch.Tensor | float | None = None, zs_max: torch.Tensor,
    prefix: torch.Tensor, level: int,
) -> torch.Tensor:
    """[B, G, 256] sum of exp(zs - zs_max) over the shard's entries whose key's top 8·level bits equal
    `prefix`, binned by the next 8 bits (+inf entries weigh 1 when zs_max = +inf, like softmax_parts)."""
    zs = tempered(logits, vocab_start, uncond_logits=uncond_logits, temperature=temperature,
                  suppress_ids=suppress_ids, cfg_scale=cfg_scale, prior_ids=prior_ids, prior_bias=prior_bias)
    m = zs_max.unsqueeze(-1)
    fm = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.where(m == POS_INF, (zs == POS_INF).to(torch.float32), torch.exp(zs - fm))
    key = ordered_key(zs)
    shift = KEY_BITS - 8 * (level + 1)
    inside = (key >> (shift + 8)) == prefix.unsqueeze(-1)
    hist = torch.zeros((*zs.shape[:2], NUCLEUS_BINS), dtype=torch.float32, device=zs.device)
    return hist.scatter_add_(-1, (key >> shift) & (NUCLEUS_BINS - 1), torch.where(inside, e, 0.0))


# ----------------------------------------------------------------------------- merges
def merge_softmax(parts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Global (m, s) [B, G] from [S, B, G, 2] per-shard (max, exp-sum), folded in shard order."""
    from warmkern.partial.state import rescale

    m, s = parts[0, ..., 0], parts[0, ..., 1]
    for p in parts[1:]:
        m2 = torch.maximum(m, p[..., 0])
        s = s * rescale(m, m2) + p[..., 1] * rescale(p[..., 0], m2)
        m = m2
    return m.contiguous(), s.contiguous()  # one shard: views of parts, which the validated nucleus_partial refuses


def kth_largest(lists: torch.Tensor, k: int) -> torch.Tensor:
    """[B, G] k-th largest value of the union of per-shard top-k lists [S, B, G, k] (top_k's cutoff)."""
    union = lists.permute(1, 2, 0, 3).reshape(lists.shape[1], lists.shape[2], -1)
    return union.topk(k, dim=-1).values[..., -1].contiguous()


def nucleus_cutoff(
    histograms: Callable[[int, torch.Tensor], torch.Tensor], s: torch.Tensor, top_p: float,
) -> torch.Tensor:
    """[B, G] top_p's cutoff: the value of the smallest key K with mass(keys > K) / s <= top_p.

    `histograms(level, prefix)` returns the [S, B, G, 256] nucleus_partial results of every shard. Each
    level picks the lowest bin whose upper edge already has mass-above <= top_p, so after four levels the
    prefix is that key; the mass above the bracket is carried from level to level, never recomputed.
    """
    prefix = torch.zeros(s.shape, dtype=torch.int64, device=s.device)
    above = torch.zeros_like(s)
    safe = torch.where(s > 0, s, torch.ones_like(s)).unsqueeze(-1)
    p = torch.tensor(top_p, dtype=torch.float32)
    for level in range(NUCLEUS_LEVELS):
        parts = histograms(level, prefix)
        hist = parts[0]
        for h in parts[1:]:
            hist = hist + h
        # mass strictly above bin j's upper edge: the bins after j, plus what lies above the bracket
        after = torch.cat([hist[..., 1:].flip(-1).cumsum(-1).flip(-1), torch.zeros_like(hist[..., :1])], dim=-1)
        mass = above.unsqueeze(-1) + after
        ok = torch.where(s.unsqueeze(-1) > 0, mass / safe, torch.zeros_like(mass)) <= p
        j = torch.where(ok, torch.arange(NUCLEUS_BINS, device=s.device), NUCLEUS_BINS - 1).amin(dim=-1)
        above = mass.gather(-1, j.unsqueeze(-1)).squeeze(-1)
        prefix = prefix * NUCLEUS_BINS + j
    lowest = ordered_key(torch.tensor(NEG_INF, device=s.device))
    return key_value(torch.maximum(prefix, lowest))
