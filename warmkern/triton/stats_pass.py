"""Device code of one position's vocabulary pass (shared by token_stats and denoise_step).

A program owns one vocabulary chunk (all of it, or 1/nsplit) of a position. The loop over its full
tiles is elementwise only: each lane keeps its own running state (`stats.tile_update`), the next
tiles are loaded ahead of the one being folded in (software prefetch), and the lanes are reduced
once after the loop. The special ids (mask_id, the suppress / pick / score lists) are left out of
the loop in the few tiles that hold them (a uniform branch) and added by the position's last
program after it (`add_specials`), by their flags; the prior id's tile adds its bias (one scalar test
per tile). With truncation (top_k / top_p) the program first finds the position's cutoff
(`truncate.cutoff`: 2-4 extra passes over the row, typically) and the loop sets zs < cutoff to -inf
(one compare per entry). On the split path each program stores its partial state and the
position's last program (atomic counter) merges them with a fixed tree, so the result does not
depend on which program finishes last. Passes over the logits: 1, or 2 + the bracket passes with
truncation (7 on model-like rows at LLaDA's vocabulary: `truncate`), plus one more in the rare case of a
+inf score-softmax entry (to count them).
"""

from __future__ import annotations

import triton
import triton.language as tl

from warmkern.triton.common import entry_gumbel, noise_key, position_uniform, to_f32, vocab_gumbel
from warmkern.triton.entries import add_prior, cfg_mix, code_of, entry_z, exclude_specials, skip_codes, tile_z, truncate
from warmkern.triton.stats import (
    add_entry,
    finalize,
    lane_state,
    merge_partials,
    reduce_lanes,
    store_partial,
    tile_update,
)
from warmkern.triton.truncate import cutoff


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
        return to_f32(w)


@triton.jit
def tile_scores(z, inv_t, key, step, row, groups, vs, MODE: tl.constexpr, SAMPLE: tl.constexpr,
                SCALE_T: tl.constexpr, BLOCK: tl.constexpr):
    """(zt, pick) of a tile: the softmax input and the value x0 maximises (z/T + Gumbel at T > 0).
    vs: the tile's first *global* index (Philox counter); SAMPLE == 2 draws entry by entry (a vocabulary
    shard whose start is not a multiple of 4, so its tiles straddle counter groups)."""
    if MODE == 1:
        z = tl.maximum(z, float("-inf"))  # NaN -> -inf: the running second-best compares with it
    if SCALE_T:
        zt = z * inv_t
    else:
        zt = z
    if SAMPLE:
        if SAMPLE == 2:
            pick = z * inv_t + entry_gumbel(key, step, 0, row, groups, vs + tl.arange(0, BLOCK))
        else:
            pick = z * inv_t + vocab_gumbel(key, step, 0, row, groups, vs, BLOCK)
    else:
        pick = zt
    return zt, pick


def tiles_per_iteration(sample: bool) -> int:
    """Tiles one iteration of the vocabulary loop folds (see chunk_state); kernels-report divides by it."""
    return 1 if sample else 2


@triton.jit
def fold(m, s, acc, t2, best, idx, ztb, sp_i, sp_next, zraw, uraw, vs, vofs, sp_ptr, n_sp, cfg1, inv_t, prior, bias,
         cut, key, step, row, groups, HAS_CFG: tl.constexpr, SAMPLE: tl.constexpr, SCALE_T: tl.constexpr,
         MODE: tl.constexpr, PACKED: tl.constexpr, HAS_PRIOR: tl.constexpr, TRUNC: tl.constexpr,
         BLOCK: tl.constexpr):
    """Fold one full tile (raw loads) into the lane state; advances the special-id cursor."""
    z = cfg_mix(unpack(zraw, PACKED, BLOCK), unpack(uraw, PACKED, BLOCK), cfg1, HAS_CFG)
    if vs + BLOCK > (sp_next >> 3):  # uniform branch, taken by the few tiles holding a special id
        z, sp_i, sp_next = exclude_specials(z, tl.arange(0, BLOCK), vs, sp_ptr, sp_i, sp_next, n_sp, True, BLOCK)
    z = truncate(add_prior(z, tl.arange(0, BLOCK), vs, prior, bias, HAS_PRIOR, BLOCK), inv_t, cut, TRUNC)
    zt, pick = tile_scores(z, inv_t, key, step, row, groups, vofs + vs, MODE, SAMPLE, SCALE_T, BLOCK)
    m, s, acc, t2, best, idx, ztb = tile_update(m, s, acc, t2, best, idx, ztb, zt, pick, vs, MODE, SAMPLE)
    return m, s, acc, t2, best, idx, ztb, sp_i, sp_next


