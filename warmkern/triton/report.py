"""`warmkern kernels-report`: compile every Triton kernel for sm_80 and sm_90 and report its resources.

No GPU is needed: `triton.compile(ASTSource(...), target=GPUTarget("cuda", cc, 32))` runs the whole
pipeline down to a cubin with the wheel's ptxas, and the wheel's `cuobjdump --dump-resource-usage`
reads registers, shared memory and LOCAL (spill) bytes from it. Kernels are compiled with the
launch configurations `config` picks at LLaDA shapes (V=126464, G=256, D=4096, bf16, B=1) and
specialised like a real launch (16-byte divisibility of pointers and of ints divisible by 16).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

LLADA = {"V": 126464, "G": 256, "D": 4096, "B": 1}
TARGETS = {80: ("A100", 108, 164 * 1024), 90: ("H100", 132, 228 * 1024)}  # cc -> (gpu, SMs, smem/SM)
REGS_PER_SM = 65536
MAX_WARPS_PER_SM = 64
MAX_BLOCKS_PER_SM = 32
SMEM_RESERVED_PER_BLOCK = 1024


@dataclass
class Row:
    kernel: str
    variant: str
    cc: int
    num_warps: int
    grid: int
    regs: int
    shared: int
    local: int
    stack: int
    occupancy: float
    error: str = ""


def _ptr(dtype: str) -> tuple[str, str]:
    return ("ptr", dtype)


def _signature(fn, values: dict) -> tuple[dict, dict, dict]:
    """(signature, constexprs, attrs) as a real launch would specialise `values` (name -> value)."""
    sig, consts, attrs = {}, {}, {}
    for i, name in enumerate(fn.arg_names):
        val = values[name]
        if name.isupper():
            sig[name] = "constexpr"
            consts[name] = val
        elif isinstance(val, tuple):
            sig[name] = "*" + val[1]
            attrs[(i,)] = [["tt.divisibility", 16]]
        elif isinstance(val, float):
            sig[name] = "fp32"
        else:
            sig[name] = "i32" if -(2**31) <= val < 2**31 else "i64"
            if val % 16 == 0:
                attrs[(i,)] = [["tt.divisibility", 16]]
    return sig, consts, attrs


def kernel_specs(cc: int) -> list[tuple[str, str, object, dict, int, int]]:
    """(kernel, variant, jit fn, arg values, num_warps, grid size) at LLaDA shapes for target cc."""
    from warmkern.triton import config
    from warmkern.triton.denoise_step import denoise_step_kernel
    from warmkern.triton.select import select_kernel
    from warmkern.triton.token_stats import MODES, token_stats_kernel
    from warmkern.triton.warm_embed import warm_embed_kernel

    v, g, d, b = LLADA["V"], LLADA["G"], LLADA["D"], LLADA["B"]
    sms = TARGETS[cc][1]
    cfg = config.stats_config(b * g, v, sms, on_gpu=True)
    ecfg = config.embed_config(d, on_gpu=True)
    specs = []
    emb = dict(w_ptr=_ptr("bf16"), sw=d, x_ptr=_ptr("i64"), sx_b=g, draft_ptr=_ptr("i64"), sd_b=g,
               keep_ptr=_ptr("i1"), sk_b=g, alpha_ptr=_ptr("fp32"), out_ptr=_ptr("i16"), G=g, D=d, mask_id=126336,
               scale=1.0, BF16_BITS=True, BLOCK_D=ecfg.block_d)
    specs.append(("warm_embed", "bf16", warm_embed_kernel, emb, ecfg.num_warps, b * g * -(-d // ecfg.block_d)))
    stats = dict(logits_ptr=_ptr("bf16"), sl_b=g * v, sl_g=v, uncond_ptr=_ptr("bf16"), su_b=g * v, su_g=v,
                 x_ptr=_ptr("i64"), sx_b=g, G=g, V=v, mask_id=126336, inv_t=1.0, cfg1=1.0, sup_ptr=_ptr("i64"),
                 n_sup=3, dem_ptr=_ptr("i64"), n_dem=3, seed=12345, step=7, part_ptr=_ptr("fp32"),
                 cnt_ptr=_ptr("i32"), chunk=cfg.chunk, x0_ptr=_ptr("i64"), score_ptr=_ptr("fp32"),
                 pcur_ptr=_ptr("fp32"), NSPLIT=cfg.nsplit, BLOCK=cfg.block_v)
    variants = {
        "greedy prob": dict(HAS_CFG=False, SAMPLE=False, SCALE_T=False, MODE=MODES["prob"]),
        "T>0 margin+CFG": dict(HAS_CFG=True, SAMPLE=True, SCALE_T=True, MODE=MODES["margin"]),
        "T>0 entropy+CFG": dict(HAS_CFG=True, SAMPLE=True, SCALE_T=True, MODE=MODES["entropy"]),
    }
    grid = b * g * cfg.nsplit
    dcfg = config.stats_config(config.window_rows(b, g), v, sms, on_gpu=True)  # denoise_step: window-sized split
    for name, flags in variants.items():
        specs.append(("token_stats", f"{name}, split {cfg.nsplit}", token_stats_kernel, {**stats, **flags},
                      cfg.num_warps, grid))
    sel = dict(G=g, score_ptr=_ptr("fp32"), ss_b=g, x0_ptr=_ptr("i64"), s0_b=g, pcur_ptr=_ptr("fp32"), sp_b=g,
               x_ptr=_ptr("i64"), sx_b=g, prov_ptr=_ptr("i1"), sv_b=g, nt_ptr=_ptr("i64"), nr_ptr=_ptr("i64"),
               mask_id=126336, lo_ptr=_ptr("i64"), hi_ptr=_ptr("i64"), k_ptr=_ptr("i64"), threshold=0.9,
               factor=1.0, rth=0.5, rmax=g, BLOCK_G=config.next_pow2(g))
    sel_variants = {"top-k": dict(RULE=0, REMASK=False), "factor + remask": dict(RULE=2, REMASK=True)}
    specs.append(("select", "factor + remask", select_kernel, {**sel, **sel_variants["factor + remask"]},
                  config.select_warps(g), b))
    fused = {**stats, **{k: val for k, val in sel.items() if k not in stats}, "bcnt_ptr": _ptr("i32"),
             "chunk": dcfg.chunk, "NSPLIT": dcfg.nsplit}
    for name, flags in (("greedy prob, top-k", {**variants["greedy prob"], **sel_variants["top-k"]}),
                        ("T>0 margin+CFG, factor+remask",
                         {**variants["T>0 margin+CFG"], **sel_variants["factor + remask"]})):
        specs.append(("denoise_step", f"{name}, split {dcfg.nsplit}", denoise_step_kernel, {**fused, **flags},
                      dcfg.num_warps, b * g * dcfg.nsplit))
    return specs


def _cuobjdump() -> str:
    import triton

    return str(Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump")


def resource_usage(cubin: bytes) -> dict[str, int]:
    """REG / SHARED / LOCAL / STACK of the (single) function in a cubin, via cuobjdump."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        out = subprocess.run([_cuobjdump(), "--dump-resource-usage", f.name], capture_output=True, text=True,
                             check=True).stdout
    fields = dict(re.findall(r"\b(REG|SHARED|LOCAL|STACK):(\d+)", out))
    return {k.lower(): int(v) for k, v in fields.items()}


