"""Device code of one position's vocabulary pass (shared by token_stats and denoise_step).

A program owns one vocabulary chunk (all of it, or 1/nsplit) of a position. The loop over its full
tiles is elementwise only: each lane keeps its own running state (`stats.tile_update`), the next
the next tiles are loaded ahead of the one being folded in (software prefetch), and the lanes are reduced
once after the loop. Entries that must not be picked (mask_id, suppressed ids) are handled in the
few tiles that hold them (a uniform branch), the partial last tile after the loop. On the split
path each program stores its partial state and the position's last program (atomic counter)
merges them with a fixed tree, so the result does not depend on which program finishes last.
"""

from __future__ import annotations

import triton
import triton.language as tl

from warmkern.triton.common import noise_key, position_uniform, vocab_gumbel
from warmkern.triton.stats import finalize, lane_state, merge_partials, reduce_lanes, store_partial, tile_update

FAR = tl.constexpr(2147483647)


@triton.jit
def cfg_mix(z, u, cfg1, HAS_CFG: tl.constexpr):
    """Classifier-free guidance u + (s+1)(c - u) in fp32 (no FMA contraction: bit-exact)."""
    if HAS_CFG:
        return u + cfg1 * (z - u)
    return z


@triton.jit
def entry_zt(row_ptr, urow_ptr, v, V, cfg1, inv_t, sp_ptr, n_sp, HAS_CFG: tl.constexpr, SCALE_T: tl.constexpr):
    """zt of one vocabulary entry (-inf when out of range, NaN or in the special list)."""
    ok = (v >= 0) & (v < V)
    vv = tl.where(ok, v, 0).to(tl.int64)
    z = tl.load(row_ptr + vv).to(tl.float32)
    if HAS_CFG:
        z = cfg_mix(z, tl.load(urow_ptr + vv).to(tl.float32), cfg1, HAS_CFG)
    for i in range(n_sp):
        ok = ok & (tl.load(sp_ptr + i) != v)
    z = tl.where(ok & (z == z), z, float("-inf"))
    if SCALE_T:
        z = z * inv_t
    return z