@triton.jit
def chunk_state(row_ptr, urow_ptr, t0, t1, n_full, V, vofs, groups, sp_ptr, n_sp, cfg1, inv_t, prior, bias, cut, key,
                step, row, HAS_CFG: tl.constexpr, SAMPLE: tl.constexpr, SCALE_T: tl.constexpr, MODE: tl.constexpr,
                PACKED: tl.constexpr, HAS_PRIOR: tl.constexpr, TRUNC: tl.constexpr, BLOCK: tl.constexpr):
    """State of tiles [t0, t1) of one position (tile n_full, if reached, is the partial last one). vofs: the
    global index of entry 0 (a vocabulary shard's start; 0 on one device), groups: the counter row length.

    Software pipeline without register rotation: greedy loops take two tiles per iteration from two
    load buffers, each reloaded (two tiles ahead) right after it is unpacked, so ~24 KB per SM stay
    in flight; T > 0 is issue-bound and keeps its registers: one buffer, one tile ahead.
    """
    m, s, acc, t2, best, idx, ztb = lane_state(BLOCK)
    sp_i, sp_next = skip_codes(sp_ptr, n_sp, t0 * BLOCK)
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
                    m, s, acc, t2, best, idx, ztb, sp_i, sp_next, zc, uc, t * BLOCK, vofs, sp_ptr, n_sp, cfg1, inv_t,
                    prior, bias, cut, key, step, row, groups, HAS_CFG, SAMPLE, SCALE_T, MODE, PACKED, HAS_PRIOR,
                    TRUNC, BLOCK)
                zc = zb
                uc = ub
                zb = load_tile(row_ptr, tl.minimum(t + 3, te - 1) * BLOCK, PACKED, BLOCK)
                if HAS_CFG:
                    ub = load_tile(urow_ptr, tl.minimum(t + 3, te - 1) * BLOCK, PACKED, BLOCK)
                m, s, acc, t2, best, idx, ztb, sp_i, sp_next = fold(
                    m, s, acc, t2, best, idx, ztb, sp_i, sp_next, zc, uc, (t + 1) * BLOCK, vofs, sp_ptr, n_sp, cfg1,
                    inv_t, prior, bias, cut, key, step, row, groups, HAS_CFG, SAMPLE, SCALE_T, MODE, PACKED,
                    HAS_PRIOR, TRUNC, BLOCK)
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
                m, s, acc, t2, best, idx, ztb, sp_i, sp_next, zc, uc, t * BLOCK, vofs, sp_ptr, n_sp, cfg1, inv_t, prior,
                bias, cut, key, step, row, groups, HAS_CFG, SAMPLE, SCALE_T, MODE, PACKED, HAS_PRIOR, TRUNC, BLOCK)
    if t1 > n_full:
        m, s, acc, t2, best, idx, ztb = partial_tile(m, s, acc, t2, best, idx, ztb, sp_i, sp_next, row_ptr,
                                                     urow_ptr, n_full * BLOCK, vofs, V, sp_ptr, n_sp, cfg1, inv_t,
                                                     prior, bias, cut, key, step, row, groups, HAS_CFG, SAMPLE, SCALE_T,
                                                     MODE, HAS_PRIOR, TRUNC, BLOCK)
    return reduce_lanes(m, s, acc, t2, best, idx, ztb, MODE, SAMPLE, BLOCK)


