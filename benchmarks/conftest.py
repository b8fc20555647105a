"""Collect the bench_*.py suites (pytest's default pattern is test_*.py) and make the helpers importable."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:  # wk_*.py helpers, whatever pytest's import mode
    sys.path.insert(0, str(_HERE))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
