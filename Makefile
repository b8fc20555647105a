# Two entry points: `make demo` (the main job) and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
TESTS ?= tests

.PHONY: install demo test lint bench bench-quick kernels-report schemas clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py $(wildcard csrc/*.cpp csrc/*.h)
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q torch==2.13.0
	$(VPY) -m pip install -q triton
	$(VPY) -m pip install -q --no-build-isolation -e '.[test,plot]'
	touch $(STAMP)

demo: install
	$(VPY) -m warmkern.cli demo

lint: install
	$(VPY) -m ruff check .

test: install lint
	TRITON_INTERPRET=1 $(VPY) -m pytest -q $(TESTS)

bench: install
	$(VPY) -m warmkern.cli bench

bench-quick: install
	$(VPY) -m warmkern.cli bench --quick

kernels-report: install
	$(VPY) -m warmkern.cli kernels-report

# csrc/op_schemas.h is generated from warmkern/schema.py (tests/test_schema.py checks it is current)
schemas:
	$(PY) -c 'import importlib.util as u, sys; s = u.spec_from_file_location("s", "warmkern/schema.py"); \
	m = u.module_from_spec(s); sys.modules["s"] = m; s.loader.exec_module(m); sys.stdout.write(m.cpp_header())' \
	> csrc/op_schemas.h

clean:
	rm -rf build *.egg-info warmkern/*.so .pytest_cache
