"""Dispatch: explicit backends that cannot run raise; auto picks and logs once; ops trace in torch.compile."""

import logging

import pytest
import torch

from warmkern import backends, ops

MASK = 0


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="backend"):
        ops.token_stats(torch.randn(1, 2, 5), torch.zeros(1, 2, dtype=torch.long), mask_id=MASK, backend="cuda")


def test_env_backend_is_used(monkeypatch):
    monkeypatch.setenv("WARMKERN_BACKEND", "reference")
    assert backends.resolve(None, torch.device("cpu")) == "reference"


@pytest.mark.parametrize("value", ["CPU", "gpu", "auto "])
def test_bad_env_backend_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("WARMKERN_BACKEND", value)
    if value.strip() in backends.CHOICES:
        assert backends.resolve(None, torch.device("cpu")) in backends.BACKENDS
        return
    with pytest.raises(ValueError, match="WARMKERN_BACKEND"):
        backends.resolve(None, torch.device("cpu"))


def test_empty_env_backend_means_unset(monkeypatch):
    monkeypatch.setenv("WARMKERN_BACKEND", "")
    assert backends.requested(None) == "auto"


def test_triton_without_cuda_or_interpreter_raises(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="triton"):
        backends.resolve("triton", torch.device("cpu"))


def test_cpu_backend_on_cuda_tensors_raises():
    with pytest.raises(RuntimeError, match="cpu"):
        backends.resolve("cpu", torch.device("cuda"))


def test_auto_logs_its_choice_once(caplog, monkeypatch):
    monkeypatch.setattr(backends, "_auto_logged", set())
    with caplog.at_level(logging.INFO, logger="warmkern"):
        first = backends.resolve("auto", torch.device("cpu"))
        backends.resolve("auto", torch.device("cpu"))
    msgs = [r.getMessage() for r in caplog.records if "auto" in r.getMessage()]
    assert len(msgs) == 1 and repr(first) in msgs[0]
    expected = "cpu" if backends.unavailable_reason("cpu", torch.device("cpu")) is None else "reference"
    assert first == expected


def test_ops_trace_under_torch_compile_fullgraph():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 17)

    def step(logits, x, prov):
        return ops.denoise_step(logits, x, prov, mask_id=MASK, lo=0, hi=6, k=2, temperature=1.0, seed=5,
                                backend="reference", check_values=False)

    x_a, p_a = torch.zeros(2, 6, dtype=torch.long), torch.zeros(2, 6, dtype=torch.bool)
    x_b, p_b = x_a.clone(), p_a.clone()
    eager = step(logits, x_a, p_a)
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")(logits, x_b, p_b)
    assert torch.equal(x_a, x_b) and torch.equal(eager[0], compiled[0])


@pytest.mark.parametrize("op", ["warm_embed", "token_stats", "select", "denoise_step"])
def test_ops_pass_opcheck(op):
    g = torch.Generator().manual_seed(1)
    b, gl, v = 2, 5, 9
    x = torch.zeros(b, gl, dtype=torch.long)
    prov = torch.zeros(b, gl, dtype=torch.bool)
    lo, hi, k = torch.zeros(b, dtype=torch.long), torch.full((b,), gl), torch.full((b,), 2)
    if op == "warm_embed":
        args = (torch.randn(v, 3, generator=g), x, torch.ones_like(x), prov.logical_not(), torch.empty(b, gl, 3),
                MASK, torch.full((b,), 0.5), 1.0, "reference")
        fn = torch.ops.warmkern.warm_embed
    elif op == "token_stats":
        args = (torch.randn(b, gl, v, generator=g), x, None, MASK, 0.0, "prob", "none", [], [], 0.0, 0, 0, "reference")
        fn = torch.ops.warmkern.token_stats
    elif op == "select":
        args = (torch.rand(b, gl, generator=g), torch.ones_like(x), torch.rand(b, gl, generator=g), x, prov, MASK,
                lo, hi, k, None, None, None, None, "reference")
        fn = torch.ops.warmkern.select
    else:
        args = (torch.randn(b, gl, v, generator=g), x, prov, None, MASK, lo, hi, k, None, None, None, None, 0.0,
                "prob", "none", [], [], 0.0, 0, 0, "reference")
        fn = torch.ops.warmkern.denoise_step
    torch.library.opcheck(fn, args)


def test_compile_traces_the_custom_op_and_eager_matches_it():
    """Eager ops skip torch.library's per-call overhead; compiled graphs must still hold the opaque op."""
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 17)
    graphs = []

    def capture(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    def step(logits, x, prov):
        return ops.denoise_step(logits, x, prov, mask_id=MASK, lo=0, hi=6, k=2, temperature=1.0, seed=5,
                                backend="reference", check_values=False)

    x_a, p_a = torch.zeros(2, 6, dtype=torch.long), torch.zeros(2, 6, dtype=torch.bool)
    x_b, p_b, x_c, p_c = x_a.clone(), p_a.clone(), x_a.clone(), p_a.clone()
    eager = step(logits, x_a, p_a)
    torch.compile(step, fullgraph=True, backend=capture)(logits, x_b, p_b)
    targets = [str(n.target) for g in graphs for n in g.graph.nodes if n.op == "call_function"]
    assert any("warmkern.denoise_step" in t for t in targets), targets
    via_op = torch.ops.warmkern.denoise_step(logits, x_c, p_c, None, MASK, torch.zeros(2, dtype=torch.long),
                                             torch.full((2,), 6), torch.full((2,), 2), None, None, None, None, 1.0,
                                             "prob", "none", [], [], 0.0, 5, 0, "reference")
    assert torch.equal(x_a, x_b) and torch.equal(x_a, x_c) and torch.equal(eager[0], via_op[0])
