"""What the plugin knows per request: its seed, its draft, and where its answer starts.

sglang's ForwardBatch carries request ids (`rids`) but not the requests; `DllmAlgorithm.validate_request`
sees every request in every scheduler process (each TP rank validates its own copy), so the plugin
remembers each request there, weakly (an entry vanishes with its request), and finds it by rid.

Seeds: a request's seed is its `sampling_seed` when given, else a hash of (YAML seed, rid): both are
the same on every TP rank, never Python's per-process `hash()`. The Philox key of one denoising step of
one row mixes (request seed, block start, step in block), so a request decodes the same whichever batch
it shares and every block draws fresh numbers.
"""

from __future__ import annotations

import hashlib
import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DRAFT_KEY = "warmkern_draft"  # custom_params: the drafted answer tokens, from the first generated position
PRIOR_BIAS_KEY = "warmkern_prior_bias"  # custom_params: this request's prior bias (else the YAML's)
INT63 = (1 << 63) - 1
_MASK64 = (1 << 64) - 1

_REQUESTS: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()


@dataclass(frozen=True)
class RequestInfo:
    """A request as the plugin needs it; `block_offset` is the absolute position of its current block."""

    seed: int
    block_offset: int
    prompt_len: int
    draft: tuple[int, ...] = ()
    prior_bias: float | None = None


def remember(req: Any) -> None:
    """Keep a weak reference to `req`, found again by its rid (called from validate_request)."""
    _REQUESTS[str(req.rid)] = req


def lookup(rid: str) -> Any | None:
    return _REQUESTS.get(str(rid))


def check_custom_params(params: Mapping[str, Any] | None, mask_id: int) -> str | None:
    """An error message for a malformed warmkern custom parameter, or None (sglang rejects the request)."""
    if not isinstance(params, Mapping):
        return None
    draft = params.get(DRAFT_KEY)
    if draft is not None:
        if not isinstance(draft, (list, tuple)):
            return f"custom_params[{DRAFT_KEY!r}]: expected a list of token ids, got {type(draft).__name__}"
        for i, t in enumerate(draft):
            if isinstance(t, bool) or not isinstance(t, int) or t < 0 or t == mask_id:
                return f"custom_params[{DRAFT_KEY!r}][{i}]: expected a token id >= 0 other than mask_id, got {t!r}"
    bias = params.get(PRIOR_BIAS_KEY)
    if bias is not None and (isinstance(bias, bool) or not isinstance(bias, (int, float)) or not math.isfinite(bias)):
        return f"custom_params[{PRIOR_BIAS_KEY!r}]: expected a finite number, got {bias!r}"
    return None


def request_seed(sampling_seed: int | None, rid: str, base_seed: int) -> int:
    """The request's seed in [0, 2^63): its sampling_seed (mod 2^63), else blake2b(base_seed, rid)."""
    if sampling_seed is not None:
        return int(sampling_seed) & INT63
    digest = hashlib.blake2b(f"{base_seed}:{rid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & INT63


def _splitmix64(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def step_seed(seed: int, block_offset: int, step: int) -> int:
    """Philox key of one row's denoising step: a splitmix64 chain of (seed, block start, step)."""
    z = _splitmix64(seed & _MASK64)
    z = _splitmix64(z ^ (block_offset & _MASK64))
    return _splitmix64(z ^ (step & _MASK64)) & INT63


def request_info(req: Any, rid: str, base_seed: int) -> RequestInfo:
    """RequestInfo of a remembered sglang request (`Req`)."""
    params = req.sampling_params
    custom = getattr(params, "custom_params", None) or {}
    draft = tuple(int(t) for t in custom.get(DRAFT_KEY) or ())
    bias = custom.get(PRIOR_BIAS_KEY)
    return RequestInfo(
        seed=request_seed(getattr(params, "sampling_seed", None), rid, base_seed),
        block_offset=int(req.dllm_block_offset),
        prompt_len=len(req.origin_input_ids),
        draft=draft,
        prior_bias=None if bias is None else float(bias),
    )
