"""Ahead-of-time compiles of exactly the specialisation a launch builds, for a GPU target, no driver needed.

A launcher's `plan` gives (kernel, args, meta). Triton's own binder for the target's backend turns
them into the (signature, constexprs, attributes) a real launch would compile: ints equal to 1
become constexprs, ints and pointers divisible by 16 get `tt.divisibility`, runtime ints stay
runtime. Meta tensors stand in for real ones (their data_ptr carries the view offset, so alignment
is what a real launch sees).
"""

from __future__ import annotations

import functools

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource, make_backend
from triton.runtime.jit import create_function_from_signature


@functools.lru_cache(maxsize=4)
def _backend(cc: int):
    return make_backend(GPUTarget("cuda", cc, 32))


def specialise(kernel, args: list, meta: dict, cc: int) -> tuple[ASTSource, dict]:
    """(source, options) of the launch `kernel[grid](*args, **meta)` on a compute-capability-cc GPU."""
    backend = _backend(cc)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    kwargs = {"debug": False, **meta}
    bound, spec, opts = binder(*args, **kwargs)
    options, signature, constexprs, attrs = kernel._pack_args(backend, kwargs, bound, spec, opts)
    return ASTSource(kernel, signature, constexprs, attrs), options.__dict__


def compile_launch(kernel, args: list, meta: dict, cc: int):
    """The CompiledKernel (asm: ptx, cubin) a launch with these arguments builds for target cc."""
    src, options = specialise(kernel, args, meta, cc)
    return triton.compile(src, target=GPUTarget("cuda", cc, 32), options=options)
