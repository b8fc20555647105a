"""The logit value every pass reads, per tile or per entry: the spec's `combined_logits` (+ temperature,
+ truncation), in the operation order of the reference so every pass computes the same fp32 bits.

z = CFG u + (s+1)(c - u) (no FMA contraction); NaN, out of range and the excluded special ids -> -inf;
+ prior_bias on the prior id; zs = z * fp32(1/T); with a truncation cutoff c, entries with zs < c -> -inf.

Special ids arrive as sorted int32 codes id * 8 + flags (`launch.special_codes`); a pass walks them
with a cursor, so only the few tiles that hold one take the (uniform) branch that edits it. The prior
id is one per position: the tile that holds it adds the bias (a scalar test per tile, not a compare
per entry).
"""

from __future__ import annotations

import triton
import triton.language as tl

from warmkern.triton.common import to_f32

FAR = tl.constexpr(2147483640)  # a code past every real one (id 2^28 - 1)


@triton.jit
def cfg_mix(z, u, cfg1, HAS_CFG: tl.constexpr):
    """Classifier-free guidance u + (s+1)(c - u) in fp32 (no FMA contraction: bit-exact)."""
    if HAS_CFG:
        return u + cfg1 * (z - u)
    return z


@triton.jit
def next_code(sp_ptr, i, n_sp):
    """The i-th special code, or FAR past the end."""
    return tl.where(i < n_sp, tl.load(sp_ptr + tl.maximum(tl.minimum(i, n_sp - 1), 0)), FAR)


@triton.jit
def skip_codes(sp_ptr, n_sp, v0):
    """Cursor (index, code) at the first special id >= v0."""
    sp_i = 0
    sp_next = next_code(sp_ptr, 0, n_sp)
    while (sp_next >> 3) < v0:
        sp_i += 1
        sp_next = next_code(sp_ptr, sp_i, n_sp)
    return sp_i, sp_next


@triton.jit
def exclude_specials(z, rel, vs, sp_ptr, sp_i, sp_next, n_sp, ALL: tl.constexpr, BLOCK: tl.constexpr):
    """-inf at the special ids in tile [vs, vs + BLOCK) (rel: each element's index - vs, any shape; ALL: every
    special id, else only suppress_ids, flag SUPPRESSED); advances the cursor."""
    while (sp_next >> 3) < vs + BLOCK:
        hit = rel == (sp_next >> 3) - vs
        if not ALL:
            hit = hit & ((sp_next & 4) != 0)
        z = tl.where(hit, float("-inf"), z)
        sp_i += 1
        sp_next = next_code(sp_ptr, sp_i, n_sp)
    return z, sp_i, sp_next


@triton.jit
def add_prior(z, rel, vs, prior, bias, HAS_PRIOR: tl.constexpr, BLOCK: tl.constexpr):
    """z + bias at the prior id when it lies in tile [vs, vs + BLOCK) (uniform branch, once per row)."""
    if HAS_PRIOR:
        if (prior >= vs) & (prior < vs + BLOCK):
            z = tl.where(rel == prior - vs, z + bias, z)
    return z


@triton.jit
def tile_offsets(R: tl.constexpr, E: tl.constexpr):
    """Offsets of an [R, E] tile in vocabulary order, E contiguous entries per row (one thread's vector)."""
    return tl.arange(0, R)[:, None] * E + tl.arange(0, E)[None, :]


@triton.jit
def tile_z(row_ptr, urow_ptr, vs, V, sp_ptr, sp_i, sp_next, n_sp, cfg1, prior, bias, HAS_CFG: tl.constexpr,
           HAS_PRIOR: tl.constexpr, ALL: tl.constexpr, R: tl.constexpr, E: tl.constexpr, FULL: tl.constexpr = False):
    """z of the [R, E] tile at vs (FULL: inside the row, no masks; else -inf past V), for the extra passes
    (truncation search, +inf count) and the partial last tile; advances the special-id cursor. NaN stays
    NaN: every consumer compares (a NaN is never >= anything, never +inf, never a new maximum)."""
    BLOCK: tl.constexpr = R * E
    rel = tile_offsets(R, E)
    v = vs + rel
    if FULL:
        z = to_f32(tl.load(row_ptr + v))
        if HAS_CFG:
            z = cfg_mix(z, to_f32(tl.load(urow_ptr + v)), cfg1, HAS_CFG)
    else:
        inb = v < V
        z = to_f32(tl.load(row_ptr + v, mask=inb, other=float("-inf")))
        if HAS_CFG:
            z = tl.where(inb, cfg_mix(z, to_f32(tl.load(urow_ptr + v, mask=inb, other=0.0)), cfg1, HAS_CFG),
                         float("-inf"))
    if vs + BLOCK > (sp_next >> 3):
        z, sp_i, sp_next = exclude_specials(z, rel, vs, sp_ptr, sp_i, sp_next, n_sp, ALL, BLOCK)
    z = add_prior(z, rel, vs, prior, bias, HAS_PRIOR, BLOCK)
    return z, sp_i, sp_next


@triton.jit
def truncate(z, inv_t, cut, TRUNC: tl.constexpr):
    """z with the entries the truncation removes (zs = z * inv_t below the cutoff, NaN) set to -inf."""
    if TRUNC:
        z = tl.where(z * inv_t >= cut, z, float("-inf"))
    return z


@triton.jit
def entry_z(row_ptr, urow_ptr, v, V, cfg1, inv_t, prior, bias, cut, HAS_CFG: tl.constexpr,
            HAS_PRIOR: tl.constexpr, TRUNC: tl.constexpr):
    """z of one vocabulary entry v (scalar; -inf out of range or NaN), with the prior and the truncation.
    The caller applies the special-id rules of v."""
    ok = (v >= 0) & (v < V)
    vv = tl.where(ok, v, 0).to(tl.int64)
    z = to_f32(tl.load(row_ptr + vv))
    if HAS_CFG:
        z = cfg_mix(z, to_f32(tl.load(urow_ptr + vv)), cfg1, HAS_CFG)
    z = tl.where(ok & (z == z), z, float("-inf"))
    if HAS_PRIOR:
        z = tl.where(v == prior, z + bias, z)
    return truncate(z, inv_t, cut, TRUNC)


@triton.jit
def code_of(sp_ptr, n_sp, v):
    """The special code of id v (its flags), or -1 when v is a plain entry."""
    code = -1
    for i in range(n_sp):
        c = tl.load(sp_ptr + i)
        code = tl.where((c >> 3) == v, c, code)
    return code
