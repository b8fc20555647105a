"""The `cpu` backend: the fused C++ kernels of csrc/ (torch.ops.warmkern_cpu), called by the schema.

The warmkern_cpu ops have the schemas of `warmkern.schema` without the backend argument
(csrc/op_schemas.h is generated from it), so the functions here and their fake implementations are
derived from the same tables: each takes the reference's arguments (positionally in table order or by
name, defaults from the table) and passes them on in schema order.

The kernels pick AVX-512, AVX2 or baseline code at run time from the CPU (the wheel is built for
generic x86-64/aarch64); WARMKERN_CPU_ISA=base|avx2|avx512 caps the choice (read on every call),
which the tests use to check every variant against the reference. Unset or empty means the best variant;
any other value is a ValueError naming WARMKERN_CPU_ISA when a kernel is called (never a silent fallback).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from warmkern import schema
from warmkern.schema import REQUIRED, OpSchema

_IMPORT_ERROR: str | None = None
try:
    from warmkern import _C  # noqa: F401  (registers torch.ops.warmkern_cpu)
except Exception as err:  # pragma: no cover - depends on the build
    _IMPORT_ERROR = f"{type(err).__name__}: {err}"


CPU_OPS = {name: op for name, op in schema.ALL_OPS.items() if "cpu" in op.backends}  # the ops with a C++ kernel


def _registered() -> bool:
    try:
        return all(hasattr(torch.ops.warmkern_cpu, name) for name in CPU_OPS)
    except (AttributeError, RuntimeError):  # pragma: no cover - namespace missing
        return False


def unavailable_reason() -> str | None:
    """None when the extension is built and its kernels are registered."""
    if _IMPORT_ERROR is not None:
        return (
            "the C++ extension warmkern._C is not built (installed with WARMKERN_NO_EXT=1, or the build "
            f"failed: {_IMPORT_ERROR}); rebuild with `pip install --no-build-isolation -e .`"
        )
    if not _registered():
        return "warmkern._C is stale (no warmkern_cpu kernels); rebuild with `pip install --no-build-isolation -e .`"
    return None


def _fake(op: OpSchema) -> Callable[..., Any]:
    from warmkern.ops import fake_outputs

    return lambda *args: fake_outputs(op, args)


def _bind(op: OpSchema, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """Schema-ordered values from a reference-style call (positional prefix, keywords, table defaults)."""
    values = dict(zip([a.name for a in op.args if a.positional], args))  # the public signature's positionals
    values.update(kwargs)
    missing = [a.name for a in op.args if a.name not in values and a.default is REQUIRED]
    if missing:
        raise TypeError(f"{op.name}: missing required argument(s) {missing}")
    out = []
    for a in op.args:
        v = values.get(a.name, a.default)
        out.append(list(v) if a.type == "int[]" else v)
    return out


def _kernel(op: OpSchema) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        values = _bind(op, args, kwargs)
        res = getattr(torch.ops.warmkern_cpu, op.name)(*values)
        return values[op.names.index(op.returns_arg)] if op.returns_arg is not None else res

    call.__name__ = op.name
    call.__doc__ = f"C++ {op.name} (reference signature): {op.doc}"
    return call


if _IMPORT_ERROR is None and _registered():
    for _op in CPU_OPS.values():
        torch.library.register_fake(f"warmkern_cpu::{_op.name}")(_fake(_op))

warm_embed = _kernel(schema.WARM_EMBED)
token_stats = _kernel(schema.TOKEN_STATS)
select = _kernel(schema.SELECT)
denoise_step = _kernel(schema.DENOISE_STEP)
token_stats_partial = _kernel(schema.TOKEN_STATS_PARTIAL)
