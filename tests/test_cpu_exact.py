"""Exactness at certainty (issue 12, item 5): rows whose softmax is an exact binary fraction.

A certain token (one finite logit, or every other logit far below it), a 50/50 row and four equal
logits have p = 1, 0.5 and 0.25 exactly in the reference (exp(0) = 1, p = e / s correctly rounded).
The C++ kernels must return exactly those values on every ISA variant and path (the AVX2/AVX-512 fast
spans of T = 0 rows, the generic chunks of T > 0, CFG and tempered rows, the baseline loop), since
`threshold=1.0` and `remask_threshold=1.0` compare against them.
"""

from __future__ import annotations

import pytest
import torch
from cpu_cases import ISAS, needs_cpu_ext, use_isa

from warmkern import cpu, reference

pytestmark = needs_cpu_ext

DTYPES = (torch.float32, torch.bfloat16, torch.float16)
# (vocabulary, mask id): short rows take the generic chunks only, long ones the fast spans too.
VOCABS = ((50, 49), (4500, 4490), (4500, 2000))
# (number of equal top logits, the exact probability of each)
CERTAINTIES = ((1, 1.0), (2, 0.5), (4, 0.25))
MODES = (("greedy", 0.0, "none"), ("sampled", 1.0, "none"), ("tempered", 0.5, "sampling"))


def exact_rows(g: int, v: int, mask_id: int, n_top: int, dtype: torch.dtype):
    """[1, g, v] logits: n_top entries equal to a per-position top value, the rest -inf (impossible) or
    200 below it (far under exp's floor: exp gives exactly 0 in fp32 too).

    Returns the logits and, per position, the indices of its top entries (spread over the row so
    that on long rows they sit in different fast spans)."""
    logits = torch.full((1, g, v), float("-inf"))
    logits[:, :, 1::3] = -200.0
    tops = []
    for pos in range(g):
        stride = max((v - 1) // (n_top + 1), 1)
        idx = [(pos * 7 + 3 + i * stride) % v for i in range(n_top)]
        idx = [i if i != mask_id else (i + 1) % v for i in idx]
        top = float(pos % 3) * 2.5  # the top value itself does not matter
        logits[0, pos, 1::3] += top
        logits[0, pos, idx] = top
        tops.append(idx)
    return logits.to(dtype), tops


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("v", "mask_id"), VOCABS, ids=lambda a: str(a))
@pytest.mark.parametrize(("n_top", "p"), CERTAINTIES, ids=lambda a: str(a))
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m[0] if isinstance(m, tuple) else str(m))
def test_exact_probabilities(monkeypatch, isa, dtype, v, mask_id, n_top, p, mode):
    use_isa(monkeypatch, isa)
    g = 4
    logits, tops = exact_rows(g, v, mask_id, n_top, dtype)
    x = torch.full((1, g), mask_id)
    x[0, 1::2] = torch.tensor([tops[pos][-1] for pos in range(1, g, 2)])  # p_cur of a top token
    kw = dict(mask_id=mask_id, temperature=mode[1], score_temperature=mode[2], seed=3, step=1)
    want = torch.full((1, g), p)
    for got in (reference.token_stats(logits, x, score="prob", **kw), cpu.token_stats(logits, x, score="prob", **kw)):
        x0, score, p_cur = got
        masked = x[0] == mask_id
        assert all(int(x0[0, pos]) in tops[pos] for pos in range(g))
        assert torch.equal(score[0, masked], want[0, masked]), score
        assert torch.equal(p_cur[0, ~masked], want[0, ~masked]), p_cur
        assert torch.equal(p_cur[0, masked], torch.zeros(int(masked.sum()))), p_cur


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("v", "mask_id"), VOCABS, ids=lambda a: str(a))
@pytest.mark.parametrize(("n_top", "p"), CERTAINTIES, ids=lambda a: str(a))
def test_exact_margin_and_entropy(monkeypatch, isa, dtype, v, mask_id, n_top, p):
    """margin = p1 - p2 is exactly 1 for a certain token and 0 for ties; entropy is exactly 0 at certainty."""
    use_isa(monkeypatch, isa)
    g = 4
    logits, _ = exact_rows(g, v, mask_id, n_top, dtype)
    x = torch.full((1, g), mask_id)
    for score in ("margin", "entropy"):
        want = reference.token_stats(logits, x, mask_id=mask_id, score=score)[1]
        got = cpu.token_stats(logits, x, mask_id=mask_id, score=score)[1]
        if score == "margin":
            assert torch.equal(want, torch.full((1, g), 1.0 if n_top == 1 else 0.0))
            assert torch.equal(got, want), (got, want)
        elif n_top == 1:
            assert torch.equal(want, torch.zeros(1, g)) and torch.equal(got, want), (got, want)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("v", [50, 4500])
def test_exact_probabilities_with_cfg(monkeypatch, isa, v):
    """CFG rows (generic chunks only): equal conditional and unconditional rows keep p exact."""
    use_isa(monkeypatch, isa)
    logits, _ = exact_rows(3, v, v - 1, 2, torch.bfloat16)
    x = torch.full((1, 3), v - 1)
    for backend in (reference, cpu):
        _, score, _ = backend.token_stats(logits, x, mask_id=v - 1, uncond_logits=logits.clone(), cfg_scale=1.5)
        assert torch.equal(score, torch.full((1, 3), 0.5)), (backend.__name__, score)


def certain_step_inputs(v: int, g: int):
    """[1, g, v] bf16 logits where every position is certain of token (g + 7 * pos) % (v - 1)."""
    logits = torch.full((1, g, v), float("-inf"))
    tokens = torch.tensor([(g + 7 * pos) % (v - 1) for pos in range(g)])
    logits[0, torch.arange(g), tokens] = 4.0
    logits[0, :, : v // 2] = torch.where(logits[0, :, : v // 2] == 4.0, 4.0, -300.0)  # far below the floor
    return logits.to(torch.bfloat16), tokens


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("v", [50, 4500])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_threshold_one_transfers_every_certain_position(monkeypatch, isa, v, temperature):
    use_isa(monkeypatch, isa)
    g, mask = 5, v - 1
    logits, tokens = certain_step_inputs(v, g)
    kw = dict(mask_id=mask, lo=torch.tensor([0]), hi=torch.tensor([g]), threshold=1.0, temperature=temperature, seed=2)
    results = []
    for backend in (reference, cpu):
        x = torch.full((1, g), mask)
        prov = torch.zeros(1, g, dtype=torch.bool)
        n_transfer, _ = backend.denoise_step(logits, x, prov, **kw)
        results.append((x, n_transfer))
    for x, n_transfer in results:
        assert n_transfer.tolist() == [g]
        assert torch.equal(x[0], tokens)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("v", [50, 4500])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_remask_threshold_one_keeps_certain_tokens(monkeypatch, isa, v, temperature):
    use_isa(monkeypatch, isa)
    g, mask = 5, v - 1
    logits, tokens = certain_step_inputs(v, g)
    kw = dict(mask_id=mask, lo=torch.tensor([0]), hi=torch.tensor([g]), k=torch.tensor([1]), remask_threshold=1.0,
              temperature=temperature, seed=2)
    for backend in (reference, cpu):
        x = tokens.clone().unsqueeze(0)
        x[0, 2] = mask  # one masked position to transfer
        prov = x != mask
        n_transfer, n_remask = backend.denoise_step(logits, x, prov, **kw)
        assert n_remask.tolist() == [0], backend.__name__
        assert n_transfer.tolist() == [1] and torch.equal(x[0], tokens), backend.__name__
