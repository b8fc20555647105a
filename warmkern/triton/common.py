"""Shared @triton.jit helpers: the spec's Philox -> uniform -> Gumbel chain and orderable float keys.

Each helper mirrors one function of `warmkern.rng` (or of the reference's total order) operation by
operation, in fp32, so the interpreter reproduces the reference bit for bit and a GPU build differs
only as `fastmath` documents.

Seeds and steps reach the kernels as a Python int or as a device int64 tensor (so a CUDA graph can
replay a step with an advancing step / new seeds): SEED_MODE 0 = one int for every row, 1 = per-row
seeds `row_seeds[b * seed_stride]` (stride 0 for one seed tensor shared by every row); STEP_PTR says
whether `step` is a pointer to a 0-d tensor. Counter layout (rng.py): key = the row's seed, counter
n = g * ceil(V/4) + v // 4 (lane v % 4) for vocabulary draws, n = g for per-position draws, c2 = step,
c3 = stream; never the batch index.
"""

from __future__ import annotations

import triton
import triton.language as tl

from warmkern.triton.fastmath import NEG_LN2, log2_approx, log_precise, opaque

# Same constants as warmkern.rng (duplicated as literals: @triton.jit needs them as constexpr).
TWO_POW_M32 = tl.constexpr(2.3283064365386963e-10)  # 2^-32
ONE_MINUS_ULP = tl.constexpr(0.99999994039535522)  # 1 - 2^-24, largest fp32 below 1
SERIES_CUTOFF = tl.constexpr(0.0009765625)  # 2^-10
THIRD = tl.constexpr(0.3333333432674408)  # fp32(1/3), what torch multiplies by


@triton.jit
def noise_key(seed, seed_stride, step, b, g, SEED_MODE: tl.constexpr, STEP_PTR: tl.constexpr):
    """(Philox key, counter row, step) of position (b, g): key = row b's seed, row = g (never b), so a
    row draws what a batch of one with its seed draws."""
    if SEED_MODE == 0:
        key = tl.to_tensor(seed).to(tl.int64)
    else:
        key = tl.load(seed + b.to(tl.int64) * seed_stride)
    row = tl.to_tensor(g).to(tl.int64)
    if STEP_PTR:
        st = tl.load(step)
    else:
        st = tl.to_tensor(step).to(tl.int64)
    return key, row, st


@triton.jit
def to_f32(x):
    """fp32 value of a loaded logit. bf16 goes through its bits (exact, subnormals included: the
    interpreter's bf16 -> fp32 conversion flushes them, which dropped 1e-40 vs 2e-40 rows)."""
    if x.dtype == tl.bfloat16:
        return (x.to(tl.int16, bitcast=True).to(tl.int32) << 16).to(tl.float32, bitcast=True)
    else:
        return x.to(tl.float32)


@triton.jit
def uniform_from_word(w):
    """rng.uniform_from_word: (fp32(w) + 0.5) * 2^-32, clamped to 1 - 2^-24."""
    u = (w.to(tl.float32) + 0.5) * TWO_POW_M32
    return tl.minimum(u, ONE_MINUS_ULP)


@triton.jit
def gumbel_from_uniform(w):
    """rng.gumbel_from_uniform: -log(E), E = -log1p(-w) via a 3-term series below 2^-10 (the outer log
    is the fast one on GPU: see fastmath)."""
    w2 = w * w
    series = w + w2 * 0.5 + w2 * w * THIRD
    e = tl.where(w < SERIES_CUTOFF, series, -log_precise(1.0 - w))
    return log2_approx(e) * NEG_LN2


@triton.jit
def philox_words(key, row, groups, first_group, step, stream, NG: tl.constexpr):
    """Words of NG consecutive counters n = row * groups + first_group + i (rng.vocab_words)."""
    i = tl.arange(0, NG)
    n = tl.to_tensor(row).to(tl.int64) * groups + first_group + i
    c0 = (n & 0xFFFFFFFF).to(tl.uint32)
    c1 = (n >> 32).to(tl.uint32)
    c2 = (tl.zeros_like(n) + step).to(tl.uint32)
    c3 = (tl.zeros_like(n) + stream).to(tl.uint32)
    return tl.philox(key, c0, c1, c2, c3)


@triton.jit
def vocab_gumbel(key, step, stream, row, groups, vstart, BLOCK: tl.constexpr):
    """Gumbel noise of vocabulary entries [vstart, vstart + BLOCK) of counter row `row` (vstart % 4 == 0).

    Counter n = row * ceil(V/4) + v // 4 (rng.vocab_words): one tl.philox call yields the four
    lanes of a group, which are interleaved back into vocabulary order.
    """
    w0, w1, w2, w3 = philox_words(opaque(key), row, groups, vstart // 4, step, stream, BLOCK // 4)
    words = tl.reshape(tl.join(tl.join(w0, w2), tl.join(w1, w3)), [BLOCK])
    return gumbel_from_uniform(uniform_from_word(words))


@triton.jit
def entry_gumbel(key, step, stream, row, groups, v):
    """Gumbel noise of one vocabulary entry v (scalar) of counter row `row` (the lane v % 4 of its group)."""
    n = tl.to_tensor(row).to(tl.int64) * groups + v // 4
    c0 = (n & 0xFFFFFFFF).to(tl.uint32)
    c1 = (n >> 32).to(tl.uint32)
    c2 = (n * 0 + step).to(tl.uint32)
    c3 = (n * 0 + stream).to(tl.uint32)
    w0, w1, w2, w3 = tl.philox(opaque(key), c0, c1, c2, c3)
    lane = v % 4
    w = tl.where(lane == 0, w0, tl.where(lane == 1, w1, tl.where(lane == 2, w2, w3)))
    return gumbel_from_uniform(uniform_from_word(w))


@triton.jit
def position_gumbel(key, step, stream, row):
    """rng.position_gumbels for positions `row` (stream 3: Dream's alg_temp selection)."""
    return gumbel_from_uniform(position_uniform(key, step, stream, row))


@triton.jit
def position_uniform(key, step, stream, row):
    """rng.position_uniforms for one position: counter n = row, output word 0."""
    n = row.to(tl.int64)
    c0 = (n & 0xFFFFFFFF).to(tl.uint32)
    c1 = (n >> 32).to(tl.uint32)
    c2 = (n * 0 + step).to(tl.uint32)
    c3 = (n * 0 + stream).to(tl.uint32)
    w0, _w1, _w2, _w3 = tl.philox(opaque(key), c0, c1, c2, c3)
    return uniform_from_word(w0)


@triton.jit
def orderable(score):
    """uint32-valued int64 key increasing with the fp32 score; NaN -> 0 (below -inf), -0.0 == +0.0."""
    s = tl.where(score == 0.0, 0.0, score)
    bits = s.to(tl.int32, bitcast=True).to(tl.int64) & 0xFFFFFFFF
    key = tl.where(bits >= 0x80000000, bits ^ 0xFFFFFFFF, bits | 0x80000000)
    return tl.where(score != score, 0, key)


@triton.jit
def from_orderable(key):
    """Inverse of `orderable` (key 0 decodes to a NaN)."""
    bits = tl.where(key >= 0x80000000, key ^ 0x80000000, key ^ 0xFFFFFFFF)
    return (bits & 0xFFFFFFFF).to(tl.uint32).to(tl.float32, bitcast=True)
