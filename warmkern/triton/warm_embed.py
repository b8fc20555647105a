"""warm_embed: gather + interpolate + select + scale in one launch, no intermediate tensors.

Grid (B*G, cdiv(D, BLOCK_D)). Each program reads the one or two weight rows its position needs
(W[x] or W[mask_id], plus W[draft] only when interpolating), mixes in fp32 with the reference's
operation order (fp fusion off: no FMA, so results are bit-exact), and rounds to the output dtype.
bf16 is rounded to nearest-even by hand on the fp32 bits, because the interpreter truncates.
Whatever the ids hold (check_values=False skips their validation), no load leaves the table: a position
whose x is outside [0, V) or whose draft is outside [-1, V) gets a zero row and sets status[0] = 1 (an
int32 error flag the caller reads at its next host sync).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from warmkern.triton import config, launch
from warmkern.triton.common import to_f32


@triton.jit
def round_to_bf16_bits(v):
    """fp32 -> bf16 bit pattern (int16), round to nearest even; NaN stays a quiet NaN."""
    bits = v.to(tl.int32, bitcast=True)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    rounded = tl.where(v != v, 0x7FC0, rounded)
    return rounded.to(tl.int16)


@triton.jit
def warm_embed_kernel(w_ptr, sw, x_ptr, sx_b, draft_ptr, sd_b, keep_ptr, sk_b, alpha_ptr, out_ptr, status_ptr, G, D,
                      V, mask_id, scale, BF16_BITS: tl.constexpr, HAS_STATUS: tl.constexpr, BLOCK_D: tl.constexpr):
    row = tl.program_id(0)
    b = (row // G).to(tl.int64)
    g = (row % G).to(tl.int64)
    tok = tl.load(x_ptr + b * sx_b + g)
    dr = tl.load(draft_ptr + b * sd_b + g)
    bad = (tok < 0) | (tok >= V) | (dr < -1) | (dr >= V)
    tok = tl.where(bad, 0, tok)
    dr = tl.where(bad, -1, dr)
    interp = (tok == mask_id) & (tl.load(keep_ptr + b * sk_b + g) != 0) & (dr >= 0)
    offs = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    inb = offs < D
    ok = inb & ((offs * 0 + bad.to(tl.int32)) == 0)  # vector mask (interpreter rejects scalar & vector)
    # x == mask_id reads W[mask_id] here, which is exactly the mask row the mix needs
    w_a = to_f32(tl.load(w_ptr + tok * sw + offs, mask=ok, other=0.0))
    need_d = ok & ((offs * 0 + interp.to(tl.int32)) != 0)
    w_d = to_f32(tl.load(w_ptr + tl.maximum(dr, 0) * sw + offs, mask=need_d, other=0.0))
    a = tl.load(alpha_ptr + b)
    mixed = (1.0 - a) * w_a + a * w_d
    vec = tl.where(interp, mixed, w_a) * scale
    vec = tl.where(bad, 0.0, vec)
    if HAS_STATUS:
        if bad & (tl.program_id(1) == 0):
            tl.atomic_max(status_ptr, 1)
    dst = out_ptr + row.to(tl.int64) * D + offs
    if BF16_BITS:
        tl.store(dst, round_to_bf16_bits(vec), mask=inb)
    else:
        tl.store(dst, vec.to(out_ptr.dtype.element_ty), mask=inb)


def warm_embed(weight, x, draft, keep, *, out=None, mask_id, alpha, scale=1.0, status=None):
    """Triton warm_embed (the reference's signature); `out` is given (contiguous) by warmkern.ops;
    `status` (int32 [1]) is set to 1 when an id is out of range (that row is zero)."""
    b, g = x.shape
    d = weight.shape[1]
    if out is None:
        out = torch.empty((b, g, d), dtype=weight.dtype, device=weight.device)
    if b * g == 0 or d == 0:
        return out
    cfg = config.embed_config(d, config.on_gpu(weight.device))
    bf16 = weight.dtype == torch.bfloat16
    dst = out.view(torch.int16) if bf16 else out
    alpha = torch.as_tensor(alpha, dtype=torch.float32, device=weight.device).reshape(-1).expand(b).contiguous()
    grid = (b * g, triton.cdiv(d, cfg.block_d))
    args = [weight, weight.stride(0), x, x.stride(0), draft, draft.stride(0), keep, keep.stride(0), alpha, dst,
            status if status is not None else alpha, g, d, weight.shape[0], mask_id, float(scale)]
    meta = dict(BF16_BITS=bf16, HAS_STATUS=status is not None, BLOCK_D=cfg.block_d, num_warps=cfg.num_warps,
                enable_fp_fusion=False)
    launch.run(warm_embed_kernel, grid, args, meta, device=weight.device, op="warm_embed")
    return out
