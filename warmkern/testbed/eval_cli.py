"""`warmkern demo` / `warmkern eval`: cold vs warm-started decoding of the shipped dLLMs, one table per setting.

Both dLLMs (calibrated = phase 2, shipped; uncalibrated = phase 1, the stand-in for an off-the-shelf model),
block_length G (one block) and 8 (semi-autoregressive, 4 blocks). Every row decodes the same problems with
the same seed; only the method changes. Hyper-parameters come from `assets/hparams.json` (one entry per dLLM),
written by `warmkern eval --split validation --tune --hparams-out PATH` (validation only); test is for reporting.
`demo` runs the rows that tell the story (`--methods` to change); `eval` runs them all.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import torch

from warmkern.cli_args import Parser, UsageError, check_output_path, int_at_least, run
from warmkern.testbed import checkpoints, merge, task
from warmkern.testbed import tune as tuning
from warmkern.testbed.checkpoints import GEN_LENGTH
from warmkern.testbed.methods import DEMO_ROW_KEYS, HPARAMS_PATH, ROW_KEYS, load_hparams, methods_from_hparams
from warmkern.testbed.report import format_json_rows, format_table, plot, rows_to_json
from warmkern.testbed.runner import Setting, evaluate

DLLM_CHOICES = (*checkpoints.DLLM_DIRS, "both")
BLOCK_LENGTHS = (GEN_LENGTH, 8)


def _missing_assets_message(cmd: str, missing: list[str]) -> str:
    return (
        f"warmkern {cmd}: the testbed assets are missing:\n  " + "\n  ".join(missing) + "\n"
        "Train them with `python -m warmkern.testbed.train --model dllm` and `--model drafter` "
        "(they are committed in the repository; a partial checkout or an sdist without package data lacks them)."
    )


def _parser(cmd: str) -> Parser:
    ap = Parser(prog=f"warmkern {cmd}", description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("validation", "test"), default="test")
    ap.add_argument("--n", type=int_at_least(1), default=200 if cmd == "demo" else 1000, help="problems")
    ap.add_argument("--batch", type=int_at_least(1), default=100)
    ap.add_argument("--seed", type=int_at_least(0), default=0)
    ap.add_argument("--dllm", choices=DLLM_CHOICES, default="both")
    ap.add_argument("--block-lengths", type=int_at_least(1), nargs="+", default=None,
                    help=f"default: {' '.join(map(str, BLOCK_LENGTHS))} (each must divide G = {GEN_LENGTH})")
    ap.add_argument("--methods", default=None, help=f"comma-separated rows of {','.join(ROW_KEYS)} "
                    f"(default: demo {','.join(DEMO_ROW_KEYS)}; eval all)")
    ap.add_argument("--alone-n", type=int_at_least(0), default=10 if cmd == "demo" else 20,
                    help="problems decoded one at a time (batch 1) for the per-request wall time")
    ap.add_argument("--json", type=Path, default=None, help="write the rows (or, with --tune, the grid) here")
    ap.add_argument("--merge", action="store_true",
                    help="with --json: add this run's rows to the table saved there (same split, n, seed, batch), "
                    "replacing the rows it re-measured and keeping the others")
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--threads", type=int_at_least(1), default=1,
                    help="torch CPU threads (default 1: the testbed's models are tiny; on a shared 2-core machine the "
                    "demo took 2.5 min with 1 thread and 7.6 min with 2, whose OpenMP workers spin-wait)")
    ap.add_argument("--hparams", type=Path, default=HPARAMS_PATH, help="hyper-parameters to read")
    ap.add_argument("--tune", action="store_true", help="grid-search hyper-parameters (validation split only)")
    ap.add_argument("--hparams-out", type=Path, default=None,
                    help="with --tune: the file to write (its entries for other dLLMs are kept)")
    return ap


def _methods_arg(text: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if text is None:
        return default
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in keys if k not in ROW_KEYS]
    if bad or not keys:
        raise UsageError(f"--methods: expected comma-separated names from {','.join(ROW_KEYS)}, got {text!r}")
    return keys


def _check(args: argparse.Namespace) -> None:
    """Flag combinations and output paths, before anything is computed."""
    if args.seed >= 2**31:  # the high word of every problem's seed (runner.problem_seeds)
        raise UsageError(f"--seed: expected < 2**31 (problem i decodes with seed (seed << 32) + i), got {args.seed}")
    if args.tune:
        if args.split != "validation":
            raise UsageError("--tune: tuning is only allowed on --split validation")
        if args.hparams_out is None:
            raise UsageError("--tune: needs --hparams-out PATH (the packaged hyper-parameters are never overwritten "
                             "implicitly; pass their path to replace them)")
        for flag, given in (("--plot", args.plot), ("--block-lengths", args.block_lengths)):
            if given is not None:
                raise UsageError(f"{flag}: not used with --tune (tuning runs at block_length G = {GEN_LENGTH})")
        check_output_path("--hparams-out", args.hparams_out)
    elif args.hparams_out is not None:
        raise UsageError("--hparams-out: only used with --tune")
    if args.merge:
        if args.tune or args.json is None:
            raise UsageError("--merge: needs --json PATH (the table to add rows to) and no --tune")
        why = merge.mismatch(args.json, _meta(args))
        if why:
            raise UsageError(f"--merge: {why}")
    for b in args.block_lengths or ():
        if GEN_LENGTH % b:
            raise UsageError(f"--block-lengths: expected divisors of G = {GEN_LENGTH}, got {b}")
    if not args.tune and args.hparams != HPARAMS_PATH and not args.hparams.is_file():
        raise UsageError(f"--hparams: no such file {str(args.hparams)!r}")
    for flag, path in (("--json", args.json), ("--plot", args.plot)):
        if path is not None:
            check_output_path(flag, path)


def _meta(args: argparse.Namespace) -> dict:
    return {"split": args.split, "n": args.n, "seed": args.seed, "batch": args.batch, "gen_length": GEN_LENGTH}


def _merge_write(path: Path, dllm: str, value: dict, merge_key: str | None = None) -> None:
    """Write `value` as the `dllm` entry of the JSON object at `path`, keeping the other dLLMs' entries (and,
    with `merge_key`, the sub-entries of that key that this run did not redo, e.g. other rows' tuning grids)."""
    stored = json.loads(path.read_text()) if path.exists() else {}
    old = stored.get(dllm, {})
    if merge_key and merge_key in old:
        value = value | {merge_key: old[merge_key] | value.get(merge_key, {})}
    path.write_text(json.dumps(stored | {dllm: value}, indent=1) + "\n")


