"""`warmkern demo | eval | bench | generate | kernels-report`: each subcommand lives in its own module."""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module, help). Modules are imported lazily so `warmkern --help` stays instant.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("warmkern.testbed.eval_cli", "warm vs cold on the shipped testbed, both dLLMs, block 32 and 8 (main job)"),
    "eval": ("warmkern.testbed.eval_cli", "every row of the table: --split test --n N --json PATH [--plot PATH]"),
    "bench": ("warmkern.bench", "pytest-benchmark suite of the kernels (--quick for a CI-sized run)"),
    "generate": ("warmkern.generate_cli", "generate from a local model directory"),
    "kernels-report": ("warmkern.triton.report", "compile the Triton kernels for sm_80/sm_90 and report resources"),
}


def _usage() -> str:
    rows = "\n".join(f"  {name:<16}{help_}" for name, (_, help_) in COMMANDS.items())
    return f"usage: warmkern COMMAND [ARGS]\n\ncommands:\n{rows}\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(), end="")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"warmkern: unknown command {name!r}\n\n{_usage()}", end="", file=sys.stderr)
        return 2
    mod = importlib.import_module(COMMANDS[name][0])
    return int(mod.main([name, *rest]) or 0)


if __name__ == "__main__":
    sys.exit(main())
