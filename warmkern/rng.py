"""Counter-based Philox4x32-10 shared by every backend.

Every random number the sampler uses (Gumbel noise, random scores, the warm-start keep mask) is a
pure function of (seed, step, stream, position[, vocabulary entry]), so the reference, the C++ and
the Triton kernels draw *the same* numbers without sharing any generator state. uint32 arithmetic
is emulated in int64 tensors so the torch version stays vectorised and exact.
"""

from __future__ import annotations

import torch

MASK32 = 0xFFFFFFFF
PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
PHILOX_ROUNDS = 10

STREAM_GUMBEL = 0
STREAM_RANDOM_SCORE = 1
STREAM_KEEP = 2

# Largest fp32 below 1: the uniform is clamped here so `u < 1` always holds (keep-rate 1 keeps
# everything) and -log(1 - u) stays finite. Only the top 2^-25 of words are affected.
ONE_MINUS_ULP = 1.0 - 2.0**-24
TWO_POW_M32 = 2.0**-32
SERIES_CUTOFF = 2.0**-10


def _mulhilo(a: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(hi, lo) 32-bit halves of a*m for a in [0, 2^32), without int64 overflow."""
    a_hi = a >> 16
    a_lo = a & 0xFFFF
    hi_part = a_hi * m  # < 2^48
    lo_part = a_lo * m  # < 2^48
    lo = (((hi_part & 0xFFFF) << 16) + lo_part) & MASK32
    hi = (hi_part + (lo_part >> 16)) >> 16
    return hi, lo


def philox4x32(
    c0: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor, key0: int, key1: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Philox4x32-10 on int64 tensors holding uint32 values (broadcastable); returns 4 words."""
    c0, c1, c2, c3 = (torch.as_tensor(c, dtype=torch.int64) & MASK32 for c in (c0, c1, c2, c3))
    k0, k1 = key0 & MASK32, key1 & MASK32
    for _ in range(PHILOX_ROUNDS):
        hi0, lo0 = _mulhilo(c0, PHILOX_M0)
        hi1, lo1 = _mulhilo(c2, PHILOX_M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = (k0 + PHILOX_W0) & MASK32
        k1 = (k1 + PHILOX_W1) & MASK32
    return c0, c1, c2, c3


def seed_key(seed: int) -> tuple[int, int]:
    """Philox key (lo32, hi32) of a 64-bit seed; matches triton's tl.philox(seed, ...)."""
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    return seed & MASK32, seed >> 32


def uniform_from_word(w32: torch.Tensor) -> torch.Tensor:
    """fp32 uniform in (0, 1): (float32(w) + 0.5) * 2^-32, clamped below 1 (see ONE_MINUS_ULP)."""
    w = (w32.to(torch.float32) + 0.5) * TWO_POW_M32
    return torch.clamp(w, max=ONE_MINUS_ULP)


def gumbel_from_uniform(w: torch.Tensor) -> torch.Tensor:
    """Gumbel(0,1) as -log(E), E = -log1p(-w), with a 3-term series for small w (no libdevice).

    The series keeps the full 32-bit resolution near 0, so the tail reaches ~22.9 rather than the
    ~16.6 of a 24-bit uniform: at 126k-token vocabularies the difference is measurable.
    """
    w2 = w * w
    series = w + w2 * 0.5 + w2 * w * (1.0 / 3.0)
    e = torch.where(w < SERIES_CUTOFF, series, -torch.log(1.0 - w))
    return -torch.log(e)


def vocab_words(seed: int, step: int, stream: int, rows: int, vocab: int, device=None) -> torch.Tensor:
    """[rows, vocab] int64 Philox words: row r, entry v -> counter n = r*ceil(V/4) + v//4, lane v%4."""
    groups = (vocab + 3) // 4
    k0, k1 = seed_key(seed)
    n = torch.arange(rows * groups, dtype=torch.int64, device=device)
    c2 = torch.full_like(n, int(step) & MASK32)
    c3 = torch.full_like(n, stream)
    words = philox4x32(n & MASK32, n >> 32, c2, c3, k0, k1)
    lanes = torch.stack(words, dim=-1).reshape(rows, groups * 4)
    return lanes[:, :vocab]


def position_words(seed: int, step: int, stream: int, rows: int, device=None) -> torch.Tensor:
    """[rows] int64 Philox words, one draw per position: counter n = r, output word 0."""
    k0, k1 = seed_key(seed)
    n = torch.arange(rows, dtype=torch.int64, device=device)
    c2 = torch.full_like(n, int(step) & MASK32)
    c3 = torch.full_like(n, stream)
    return philox4x32(n & MASK32, n >> 32, c2, c3, k0, k1)[0]


def gumbel_noise(seed: int, step: int, rows: int, vocab: int, device=None) -> torch.Tensor:
    """[rows, vocab] fp32 Gumbel noise of stream 0."""
    return gumbel_from_uniform(uniform_from_word(vocab_words(seed, step, STREAM_GUMBEL, rows, vocab, device)))


def position_uniforms(seed: int, step: int, stream: int, rows: int, device=None) -> torch.Tensor:
    """[rows] fp32 uniforms, one per position (stream 1: random score, stream 2: keep mask)."""
    return uniform_from_word(position_words(seed, step, stream, rows, device))


def keep_mask(seed: int, rate: float, shape: tuple[int, int], device=None) -> torch.Tensor:
    """Bernoulli(rate) warm-start keep mask, stream 2, step 0: `u < rate` per position."""
    b, g = shape
    u = position_uniforms(seed, 0, STREAM_KEEP, b * g, device)
    return (u < rate).reshape(b, g)
