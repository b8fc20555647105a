"""The `cpu` backend: thin Python wrappers over the C++ kernels of csrc/ (torch.ops.warmkern_cpu)."""

from __future__ import annotations

_IMPORT_ERROR: str | None = None
try:
    from warmkern import _C  # noqa: F401  (registers torch.ops.warmkern_cpu)
except Exception as err:  # pragma: no cover - depends on the build
    _IMPORT_ERROR = f"{type(err).__name__}: {err}"


def unavailable_reason() -> str | None:
    """None when the extension is built and its kernels are registered."""
    if _IMPORT_ERROR is not None:
        return (
            "the C++ extension warmkern._C is not built (installed with WARMKERN_NO_EXT=1, or the build "
            f"failed: {_IMPORT_ERROR}); rebuild with `pip install --no-build-isolation -e .`"
        )
    return "the C++ kernels are not implemented yet (warmkern._C has no warmkern_cpu ops)"