@triton.jit
def partial_tile(m, s, acc, t2, best, idx, ztb, sp_i, sp_next, row_ptr, urow_ptr, vs, vofs, V, sp_ptr, n_sp, cfg1,
                 inv_t, prior, bias, cut, key, step, row, groups, HAS_CFG: tl.constexpr, SAMPLE: tl.constexpr,
                 SCALE_T: tl.constexpr, MODE: tl.constexpr, HAS_PRIOR: tl.constexpr, TRUNC: tl.constexpr,
                 BLOCK: tl.constexpr):
    """The last, partial tile of the vocabulary (masked loads; -inf past V)."""
    z, sp_i, sp_next = tile_z(row_ptr, urow_ptr, vs, V, sp_ptr, sp_i, sp_next, n_sp, cfg1, prior, bias, HAS_CFG,
                              HAS_PRIOR, True, BLOCK, 1)
    z = tl.reshape(z, [BLOCK])
    z = truncate(z, inv_t, cut, TRUNC)
    zt, pick = tile_scores(z, inv_t, key, step, row, groups, vofs + vs, MODE, SAMPLE, SCALE_T, BLOCK)
    return tile_update(m, s, acc, t2, best, idx, ztb, zt, pick, vs, MODE, SAMPLE)


@triton.jit
def count_plain_inf(row_ptr, urow_ptr, V, sp_ptr, n_sp, cfg1, inv_t, prior, bias, cut, HAS_CFG: tl.constexpr,
                    SCALE_T: tl.constexpr, HAS_PRIOR: tl.constexpr, TRUNC: tl.constexpr, R: tl.constexpr,
                    E: tl.constexpr):
    """How many plain entries have zt = +inf: the rare extra pass of a position whose softmax max is +inf
    (the spec's softmax is then uniform over them)."""
    n = tl.zeros([R, E], tl.int32)
    sp_i, sp_next = skip_codes(sp_ptr, n_sp, 0)
    for vs in range(0, V, R * E):
        z, sp_i, sp_next = tile_z(row_ptr, urow_ptr, vs, V, sp_ptr, sp_i, sp_next, n_sp, cfg1, prior, bias, HAS_CFG,
                                  HAS_PRIOR, True, R, E)
        z = truncate(z, inv_t, cut, TRUNC)
        if SCALE_T:
            z = z * inv_t
        n += (z == float("inf")).to(tl.int32)
    return tl.sum(tl.sum(n, 1), 0)


@triton.jit
def add_specials(m, s, acc, best, idx, ztb, n_inf, row_ptr, urow_ptr, V, vofs, groups, sp_ptr, n_sp, cfg1, inv_t, prior,
                 bias, cut, key, step, row, HAS_CFG: tl.constexpr, SAMPLE: tl.constexpr, SCALE_T: tl.constexpr,
                 HAS_PRIOR: tl.constexpr, TRUNC: tl.constexpr):
    """The special ids, after the loop, by their flags: IN_SOFTMAX ones join the score softmax (and the
    +inf count), CANDIDATE ones compete for x0 (larger pick, then lower index). vofs, groups: as chunk_state."""
    for i in range(n_sp):
        code = tl.load(sp_ptr + i)
        v = code >> 3
        z = entry_z(row_ptr, urow_ptr, v, V, cfg1, inv_t, prior, bias, cut, HAS_CFG, HAS_PRIOR, TRUNC)
        zt = z
        if SCALE_T:
            zt = z * inv_t
        zt = tl.where((code & 1) != 0, zt, float("-inf"))
        m, s, acc = add_entry(m, s, acc, zt)
        n_inf += (zt == float("inf")).to(tl.int32)
        pick = z
        if SAMPLE:
            pick = z * inv_t + entry_gumbel(key, step, 0, row, groups, vofs + v)
        pick = tl.where((code & 2) != 0, pick, float("-inf"))
        take = ((pick > best) | ((pick == best) & (v < idx))) & (pick > float("-inf"))
        best = tl.where(take, pick, best)
        idx = tl.where(take, v, idx)
        ztb = tl.where(take, zt, ztb)
    return m, s, acc, best, idx, ztb, n_inf


