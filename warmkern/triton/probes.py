"""Probe kernels for `kernels-report`: helpers compiled alone, so their SASS can be counted.

The fused kernels interleave the per-position epilogue, the truncation search and the serial tail with
everything else; these probes call the very same @triton.jit helpers with the launch's constexprs, one
program, so their instruction counts are the cost of that piece alone (loops counted once along the
fall-through path; the selection's chunk loops run once for a window of <= 32 positions):
- `post_loop_probe`: what every program does after its vocabulary loop when unsplit (lane reduction,
  the special ids, finalize); `merge_probe`: what a split position's last program adds (the merge);
- `select_probe`: the row's selection (denoise_step's serial tail);
- `trunc_stats_probe` / `trunc_bracket_probe`: one truncation pass each (pass 0, a bracket pass), whose
  loops the report counts per vocabulary entry like the main loop.
"""

from __future__ import annotations

import triton
import triton.language as tl

from warmkern.triton.select import select_row
from warmkern.triton.stats import merge_partials, reduce_lanes
from warmkern.triton.stats_pass import finish
from warmkern.triton.truncate import NT, pass_bracket, pass_stats


@triton.jit
def _finish(st_ptr, x_ptr, row_ptr, sp_ptr, n_sp, V, mask_id, seed, step, m, s, acc, t2, best, idx, ztb,
            MODE: tl.constexpr, SAMPLE: tl.constexpr, SCALE_T: tl.constexpr, R: tl.constexpr, E: tl.constexpr):
    zt = tl.load(st_ptr + 2)
    _done, x0, sc, pc = finish(True, m, s, acc, t2, best, idx, ztb, zt, tl.load(x_ptr) != mask_id, row_ptr, row_ptr,
                               V, mask_id, sp_ptr, n_sp, 1.0, 1.0, -1, 0.0, float("-inf"), seed, 0, step,
                               tl.program_id(0), 0, False, SAMPLE, SCALE_T, MODE, 0, False, False, False, R, E)
    tl.store(x_ptr + 1, x0)
    tl.store(st_ptr, sc)
    tl.store(st_ptr + 1, pc)


@triton.jit
def post_loop_probe(lane_ptr, st_ptr, x_ptr, row_ptr, sp_ptr, n_sp, V, mask_id, seed, step, MODE: tl.constexpr,
                    SAMPLE: tl.constexpr, SCALE_T: tl.constexpr, BLOCK: tl.constexpr, R: tl.constexpr,
                    E: tl.constexpr):
    """What every program does after its vocabulary loop when unsplit: lane reduction + the rest."""
    i = tl.arange(0, BLOCK)
    m, s, acc, t2, best, idx, ztb = reduce_lanes(
        tl.load(lane_ptr + i), tl.load(lane_ptr + BLOCK + i), tl.load(lane_ptr + 2 * BLOCK + i),
        tl.load(lane_ptr + 3 * BLOCK + i), tl.load(lane_ptr + 4 * BLOCK + i),
        tl.load(lane_ptr + 5 * BLOCK + i).to(tl.int32, bitcast=True), tl.load(lane_ptr + 6 * BLOCK + i),
        MODE, SAMPLE, BLOCK)
    _finish(st_ptr, x_ptr, row_ptr, sp_ptr, n_sp, V, mask_id, seed, step, m, s, acc, t2, best, idx, ztb, MODE,
            SAMPLE, SCALE_T, R, E)


@triton.jit
def merge_probe(part_ptr, st_ptr, x_ptr, row_ptr, sp_ptr, n_sp, V, mask_id, seed, step, nsplit, MODE: tl.constexpr,
                SAMPLE: tl.constexpr, SCALE_T: tl.constexpr, MAX_SPLIT: tl.constexpr, R: tl.constexpr,
                E: tl.constexpr):
    """What a split position's last program adds: the merge of the partial states, then the rest."""
    m, s, acc, t2, best, idx, ztb = merge_partials(part_ptr, nsplit, MODE, SAMPLE, MAX_SPLIT)
    _finish(st_ptr, x_ptr, row_ptr, sp_ptr, n_sp, V, mask_id, seed, step, m, s, acc, t2, best, idx, ztb, MODE,
            SAMPLE, SCALE_T, R, E)


@triton.jit
def select_probe(sc_ptr, x0_ptr, x_ptr, prov_ptr, key_ptr, nt_ptr, lo_ptr, k_ptr, G, mask_id, threshold, factor, rth,
                 rmax, inv_alg, seed, step, RULE: tl.constexpr, REMASK: tl.constexpr, ALG: tl.constexpr):
    """The selection of one row (the fused kernel runs it on the row's last program)."""
    b = tl.program_id(0)
    select_row(b, tl.load(lo_ptr).to(tl.int32), tl.load(lo_ptr + 1).to(tl.int32), G, sc_ptr, G, x0_ptr, G, sc_ptr + G,
               G, x_ptr, G, prov_ptr, G, key_ptr, nt_ptr, nt_ptr + 1, mask_id, k_ptr, threshold, factor, rth, rmax,
               inv_alg, seed, 0, step, RULE, REMASK, ALG, 0, False)


@triton.jit
def trunc_stats_probe(row_ptr, sp_ptr, n_sp, V, out_ptr, inv_t, HAS_CFG: tl.constexpr, PRIOR: tl.constexpr,
                      R: tl.constexpr, E: tl.constexpr):
    """Pass 0 of the truncation search over one row."""
    m, s, lo, n_inf = pass_stats(row_ptr, row_ptr, V, sp_ptr, n_sp, 1.5, inv_t, tl.program_id(0) - 1, 1.0, HAS_CFG,
                                 PRIOR != 0, R, E)
    tl.store(out_ptr, m + s + lo + n_inf.to(tl.float32))


@triton.jit
def trunc_bracket_probe(row_ptr, sp_ptr, n_sp, V, out_ptr, inv_t, lo, hi, m, first, TOPK: tl.constexpr,
                        TOPP: tl.constexpr, HAS_CFG: tl.constexpr, PRIOR: tl.constexpr, R: tl.constexpr,
                        E: tl.constexpr):
    """One bracket pass of the truncation search over one row."""
    thr, cnt, mass, mn, mx = pass_bracket(row_ptr, row_ptr, V, sp_ptr, n_sp, 1.5, inv_t, tl.program_id(0) - 1, 1.0,
                                          lo, hi, m, lo, first != 0, TOPK, TOPP, HAS_CFG, PRIOR != 0, R, E)
    j = tl.arange(0, NT)
    tl.store(out_ptr + j, thr + cnt + mass)
    tl.store(out_ptr + NT, mn + mx)
