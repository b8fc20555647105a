"""warm_embed at LLaDA shapes (V=126464, D=4096, G=256): every contender side by side.

The floor is the plain embedding gather W[x] (read B*G rows, write them once): the least a warm
start could cost on top of the lookup the model does anyway.
"""

from __future__ import annotations

import pytest
import torch
from wk_cases import CONTENDERS, EMBED_BATCHES, SHAPE, WINDOW_ONLY, embed_inputs, skip_reason
from wk_eager import eager_warm_embed
from wk_harness import Case, measure

from warmkern import ops

ALPHA = 0.5
_compiled = torch.compile(eager_warm_embed, dynamic=False)
EMBED_CONTENDERS = tuple(c for c in CONTENDERS if c not in WINDOW_ONLY)  # no window to slice here


def _case(batch: int, contender: str) -> Case:
    weight, x, draft, keep = embed_inputs(batch)
    device = "cuda" if contender == "triton" else "cpu"
    if device == "cuda":
        weight, x, draft, keep = weight.cuda(), x.cuda(), draft.cuda(), keep.cuda()
    if contender == "floor":
        return Case(lambda: torch.nn.functional.embedding(x, weight), device=device)
    if contender == "eager":
        return Case(lambda: eager_warm_embed(weight, x, draft, keep, mask_id=SHAPE.mask_id, alpha=ALPHA), device=device)
    if contender == "compiled":
        fn = lambda: _compiled(weight, x, draft, keep, mask_id=SHAPE.mask_id, alpha=ALPHA)
        return Case(fn, device=device, jit=True)
    return Case(
        lambda: ops.warm_embed(weight, x, draft, keep, mask_id=SHAPE.mask_id, alpha=ALPHA, backend=contender),
        device=device, jit=contender == "triton",
    )


@pytest.mark.parametrize("contender", EMBED_CONTENDERS)
@pytest.mark.parametrize("batch", EMBED_BATCHES, ids=lambda b: f"B{b}")
def test_warm_embed(benchmark, request, batch: int, contender: str) -> None:
    group = f"warm_embed B={batch} D={SHAPE.dim}"
    info = {
        "op": "warm_embed", "group": group, "contender": contender, "batch": batch, "vocab": SHAPE.vocab,
        "gen": SHAPE.gen, "dim": SHAPE.dim, "min_bytes": 2 * batch * SHAPE.gen * SHAPE.dim * 2,
    }
    request.node.user_properties.extend(info.items())
    reason = skip_reason(contender)
    if reason is not None:
        pytest.skip(reason)
    measure(benchmark, _case(batch, contender), info)
