"""Probe kernels for `kernels-report`: the post-loop helpers compiled alone, so their SASS can be counted.

The fused kernels interleave the per-position epilogue and the serial tail with everything else; these
probes call the very same @triton.jit helpers with the launch's constexprs, one program, no vocabulary
loop, so their instruction count is the epilogue / tail cost of one program (loops counted once: the
selection's chunk loops run once for a window of <= 32 positions). The serial tail of a launch (what
runs after the last vocabulary loop ends, beyond that program's own epilogue `post_loop_probe`) is
`merge_probe` when the vocabulary is split plus `select_probe` for denoise_step.
"""

from __future__ import annotations

import triton
import triton.language as tl

from warmkern.triton.select import select_row
from warmkern.triton.stats import finalize, merge_partials, reduce_lanes


@triton.jit
def _finish(st_ptr, m, s, acc, t2, best, idx, ztb, zt, x_ptr, mask_id, dem_ptr, n_dem, key, step, MODE: tl.constexpr):
    x0, sc, pc = finalize(m, s, acc, t2, best, idx, ztb, zt, zt, tl.load(x_ptr) != mask_id, zt, mask_id, dem_ptr,
                          n_dem, MODE)
    tl.store(x_ptr + 1, x0)
    tl.store(st_ptr, sc)
    tl.store(st_ptr + 1, pc)


@triton.jit
def post_loop_probe(lane_ptr, st_ptr, x_ptr, mask_id, dem_ptr, n_dem, key, step, MODE: tl.constexpr,
                    SAMPLE: tl.constexpr, BLOCK: tl.constexpr):
    """What every program does after its vocabulary loop when unsplit: lane reduction + finalize."""
    i = tl.arange(0, BLOCK)
    m, s, acc, t2, best, idx, ztb = reduce_lanes(
        tl.load(lane_ptr + i), tl.load(lane_ptr + BLOCK + i), tl.load(lane_ptr + 2 * BLOCK + i),
        tl.load(lane_ptr + 3 * BLOCK + i), tl.load(lane_ptr + 4 * BLOCK + i),
        tl.load(lane_ptr + 5 * BLOCK + i).to(tl.int32, bitcast=True), tl.load(lane_ptr + 6 * BLOCK + i),
        MODE, SAMPLE, BLOCK)
    _finish(st_ptr, m, s, acc, t2, best, idx, ztb, tl.load(st_ptr + 2), x_ptr, mask_id, dem_ptr, n_dem, key, step,
            MODE)


@triton.jit
def merge_probe(part_ptr, st_ptr, x_ptr, mask_id, dem_ptr, n_dem, key, step, nsplit, MODE: tl.constexpr,
                SAMPLE: tl.constexpr, MAX_SPLIT: tl.constexpr):
    """What a split position's last program adds: the merge of the partial states, then finalize."""
    m, s, acc, t2, best, idx, ztb = merge_partials(part_ptr, nsplit, MODE, SAMPLE, MAX_SPLIT)
    _finish(st_ptr, m, s, acc, t2, best, idx, ztb, tl.load(st_ptr + 2), x_ptr, mask_id, dem_ptr, n_dem, key, step,
            MODE)


@triton.jit
def select_probe(sc_ptr, x0_ptr, x_ptr, prov_ptr, key_ptr, nt_ptr, lo_ptr, k_ptr, G, mask_id, threshold, factor, rth,
                 rmax, RULE: tl.constexpr, REMASK: tl.constexpr):
    """The selection of one row (the fused kernel runs it on the row's last program)."""
    b = tl.program_id(0)
    select_row(b, tl.load(lo_ptr).to(tl.int32), tl.load(lo_ptr + 1).to(tl.int32), G, sc_ptr, G, x0_ptr, G, sc_ptr + G,
               G, x_ptr, G, prov_ptr, G, key_ptr, nt_ptr, nt_ptr + 1, mask_id, k_ptr, threshold, factor, rth, rmax,
               RULE, REMASK)
