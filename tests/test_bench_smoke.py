"""`warmkern bench --quick` runs end to end and reports every contender; no time is asserted.

Also checks that the benchmark's eager baseline does the same job as the spec (same committed
tokens at T = 0), so the speed-ups in benchmarks/RESULTS.md compare like with like.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from warmkern import ops

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
ALWAYS_RUN = ("floor", "eager", "reference", "compiled")


def _load_bench_module(name: str):
    sys.path.insert(0, str(BENCH_DIR))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(BENCH_DIR))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    env = {**os.environ, "WARMKERN_BENCH_QUICK": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "warmkern.cli", "bench", "--quick", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def test_quick_bench_reports_every_contender(quick_run: Path) -> None:
    data = json.loads((quick_run / "bench.json").read_text())
    markdown = (quick_run / "bench.md").read_text()
    cases = _load_bench_module("wk_cases")
    measured: dict[str, set[str]] = {}
    for b in data["benchmarks"]:
        info = b["extra_info"]
        if "contender" not in info:  # another engineer's suite in benchmarks/
            continue
        assert b["stats"]["median"] > 0 and b["stats"]["rounds"] >= 1
        assert info["peak_bytes"] >= 0
        measured.setdefault(info["group"], set()).add(info["contender"])
    not_run = data["warmkern"]["not_run"]
    assert not [r for r in not_run if r["status"] == "failed"], not_run
    skipped = {(r["group"], r["contender"]) for r in not_run}
    assert {"denoise_step", "warm_embed"} <= {g.split()[0] for g in measured}
    for group, ran in measured.items():
        assert set(ALWAYS_RUN) <= ran, (group, ran)
        if group.startswith("denoise_step"):
            assert set(cases.WINDOW_ONLY) <= ran, (group, ran)
        expected = set(cases.CONTENDERS) - (set(cases.WINDOW_ONLY) if group.startswith("warm_embed") else set())
        for c in expected - ran:
            assert (group, c) in skipped, f"{c} neither measured nor reported skipped in {group}"
        section = markdown.split(f"## {group}\n", 1)[1].split("\n## ", 1)[0]
        for c in expected:
            assert f"| {c}" in section, f"{c} missing from the markdown table of {group}"
    assert "## Targets" in markdown and data["warmkern"]["machine"]["torch_threads"] >= 1


def test_eager_baseline_matches_reference_at_t0() -> None:
    eager = _load_bench_module("wk_eager")
    gen = torch.Generator().manual_seed(0)
    b, g, v, mask_id, lo, hi = 2, 48, 1001, 1000, 16, 32
    logits = (torch.randn(b, g, v, generator=gen) * 3).to(torch.bfloat16)
    logits[..., mask_id] = -30.0
    x = torch.randint(0, mask_id, (b, g), generator=gen)
    x[:, lo:] = mask_id
    for score in ("prob", "margin", "entropy"):
        for window_only in (False, True):
            want = x.clone()
            ops.denoise_step(logits, want, torch.zeros_like(x, dtype=torch.bool), mask_id=mask_id, lo=lo, hi=hi, k=3,
                             score=score, backend="reference")
            got = eager.eager_denoise_step(logits, x.clone(), mask_id=mask_id, lo=lo, hi=hi, k=3, temperature=0.0,
                                           score=score, window_only=window_only)
            assert torch.equal(got, want), (score, window_only)
            assert int((got != x).sum()) == 3 * b
