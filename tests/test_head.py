"""ops.head_token_stats: the LM head applied one vocabulary chunk at a time, each tile reduced to a partial state,
gives token_stats of the whole logits (x0 identical on these inputs: no near ties; scores within the parity
contract) while no tile is wider than `chunk`.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from warmkern import ops
from warmkern.partial import head, protocol

MASK = 3
B, G, D, V = 2, 5, 16, 203
CASES = {
    "greedy": dict(),
    "sampled-margin": dict(temperature=0.9, seed=torch.tensor([4, 5]), score="margin"),
    "entropy-bias": dict(score="entropy", bias=True),
    "cfg": dict(cfg_scale=0.7, uncond=True, temperature=0.5, seed=1),
    "top-k-prior": dict(top_k=9, prior=True, prior_bias=2.0, pick_suppress_ids=(150,)),
    "top-p-sampled": dict(top_p=0.85, temperature=1.2, score_temperature="sampling", seed=3, suppress_ids=(7, 199)),
}


def _inputs(case, dtype):
    gen = torch.Generator().manual_seed(sum(map(ord, case)))
    kw = dict(CASES[case])
    hidden = torch.randn(B, G, D, generator=gen).to(dtype)
    weight = torch.randn(V, D, generator=gen).to(dtype)
    x = torch.randint(0, V, (B, G), generator=gen)
    x[:, ::2] = MASK
    if kw.pop("bias", None):
        kw["bias"] = torch.randn(V, generator=gen).to(dtype)
    if kw.pop("uncond", None):
        kw["uncond_hidden"] = torch.randn(B, G, D, generator=gen).to(dtype)
    if kw.pop("prior", None):
        kw["prior_ids"] = torch.randint(-1, V, (B, G), generator=gen)
    return hidden, weight, x, kw


def _full(hidden, weight, x, kw):
    bias, uncond = kw.get("bias"), kw.get("uncond_hidden")
    rest = {k: v for k, v in kw.items() if k not in ("bias", "uncond_hidden")}
    un = None if uncond is None else F.linear(uncond, weight, bias)
    return ops.token_stats(F.linear(hidden, weight, bias), x, uncond_logits=un, mask_id=MASK, backend="reference",
                           **rest)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("chunk", [7, 64, 4096])
@pytest.mark.parametrize("case", list(CASES))
def test_chunked_head_is_token_stats_of_the_full_logits(case, chunk, dtype):
    hidden, weight, x, kw = _inputs(case, dtype)
    got = ops.head_token_stats(hidden, weight, x, chunk=chunk, mask_id=MASK, **kw)
    want = _full(hidden, weight, x, kw)
    assert torch.equal(got[0], want[0])
    torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-6, equal_nan=True)
    torch.testing.assert_close(got[2], want[2], rtol=1e-5, atol=1e-6)


def test_no_tile_is_wider_than_chunk_and_rounds_recompute_them(monkeypatch):
    seen = []
    impl = protocol.reference_impl()
    spy = {n: (lambda f: lambda lg, *a, **k: (seen.append(lg.shape[-1]), f(lg, *a, **k))[1])(getattr(impl, n))
           for n in ("token_stats_partial", "truncation_partial", "nucleus_partial")}
    monkeypatch.setattr(protocol, "reference_impl", lambda: type(impl)(**spy))
    hidden, weight, x, kw = _inputs("top-p-sampled", torch.float32)
    head.head_token_stats(hidden, weight, x, chunk=50, mask_id=MASK, **kw)
    assert max(seen) == 50 and sum(seen) == 6 * V  # 6 rounds (top_p), each over every column once


def test_head_arguments_are_checked():
    hidden, weight, x, _ = _inputs("greedy", torch.float32)
    with pytest.raises(TypeError, match="weight: expected dtype float32"):
        ops.head_token_stats(hidden, weight.bfloat16(), x, mask_id=MASK)
    with pytest.raises(ValueError, match="weight: expected shape"):
        ops.head_token_stats(hidden, weight[:, :8], x, mask_id=MASK)
    with pytest.raises(ValueError, match="chunk"):
        ops.head_token_stats(hidden, weight, x, mask_id=MASK, chunk=0)
