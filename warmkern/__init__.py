"""warmkern: fused kernels for warm-started sampling from masked diffusion language models."""

from warmkern import ops
from warmkern.ops import denoise_step, select, token_stats, warm_embed
from warmkern.sampler import GenerationStats, generate
from warmkern.warmstart import WarmStart, draft_from_texts

__all__ = [
    "GenerationStats",
    "WarmStart",
    "denoise_step",
    "draft_from_texts",
    "generate",
    "ops",
    "select",
    "token_stats",
    "warm_embed",
]
__version__ = "0.1.0"
