"""Argument handling shared by the `warmkern` subcommands: user errors are one line that names the flag, exit 2.

A wrong flag is the user's mistake, not the program's: it gets `warmkern CMD: error: --flag: expected ..., got ...`
(argparse's style and exit code) before anything slow runs, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path


class UsageError(Exception):
    """A bad command-line argument; the message starts with the flag it is about."""


class Parser(argparse.ArgumentParser):
    """argparse, but its own errors (unknown flag, bad type, missing value) raise UsageError instead of exiting."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(message)


def run(prog: str, body: Callable[[], int]) -> int:
    """Run a subcommand body; a UsageError becomes one line on stderr and exit code 2."""
    try:
        return body()
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2


def _at_least(low: float, convert: Callable[[str], float], what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} >= {low}, got {text!r}") from None
        if not (math.isfinite(value) and value >= low):
            raise argparse.ArgumentTypeError(f"expected {what} >= {low}, got {text}")
        return value

    parse.__name__ = f"{what} >= {low}"
    return parse


def int_at_least(low: int) -> Callable[[str], int]:
    """argparse type: an int >= low (argparse prefixes the flag: "argument --n: expected ...")."""
    return _at_least(low, int, "an int")  # type: ignore[return-value]


def finite_at_least(low: float) -> Callable[[str], float]:
    """argparse type: a finite float >= low."""
    return _at_least(low, float, "a finite number")


def check_output_path(flag: str, path: Path) -> None:
    """Fail now, not after an hour of computing, if `path` cannot be written: not a directory, and its
    directory (created if missing) accepts a new file."""
    if path.is_dir():
        raise UsageError(f"{flag}: expected a file path, got the directory {str(path)!r}")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".warmkern-write-check-"):
            pass
    except OSError as e:
        raise UsageError(f"{flag}: cannot write {str(path)!r} ({e.strerror or e})") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag}: cannot write {str(path)!r} (permission denied)")