def _tune(args: argparse.Namespace, dllms: tuple[str, ...]) -> int:
    keys = tuple(k for k in _methods_arg(args.methods, tuning.WARM_KEYS) if k in tuning.WARM_KEYS)
    probs = task.problems("validation", args.n)
    for d in dllms:
        previous = load_hparams(args.hparams, d)[0] if args.hparams.is_file() else None
        hp, log = tuning.tune(d, probs, batch=args.batch, seed=args.seed, keys=keys, previous=previous)
        if args.json:
            _merge_write(args.json, d, log, merge_key="rows")
        _merge_write(args.hparams_out, d, hp)
    return 0


def _write_json(args: argparse.Namespace, rows: list, hps: dict, alone_n: int, keys: tuple[str, ...]) -> list[dict]:
    """Write the table (merged into the saved one with --merge) and return its rows. Each run is recorded in
    `runs`, with the backends that ran it, since merged tables hold rows of several runs."""
    blocks = list(args.block_lengths or BLOCK_LENGTHS)
    run_info = {"date": datetime.date.today().isoformat(), "dllms": list(hps), "methods": list(keys),
                "block_lengths": blocks, "threads": args.threads,
                "backends": sorted({r.backend for r in rows if r.backend})}
    table = _meta(args) | {
        "alone_n": alone_n, "block_lengths": blocks, "runs": [run_info],
        "hparams": {d: hp for d, (hp, _) in hps.items()}, "hparams_tuned": {d: t for d, (_, t) in hps.items()},
        "rows": rows_to_json(rows)}
    if args.merge and args.json.exists():
        table = merge.merge(json.loads(args.json.read_text()), table)
        print(f"\nmerged table ({args.json}):\n" + format_json_rows(table["rows"]))
    args.json.write_text(json.dumps(table, indent=1))  # before the plot: a plotting failure must not lose it
    return table["rows"]


def _eval(cmd: str, args: argparse.Namespace, dllms: tuple[str, ...]) -> int:
    keys = _methods_arg(args.methods, DEMO_ROW_KEYS if cmd == "demo" else ROW_KEYS)
    blocks = tuple(args.block_lengths or BLOCK_LENGTHS)
    hps = {d: load_hparams(args.hparams, d) for d in dllms}
    methods = {d: methods_from_hparams(hp, keys) for d, (hp, _) in hps.items()}
    setting = Setting(task.problems(args.split, args.n), args.batch, GEN_LENGTH, args.seed, min(args.alone_n, args.n))
    rows = evaluate(setting, methods, blocks, desc=cmd)
    source = ", ".join(f"{d}: {'validation tuning' if tuned else 'defaults (never tuned)'}"
                       for d, (_, tuned) in hps.items())
    header = (f"warmkern {cmd}: {args.n} {args.split} problems, G={GEN_LENGTH}, block lengths "
              f"{'/'.join(map(str, blocks))}, seed {args.seed}, batch {args.batch} (alone: first {setting.latency_n} "
              f"at batch 1); hyper-parameters from {source}")
    print(header)
    print(format_table(rows))
    summary = _write_json(args, rows, hps, setting.latency_n, keys) if args.json else rows_to_json(rows)
    if args.plot:
        plot(summary, args.plot, title=header)
    return 0


def _main(cmd: str, rest: list[str]) -> int:
    args = _parser(cmd).parse_args(rest)
    _check(args)
    dllms = tuple(checkpoints.DLLM_DIRS) if args.dllm == "both" else (args.dllm,)
    missing = checkpoints.assets_missing(dllms)
    if missing:
        print(_missing_assets_message(cmd, missing), file=sys.stderr)
        return 1
    before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _tune(args, dllms) if args.tune else _eval(cmd, args, dllms)
    finally:  # in-process callers (tests, notebooks) keep their own setting
        torch.set_num_threads(before)


def main(argv: list[str]) -> int:
    """Entry point; argv[0] is the command name ("demo" or "eval", as `warmkern.cli` passes it)."""
    cmd = argv[0] if argv else "demo"
    return run(f"warmkern {cmd}", lambda: _main(cmd, list(argv[1:])))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["demo"]))
