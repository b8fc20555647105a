"""denoise_step (token stats + selection) at LLaDA shapes: every contender side by side, one group per shape.

The floor is one streaming read of the window rows (the only rows the step needs) via a max
reduction; every contender is also reported as a multiple of it. The max runs over the logits' bits
viewed as same-width integers: torch vectorises integer max well, while its bf16 `amax` ran ~6x slower
than the memory on an AVX-512 Xeon (5.4 vs 33 GB/s), which would make the floor no floor at all.
"""

from __future__ import annotations

import pytest
import torch
from wk_cases import CONTENDERS, SEED, SHAPE, STEP, STEP_GROUPS, StepGroup, skip_reason, step_inputs
from wk_eager import eager_denoise_step
from wk_harness import Case, measure

from warmkern import ops


def _step_all_rows(logits, x, **kw):
    return eager_denoise_step(logits, x, window_only=False, **kw)


def _step_window_rows(logits, x, **kw):
    return eager_denoise_step(logits, x, window_only=True, **kw)


# One compiled wrapper per variant: dynamo's recompile limit (8) counts per code object.
_COMPILED = {
    "compiled": torch.compile(_step_all_rows, dynamic=False),
    "compiled-window": torch.compile(_step_window_rows, dynamic=False),
}


def _same_width_int(t: torch.Tensor) -> torch.Tensor:
    """The tensor's bytes as integers of its element width (a view: reads exactly the same memory)."""
    return t.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


def _case(group: StepGroup, contender: str) -> Case:
    s = SHAPE
    logits, x_init = step_inputs(group.batch)
    device = "cuda" if contender == "triton" else "cpu"
    if device == "cuda":
        logits, x_init = logits.cuda(), x_init.cuda()
    x = x_init.clone()
    prov = torch.zeros_like(x, dtype=torch.bool)

    def reset() -> None:
        x.copy_(x_init)
        prov.zero_()

    args = dict(mask_id=s.mask_id, lo=s.lo, hi=s.hi, k=s.k, temperature=group.temperature, score=group.score)
    if contender == "floor":
        bits = _same_width_int(logits[:, s.lo:s.hi])
        return Case(lambda: bits.amax(dim=-1), reset, device)
    if contender in ("eager", "eager-window"):
        win = contender == "eager-window"
        return Case(lambda: eager_denoise_step(logits, x, window_only=win, **args), reset, device)
    if contender in _COMPILED:
        fn = _COMPILED[contender]
        return Case(lambda: fn(logits, x, **args), reset, device, jit=True)
    # warmkern backends: reference (the spec), cpu (fused C++), triton (CUDA)
    return Case(
        lambda: ops.denoise_step(logits, x, prov, seed=SEED, step=STEP, backend=contender, **args),
        reset, device, jit=contender == "triton",
    )


@pytest.mark.parametrize("contender", CONTENDERS)
@pytest.mark.parametrize("group", STEP_GROUPS, ids=lambda g: g.id)
def test_denoise_step(benchmark, request, group: StepGroup, contender: str) -> None:
    info = {
        "op": "denoise_step", "group": group.name, "contender": contender, "batch": group.batch,
        "temperature": group.temperature, "score": group.score, "vocab": SHAPE.vocab, "gen": SHAPE.gen,
        "window": SHAPE.window, "min_bytes": group.batch * SHAPE.window * SHAPE.vocab * 2,
    }
    request.node.user_properties.extend(info.items())
    reason = skip_reason(contender)
    if reason is not None:
        pytest.skip(reason)
    measure(benchmark, _case(group, contender), info)