@triton.jit
def current_zt(row_ptr, urow_ptr, xcur, V, sp_ptr, n_sp, cfg1, inv_t, prior, bias, cut, HAS_CFG: tl.constexpr,
               SCALE_T: tl.constexpr, HAS_PRIOR: tl.constexpr, TRUNC: tl.constexpr):
    """zt of the current token in the score softmax (-inf when it is not in it: special without IN_SOFTMAX)."""
    z = entry_z(row_ptr, urow_ptr, xcur, V, cfg1, inv_t, prior, bias, cut, HAS_CFG, HAS_PRIOR, TRUNC)
    if SCALE_T:
        z = z * inv_t
    code = code_of(sp_ptr, n_sp, xcur)
    return tl.where((code >= 0) & ((code & 1) == 0), float("-inf"), z)


@triton.jit
def prior_of(prior_ptr, spr_b, bias_ptr, spr_bias, b64, g64, PRIOR: tl.constexpr):
    """(prior id, bias) of position (b, g): (-1, 0.0) without a prior (PRIOR 0); PRIOR 1: one float bias
    (`bias_ptr` holds it), 2: per-row biases bias_ptr[b * spr_bias]."""
    prior = -1
    bias = 0.0
    if PRIOR != 0:
        prior = tl.load(prior_ptr + b64 * spr_b + g64).to(tl.int32)
        if PRIOR == 1:
            bias = bias_ptr
        else:
            bias = tl.load(bias_ptr + b64 * spr_bias)
    return prior, bias


