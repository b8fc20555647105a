"""Triton backend: the reference ops as fused kernels (run on CUDA, or on CPU with TRITON_INTERPRET=1).

Same functions and keyword signatures as `warmkern.reference`; `warmkern.ops` validates and
normalises the arguments before calling them. Each call counts its kernel launches in
`warmkern.launches` (warm_embed 1, token_stats 1, select 1, denoise_step 1, token_stats_partial 1).
The vocabulary-shard op token_stats_partial (issue 16) is here too; the other shard passes are not yet.
"""

from warmkern.triton.denoise_step import denoise_step
from warmkern.triton.select import select
from warmkern.triton.token_stats import token_stats
from warmkern.triton.token_stats_partial import token_stats_partial
from warmkern.triton.warm_embed import warm_embed

__all__ = ["denoise_step", "select", "token_stats", "token_stats_partial", "warm_embed"]
