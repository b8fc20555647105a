"""warmkern: fused kernels for warm-started sampling from masked diffusion language models."""

from warmkern import ops
from warmkern.ops import denoise_step, select, token_stats, warm_embed

__all__ = ["ops", "warm_embed", "token_stats", "select", "denoise_step"]
__version__ = "0.1.0"