def occupancy(regs: int, shared: int, num_warps: int, cc: int) -> float:
    """Theoretical occupancy (resident warps / 64) from registers, shared memory and block size."""
    regs_per_warp = -(-max(regs, 1) * 32 // 256) * 256  # allocation granularity: 256 registers per warp
    by_regs = (REGS_PER_SM // regs_per_warp) // num_warps
    smem = TARGETS[cc][2]
    by_smem = smem // (shared + SMEM_RESERVED_PER_BLOCK)
    by_warps = MAX_WARPS_PER_SM // num_warps
    blocks = min(by_regs, by_smem, by_warps, MAX_BLOCKS_PER_SM)
    return blocks * num_warps / MAX_WARPS_PER_SM


def compile_all(ccs: tuple[int, ...] = (80, 90)) -> list[Row]:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    rows = []
    for cc in ccs:
        for kernel, variant, fn, values, warps, grid in kernel_specs(cc):
            sig, consts, attrs = _signature(fn, values)
            try:
                src = ASTSource(fn, sig, constexprs=consts, attrs=attrs)
                compiled = triton.compile(src, target=GPUTarget("cuda", cc, 32),
                                          options={"num_warps": warps, "enable_fp_fusion": False})
                use = resource_usage(compiled.asm["cubin"])
                occ = occupancy(use["reg"], use["shared"], warps, cc)
                rows.append(Row(kernel, variant, cc, warps, grid, use["reg"], use["shared"], use["local"],
                                use.get("stack", 0), occ))
            except Exception as err:  # report every kernel, even a failing one (innermost cause)
                while err.__cause__ is not None:
                    err = err.__cause__
                rows.append(Row(kernel, variant, cc, warps, grid, -1, -1, -1, -1, 0.0, f"{type(err).__name__}: {err}"))
    return rows


def table(rows: list[Row]) -> str:
    head = "| kernel | variant | target | warps | grid | REG | SHARED (B) | LOCAL (B) | occupancy |"
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        gpu = TARGETS[r.cc][0]
        if r.error:
            lines.append(f"| {r.kernel} | {r.variant} | sm_{r.cc} ({gpu}) | {r.num_warps} | {r.grid} | "
                         f"FAILED: {r.error[:80]} | | | |")
            continue
        lines.append(f"| {r.kernel} | {r.variant} | sm_{r.cc} ({gpu}) | {r.num_warps} | {r.grid} | {r.regs} | "
                     f"{r.shared} | {r.local} | {r.occupancy:.0%} |")
    return "\n".join(lines)


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    p = argparse.ArgumentParser(prog=f"warmkern {argv[0] if argv else 'kernels-report'}",
                                description="compile the Triton kernels for sm_80/sm_90 and report resources")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a markdown table")
    p.add_argument("--cc", type=int, action="append", choices=sorted(TARGETS), help="target(s); default both")
    args = p.parse_args(argv[1:])
    if _interpreting():
        # @triton.jit returned interpreter functions at import: compile in a fresh process instead
        env = {k: val for k, val in os.environ.items() if k != "TRITON_INTERPRET"}
        cmd = [sys.executable, "-m", "warmkern.triton.report", *argv[1:]]
        return subprocess.run(cmd, env=env, check=False).returncode
    rows = compile_all(tuple(args.cc or sorted(TARGETS)))
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=1))
    else:
        print(f"LLaDA shapes: {LLADA}, bf16 logits/weights\n")
        print(table(rows))
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(["kernels-report", *sys.argv[1:]]))
