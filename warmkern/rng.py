"""Counter-based Philox4x32-10 shared by every backend.

Every random number the sampler uses (Gumbel noise, random scores, the warm-start keep mask, Dream's
alg_temp selection) is a pure function of (row seed, step, stream, position g[, vocabulary entry v]),
so the reference, the C++ and the Triton kernels draw *the same* numbers without sharing any generator
state. The Philox key is the row's own seed and the counter holds the position g in the generation
region and the *global* vocabulary index, never the batch index b: a row draws the same numbers alone
or in any batch, and a vocabulary shard draws the numbers of its slice. uint32 arithmetic is emulated
in int64 tensors so the torch version stays vectorised and exact.
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
STREAM_ALG_TEMP = 3

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


def row_seeds(seed: int | torch.Tensor, rows: int, device=None) -> torch.Tensor:
    """[rows] int64 per-row seeds: an int gives every row that seed (each row draws as it would alone)."""
    if isinstance(seed, torch.Tensor):
        return seed.to(device=device, dtype=torch.int64).reshape(-1).expand(rows)
    return torch.full((rows,), int(seed), dtype=torch.int64, device=device)


def _keys(seeds: int | torch.Tensor, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Philox keys of per-row seeds as [B, 1] int64 (lo32, hi32), broadcasting over positions."""
    s = row_seeds(seeds, 1, device) if not isinstance(seeds, torch.Tensor) else seeds.to(device, torch.int64)
    s = s.reshape(-1, 1)
    return s & MASK32, (s >> 32) & MASK32


def _step(step: int | torch.Tensor, device=None) -> torch.Tensor:
    return torch.as_tensor(step, dtype=torch.int64, device=device).reshape(()) & MASK32


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


def vocab_words(
    seeds: int | torch.Tensor, step: int | torch.Tensor, stream: int, positions: int, vocab: int, device=None,
    vocab_start: int = 0, vocab_total: int | None = None, position_start: int = 0,
) -> torch.Tensor:
    """[B, positions, vocab] int64 Philox words of entries [vocab_start, vocab_start + vocab) at positions
    [position_start, position_start + positions) (a window of the generation region draws its own slice).

    Row b, position g, *global* entry v -> key seeds[b], counter n = g*ceil(V_total/4) + v//4, lane v%4
    (c2 = step, c3 = stream). Nothing depends on b but the key, so a row draws the same numbers in
    any batch, and a vocabulary shard draws exactly the numbers of its slice of the full vocabulary.
    """
    total = vocab if vocab_total is None else vocab_total
    groups = (total + 3) // 4
    g0, g1 = vocab_start // 4, (vocab_start + vocab + 3) // 4
    k0, k1 = _keys(seeds, device)
    pos = torch.arange(position_start, position_start + positions, dtype=torch.int64, device=device).reshape(-1, 1)
    n = (pos * groups + torch.arange(g0, g1, dtype=torch.int64, device=device)).reshape(1, -1)  # [1, G*ng]
    c2 = _step(step, device).expand_as(n)
    c3 = torch.full_like(n, stream)
    words = philox4x32(n & MASK32, n >> 32, c2, c3, k0, k1)  # 4 x [B, G*ng]
    lanes = torch.stack(words, dim=-1).reshape(k0.shape[0], positions, (g1 - g0) * 4)
    off = vocab_start - g0 * 4
    return lanes[:, :, off : off + vocab]


def position_words(
    seeds: int | torch.Tensor, step: int | torch.Tensor, stream: int, positions: int, device=None,
    position_start: int = 0,
) -> torch.Tensor:
    """[B, positions] int64 Philox words, one draw per position: key seeds[b], counter n = g, word 0."""
    k0, k1 = _keys(seeds, device)
    n = torch.arange(position_start, position_start + positions, dtype=torch.int64, device=device).reshape(1, -1)
    c2 = _step(step, device).expand_as(n)
    c3 = torch.full_like(n, stream)
    return philox4x32(n & MASK32, n >> 32, c2, c3, k0, k1)[0]


def gumbel_noise(
    seeds: int | torch.Tensor, step: int | torch.Tensor, positions: int, vocab: int, device=None,
    vocab_start: int = 0, vocab_total: int | None = None, position_start: int = 0,
) -> torch.Tensor:
    """[B, positions, vocab] fp32 Gumbel noise of stream 0 (see vocab_words for the counter layout)."""
    words = vocab_words(seeds, step, STREAM_GUMBEL, positions, vocab, device, vocab_start, vocab_total, position_start)
    return gumbel_from_uniform(uniform_from_word(words))


def position_uniforms(
    seeds: int | torch.Tensor, step: int | torch.Tensor, stream: int, positions: int, device=None,
    position_start: int = 0,
) -> torch.Tensor:
    """[B, positions] fp32 uniforms, one per position (stream 1: random score, 2: keep mask, 3: alg_temp)."""
    return uniform_from_word(position_words(seeds, step, stream, positions, device, position_start))


def position_gumbels(
    seeds: int | torch.Tensor, step: int | torch.Tensor, stream: int, positions: int, device=None
) -> torch.Tensor:
    """[B, positions] fp32 Gumbel noise, one per position (stream 3: Dream's alg_temp selection)."""
    return gumbel_from_uniform(position_uniforms(seeds, step, stream, positions, device))


def keep_mask(seeds: int | torch.Tensor, rate: float, shape: tuple[int, int], device=None) -> torch.Tensor:
    """Bernoulli(rate) warm-start keep mask, stream 2, step 0: `u < rate` per position (per-row seeds)."""
    b, g = shape
    u = position_uniforms(row_seeds(seeds, b, device), 0, STREAM_KEEP, g, device)
    return u < rate
