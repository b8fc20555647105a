"""The 'before' half of RESULTS.md's roofline table: today's `kernels-report` model applied to the kernels
of an older commit (default 3dc713b, before issue 13), compiled as their launches specialised them.

    python benchmarks/roofline_baseline.py [--commit 3dc713b] [--json]

The old tree is extracted to a temporary directory and driven in a subprocess (its `warmkern` package
shadows this one); the analysis (`aot`, `sass`, `roofline`, `hw`) is loaded from this checkout by path,
so both halves of the table use the same specialisation, SASS counting and model. Where the old kernels
lack a piece the new model reads, the conservative choice is made in the old kernels' favour: no
per-program epilogue beyond the loop, one iteration of the suppressed-id loop per tile, the old
standalone selection (a bitonic sort) as the tail without its split merge, idle programs cost nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
NEW = HERE / "warmkern" / "triton"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"warmkern.triton.{name}", NEW / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[f"warmkern.triton.{name}"] = mod
    spec.loader.exec_module(mod)
    return mod


def _old_args(fn, values: dict) -> tuple[list, dict]:
    """(positional args, constexpr meta) from an old kernel_specs value dict (pointers as meta tensors)."""
    import torch

    dtypes = {"bf16": torch.bfloat16, "fp32": torch.float32, "i64": torch.int64, "i32": torch.int32,
              "i1": torch.bool, "i16": torch.int16}
    args, meta = [], {}
    for param in fn.params:
        name, val = param.name, values[param.name]
        if param.is_constexpr:
            meta[name] = val
        elif isinstance(val, tuple):
            args.append(torch.empty(16, dtype=dtypes[val[1]], device="meta"))
        else:
            args.append(val)
    return args, meta


def _drive(ccs: tuple[int, ...], batches: tuple[int, ...]) -> list[dict]:
    """Runs inside the old tree: every (kernel, variant, arch, B) row of the old kernels."""
    import warmkern.triton  # noqa: F401  (the old package; new analysis modules are added beside it)

    hw = _load("hw")
    sass = _load("sass")
    aot = _load("aot")
    roofline = _load("roofline")
    from warmkern.triton import config, report  # the old ones
    from warmkern.triton.select import select_kernel
    from warmkern.triton.token_stats import MODES

    sel_specs = {name: (fn, vals, w) for _, name, fn, vals, w, _ in report.kernel_specs(90) if fn is select_kernel}
    variants = [(s, False, False) for s in ("prob", "margin", "entropy", "random")] + [
        (s, True, True) for s in ("prob", "margin", "entropy", "random")] + [("prob", True, False)]
    rows = []
    for cc in ccs:
        gpu = hw.BY_CC[cc]
        specs = {(k, v.rsplit(", split", 1)[0]): (fn, vals, w) for k, v, fn, vals, w, _ in report.kernel_specs(cc)}
        sel_fn, sel_vals, sel_w = sel_specs["factor + remask"]
        sel_args, sel_meta = _old_args(sel_fn, sel_vals)
        sel = aot.compile_launch(sel_fn, sel_args, {**sel_meta, "num_warps": sel_w, "enable_fp_fusion": False}, cc)
        tail = len(sass.straight_path(sass.parse(sass.disassemble(sel.asm["cubin"]))))
        for b in batches:
            for kind in ("token_stats", "denoise_step"):
                for score, sampled, cfg in variants:
                    base = "greedy prob" if not sampled else "T>0 margin+CFG"
                    base = f"{base}, top-k" if kind == "denoise_step" and not sampled else (
                        f"{base}, factor+remask" if kind == "denoise_step" else base)
                    fn, vals, warps = specs[(kind, base)]
                    positions = b * (256 if kind == "token_stats" else 32)
                    rows_for_split = b * 256 if kind == "token_stats" else config.window_rows(b, 256)
                    scfg = config.stats_config(rows_for_split, 126464, gpu.sms, on_gpu=True)
                    vals = {**vals, "sl_b": 256 * 126464, "su_b": 256 * 126464, "chunk": scfg.chunk,
                            "NSPLIT": scfg.nsplit, "HAS_CFG": cfg, "SAMPLE": sampled, "SCALE_T": sampled,
                            "MODE": MODES[score], "n_sup": 2, "n_dem": 0}
                    args, meta = _old_args(fn, vals)
                    c = aot.compile_launch(fn, args, {**meta, "num_warps": warps, "enable_fp_fusion": False}, cc)
                    use = sass.resource_usage(c.asm["cubin"])
                    spills = sass.ptxas_spills(c.asm["ptx"], cc)
                    loop = sass.vocab_loop(sass.parse(sass.disassemble(c.asm["cubin"])))
                    wipe = len(loop.path) * warps / vals["BLOCK"]
                    grid = (b * 256) * scfg.nsplit
                    tensors = 2 if cfg else 1
                    work = roofline.Work(positions * 126464, positions * 126464 * 2 * tensors, grid,
                                         positions * scfg.nsplit, vals["BLOCK"] * 2 * tensors)
                    code = roofline.Code(use["reg"], use["shared"], warps, wipe, 0,
                                         tail if kind == "denoise_step" else 0, 0,
                                         (2 if scfg.nsplit > 1 else 0) + (2 if kind == "denoise_step" else 0))
                    pred = roofline.predict(gpu, work, code)
                    rows.append({"kernel": kind, "variant": f"{score} {'T>0' if sampled else 'T=0'}"
                                 f"{' CFG' if cfg else ''}", "arch": f"sm_{cc}", "B": b, "grid": grid,
                                 "nsplit": scfg.nsplit, "regs": use["reg"], "local_bytes": use["local"],
                                 "stack_bytes": use.get("stack", 0),
                                 "spill_bytes": spills["spill_stores"] + spills["spill_loads"],
                                 "warp_instr_per_elem": round(wipe, 4), "loop_bar": loop.count("BAR"),
                                 "loop_shfl": loop.count("SHFL"), "tail_instr": code.tail_instr,
                                 **{k: round(v, 3) for k, v in pred.items()}})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--commit", default="3dc713b")
    p.add_argument("--json", action="store_true")
    p.add_argument("--cc", type=int, action="append")
    p.add_argument("--batch", type=int, action="append")
    p.add_argument("--driver", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    ccs, batches = tuple(args.cc or (90,)), tuple(args.batch or (1, 16, 64))
    if args.driver:
        print(json.dumps(_drive(ccs, batches)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(HERE), "archive", args.commit, "warmkern"], capture_output=True,
                                 check=True).stdout
        tar = Path(tmp) / "old.tar"
        tar.write_bytes(archive)
        with tarfile.open(tar) as t:
            t.extractall(tmp, filter="data")
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        env["WARMKERN_NO_EXT"] = "1"
        env["PYTHONPATH"] = tmp  # the old `warmkern`
        flags = [f"--cc={c}" for c in ccs] + [f"--batch={b}" for b in batches]
        cmd = [sys.executable, str(Path(__file__).resolve()), "--driver", tmp, *flags]
        out = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        if out.returncode:
            print(out.stderr[-4000:], file=sys.stderr)
            return out.returncode
        rows = json.loads(out.stdout.splitlines()[-1])
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    sys.path.insert(0, str(HERE))
    from warmkern.triton.report import table

    print(f"kernels of {args.commit}, today's model (PREDICTED, not measured)\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
