"""The op tables of warmkern.schema are the one spelling of every op argument: everything agrees with them."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch

from warmkern import backends, cpu, ops, reference, schema
from warmkern import triton as wt
from warmkern.schema import REQUIRED

ROOT = Path(__file__).resolve().parents[1]
OPS = list(schema.OPS.values())
ALL_OPS = list(schema.ALL_OPS.values())


def _params(fn) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(fn).parameters)


def test_generated_cpp_header_is_current():
    header = (ROOT / "csrc" / "op_schemas.h").read_text()
    assert header == schema.cpp_header(), "csrc/op_schemas.h is stale: run `make schemas`"


@pytest.mark.skipif(cpu.unavailable_reason() is not None, reason=str(cpu.unavailable_reason()))
@pytest.mark.parametrize("op", [o for o in ALL_OPS if "cpu" in o.backends], ids=lambda o: o.name)
def test_cpp_registration_has_the_schema(op):
    registered = getattr(torch.ops.warmkern_cpu, op.name).default._schema
    assert registered == torch._C.parse_schema("warmkern_cpu::" + schema.torch_schema(op, with_backend=False))


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda o: o.name)
def test_custom_op_has_the_schema_plus_backend(op):
    registered = getattr(torch.ops.warmkern, op.name).default._schema
    assert registered == torch._C.parse_schema("warmkern::" + schema.torch_schema(op, with_backend=True))


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("impl", [reference, wt], ids=["reference", "triton"])
def test_backend_functions_take_exactly_the_schema_arguments(op, impl):
    """Same names, positional prefix and defaults as the table, so no backend can drop or rename an argument.

    (The cpu backend's functions are built from the table; its C++ side is checked by the schema test above.)
    """
    _check_backend_function(op, impl)


@pytest.mark.parametrize("op", list(schema.PARTIAL_OPS.values()), ids=lambda o: o.name)
def test_shard_ops_backends_take_exactly_the_schema_arguments(op):
    """The vocabulary-shard ops (issue 16): every backend the table lists implements the table's signature."""
    assert "reference" in op.backends
    for name in op.backends:
        if name != "cpu":  # the cpu backend's functions are built from the table
            _check_backend_function(op, backends.module(name))


def _check_backend_function(op, impl):
    params = _params(getattr(impl, op.name))
    assert set(params) == set(op.names), f"{op.name}: {sorted(set(params) ^ set(op.names))}"
    for a in op.args:
        want = inspect.Parameter.empty if a.default is REQUIRED else a.default
        assert params[a.name].default == want, f"{op.name}({a.name}=...)"
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD if a.positional else inspect.Parameter.KEYWORD_ONLY
        assert params[a.name].kind == kind, f"{op.name}: {a.name} positional={a.positional}"


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda o: o.name)
def test_public_op_signature_is_the_table(op):
    params = _params(getattr(ops, op.name))
    public = [a for a in op.args if a.public]
    assert list(params) == [*(a.name for a in public if a.positional), *(a.name for a in public if not a.positional),
                            "backend", "check_values"]
    for a in public:
        assert params[a.name].default == (inspect.Parameter.empty if a.default is REQUIRED else a.default)
