"""The parity contract, shared by every backend's tests: compare a backend against the reference.

- tokens, selections, x/provisional updates and counts: identical;
- at T > 0 a sampled x0 may differ only at a genuine near tie (the two candidates' perturbed values
  within 1e-5 relative) and on at most 0.1% of positions;
- score / p_cur: within 1e-5 relative (atol 1e-6 for values near 0), compared where x0 agrees.
"""

from __future__ import annotations

import torch

from warmkern import reference, rng

RTOL = 1e-5
ATOL = 1e-6
NEAR_TIE_RTOL = 1e-5
MAX_TIE_SHARE = 1e-3


def perturbed(logits, *, temperature, seed, step, suppress_ids=(), uncond_logits=None, cfg_scale=0.0,
              prior_ids=None, prior_bias=None, top_k=0, top_p=1.0):
    """The reference's Gumbel-perturbed values z/T + g, [B, G, V] fp32 (seed: int or [B] per-row seeds)."""
    b, g, v = logits.shape
    z = reference.combined_logits(logits, suppress_ids=suppress_ids, uncond_logits=uncond_logits, cfg_scale=cfg_scale,
                                  prior_ids=prior_ids, prior_bias=prior_bias)
    zs = z * reference.inverse_temperature(temperature)
    keep = reference.truncation_keep(zs, top_k, top_p)
    if keep is not None:
        zs = zs.masked_fill(~keep, float("-inf"))
    return zs + rng.gumbel_noise(rng.row_seeds(seed, b), step, g, v)


def assert_stats_match(got, want, *, logits, temperature=0.0, seed=0, step=0, suppress_ids=(),
                       uncond_logits=None, cfg_scale=0.0, **truncation_and_prior):
    """Check a backend's (x0, score, p_cur) against the reference's under the parity contract."""
    x0, sc, pc = got
    rx0, rsc, rpc = want
    assert x0.dtype == torch.int64 and sc.dtype == torch.float32 and pc.dtype == torch.float32
    differ = x0 != rx0
    if temperature == 0:
        assert not differ.any(), f"x0 differs at {differ.nonzero().tolist()[:10]}"
    elif differ.any():
        share = differ.float().mean().item()
        assert share <= MAX_TIE_SHARE or differ.sum() <= 1, f"x0 differs on {share:.4%} of positions"
        pert = perturbed(logits, temperature=temperature, seed=seed, step=step, suppress_ids=suppress_ids,
                         uncond_logits=uncond_logits, cfg_scale=cfg_scale, **truncation_and_prior)
        a = pert.gather(-1, x0.unsqueeze(-1)).squeeze(-1)[differ]
        b = pert.gather(-1, rx0.unsqueeze(-1)).squeeze(-1)[differ]
        gap = (a - b).abs() / torch.maximum(a.abs(), b.abs()).clamp(min=1e-30)
        assert (gap <= NEAR_TIE_RTOL).all(), f"x0 differs beyond a near tie: relative gaps {gap.tolist()}"
    same = ~differ
    torch.testing.assert_close(sc[same], rsc[same], rtol=RTOL, atol=ATOL, equal_nan=True)
    torch.testing.assert_close(pc, rpc, rtol=RTOL, atol=ATOL)
