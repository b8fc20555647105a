"""`warmkern kernels-report`: compile every Triton kernel exactly as a launch builds it, for sm_80 and
sm_90, and report its resources, spills and a roofline prediction (no GPU needed).

Each row is one (kernel, variant, arch, B) at LLaDA shapes (V = 126464, G = 256, a 32-position window,
bf16 logits). The launcher's own `plan` runs on meta tensors, with the occupancy the compiled kernel
gets on the target (so the split is what a real launch picks), and `aot.compile_launch` compiles the
specialisation Triton's binder derives from those arguments. Resources come from the cubin
(`cuobjdump --dump-resource-usage`: REG, SHARED, LOCAL, STACK) and from ptxas' own spill line;
instruction counts from its SASS (`sass`); times from the model in `roofline` (constants in `hw`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

LLADA = {"V": 126464, "G": 256, "D": 4096, "lo": 64, "hi": 96, "mask_id": 126336, "suppress": (126081, 126348)}
BATCHES = (1, 16, 64)
CCS = (80, 90)
TEMPERATURE = 0.7


@dataclass(frozen=True)
class Variant:
    score: str
    sampled: bool  # T > 0 (Gumbel noise in the loop)
    cfg: bool

    @property
    def name(self) -> str:
        return f"{self.score} {'T>0' if self.sampled else 'T=0'}{' CFG' if self.cfg else ''}"

    @property
    def rule(self) -> dict:
        """denoise_step's selection: top-k at T = 0, factor + remasking (the longest tail) at T > 0."""
        return {"factor": 1.0, "remask_threshold": 0.3} if self.sampled else {}


VARIANTS = [Variant(s, False, False) for s in ("prob", "margin", "entropy", "random")] + [
    Variant(s, True, True) for s in ("prob", "margin", "entropy", "random")] + [Variant("prob", True, False)]


def _mod(name: str):
    return importlib.import_module(f"warmkern.triton.{name}")  # the package re-exports functions under these names


def _cache_dir() -> Path:
    import triton

    return Path(triton.knobs.cache.dir) / "warmkern-ptxas"


_ANALYSED: dict[tuple, dict] = {}


def analyse(kernel, args: list, meta: dict, cc: int) -> dict:
    """Resources, ptxas spill line and SASS of the launch `kernel[grid](*args, **meta)` on target cc."""
    from warmkern.triton import aot, sass

    src, options = aot.specialise(kernel, args, meta, cc)
    key = (cc, src.hash(), tuple(sorted((k, str(v)) for k, v in options.items())))
    if key in _ANALYSED:
        return _ANALYSED[key]
    compiled = aot.compile_launch(kernel, args, meta, cc)
    use = sass.resource_usage(compiled.asm["cubin"])
    spills = sass.ptxas_spills(compiled.asm["ptx"], cc, _cache_dir())
    instrs = sass.parse(sass.disassemble(compiled.asm["cubin"]))
    _ANALYSED[key] = {"regs": use["reg"], "shared": use["shared"], "local_bytes": use["local"],
                      "stack_bytes": use.get("stack", 0), "spill_bytes": spills["spill_stores"] + spills["spill_loads"],
                      "instrs": instrs}
    return _ANALYSED[key]


def slots_on(cc: int):
    """A `plan` slots_fn: resident programs of the probe launch as compiled for target cc."""
    from warmkern.triton import hw

    def slots(kernel, args, meta, device) -> int:
        a = analyse(kernel, args, meta, cc)
        return hw.BY_CC[cc].sms * max(1, hw.blocks_per_sm(hw.BY_CC[cc], a["regs"], a["shared"], meta["num_warps"]))

    return slots


def stats_plan(kind: str, v: Variant, b: int, cc: int):
    """The token_stats / denoise_step launch plan at LLaDA shapes (meta tensors) for target cc."""
    import torch

    g, vocab = LLADA["G"], LLADA["V"]
    logits = torch.empty(b, g, vocab, dtype=torch.bfloat16, device="meta")
    x = torch.empty(b, g, dtype=torch.int64, device="meta")
    kw = dict(mask_id=LLADA["mask_id"], temperature=TEMPERATURE if v.sampled else 0.0, score=v.score,
              suppress_ids=LLADA["suppress"], uncond_logits=logits if v.cfg else None, cfg_scale=1.5 if v.cfg else 0.0,
              seed=12345, step=7, slots_fn=slots_on(cc), cc=cc)
    if kind == "token_stats":
        return _mod("token_stats").plan(logits, x, **kw)
    rows = torch.empty(b, dtype=torch.int64, device="meta")
    rule = v.rule or {"k": rows}
    return _mod("denoise_step").plan(logits, x, torch.empty(b, g, dtype=torch.bool, device="meta"), lo=rows, hi=rows,
                                     **rule, **kw)