@triton.jit
def position_stats(logits_ptr, sl_b, sl_g, uncond_ptr, su_b, su_g, x_ptr, sx_b, b, g, V, split, nsplit,
                   tiles_per_split, mask_id, inv_t, cfg1, sp_ptr, n_sp, seed, seed_stride, step, prior_ptr, spr_b,
                   bias_ptr, spr_bias, top_k, top_p, part_ptr, cnt_ptr, G, HAS_CFG: tl.constexpr,
                   SAMPLE: tl.constexpr, SCALE_T: tl.constexpr, MODE: tl.constexpr, SEED_MODE: tl.constexpr,
                   STEP_PTR: tl.constexpr, PACKED: tl.constexpr, PRIOR: tl.constexpr, TOPK: tl.constexpr,
                   TOPP: tl.constexpr, TRUNC: tl.constexpr, BLOCK: tl.constexpr, TR: tl.constexpr, TE: tl.constexpr,
                   MAX_SPLIT: tl.constexpr):
    """One program's share of position (b, g). Returns (done, x0, score, p_cur): `done` is true for
    the program that holds the full result (always when nsplit == 1, else the position's last).
    PRIOR: 0 = no prior, 1 = one float bias (`bias_ptr` holds it), 2 = per-row biases bias_ptr[b * spr_bias]."""
    HAS_PRIOR: tl.constexpr = PRIOR != 0
    b64 = b.to(tl.int64)
    g64 = tl.to_tensor(g).to(tl.int64)  # a loop index is a Python int in the interpreter
    pos = b64 * G + g64
    row_ptr = logits_ptr + b64 * sl_b + g64 * sl_g
    urow_ptr = uncond_ptr + b64 * su_b + g64 * su_g
    key, row, st = noise_key(seed, seed_stride, step, b, g64, SEED_MODE, STEP_PTR)
    prior, bias = prior_of(prior_ptr, spr_b, bias_ptr, spr_bias, b64, g64, PRIOR)
    cut = float("-inf")
    if TRUNC:
        cut = cutoff(row_ptr, urow_ptr, V, sp_ptr, n_sp, cfg1, inv_t, prior, bias, top_k, top_p, TOPK, TOPP, HAS_CFG,
                     HAS_PRIOR, TR, TE)
    # point loads the last program needs, issued before the loop so their latency hides behind it
    xcur = tl.load(x_ptr + b64 * sx_b + g64)
    has_cur = (xcur != mask_id) & (xcur >= 0) & (xcur < V)
    zt_cur = current_zt(row_ptr, urow_ptr, xcur, V, sp_ptr, n_sp, cfg1, inv_t, prior, bias, cut, HAS_CFG, SCALE_T,
                        HAS_PRIOR, TRUNC)
    n_full = V // BLOCK
    t0 = split * tiles_per_split
    t1 = tl.minimum(t0 + tiles_per_split, (V + BLOCK - 1) // BLOCK)
    m, s, acc, t2, best, idx, ztb = chunk_state(row_ptr, urow_ptr, t0, t1, n_full, V, 0, (V + 3) // 4, sp_ptr, n_sp,
                                                cfg1, inv_t, prior, bias, cut, key, st, row, HAS_CFG, SAMPLE, SCALE_T,
                                                MODE, PACKED, HAS_PRIOR, TRUNC, BLOCK)
    done = nsplit <= 1
    if nsplit > 1:
        part = part_ptr + pos * nsplit * 7
        store_partial(part + split * 7, m, s, acc, t2, best, idx, ztb)
        tl.debug_barrier()
        done = tl.atomic_add(cnt_ptr + pos, 1) == nsplit - 1  # acq_rel, gpu scope: publishes the partial
        if done:
            m, s, acc, t2, best, idx, ztb = merge_partials(part, nsplit, MODE, SAMPLE, MAX_SPLIT)
            tl.atomic_xchg(cnt_ptr + pos, 0)  # leave the counter zeroed for the next call
    return finish(done, m, s, acc, t2, best, idx, ztb, zt_cur, has_cur, row_ptr, urow_ptr, V, mask_id, sp_ptr, n_sp,
                  cfg1, inv_t, prior, bias, cut, seed, seed_stride, step, b, g64, HAS_CFG, SAMPLE, SCALE_T, MODE,
                  SEED_MODE, STEP_PTR, HAS_PRIOR, TRUNC, TR, TE)


@triton.jit
def finish(done, m, s, acc, t2, best, idx, ztb, zt_cur, has_cur, row_ptr, urow_ptr, V, mask_id, sp_ptr, n_sp, cfg1,
           inv_t, prior, bias, cut, seed, seed_stride, step, b, g64, HAS_CFG: tl.constexpr, SAMPLE: tl.constexpr,
           SCALE_T: tl.constexpr, MODE: tl.constexpr, SEED_MODE: tl.constexpr, STEP_PTR: tl.constexpr,
           HAS_PRIOR: tl.constexpr, TRUNC: tl.constexpr, TR: tl.constexpr, TE: tl.constexpr):
    """(done, x0, score, p_cur) from the position's merged plain-entry state: the +inf count (rare extra
    pass), the special ids, finalize."""
    m1 = m  # margin: the two largest plain values (every plain entry is a candidate in the softmax)
    n_inf = tl.zeros([], tl.int32)
    if done & (m == float("inf")):
        n_inf = count_plain_inf(row_ptr, urow_ptr, V, sp_ptr, n_sp, cfg1, inv_t, prior, bias, cut, HAS_CFG, SCALE_T,
                                HAS_PRIOR, TRUNC, TR, TE)
    # after the loop: key and row need not stay live across it (recomputed, or CSE'd at T > 0)
    key, row, st = noise_key(seed, seed_stride, step, b, g64, SEED_MODE, STEP_PTR)
    m, s, acc, best, idx, ztb, n_inf = add_specials(m, s, acc, best, idx, ztb, n_inf, row_ptr, urow_ptr, V, 0,
                                                    (V + 3) // 4, sp_ptr, n_sp, cfg1, inv_t, prior, bias, cut, key,
                                                    st, row, HAS_CFG, SAMPLE, SCALE_T, HAS_PRIOR, TRUNC)
    u_rand = 0.0
    if MODE == 3:
        u_rand = position_uniform(key, st, 1, row)
    x0, sc, p_cur = finalize(m, s, acc, m1, t2, best, idx, ztb, n_inf, zt_cur, has_cur, u_rand, mask_id, MODE)
    return done, x0, sc, p_cur
