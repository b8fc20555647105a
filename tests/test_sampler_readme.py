"""The README's generate quick-start (the python block after `<!-- quickstart -->`) runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def quickstart() -> str | None:
    text = README.read_text() if README.exists() else ""
    m = re.search(r"<!-- quickstart -->\s*```python\n(.*?)```", text, flags=re.S)
    return m.group(1) if m else None


def test_readme_quickstart_runs(capsys):
    code = quickstart()
    if code is None:
        pytest.skip("README has no python block after <!-- quickstart --> yet")
    assert "generate(" in code
    ns: dict = {}
    exec(compile(code, str(README), "exec"), ns)
    stats = [v for v in ns.values() if type(v).__name__ == "GenerationStats"]
    assert stats and all(s.nfe >= 0 for s in stats)
