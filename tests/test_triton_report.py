"""kernels-report (issue 13, items 5-6): exact launch specialisations, 0 spills (LOCAL, STACK, ptxas), the
roofline fields, and the SASS / model arithmetic behind them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")

FIELDS = {"kernel", "variant", "arch", "B", "T", "score", "regs", "local_bytes", "stack_bytes", "spill_bytes",
          "warp_instr_per_elem", "hbm_floor_us", "issue_bound_us", "predicted_us", "predicted_over_floor",
          "idle_cta_frac", "tail_instr"}
# every distinct specialisation kind: greedy, the post-loop Philox of random scores, T > 0 with CFG; B = 1
# compiles the split kernels, B = 16 the unsplit ones (B = 64 builds the same as 16). The full cover (all
# modes, B in {1, 16, 64}) is `warmkern kernels-report`; WARMKERN_FULL_REPORT=1 runs it here.
SUBSET = ["--batch", "1", "--batch", "16", "--variant", "prob T=0", "--variant", "random T=0", "--variant",
          "entropy T>0 CFG"]


def test_report_compiles_every_kernel_for_both_targets_without_spills():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # real compiles, not the interpreter
    args = [] if os.environ.get("WARMKERN_FULL_REPORT") else SUBSET
    proc = subprocess.run([sys.executable, "-m", "warmkern.triton.report", "--json", *args], capture_output=True,
                          text=True, env=env, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    rows = json.loads(proc.stdout)
    assert {r["kernel"] for r in rows} == {"warm_embed", "token_stats", "select", "denoise_step"}
    assert {r["arch"] for r in rows} == {"sm_80", "sm_90"}
    for r in rows:
        assert FIELDS <= set(r), FIELDS - set(r)
        where = f"{r['kernel']} ({r['variant']}, {r['arch']}, B={r['B']})"
        assert r["local_bytes"] == r["stack_bytes"] == r["spill_bytes"] == 0, f"{where} spills: {r}"
        assert 0 < r["regs"] <= 255, where
        if r["kernel"] in ("token_stats", "denoise_step"):
            assert r["idle_cta_frac"] == 0 and r["warp_instr_per_elem"] > 0, where
            assert r["predicted_us"] >= r["hbm_floor_us"] > 0 and r["loop_bar"] == 0, where
    split = [r for r in rows if r["kernel"] == "denoise_step" and r["B"] == 1]
    assert split and all(r["nsplit"] > 1 for r in split)


SPECIALISE = """
from warmkern.triton import aot, report
p = report.stats_plan("denoise_step", report.VARIANTS[0], 16, 90)
src, options = aot.specialise(p.kernel, p.args, p.meta, 90)
print(src.signature["G"], src.signature["V"], src.signature["nsplit"], options["num_warps"] == p.meta["num_warps"])
"""


def test_report_compiles_runtime_ints_as_runtime():
    """G and V are runtime ints of a launch, so the report must not make them constexprs (it did); nsplit == 1
    at B = 16 is specialised by Triton itself, as in a real launch."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", SPECIALISE], capture_output=True, text=True, env=env, timeout=900,
                         check=True).stdout.split()
    assert out == ["i32", "i32", "constexpr", "True"]


SASS = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0010*/                   LDG.E.128 R4, desc[UR4][R2.64] ;
        /*0020*/                   FADD R5, R5, R6 ;
        /*0030*/               @P0 BRA 0x60 ;
        /*0040*/                   FMUL R5, R5, R5 ;
        /*0050*/                   FMUL R5, R5, R5 ;
        /*0060*/                   FMNMX R7, R5, R7, !PT ;
        /*0070*/               @P1 BRA 0x10 ;
        /*0080*/              @!P2 BRA 0xb0 ;
        /*0090*/                   STG.E [R2.64], R7 ;
        /*00a0*/                   EXIT ;
        /*00b0*/                   BRA 0xb0 ;
"""


def test_sass_loop_and_paths():
    from warmkern.triton import sass

    instrs = sass.parse(SASS)
    loop = sass.vocab_loop(instrs)
    assert (loop.head, loop.tail) == (0x10, 0x70) and len(loop.body) == 7
    assert [i.op for i in loop.path] == ["LDG.E.128", "FADD", "BRA", "FMNMX", "BRA"]  # the rare block skipped
    assert [i.op for i in sass.straight_path(instrs)][-2:] == ["STG.E", "EXIT"]


def test_roofline_arithmetic():
    from warmkern.triton import hw, roofline

    assert hw.blocks_per_sm(hw.H100, 80, 1024, 8) == 3 and hw.blocks_per_sm(hw.H100, 88, 1024, 8) == 2
    work = roofline.Work(elements=132 * 1000, bytes=132 * 2000, programs=132, working=132, inflight_bytes=1 << 20)
    code = roofline.Code(regs=64, shared=0, num_warps=8, wipe=0.5, post_instr=0, tail_instr=100, tail_barriers=0,
                         tail_round_trips=1)
    p = roofline.predict(hw.H100, work, code)
    assert p["hbm_floor_us"] == pytest.approx(132 * 2000 / 3.35e12 * 1e6)
    assert p["issue_bound_us"] == pytest.approx(1000 * 0.5 / (4 * 1.755e9) * 1e6)
    assert p["tail_us"] == pytest.approx((100 * hw.DEP_ISSUE_CYCLES + hw.L2_LATENCY_CYCLES) / 1.755e9 * 1e6)
    assert p["predicted_us"] == pytest.approx(hw.LAUNCH_US + max(p["issue_bound_us"], p["mem_bound_us"]) + p["tail_us"])
    assert p["idle_cta_frac"] == 0
