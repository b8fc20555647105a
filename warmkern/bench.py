"""`warmkern bench [--quick] [--out DIR]`: run the pytest-benchmark suite of benchmarks/ and tabulate it.

Writes DIR/bench.json (pytest-benchmark's JSON plus a "warmkern" section listing skipped or failed
contenders and the machine) and DIR/bench.md (one table per group: time, ratios against eager,
compiled and the read-once floor, and peak temporary memory). Timings are never asserted anywhere.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
FUSED = ("cpu", "triton")  # the contenders the targets are about


class _Outcomes:
    """pytest plugin: remembers which benchmarks were skipped or failed, and why."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report) -> None:
        if not (report.skipped or report.failed):
            return
        props = dict(report.user_properties)
        if not props.get("contender"):
            props = {"group": report.nodeid, "contender": report.nodeid.rsplit("[", 1)[-1].rstrip("]")}
        if report.skipped and isinstance(report.longrepr, tuple):
            why = str(report.longrepr[2]).removeprefix("Skipped: ")
        else:
            text = getattr(report, "longreprtext", "") or str(report.longrepr)
            why = "failed: " + (text.strip().splitlines() or ["?"])[-1][:300]
        self.rows.append({**props, "status": "skipped" if report.skipped else "failed", "reason": why})


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git(*args: str) -> str:
    try:
        proc = subprocess.run(["git", *args], capture_output=True, text=True, check=False, cwd=BENCH_DIR.parent)
        return proc.stdout.rstrip() if proc.returncode == 0 else "?"
    except OSError:
        return "?"


def _source() -> str:
    """Which kernels were measured: HEAD, and whether csrc/ or warmkern/ had uncommitted changes."""
    head = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "csrc", "warmkern")
    paths = [line[3:] for line in dirty.splitlines()] if dirty != "?" else []
    return f"git {head}" + (f" + uncommitted changes to {', '.join(paths)}" if paths else "")


def _machine() -> dict[str, Any]:
    import torch

    return {
        "cpu_model": _cpu_model(), "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "loadavg_1m_start": os.getloadavg()[0], "source": _source(),
    }


# ----------------------------------------------------------------------------- markdown
def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def _bytes(n: float | None) -> str:
    if n is None:
        return "—"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


def _ratio(a: float | None, b: float | None) -> str:
    return "—" if not a or not b else f"{a / b:.2f}×"


