"""denoise_step with Dream's truncation (top_p = 0.95, top_k = 50) at LLaDA shapes (issue 15).

Contenders: the read-once floor of the window rows (as bench_denoise_step.py), Dream's eager path
(`top_p_logits` / `top_k_logits`: a sort of all V per position, then softmax, sample or argmax,
confidence, top-k commit; over every masked position as Dream does, and over the window rows only),
the same compiled by torch.compile, the reference (the spec, warmkern/reference.py), and the fused cpu
kernel (per window row: one read of the logits into an fp32 row, the cutoff search
of csrc/truncation.cpp over that L2-resident row, then the usual statistics pass over it).
"""

from __future__ import annotations

import pytest
import torch
from wk_cases import CONTENDERS, SEED, SHAPE, STEP, TRUNC_GROUPS, StepGroup, skip_reason, step_inputs
from wk_eager import eager_dream_step
from wk_harness import Case, measure

from warmkern import ops


def _dream_all_rows(logits, x, **kw):
    return eager_dream_step(logits, x, window_only=False, **kw)


def _dream_window_rows(logits, x, **kw):
    return eager_dream_step(logits, x, window_only=True, **kw)


# One compiled wrapper per variant (dynamo's recompile limit counts per code object).
_COMPILED = {
    "compiled": torch.compile(_dream_all_rows, dynamic=False),
    "compiled-window": torch.compile(_dream_window_rows, dynamic=False),
}


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

    args = dict(mask_id=s.mask_id, lo=s.lo, hi=s.hi, k=s.k, temperature=group.temperature, top_p=group.top_p,
                top_k=group.top_k)
    if contender == "floor":
        bits = logits[:, s.lo:s.hi].view(torch.int16)  # bf16 bits: see bench_denoise_step._same_width_int
        return Case(lambda: bits.amax(dim=-1), reset, "cpu")
    if contender in ("eager", "eager-window"):
        win = contender == "eager-window"
        return Case(lambda: eager_dream_step(logits, x, window_only=win, **args), reset, "cpu")
    if contender in _COMPILED:
        fn = _COMPILED[contender]
        return Case(lambda: fn(logits, x, **args), reset, "cpu", jit=True)
    return Case(lambda: ops.denoise_step(logits, x, prov, seed=SEED, step=STEP, score=group.score, backend=contender,
                                         **args), reset, device, jit=contender == "triton")


@pytest.mark.parametrize("contender", CONTENDERS)
@pytest.mark.parametrize("group", TRUNC_GROUPS, ids=lambda g: g.id)
def test_denoise_step_truncated(benchmark, request, group: StepGroup, contender: str) -> None:
    info = {
        "op": "denoise_step", "group": group.name, "contender": contender, "batch": group.batch,
        "temperature": group.temperature, "score": group.score, "top_p": group.top_p, "top_k": group.top_k,
        "vocab": SHAPE.vocab, "gen": SHAPE.gen, "window": SHAPE.window,
        "min_bytes": group.batch * SHAPE.window * SHAPE.vocab * 2,
    }
    request.node.user_properties.extend(info.items())
    reason = skip_reason(contender)
    if reason is not None:
        pytest.skip(reason)
    measure(benchmark, _case(group, contender), info)
