"""Public ops: validate once, pick a backend, call it through a `torch.library` custom op.

Everything here is derived from the op tables of `warmkern.schema`: the public functions (their
signatures and docstrings), the `warmkern::<name>` schemas and fake (meta) implementations, and the
validation (`validation.validate`). The backend is a plain string argument of the op, resolved in
Python before the call (so `auto` is decided outside the graph).

Under torch.compile the custom op is what gets traced; in eager its implementation is called directly
(same code, without torch.library's per-call schema handling: ~110 us for the 21-argument
denoise_step, a fifth of the whole fused C++ step at LLaDA shapes with B = 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from warmkern import backends, schema
from warmkern import validation as V
from warmkern.schema import REQUIRED, OpSchema

_LIB = torch.library.Library("warmkern", "DEF")  # the op namespace lives as long as the module


def symbol_sizes(op: OpSchema, values: Sequence[Any]) -> dict[str, int]:
    """Sizes of the shape symbols (B, G, V, ...) bound by the op's tensor arguments."""
    dims: dict[str, int] = {}
    for arg, value in zip(op.args, values):
        if arg.shape and isinstance(value, torch.Tensor):
            for sym, n in zip(arg.shape, value.shape):
                dims.setdefault(sym, n)
        if arg.opt("binds") is not None and isinstance(value, int):
            dims.setdefault(arg.opt("binds"), value)  # an int argument that sizes an output (top_k lists)
    return dims


def fake_outputs(op: OpSchema, values: Sequence[Any]) -> Any:
    """Empty outputs of the right dtype/shape on the inputs' device: the op's fake implementation."""
    dims = symbol_sizes(op, values)
    like = next(v for v in values if isinstance(v, torch.Tensor))
    outs = tuple(like.new_empty([s if isinstance(s, int) else dims[s] for s in o.shape], dtype=getattr(torch, o.dtype))
                 for o in op.outputs)
    return outs if outs else None


def _implementation(op: OpSchema) -> Callable[..., Any]:
    """The op's implementation: schema-ordered arguments + backend name -> the backend's function."""
    names = op.names
    lists = tuple(a.name for a in op.args if a.type == "int[]")

    def impl(*args: Any) -> Any:
        kw = dict(zip(names, args))
        for n in lists:
            kw[n] = tuple(kw[n])  # torch.library hands lists; backends cache on hashable tuples
        res = getattr(backends.module(args[-1]), op.name)(**kw)
        return res if op.outputs else None

    return impl


def _register(op: OpSchema) -> Callable[..., Any]:
    _LIB.define(schema.torch_schema(op, with_backend=True))
    impl = _implementation(op)
    _LIB.impl(op.name, impl, "CompositeExplicitAutograd")
    torch.library.register_fake(f"warmkern::{op.name}", lib=_LIB)(lambda *args: fake_outputs(op, args))
    return impl


_IMPLS = {name: _register(op) for name, op in schema.ALL_OPS.items()}


def _run(op: OpSchema, values: dict[str, Any], backend: str | None, check_values: bool) -> Any:
    """Validate, resolve the backend, call: the body of every public op."""
    args, device = V.validate(op, values, check_values)
    flat = [args[n] for n in op.names]
    flat.append(backends.resolve_for(op.name, op.backends, backend, device))
    if torch.compiler.is_compiling():
        res = getattr(torch.ops.warmkern, op.name)(*flat)
    else:
        res = _IMPLS[op.name](*flat)
    return args[op.returns_arg] if op.returns_arg is not None else res


def _public(op: OpSchema) -> Callable[..., Any]:
    """Build `ops.<name>` from its table: a real signature (help() and IDEs show it), one body."""
    public = [a for a in op.args if a.public]
    pos = [a.name for a in public if a.positional]
    kw = [a.name if a.default is REQUIRED else f"{a.name}=_defaults[{a.name!r}]" for a in public if not a.positional]
    params = ", ".join([*pos, "*", *kw, "backend=None", "check_values=True"])
    values = ", ".join(f"{a.name!r}: {a.name if a.public else None}" for a in op.args)
    src = f"def {op.name}({params}):\n    return _run(_op, {{{values}}}, backend, check_values)\n"
    namespace: dict[str, Any] = {"_run": _run, "_op": op, "_defaults": {a.name: a.default for a in op.args}}
    exec(src, namespace)  # the dataclasses way: a plain function with the table's signature
    fn = namespace[op.name]
    fn.__annotations__ = {a.name: a.annotation for a in public}
    fn.__annotations__.update(backend="str | None", check_values="bool")
    fn.__doc__ = _docstring(op)
    fn.__module__ = __name__
    return fn


def _docstring(op: OpSchema) -> str:
    lines = [op.doc, "", "Arguments:"]
    lines += [f"    {a.name}: {a.doc}" for a in op.args if a.public]
    lines += [
        "    backend: 'auto' | 'reference' | 'triton' | 'cpu' (default $WARMKERN_BACKEND or 'auto')",
        "    check_values: validate tensor values too (a host sync); pass False inside a loop after the first call",
    ]
    return "\n".join(lines)


warm_embed = _public(schema.WARM_EMBED)
token_stats = _public(schema.TOKEN_STATS)
select = _public(schema.SELECT)
denoise_step = _public(schema.DENOISE_STEP)
# vocabulary shards (issue 16): the partial-state passes; merge/finalize live in warmkern.partial
token_stats_partial = _public(schema.TOKEN_STATS_PARTIAL)
truncation_partial = _public(schema.TRUNCATION_PARTIAL)
nucleus_partial = _public(schema.NUCLEUS_PARTIAL)
head_token_stats = _public(schema.HEAD_TOKEN_STATS)
