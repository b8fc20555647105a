"""The Triton Philox / uniform / Gumbel / orderable-key helpers against warmkern.rng and the spec's order."""

from __future__ import annotations

import pytest
import torch
import triton
import triton.language as tl

from warmkern import rng
from warmkern.triton.common import (
    entry_gumbel,
    from_orderable,
    orderable,
    position_gumbel,
    position_uniform,
    to_f32,
    uniform_from_word,
    vocab_gumbel,
)

DEV = "cuda" if torch.cuda.is_available() else "cpu"
SEEDS = [(0, 0), (12345, 7), (2**40 + 5, 2**32 - 1), (2**63 - 1, 3)]


@triton.jit
def _words_kernel(out, seed, step, stream, N: tl.constexpr):
    n = tl.arange(0, N).to(tl.int64) + (2**32 - 3)  # counters crossing the 32-bit boundary (c1 != 0)
    c0 = (n & 0xFFFFFFFF).to(tl.uint32)
    c1 = (n >> 32).to(tl.uint32)
    c2 = (n * 0 + step).to(tl.uint32)
    c3 = (n * 0 + stream).to(tl.uint32)
    w0, w1, w2, w3 = tl.philox(seed, c0, c1, c2, c3)
    i = tl.arange(0, N)
    tl.store(out + i * 4 + 0, w0.to(tl.int64))
    tl.store(out + i * 4 + 1, w1.to(tl.int64))
    tl.store(out + i * 4 + 2, w2.to(tl.int64))
    tl.store(out + i * 4 + 3, w3.to(tl.int64))


@triton.jit
def _noise_kernel(gum, uni, seed, step, V, groups, BLOCK: tl.constexpr):
    r = tl.program_id(0)
    for vs in range(0, V, BLOCK):
        offs = vs + tl.arange(0, BLOCK)
        tl.store(gum + r * V + offs, vocab_gumbel(seed, step, 0, r, groups, vs, BLOCK), mask=offs < V)
    tl.store(uni + r, position_uniform(seed, step, 1, r))


@triton.jit
def _single_kernel(ent, pos, seed, step, V, groups):
    """entry_gumbel one entry at a time (the special ids after the loop) and position_gumbel (alg_temp)."""
    r = tl.program_id(0)
    for v in range(0, V):
        tl.store(ent + r * V + v, entry_gumbel(tl.to_tensor(seed).to(tl.int64), step, 0, r, groups, v))
    tl.store(pos + r, position_gumbel(tl.to_tensor(seed).to(tl.int64), step, 3, r))


@triton.jit
def _f32_kernel(inp, out, N: tl.constexpr):
    i = tl.arange(0, N)
    tl.store(out + i, to_f32(tl.load(inp + i)))


@triton.jit
def _uniform_kernel(words, out, N: tl.constexpr):
    i = tl.arange(0, N)
    tl.store(out + i, uniform_from_word(tl.load(words + i).to(tl.uint32)))


@triton.jit
def _order_kernel(inp, keys, back, N: tl.constexpr):
    i = tl.arange(0, N)
    k = orderable(tl.load(inp + i))
    tl.store(keys + i, k)
    tl.store(back + i, from_orderable(k))


@pytest.mark.parametrize(("seed", "step"), SEEDS)
def test_philox_words_match_rng(seed, step):
    n = 16
    out = torch.empty(n * 4, dtype=torch.int64, device=DEV)
    _words_kernel[(1,)](out, seed, step, 2, N=n)
    ctr = torch.arange(n, dtype=torch.int64) + (2**32 - 3)
    k0, k1 = rng.seed_key(seed)
    want = rng.philox4x32(ctr & rng.MASK32, ctr >> 32, torch.full_like(ctr, step), torch.full_like(ctr, 2), k0, k1)
    assert torch.equal(out.cpu().reshape(n, 4), torch.stack(want, dim=-1))


def test_uniform_matches_rng_bitwise_including_the_clamp():
    words = torch.tensor([0, 1, 2**31, 2**32 - 129, 2**32 - 128, 2**32 - 1, 12345, 2**24 + 1], dtype=torch.int64)
    out = torch.empty(8, dtype=torch.float32, device=DEV)
    _uniform_kernel[(1,)](words.to(DEV), out, N=8)
    assert torch.equal(out.cpu(), rng.uniform_from_word(words))
    assert out.max().item() == rng.ONE_MINUS_ULP


@pytest.mark.parametrize(("seed", "step"), SEEDS[:2])
def test_gumbel_and_position_uniforms_match_rng(seed, step):
    rows, v = 3, 70  # V not a multiple of 4 or of the tile; tiles start at multiples of 4
    gum = torch.empty(rows, v, device=DEV)
    uni = torch.empty(rows, device=DEV)
    _noise_kernel[(rows,)](gum, uni, seed, step, v, (v + 3) // 4, BLOCK=32)
    assert torch.equal(uni.cpu(), rng.position_uniforms(seed, step, rng.STREAM_RANDOM_SCORE, rows)[0])
    # same words and formula; only log's last ulp may differ between numpy/libdevice and torch
    torch.testing.assert_close(gum.cpu(), rng.gumbel_noise(seed, step, rows, v)[0], rtol=1e-6, atol=1e-6)


def test_single_entry_and_position_gumbels_match_rng():
    """The after-loop draws: one vocabulary entry's lane of its Philox group, and one per position (stream 3)."""
    rows, v, seed, step = 2, 11, 2**40 + 5, 9
    ent = torch.empty(rows, v, device=DEV)
    pos = torch.empty(rows, device=DEV)
    _single_kernel[(rows,)](ent, pos, seed, step, v, (v + 3) // 4)
    torch.testing.assert_close(ent.cpu(), rng.gumbel_noise(seed, step, rows, v)[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(pos.cpu(), rng.position_gumbels(seed, step, rng.STREAM_ALG_TEMP, rows)[0], rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=str)
def test_to_f32_keeps_subnormals(dtype):
    """Issue 12.6: the interpreter's bf16 -> fp32 conversion flushes subnormals (1e-40 vs 2e-40 became ties)."""
    vals = torch.tensor([1e-40, 2e-40, -3e-39, 1e-45, 0.0, -0.0, 1.5, float("inf"), float("-inf"), 6e-8, 1e-5,
                         65504.0, -2.0, 3.0, 0.25, 7.0]).to(dtype)
    out = torch.empty(16, device=DEV)
    _f32_kernel[(1,)](vals.to(DEV), out, N=16)
    assert torch.equal(out.cpu(), vals.float())


def test_orderable_keys_follow_the_spec_order():
    vals = torch.tensor([float("nan"), float("-inf"), -3.5, -1e-30, -0.0, 0.0, 1e-30, 0.25, 1.0, float("inf")])
    n = 16
    inp = torch.cat([vals, torch.full((n - len(vals),), 7.0)]).to(DEV)
    keys = torch.empty(n, dtype=torch.int64, device=DEV)
    back = torch.empty(n, device=DEV)
    _order_kernel[(1,)](inp, keys, back, N=n)
    k = keys.cpu()[: len(vals)]
    assert k[0] == 0  # NaN below everything
    assert (k[1:].diff()[:3] > 0).all() and k[4] == k[5]  # -0.0 ties with +0.0 (position decides)
    assert (k[5:].diff() > 0).all() and (k < 2**32).all()
    torch.testing.assert_close(back.cpu()[1 : len(vals)], vals[1:].abs().where(vals[1:] == 0, vals[1:]),
                               rtol=0, atol=0)
    assert torch.isnan(back.cpu()[0])