@triton.jit
def load_tile(row_ptr, start, PACKED: tl.constexpr, BLOCK: tl.constexpr):
    """Raw tile [start, start + BLOCK) of a row. PACKED (bf16, 4-byte aligned rows): as int32 pairs,
    so a prefetched tile holds BLOCK/2 registers' worth instead of one register per bf16 value."""
    if PACKED:
        return tl.load(row_ptr.to(tl.pointer_type(tl.int32)) + start // 2 + tl.arange(0, BLOCK // 2))
    else:
        return tl.load(row_ptr + start + tl.arange(0, BLOCK))


@triton.jit
def unpack(w, PACKED: tl.constexpr, BLOCK: tl.constexpr):
    """fp32 values of a `load_tile` result (bf16 -> fp32 is exact: the bits go to the top half)."""
    if PACKED:
        lo = (w << 16).to(tl.float32, bitcast=True)
        hi = (w & -65536).to(tl.float32, bitcast=True)
        return tl.reshape(tl.join(lo, hi), [BLOCK])
    else:
        return w.to(tl.float32)


@triton.jit
def next_special(sp_ptr, i, n_sp):
    return tl.where(i < n_sp, tl.load(sp_ptr + tl.minimum(i, n_sp - 1)).to(tl.int32), FAR)


@triton.jit
def exclude_specials(z, vs, sp_ptr, sp_i, sp_next, n_sp, BLOCK: tl.constexpr):
    """-inf at the special ids (sorted) that fall in tile [vs, vs + BLOCK); advances the cursor."""
    lanes = tl.arange(0, BLOCK)
    while sp_next < vs + BLOCK:
        z = tl.where(lanes == sp_next - vs, float("-inf"), z)
        sp_i += 1
        sp_next = next_special(sp_ptr, sp_i, n_sp)
    return z, sp_i, sp_next


@triton.jit
def tile_scores(z, inv_t, key, step, row, groups, vs, MODE: tl.constexpr, SAMPLE: tl.constexpr,
                SCALE_T: tl.constexpr, BLOCK: tl.constexpr):
    """(zt, pick) of a tile: the softmax input and the value x0 maximises (z/T + Gumbel at T > 0)."""
    if MODE == 1:
        z = tl.maximum(z, float("-inf"))  # NaN -> -inf: the running second-best compares with it
    if SCALE_T:
        zt = z * inv_t
    else:
        zt = z
    if SAMPLE:
        pick = z * inv_t + vocab_gumbel(key, step, 0, row, groups, vs, BLOCK)
    else:
        pick = zt
    return zt, pick


def tiles_per_iteration(sample: bool) -> int:
    """Tiles one iteration of the vocabulary loop folds (see chunk_state); kernels-report divides by it."""
    return 1 if sample else 2


@triton.jit
def fold(m, s, acc, t2, best, idx, ztb, sp_i, sp_next, zraw, uraw, vs, sp_ptr, n_sp, cfg1, inv_t, key, step, row,
         groups, HAS_CFG: tl.constexpr, SAMPLE: tl.constexpr, SCALE_T: tl.constexpr, MODE: tl.constexpr,
         PACKED: tl.constexpr, BLOCK: tl.constexpr):
    """Fold one full tile (raw loads) into the lane state; advances the special-id cursor."""
    z = cfg_mix(unpack(zraw, PACKED, BLOCK), unpack(uraw, PACKED, BLOCK), cfg1, HAS_CFG)
    if vs + BLOCK > sp_next:  # uniform branch, taken by the few tiles holding mask_id or a suppressed id
        z, sp_i, sp_next = exclude_specials(z, vs, sp_ptr, sp_i, sp_next, n_sp, BLOCK)
    zt, pick = tile_scores(z, inv_t, key, step, row, groups, vs, MODE, SAMPLE, SCALE_T, BLOCK)
    m, s, acc, t2, best, idx, ztb = tile_update(m, s, acc, t2, best, idx, ztb, zt, pick, vs, MODE, SAMPLE)
    return m, s, acc, t2, best, idx, ztb, sp_i, sp_next


@triton.jit
def chunk_state(row_ptr, urow_ptr, t0, t1, n_full, V, sp_ptr, n_sp, cfg1, inv_t, key, step, row,
                HAS_CFG: tl.constexpr, SAMPLE: tl.constexpr, SCALE_T: tl.constexpr, MODE: tl.constexpr,
                PACKED: tl.constexpr, BLOCK: tl.constexpr):
    """State of tiles [t0, t1) of one position (tile n_full, if reached, is the partial last one).

    Software pipeline without register rotation: greedy loops take two tiles per iteration from two
    load buffers, each reloaded (two tiles ahead) right after it is unpacked, so ~24 KB per SM stay
    in flight; T > 0 is issue-bound and keeps its registers: one buffer, one tile ahead.
    """
    groups = (V + 3) // 4
    m, s, acc, t2, best, idx, ztb = lane_state(BLOCK)
    sp_i = 0
    sp_next = next_special(sp_ptr, 0, n_sp)
    while sp_next < t0 * BLOCK:
        sp_i += 1
        sp_next = next_special(sp_ptr, sp_i, n_sp)
    te = tl.minimum(t1, n_full)
    t_odd = t0  # first full tile the paired loop leaves to the single-tile loop
    if not SAMPLE:
        pairs = tl.maximum(te - t0, 0) // 2
        if pairs > 0:
            za = load_tile(row_ptr, t0 * BLOCK, PACKED, BLOCK)
            zb = load_tile(row_ptr, (t0 + 1) * BLOCK, PACKED, BLOCK)
            ua = za
            ub = zb
            if HAS_CFG:
                ua = load_tile(urow_ptr, t0 * BLOCK, PACKED, BLOCK)
                ub = load_tile(urow_ptr, (t0 + 1) * BLOCK, PACKED, BLOCK)
            for t in range(t0, t0 + 2 * pairs, 2):
                zc = za
                uc = ua
                za = load_tile(row_ptr, tl.minimum(t + 2, te - 1) * BLOCK, PACKED, BLOCK)
                if HAS_CFG:
                    ua = load_tile(urow_ptr, tl.minimum(t + 2, te - 1) * BLOCK, PACKED, BLOCK)
                m, s, acc, t2, best, idx, ztb, sp_i, sp_next = fold(
                    m, s, acc, t2, best, idx, ztb, sp_i, sp_next, zc, uc, t * BLOCK, sp_ptr, n_sp, cfg1, inv_t,
                    key, step, row, groups, HAS_CFG, SAMPLE, SCALE_T, MODE, PACKED, BLOCK)
                zc = zb
                uc = ub
                zb = load_tile(row_ptr, tl.minimum(t + 3, te - 1) * BLOCK, PACKED, BLOCK)
                if HAS_CFG:
                    ub = load_tile(urow_ptr, tl.minimum(t + 3, te - 1) * BLOCK, PACKED, BLOCK)
                m, s, acc, t2, best, idx, ztb, sp_i, sp_next = fold(
                    m, s, acc, t2, best, idx, ztb, sp_i, sp_next, zc, uc, (t + 1) * BLOCK, sp_ptr, n_sp, cfg1,
                    inv_t, key, step, row, groups, HAS_CFG, SAMPLE, SCALE_T, MODE, PACKED, BLOCK)
        t_odd = t0 + 2 * pairs
    if te > t_odd:
        zn = load_tile(row_ptr, t_odd * BLOCK, PACKED, BLOCK)
        un = zn
        if HAS_CFG:
            un = load_tile(urow_ptr, t_odd * BLOCK, PACKED, BLOCK)
        for t in range(t_odd, te):
            zc = zn
            uc = un
            zn = load_tile(row_ptr, tl.minimum(t + 1, te - 1) * BLOCK, PACKED, BLOCK)
            if HAS_CFG:
                un = load_tile(urow_ptr, tl.minimum(t + 1, te - 1) * BLOCK, PACKED, BLOCK)
            m, s, acc, t2, best, idx, ztb, sp_i, sp_next = fold(
                m, s, acc, t2, best, idx, ztb, sp_i, sp_next, zc, uc, t * BLOCK, sp_ptr, n_sp, cfg1, inv_t, key,
                step, row, groups, HAS_CFG, SAMPLE, SCALE_T, MODE, PACKED, BLOCK)
    if t1 > n_full:
        m, s, acc, t2, best, idx, ztb = partial_tile(m, s, acc, t2, best, idx, ztb, sp_i, sp_next, row_ptr,
                                                     urow_ptr, n_full * BLOCK, V, sp_ptr, n_sp, cfg1, inv_t, key,
                                                     step, row, groups, HAS_CFG, SAMPLE, SCALE_T, MODE, BLOCK)
    return reduce_lanes(m, s, acc, t2, best, idx, ztb, MODE, SAMPLE, BLOCK)


@triton.jit
def partial_tile(m, s, acc, t2, best, idx, ztb, sp_i, sp_next, row_ptr, urow_ptr, vs, V, sp_ptr, n_sp, cfg1, inv_t,
                 key, step, row, groups, HAS_CFG: tl.constexpr, SAMPLE: tl.constexpr, SCALE_T: tl.constexpr,
                 MODE: tl.constexpr, BLOCK: tl.constexpr):
    """The last, partial tile of the vocabulary (masked loads; -inf past V)."""
    lanes = tl.arange(0, BLOCK)
    inb = vs + lanes < V
    z = tl.load(row_ptr + vs + lanes, mask=inb, other=float("-inf")).to(tl.float32)
    if HAS_CFG:
        u = tl.load(urow_ptr + vs + lanes, mask=inb, other=float("-inf")).to(tl.float32)
        z = tl.where(inb, cfg_mix(z, u, cfg1, HAS_CFG), float("-inf"))
    z, sp_i, sp_next = exclude_specials(z, vs, sp_ptr, sp_i, sp_next, n_sp, BLOCK)
    zt, pick = tile_scores(z, inv_t, key, step, row, groups, vs, MODE, SAMPLE, SCALE_T, BLOCK)
    return tile_update(m, s, acc, t2, best, idx, ztb, zt, pick, vs, MODE, SAMPLE)


@triton.jit
def position_stats(logits_ptr, sl_b, sl_g, uncond_ptr, su_b, su_g, x_ptr, sx_b, b, g, G, V, split, nsplit,
                   tiles_per_split, mask_id, mask_sup, inv_t, cfg1, sp_ptr, n_sp, dem_ptr, n_dem, seed, step,
                   part_ptr, cnt_ptr, HAS_CFG: tl.constexpr, SAMPLE: tl.constexpr, SCALE_T: tl.constexpr,
                   MODE: tl.constexpr, SEED_MODE: tl.constexpr, STEP_PTR: tl.constexpr, PACKED: tl.constexpr,
                   BLOCK: tl.constexpr, MAX_SPLIT: tl.constexpr):
    """One program's share of position (b, g). Returns (done, x0, score, p_cur): `done` is true for
    the program that holds the full result (always when nsplit == 1, else the position's last)."""
    b64 = b.to(tl.int64)
    g64 = tl.to_tensor(g).to(tl.int64)  # a loop index is a Python int in the interpreter
    pos = b64 * G + g64
    row_ptr = logits_ptr + b64 * sl_b + g64 * sl_g
    urow_ptr = uncond_ptr + b64 * su_b + g64 * su_g
    key, row, st = noise_key(seed, step, b, g64, G, SEED_MODE, STEP_PTR)
    # point loads the last program needs, issued before the loop so their latency hides behind it
    xcur = tl.load(x_ptr + b64 * sx_b + g64)
    has_cur = xcur != mask_id
    zt_cur = entry_zt(row_ptr, urow_ptr, xcur, V, cfg1, inv_t, sp_ptr, n_sp, HAS_CFG, SCALE_T)
    zt_mask = entry_zt(row_ptr, urow_ptr, mask_id, V, cfg1, inv_t, sp_ptr, 0, HAS_CFG, SCALE_T)
    zt_mask = tl.where(mask_sup != 0, float("-inf"), zt_mask)
    n_full = V // BLOCK
    t0 = split * tiles_per_split
    t1 = tl.minimum(t0 + tiles_per_split, (V + BLOCK - 1) // BLOCK)
    m, s, acc, t2, best, idx, ztb = chunk_state(row_ptr, urow_ptr, t0, t1, n_full, V, sp_ptr, n_sp, cfg1, inv_t,
                                                key, st, row, HAS_CFG, SAMPLE, SCALE_T, MODE, PACKED, BLOCK)
    done = nsplit <= 1
    if nsplit > 1:
        part = part_ptr + pos * nsplit * 7
        store_partial(part + split * 7, m, s, acc, t2, best, idx, ztb)
        tl.debug_barrier()
        done = tl.atomic_add(cnt_ptr + pos, 1) == nsplit - 1  # acq_rel, gpu scope: publishes the partial
        if done:
            m, s, acc, t2, best, idx, ztb = merge_partials(part, nsplit, MODE, SAMPLE, MAX_SPLIT)
            tl.atomic_xchg(cnt_ptr + pos, 0)  # leave the counter zeroed for the next call
    u_rand = 0.0
    if MODE == 3:  # after the loop: key and row need not stay live across it (recomputed, or CSE'd at T > 0)
        key2, row2, st2 = noise_key(seed, step, b, g64, G, SEED_MODE, STEP_PTR)
        u_rand = position_uniform(key2, st2, 1, row2)
    x0, sc, p_cur = finalize(m, s, acc, t2, best, idx, ztb, zt_mask, zt_cur, has_cur, u_rand, mask_id, dem_ptr,
                             n_dem, MODE)
    return done, x0, sc, p_cur