def _rows_by_group(data: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        group = info.get("group") or b.get("group") or b["name"]
        contender = info.get("contender") or b["name"]
        groups.setdefault(group, {})[contender] = {**info, "stats": b["stats"], "status": "ok"}
    for row in data.get("warmkern", {}).get("not_run", []):
        groups.setdefault(row.get("group", "?"), {}).setdefault(row["contender"], row)
    return groups


def _group_table(rows: dict[str, dict[str, Any]]) -> list[str]:
    best = {c: r["stats"]["min"] for c, r in rows.items() if r.get("status") == "ok"}
    lines = [
        "| contender | min ms | median ms | rounds | eager ÷ this | compiled ÷ this | this ÷ floor "
        "| min bytes / min time | peak temp memory |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c, r in rows.items():
        if r.get("status") != "ok":
            lines.append(f"| {c} | {r['status']}: {r.get('reason', '')} ||||||||")
            continue
        st = r["stats"]
        bw = f"{r['min_bytes'] / st['min'] / 1e9:.2f} GB/s" if r.get("min_bytes") else "—"
        dev = "" if r.get("device", "cpu") == "cpu" else f" ({r['device']})"
        rounds = f"{st['rounds']}{'*' if r.get('single_profiled_call') else ''}"
        lines.append(
            f"| {c}{dev} | {_ms(st['min'])} | {_ms(st['median'])} | {rounds} "
            f"| {_ratio(best.get('eager'), st['min'])} | {_ratio(best.get('compiled'), st['min'])} "
            f"| {_ratio(st['min'], best.get('floor'))} | {bw} | {_bytes(r.get('peak_bytes'))} |"
        )
    return lines


def _headline(groups: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """The issue's targets, one line per (group, fused contender that ran)."""
    lines = [
        "| group | fused | eager ÷ fused (target ≥6× T=0, ≥20× T=1) | eager-window ÷ fused | compiled ÷ fused "
        "(target ≥1.5×) | compiled-window ÷ fused | fused ÷ floor (target ≤2×) | fused peak mem | eager peak mem |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for g, rows in groups.items():
        best = {c: r["stats"]["min"] for c, r in rows.items() if r.get("status") == "ok"}
        for f in FUSED:
            if f in best:
                lines.append(
                    f"| {g} | {f} | {_ratio(best.get('eager'), best[f])} | {_ratio(best.get('eager-window'), best[f])} "
                    f"| {_ratio(best.get('compiled'), best[f])} | {_ratio(best.get('compiled-window'), best[f])} "
                    f"| {_ratio(best[f], best.get('floor'))} "
                    f"| {_bytes(rows[f].get('peak_bytes'))} | {_bytes(rows.get('eager', {}).get('peak_bytes'))} |"
                )
    return lines if len(lines) > 2 else ["(no fused contender ran: see the skipped rows below)"]


def render_markdown(data: dict[str, Any]) -> str:
    wk = data.get("warmkern", {})
    m = wk.get("machine", {})
    out = [
        f"# warmkern bench{' --quick' if wk.get('quick') else ''}",
        "",
        f"- command: `{wk.get('command', '?')}`",
        f"- date: {data.get('datetime', '?')}, source: {m.get('source', '?')}",
        f"- CPU: {m.get('cpu_model')} ({m.get('logical_cpus')} logical CPUs), torch threads: {m.get('torch_threads')}, "
        f"torch {m.get('torch')}, CUDA: {m.get('cuda') or 'none'}",
        f"- load average (1 min) at start / end: {m.get('loadavg_1m_start', 0):.2f} / {wk.get('loadavg_1m_end', 0):.2f}"
        " (above ~0.5 on this machine means other work shared the cores: timings are then pessimistic)",
        "- times are per call, cold caches (a 128 MiB buffer is written before every round); all ratios use the"
        " minimum over rounds (the round least disturbed by other work on the machine); peak temp memory is the"
        " torch CPU allocator's peak during one call (torch.profiler profile_memory), CUDA peak for triton;"
        " rounds marked * are a single call timed under the profiler (too slow to repeat in the budget)",
        "",
        "## Targets",
        "",
        *_headline(_rows_by_group(data)),
        "",
    ]
    for g, rows in _rows_by_group(data).items():
        out += [f"## {g}", "", *_group_table(rows), ""]
    return "\n".join(out)


# ----------------------------------------------------------------------------- CLI
def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="warmkern bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny shapes, few rounds: proves the suite runs (CI)")
    p.add_argument("--out", default="bench-out", help="directory for bench.json and bench.md")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's choice); 1 gives stable timings on a busy machine")
    p.add_argument("-k", dest="select", default=None, help="pytest -k expression to run a subset")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    """argv[0] is the command name (`bench`); returns pytest's exit code."""
    args = _parse(argv[1:])
    try:
        import pytest
        import pytest_benchmark  # noqa: F401
    except ImportError as err:
        print(f"warmkern bench: needs pytest and pytest-benchmark (the [test] extra): {err}", file=sys.stderr)
        return 2
    if not BENCH_DIR.is_dir():
        print(f"warmkern bench: no benchmarks/ directory at {BENCH_DIR} (run from a source checkout)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "bench.json", out / "bench.md"
    os.environ["WARMKERN_BENCH_QUICK"] = "1" if args.quick else "0"
    if args.threads is not None:
        import torch

        torch.set_num_threads(max(1, args.threads))  # same process as the suite: applies to every contender
    machine = _machine()
    outcomes = _Outcomes()
    pytest_args = [
        str(BENCH_DIR), "-q", "-p", "no:cacheprovider", "--benchmark-enable", f"--benchmark-json={json_path}",
        "--benchmark-sort=name", "-W", "ignore::DeprecationWarning",
    ]
    if args.select:
        pytest_args += ["-k", args.select]
    rc = int(pytest.main(pytest_args, plugins=[outcomes]))
    data: dict[str, Any] = json.loads(json_path.read_text()) if json_path.exists() else {"benchmarks": []}
    data["warmkern"] = {
        "quick": args.quick, "command": shlex.join(["warmkern", *argv]), "machine": machine,
        "loadavg_1m_end": os.getloadavg()[0], "not_run": outcomes.rows,
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    json_path.write_text(json.dumps(data, indent=2))
    md_path.write_text(render_markdown(data))
    print(f"\nwarmkern bench: wrote {json_path} and {md_path} (pytest exit code {rc})")
    return rc