def _probe_counts(kind: str, p, cc: int) -> tuple[int, int, int]:
    """(epilogue instructions per program, serial tail instructions, tail barriers) along the probes'
    fall-through paths (see `probes`)."""
    import torch

    from warmkern.triton import probes, sass

    f32 = torch.empty(4096, dtype=torch.float32, device="meta")
    i64 = torch.empty(4096, dtype=torch.int64, device="meta")
    base = {k: p.meta[k] for k in ("num_warps", "enable_fp_fusion")}
    flags = {k: p.meta[k] for k in ("MODE", "SAMPLE")}
    fin = [f32, f32, i64, LLADA["mask_id"], i64, 0, 12345, 7]
    post = analyse(probes.post_loop_probe, fin, {**base, **flags, "BLOCK": p.meta["BLOCK"]}, cc)["instrs"]
    tail = []
    if p.cfg.nsplit > 1:
        mmeta = {**base, **flags, "MAX_SPLIT": p.meta["MAX_SPLIT"]}
        tail.append(analyse(probes.merge_probe, [*fin, p.cfg.nsplit], mmeta, cc)["instrs"])
    if kind == "denoise_step":
        bools = torch.empty(4096, dtype=torch.bool, device="meta")
        tail.append(analyse(probes.select_probe, [f32, i64, i64, bools, i64, i64, i64, i64, LLADA["G"],
                                                  LLADA["mask_id"], 0.9, 1.0, 0.3, 4],
                            {**base, "RULE": p.meta["RULE"], "REMASK": p.meta["REMASK"]}, cc)["instrs"])
    paths = [sass.straight_path(x) for x in tail]
    return len(sass.straight_path(post)), sum(len(x) for x in paths), sum(i.base == "BAR" for x in paths for i in x)


def vocab_row(kind: str, v: Variant, cc: int, b: int) -> dict:
    """One report row of a vocabulary kernel: resources, loop counts and the roofline prediction."""
    from warmkern.triton import config, hw, roofline, sass
    from warmkern.triton.stats_pass import tiles_per_iteration

    p = stats_plan(kind, v, b, cc)
    a = analyse(p.kernel, p.args, p.meta, cc)
    loop = sass.vocab_loop(a["instrs"])
    warps, block = p.meta["num_warps"], p.meta["BLOCK"]
    per_tile = len(loop.path) / tiles_per_iteration(v.sampled)
    wipe = per_tile * warps / block
    post, tail, bars = _probe_counts(kind, p, cc)
    positions = b * (LLADA["G"] if kind == "token_stats" else min(LLADA["hi"] - LLADA["lo"], config.window(LLADA["G"])))
    elements = positions * LLADA["V"]
    tensors = 2 if v.cfg else 1
    work = roofline.Work(elements=elements, bytes=elements * 2 * tensors, programs=p.grid[0],
                         working=positions * p.cfg.nsplit, inflight_bytes=2 * block * 2 * tensors)
    trips = (2 if p.cfg.nsplit > 1 else 0) + (2 if kind == "denoise_step" else 0)
    code = roofline.Code(a["regs"], a["shared"], warps, wipe, post, tail, bars, trips)
    pred = roofline.predict(hw.BY_CC[cc], work, code)
    row = {"kernel": kind, "variant": v.name, "arch": f"sm_{cc}", "B": b, "T": TEMPERATURE if v.sampled else 0.0,
           "score": v.score, "cfg": v.cfg, "num_warps": warps, "block_v": block, "grid": p.grid[0],
           "nsplit": p.cfg.nsplit, **{k: a[k] for k in ("regs", "shared", "local_bytes", "stack_bytes", "spill_bytes")},
           "loop_instr_per_tile": per_tile, "loop_bar": loop.count("BAR"), "loop_shfl": loop.count("SHFL"),
           "warp_instr_per_elem": round(wipe, 4), "post_instr": post, "tail_instr": tail, "gpu": hw.BY_CC[cc].name,
           **{k: (round(x, 3) if isinstance(x, float) else x) for k, x in pred.items()}}
    if cc == 90:
        h200 = roofline.predict(hw.H200, work, code)
        row.update(hbm_floor_us_h200=round(h200["hbm_floor_us"], 3), predicted_us_h200=round(h200["predicted_us"], 3),
                   predicted_over_floor_h200=round(h200["predicted_over_floor"], 3))
    return row


def _small_row(kind: str, variant: str, cc: int, b: int, kernel, args: list, meta: dict, grid: int) -> dict:
    """A row for a kernel without a vocabulary loop (warm_embed, the standalone select)."""
    from warmkern.triton import hw, sass

    a = analyse(kernel, args, meta, cc)
    return {"kernel": kind, "variant": variant, "arch": f"sm_{cc}", "B": b, "T": 0.0, "score": "-", "cfg": False,
            "num_warps": meta["num_warps"], "grid": grid, "nsplit": 1,
            **{k: a[k] for k in ("regs", "shared", "local_bytes", "stack_bytes", "spill_bytes")},
            "warp_instr_per_elem": None, "hbm_floor_us": None, "issue_bound_us": None, "predicted_us": None,
            "predicted_over_floor": None, "idle_cta_frac": 0.0, "tail_instr": len(sass.straight_path(a["instrs"])),
            "blocks_per_sm": hw.blocks_per_sm(hw.BY_CC[cc], a["regs"], a["shared"], meta["num_warps"])}


