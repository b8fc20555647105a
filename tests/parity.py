"""The parity contract, shared by every backend's tests: compare a backend against the reference.

- tokens, selections, x/provisional updates and counts: identical;
- at T > 0 a sampled x0 may differ only at a genuine near tie (the two candidates' perturbed values
  within 1e-5 relative) and on at most 0.1% of positions;
- score / p_cur: within 1e-5 relative (atol 1e-6 for values near 0), compared where x0 agrees.

GPU contract (what the first CUDA run checks; decided per use in warmkern/triton/fastmath.py). The
interpreter evaluates exp/log with numpy, a GPU build with ex2.approx / lg2.approx / libdevice:
- x0 at T = 0: comparisons only (CFG without FMA contraction) -> identical, as above;
- x0 at T > 0: the outer log of the Gumbel noise is lg2.approx (absolute error ~1e-7 near g = 0), so
  a near tie is |a - b| <= 1e-5 * max(1, |a|, |b|) (GPU_NEAR_TIE, an absolute floor at 1e-5);
- score / p_cur: same 1e-5 relative rule (final p = e / s is div_rn, exp/log libdevice; the sums
  differ from torch's by order and ex2.approx, far below 1e-5);
- selections made from scores the GPU computed (denoise_step): identical except at positions whose
  reference score is within RTOL of a decision boundary (another eligible score, the threshold,
  the factor inequality, the remask threshold): `assert_selection_match`. The standalone select
  compares its input scores exactly as the reference does: identical.
"""

from __future__ import annotations

import torch

from warmkern import reference, rng

RTOL = 1e-5
ATOL = 1e-6
NEAR_TIE_RTOL = 1e-5
GPU_NEAR_TIE = 1e-5  # |a - b| <= GPU_NEAR_TIE * max(1, |a|, |b|) on a GPU
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


def near_tie(a: torch.Tensor, b: torch.Tensor, *, gpu: bool) -> torch.Tensor:
    """Which pairs of perturbed values count as a near tie under the (interpreter or GPU) contract."""
    scale = torch.maximum(a.abs(), b.abs())
    if gpu:
        return (a - b).abs() <= GPU_NEAR_TIE * scale.clamp(min=1.0)
    return (a - b).abs() <= NEAR_TIE_RTOL * scale.clamp(min=1e-30)


def assert_stats_match(got, want, *, logits, temperature=0.0, seed=0, step=0, suppress_ids=(),
                       uncond_logits=None, cfg_scale=0.0, **truncation_and_prior):
    """Check a backend's (x0, score, p_cur) against the reference's under the parity contract."""
    x0, sc, pc = (t.cpu() for t in got)
    rx0, rsc, rpc = want
    gpu = got[0].is_cuda
    assert x0.dtype == torch.int64 and sc.dtype == torch.float32 and pc.dtype == torch.float32
    differ = x0 != rx0
    if temperature == 0:
        assert not differ.any(), f"x0 differs at {differ.nonzero().tolist()[:10]}"
    elif differ.any():
        share = differ.float().mean().item()
        assert share <= MAX_TIE_SHARE or differ.sum() <= 1, f"x0 differs on {share:.4%} of positions"
        cpu = {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in truncation_and_prior.items()}
        pert = perturbed(logits.cpu(), temperature=temperature, seed=seed.cpu() if isinstance(seed, torch.Tensor)
                         else seed, step=step, suppress_ids=suppress_ids,
                         uncond_logits=None if uncond_logits is None else uncond_logits.cpu(), cfg_scale=cfg_scale,
                         **cpu)
        a = pert.gather(-1, x0.unsqueeze(-1)).squeeze(-1)[differ]
        b = pert.gather(-1, rx0.unsqueeze(-1)).squeeze(-1)[differ]
        assert near_tie(a, b, gpu=gpu).all(), f"x0 differs beyond a near tie: values {a.tolist()} vs {b.tolist()}"
    same = ~differ
    torch.testing.assert_close(sc[same], rsc[same], rtol=RTOL, atol=ATOL, equal_nan=True)
    torch.testing.assert_close(pc, rpc, rtol=RTOL, atol=ATOL)


def near_boundary(score: torch.Tensor, member: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
    """[B, G] positions whose score is within RTOL of another member's score or of `threshold`: where a
    score that differs from the reference's by the allowed RTOL could change a selection."""
    s = score.float()
    scale = s.abs().clamp(min=ATOL)
    close = ((s.unsqueeze(-1) - s.unsqueeze(-2)).abs() <= RTOL * torch.maximum(scale.unsqueeze(-1),
                                                                                scale.unsqueeze(-2)))
    close &= member.unsqueeze(-1) & member.unsqueeze(-2)
    close &= ~torch.eye(s.shape[-1], dtype=torch.bool, device=s.device)
    out = close.any(-1)
    if threshold is not None:
        out |= (s - threshold).abs() <= RTOL * max(abs(threshold), ATOL)
    return out & member


def assert_selection_match(x, want_x, prov, want_prov, *, allowed: torch.Tensor | None = None):
    """x / provisional after a step: identical, or (GPU contract) different only where `allowed`."""
    gpu = x.is_cuda
    x, prov = x.cpu(), prov.cpu()
    differ = (x != want_x) | (prov != want_prov)
    if allowed is None or not gpu:
        assert not differ.any(), f"x/provisional differ at {differ.nonzero().tolist()[:10]}"
    else:
        bad = differ & ~allowed.cpu()
        assert not bad.any(), f"x/provisional differ away from a decision boundary at {bad.nonzero().tolist()[:10]}"
