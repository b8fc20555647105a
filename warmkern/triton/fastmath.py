"""The GPU math contract of the kernels, in one place (see tests/parity.py, "GPU contract").

Which operation each use gets, and why:
- In the vocabulary loop, the online-softmax rescale `exp(-|z - m|)` uses `ex2.approx.ftz` (one MUFU
  op, no subnormal fix-ups: `tl.exp` costs 5 instructions). Its 2-ulp error only moves the partial
  sums `s` and the entropy accumulator, which the parity rule bounds at 1e-5 relative; exp(0) = 1
  stays exact, so a certain token still gets p = 1.
- Once per position (final p = e / s, log s, the margin): precise libdevice `exp`/`log` and
  correctly rounded division (`div_rn`), so the score a threshold or remask rule compares is as close
  to the reference's as the sum order allows, and exactly 1 / 0.5 / 0.25 at those probabilities.
- Gumbel noise g = -log(E), E = -log(1 - u): the inner log needs relative accuracy near u = 2^-10
  (E small), so it is libdevice's `log` (<= 1 ulp, like torch's); the outer one is `lg2.approx`
  (one MUFU op instead of ~20): its error is <= 2.5e-7 absolute for E in [0.5, 2] and a few ulp of
  g elsewhere, i.e. < 1e-5 * max(1, |pick|) on the perturbed value. Bit-exactness with torch's CPU
  `log` is impossible anyway, so at T > 0 the GPU contract allows a different token only at a near
  tie: |a - b| <= 1e-5 * max(1, |a|, |b|) (tests/parity.py).
- Greedy x0 (T = 0) uses comparisons only (CFG without FMA contraction: `enable_fp_fusion=False`),
  so it is bit-exact on every target.

The interpreter has no inline PTX and no libdevice: there, each helper is numpy's exp2/exp/log.
"""

from __future__ import annotations

import os

import triton
import triton.language as tl

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
NEG_LOG2E = tl.constexpr(-1.4426950408889634)
NEG_LN2 = tl.constexpr(-0.6931471805599453)

if INTERPRET:

    @triton.jit
    def exp2_ftz(x):
        """2^x (interpreter: numpy's exp2)."""
        return tl.exp2(x)

    @triton.jit
    def exp_precise(x):
        return tl.exp(x)

    @triton.jit
    def log_precise(x):
        return tl.log(x)

    @triton.jit
    def log2_approx(x):
        return tl.log2(x)

    @triton.jit
    def opaque(x):
        return x

else:
    from triton.language.extra.cuda import libdevice

    @triton.jit
    def exp2_ftz(x):
        """2^x as one MUFU.EX2 (ex2.approx.ftz.f32): results below 2^-126 flush to 0."""
        return tl.inline_asm_elementwise("ex2.approx.ftz.f32 $0, $1;", "=f,f", [x], dtype=tl.float32,
                                         is_pure=True, pack=1)

    @triton.jit
    def exp_precise(x):
        return libdevice.exp(x)

    @triton.jit
    def log_precise(x):
        return libdevice.log(x)

    @triton.jit
    def log2_approx(x):
        """log2(x) as one MUFU.LG2 (lg2.approx.ftz.f32): 2^-22 absolute error near 1, a few ulp elsewhere."""
        return tl.inline_asm_elementwise("lg2.approx.ftz.f32 $0, $1;", "=f,f", [x], dtype=tl.float32,
                                         is_pure=True, pack=1)


if not INTERPRET:

    @triton.jit
    def opaque(x):
        """x (as int64), through an asm move the compiler may not hoist: keeps the 20 Philox round keys
        of a loop-invariant seed from being computed once and held in 20 registers across the loops."""
        return tl.inline_asm_elementwise("mov.b64 $0, $1;", "=l,l", [x.to(tl.int64)], dtype=tl.int64,
                                         is_pure=False, pack=1)


@triton.jit
def exp_neg_abs(d):
    """exp(-|d|) in the loop; NaN (from -inf - -inf) gives 0, so an empty lane stays empty."""
    return tl.maximum(exp2_ftz(tl.abs(d) * NEG_LOG2E), 0.0)