def other_rows(cc: int, b: int) -> list[dict]:
    """warm_embed (bf16, D = 4096) and the standalone select (top-k; factor + remask) at batch b."""
    import torch

    from warmkern.triton import config

    g, d, vocab = LLADA["G"], LLADA["D"], LLADA["V"]
    ecfg = config.embed_config(d, on_gpu=True)
    i64 = torch.empty(b, g, dtype=torch.int64, device="meta")
    alpha = torch.empty(b, dtype=torch.float32, device="meta")
    emb_args = [torch.empty(vocab, d, dtype=torch.bfloat16, device="meta"), d, i64, g, i64, g,
                torch.empty(b, g, dtype=torch.bool, device="meta"), g, alpha,
                torch.empty(b, g, d, dtype=torch.int16, device="meta"), g, d, LLADA["mask_id"], 1.0]
    emb_meta = dict(BF16_BITS=True, BLOCK_D=ecfg.block_d, num_warps=ecfg.num_warps, enable_fp_fusion=False)
    rows = [_small_row("warm_embed", "bf16", cc, b, _mod("warm_embed").warm_embed_kernel, emb_args, emb_meta,
                       b * g * -(-d // ecfg.block_d))]
    sel = _mod("select")
    f32 = torch.empty(b, g, dtype=torch.float32, device="meta")
    rows_t = torch.empty(b, dtype=torch.int64, device="meta")
    for name, kw in (("top-k", dict(k=rows_t)), ("factor + remask", dict(factor=1.0, remask_threshold=0.3))):
        tail, meta = sel.rule_args(g, kw.get("k"), None, kw.get("factor"), kw.get("remask_threshold"), None, rows_t)
        args = [g, f32, g, i64, g, f32, g, i64, g, torch.empty(b, g, dtype=torch.bool, device="meta"), g,
                torch.empty(2 * b * g, dtype=torch.int64, device="meta"), rows_t, rows_t, LLADA["mask_id"], rows_t,
                rows_t, *tail]
        rows.append(_small_row("select", name, cc, b, sel.select_kernel, args,
                               {**meta, "num_warps": config.select_warps(g)}, b))
    return rows


def all_rows(ccs=CCS, batches=BATCHES, kinds=("token_stats", "denoise_step"), variants=None) -> list[dict]:
    rows = []
    for cc in ccs:
        for b in batches:
            for kind in kinds:
                rows += [vocab_row(kind, v, cc, b) for v in (variants or VARIANTS)]
            rows += other_rows(cc, b)
    return rows


COLUMNS = [("kernel", "kernel"), ("variant", "variant"), ("arch", "arch"), ("B", "B"), ("grid", "grid"),
           ("nsplit", "split"), ("regs", "REG"), ("blocks_per_sm", "CTA/SM"), ("stack_bytes", "STACK"),
           ("spill_bytes", "spill"), ("warp_instr_per_elem", "w-instr/elem"), ("hbm_floor_us", "HBM us"),
           ("issue_bound_us", "issue us"), ("mem_bound_us", "mem us"), ("tail_instr", "tail instr"),
           ("predicted_us", "pred us"), ("predicted_over_floor", "pred/HBM"), ("idle_cta_frac", "idle CTAs")]


def table(rows: list[dict], columns=COLUMNS) -> str:
    def cell(v) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.0%}" if v <= 1 and v >= 0 and v != int(v) and False else f"{v:.3g}"
        return str(v)

    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join(lines)


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    p = argparse.ArgumentParser(prog=f"warmkern {argv[0] if argv else 'kernels-report'}",
                                description="compile the Triton kernels for sm_80/sm_90: resources, spills, roofline")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a markdown table")
    p.add_argument("--cc", type=int, action="append", choices=CCS, help="target(s); default both")
    p.add_argument("--batch", type=int, action="append", help=f"batch size(s); default {BATCHES}")
    p.add_argument("--kernel", action="append", choices=("token_stats", "denoise_step"),
                   help="vocabulary kernel(s); default both")
    p.add_argument("--variant", action="append", choices=[v.name for v in VARIANTS],
                   help="vocabulary kernel variant(s); default all")
    args = p.parse_args(argv[1:])
    if _interpreting():
        # @triton.jit returned interpreter functions at import: compile in a fresh process instead
        env = {k: val for k, val in os.environ.items() if k != "TRITON_INTERPRET"}
        cmd = [sys.executable, "-m", "warmkern.triton.report", *argv[1:]]
        return subprocess.run(cmd, env=env, check=False).returncode
    variants = [v for v in VARIANTS if not args.variant or v.name in args.variant]
    rows = all_rows(tuple(args.cc or CCS), tuple(args.batch or BATCHES),
                    tuple(args.kernel or ("token_stats", "denoise_step")), variants)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(f"LLaDA shapes: V={LLADA['V']} G={LLADA['G']} window [{LLADA['lo']}, {LLADA['hi']}), bf16 logits. "
              "Times are PREDICTED by warmkern.triton.roofline (constants: warmkern.triton.hw), not measured.\n")
        print(table(rows))
    return 1 if any(r["spill_bytes"] or r["local_bytes"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(["kernels-report", *sys.argv[1:]]))
