"""Triton backend: the reference ops as fused kernels (run on CUDA, or on CPU with TRITON_INTERPRET=1)."""

from warmkern.triton.token_stats import token_stats

__all__ = ["token_stats"]
