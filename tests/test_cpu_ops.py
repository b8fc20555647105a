"""The warmkern_cpu operators as torch.library ops: schema/fake-impl checks (opcheck), the cpu
backend seen through warmkern.ops, and torch.compile(fullgraph=True) over a fused step."""

from __future__ import annotations

import pytest
import torch
from cpu_cases import needs_cpu_ext

from warmkern import backends, cpu, ops, reference

pytestmark = needs_cpu_ext


def small_case(dtype=torch.bfloat16):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, 97, generator=gen).to(dtype)
    x = torch.full((2, 6), 96)
    x[:, 0] = 5
    prov = torch.zeros(2, 6, dtype=torch.bool)
    prov[:, 0] = True
    return logits, x, prov


def test_available_and_auto():
    assert cpu.unavailable_reason() is None
    assert backends.resolve("auto", torch.device("cpu")) == "cpu"


def test_opcheck_all_ops():
    logits, x, prov = small_case()
    lo, hi = torch.tensor([0, 1]), torch.tensor([6, 4])
    k = torch.tensor([2, 1])
    op = torch.ops.warmkern_cpu
    seeds, step_t = torch.tensor([7, 2**40]), torch.tensor(3)
    prior, bias = torch.tensor([[1, -1, 5, 96, 0, 2]] * 2), torch.tensor([1.0, -0.5])
    off = (0, None, 0, None, 0, 1.0, None, None)  # seed .. prior_bias: the defaults
    torch.library.opcheck(op.token_stats.default, (logits, x, None, 96, 1.0, "margin", "none", [3], [4], [], 0.0, 7,
                                                   None, 2, None, 0, 1.0, None, None))
    torch.library.opcheck(op.token_stats.default, (logits, x, logits * 0.5, 96, 0.0, "prob", "none", [], [], [], 1.5,
                                                   *off))
    torch.library.opcheck(op.token_stats.default, (logits, x, None, 96, 0.5, "entropy", "sampling", [], [5], [6], 0.0,
                                                   0, seeds, 0, step_t, 9, 0.9, prior, bias))
    x0, sc, pc = op.token_stats(logits, x, None, 96, 0.0, "prob", "none", [], [], [], 0.0, *off)
    rnd = (0, None, 0, None)
    torch.library.opcheck(op.select.default, (sc, x0, pc, x.clone(), prov.clone(), 96, lo, hi, k, None, None, 0.5, 1,
                                              0.0, *rnd))
    torch.library.opcheck(op.select.default, (sc, x0, pc, x.clone(), prov.clone(), 96, lo, hi, None, None, 1.0, None,
                                              None, 0.0, *rnd))
    torch.library.opcheck(op.select.default, (sc, x0, pc, x.clone(), prov.clone(), 96, lo, hi, k, None, None, None,
                                              None, 0.3, 0, seeds, 0, step_t))
    torch.library.opcheck(op.denoise_step.default, (logits, x.clone(), prov.clone(), None, 96, lo, hi, None, 0.1, None,
                                                    0.9, None, 0.0, 1.0, "entropy", "sampling", [2], [], [], 0.0, 3,
                                                    None, 1, None, 0, 1.0, None, None))
    torch.library.opcheck(op.denoise_step.default, (logits, x.clone(), prov.clone(), None, 96, lo, hi, k, None, None,
                                                    0.9, None, 0.4, 1.0, "prob", "none", [], [3], [4], 0.0, 0, seeds,
                                                    0, step_t, 5, 0.8, prior, bias))
    w = torch.randn(97, 8)
    keep = torch.ones(2, 6, dtype=torch.bool)
    torch.library.opcheck(op.warm_embed.default, (w, x, x.clone(), keep, torch.empty(2, 6, 8), 96,
                                                   torch.tensor([0.5, 0.25]), 1.0, None))
    torch.library.opcheck(op.warm_embed.default, (w, x, x.clone(), keep, torch.empty(2, 6, 8), 96,
                                                   torch.tensor([0.5, 0.25]), 1.0, torch.zeros(1, dtype=torch.int32)))


def test_public_ops_dispatch_to_cpu():
    logits, x, prov = small_case(torch.float16)
    xr, pr = x.clone(), prov.clone()
    got = ops.denoise_step(logits, x, prov, mask_id=96, lo=0, hi=6, k=2, remask_threshold=0.5, backend="cpu")
    want = reference.denoise_step(logits, xr, pr, mask_id=96, lo=torch.tensor([0, 0]), hi=torch.tensor([6, 6]),
                                  k=torch.tensor([2, 2]), remask_threshold=0.5)
    assert torch.equal(x, xr) and torch.equal(prov, pr)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


@pytest.mark.filterwarnings("ignore")
def test_compile_fullgraph_step():
    logits, x, prov = small_case()
    lo, hi, k = torch.tensor([0, 0]), torch.tensor([6, 6]), torch.tensor([1, 2])

    def step(lg, xx, pp):
        x0, sc, pc = torch.ops.warmkern_cpu.token_stats(lg, xx, None, 96, 0.0, "prob", "none", [], [], [], 0.0, 0,
                                                        None, 0, None, 0, 1.0, None, None)
        return torch.ops.warmkern_cpu.select(sc, x0, pc, xx, pp, 96, lo, hi, k, None, None, None, None, 0.0, 0, None,
                                             0, None)

    compiled = torch.compile(step, fullgraph=True, backend="eager")
    xe, pe = x.clone(), prov.clone()
    want = step(logits, xe, pe)
    got = compiled(logits, x, prov)
    assert torch.equal(x, xe) and torch.equal(prov, pe)
    assert torch.equal(got[0], want[0])
