#!/usr/bin/env bash
# The sglang check of warmkern's dLLM plugin (README "Serving with sglang"). Never part of `make test`:
# sglang pins its own CUDA torch (~11 GB venv), so it lives in a separate virtual environment.
#
#   scripts/sglang_check.sh [engine-check options]     e.g. --tp 1,2   --no-fdfo   --workdir DIR
#
# 1. creates $SGLANG_VENV (default ~/.cache/warmkern/sglang-venv) with sglang==$SGLANG_VERSION and pytest,
#    and installs this checkout into it (editable, no C++ build, no dependency changes);
# 2. runs tests/test_integration_sglang.py there (the tests that need sglang run instead of skipping);
# 3. runs scripts/sglang_engine_check.py: a tiny random SDAR dLLM (dummy weights) generates through
#    `--dllm-algorithm Warmkern` at TP = 1 and TP = 2 and is compared with sglang's LowConfidence.
#    On a GPU host sglang runs as shipped; on a CPU-only host the engine check turns on the workarounds
#    documented in scripts/sglang_cpu_shim/ (check-only; warmkern itself contains none).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${SGLANG_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/warmkern/sglang-venv}
SGLANG_VERSION=${SGLANG_VERSION:-0.5.23}
PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating $VENV (sglang $SGLANG_VERSION; large download)"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q -U pip
    nice -n 19 "$VENV/bin/pip" install "sglang==$SGLANG_VERSION" pytest
fi
echo "== installing warmkern ($REPO) into $VENV"
WARMKERN_NO_EXT=1 "$VENV/bin/pip" install -q --no-deps --no-build-isolation -e "$REPO"
"$VENV/bin/python" -c "import sglang, torch; print('sglang', sglang.__version__, 'torch', torch.__version__, \
'cuda', torch.cuda.is_available())"

echo "== unit tests against the real sglang"
cd "$REPO"
"$VENV/bin/python" -m pytest -q -o addopts=-ra tests/test_integration_sglang.py

echo "== engine check"
exec "$VENV/bin/python" scripts/sglang_engine_check.py "$@"
