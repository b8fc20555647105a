"""Every bad input raises a clear error naming the argument, before any kernel runs."""

import pytest
import torch

from warmkern import ops

MASK = 0
B, G, V, D = 2, 4, 10, 3


def _stats_args(**over):
    args = dict(logits=torch.randn(B, G, V), x=torch.full((B, G), MASK), mask_id=MASK)
    args.update(over)
    return args


def _embed_args(**over):
    args = dict(weight=torch.randn(V, D), x=torch.full((B, G), MASK), draft=torch.full((B, G), 2),
                keep=torch.ones(B, G, dtype=torch.bool), mask_id=MASK, alpha=0.5)
    args.update(over)
    return args


def _select_args(**over):
    args = dict(score=torch.rand(B, G), x0=torch.ones(B, G, dtype=torch.long), p_cur=torch.rand(B, G),
                x=torch.full((B, G), MASK), provisional=torch.zeros(B, G, dtype=torch.bool), mask_id=MASK,
                lo=0, hi=G, k=1)
    args.update(over)
    return args


def _call(fn, args):
    pos = {
        ops.token_stats: ("logits", "x"),
        ops.warm_embed: ("weight", "x", "draft", "keep"),
        ops.select: ("score", "x0", "p_cur", "x", "provisional"),
    }[fn]
    positional = [args.pop(n) for n in pos]
    return fn(*positional, **args, backend="reference")


STATS_CASES = [
    ({"logits": torch.randn(B, G, V).long()}, "logits", TypeError),
    ({"logits": torch.randn(B, V)}, "logits", ValueError),
    ({"logits": torch.randn(B, V, G).transpose(1, 2)}, "logits", ValueError),  # last dim not contiguous
    ({"x": torch.zeros(B, G, dtype=torch.int32)}, "x", TypeError),
    ({"x": torch.zeros(B, G + 1, dtype=torch.long)}, "x", ValueError),
    ({"x": torch.full((B, G), V)}, "x", ValueError),
    ({"x": torch.full((B, G), -1)}, "x", ValueError),
    ({"mask_id": V}, "mask_id", ValueError),
    ({"temperature": -0.1}, "temperature", ValueError),
    ({"temperature": float("nan")}, "temperature", ValueError),
    ({"score": "confidence"}, "score", ValueError),
    ({"score_temperature": "sampling"}, "score_temperature", ValueError),  # with T = 0
    ({"score_temperature": "hot", "temperature": 1.0}, "score_temperature", ValueError),
    ({"suppress_ids": (V + 3,)}, "suppress_ids", ValueError),
    ({"pick_suppress_ids": (-2,)}, "pick_suppress_ids", ValueError),
    ({"score_suppress_ids": (V,)}, "score_suppress_ids", ValueError),
    ({"temperature": 1e-45}, "temperature", ValueError),  # fp32(1/T) is inf
    ({"uncond_logits": torch.randn(B, G, V).half()}, "uncond_logits", TypeError),
    ({"seed": torch.tensor([1, 2, 3])}, "seed", ValueError),
    ({"seed": torch.tensor([1, -2])}, "seed", ValueError),
    ({"seed": torch.tensor([1.0, 2.0])}, "seed", TypeError),
    ({"step": torch.tensor([1, 2])}, "step", ValueError),
    ({"step": 2**32}, "step", ValueError),
    ({"top_k": -1}, "top_k", ValueError),
    ({"top_p": 1.5}, "top_p", ValueError),
    ({"top_p": float("nan")}, "top_p", ValueError),
    ({"prior_ids": torch.full((B, G), V)}, "prior_ids", ValueError),
    ({"prior_ids": torch.full((B, G + 1), 1)}, "prior_ids", ValueError),
    ({"prior_ids": torch.full((B, G), 1), "prior_bias": float("inf")}, "prior_bias", ValueError),
    ({"prior_ids": torch.full((B, G), 1)}, "prior_bias", ValueError),  # required with prior_ids
    ({"prior_ids": torch.full((B, G), 1), "prior_bias": torch.ones(B + 1)}, "prior_bias", ValueError),
    ({"uncond_logits": torch.randn(B, G, V + 1)}, "uncond_logits", ValueError),
    ({"seed": -1}, "seed", ValueError),
    ({"step": 1.5}, "step", TypeError),
]


@pytest.mark.parametrize(("over", "name", "exc"), STATS_CASES)
def test_token_stats_errors_name_the_argument(over, name, exc):
    with pytest.raises(exc, match=name):
        _call(ops.token_stats, _stats_args(**over))


EMBED_CASES = [
    ({"weight": torch.zeros(V, D, dtype=torch.long)}, "weight", TypeError),
    ({"draft": torch.full((B, G), -2)}, "draft", ValueError),
    ({"draft": torch.full((B, G), V)}, "draft", ValueError),
    ({"keep": torch.ones(B, G)}, "keep", TypeError),
    ({"keep": torch.ones(B, G + 1, dtype=torch.bool)}, "keep", ValueError),
    ({"alpha": 1.5}, "alpha", ValueError),
    ({"alpha": torch.tensor([0.2, -0.1])}, "alpha", ValueError),
    ({"alpha": torch.tensor([0.2, 0.3, 0.4])}, "alpha", ValueError),
    ({"mask_id": -1}, "mask_id", ValueError),
    ({"x": torch.full((B, G), V + 1)}, "x", ValueError),
    ({"out": torch.empty(B, G, D + 1)}, "out", ValueError),
    ({"out": torch.empty(B, G, D, dtype=torch.float16)}, "out", TypeError),
    ({"out": torch.empty(B, G, D, requires_grad=True)}, "out", ValueError),
    ({"status": torch.zeros(1, dtype=torch.int64)}, "status", TypeError),
    ({"status": torch.zeros(2, dtype=torch.int32)}, "status", ValueError),
]


@pytest.mark.parametrize(("over", "name", "exc"), EMBED_CASES)
def test_warm_embed_errors_name_the_argument(over, name, exc):
    with pytest.raises(exc, match=name):
        _call(ops.warm_embed, _embed_args(**over))


SELECT_CASES = [
    ({"k": -1}, "k", ValueError),
    ({"k": None}, "k/threshold/factor", ValueError),
    ({"threshold": 0.5}, "k/threshold/factor", ValueError),  # k and threshold both given
    ({"lo": 3, "hi": 1}, "lo/hi", ValueError),
    ({"hi": G + 1}, "hi", ValueError),
    ({"lo": torch.tensor([0, -1])}, "lo", ValueError),
    ({"score": torch.rand(B, G).double()}, "score", TypeError),
    ({"provisional": torch.zeros(B, G)}, "provisional", TypeError),
    ({"p_cur": torch.rand(B, G + 2)}, "p_cur", ValueError),
    ({"remask_threshold": 1.5}, "remask_threshold", ValueError),
    ({"remask_max": -2}, "remask_max", ValueError),
    ({"k": None, "factor": -1.0}, "factor", ValueError),
    ({"alg_temp": -0.1}, "alg_temp", ValueError),
    ({"alg_temp": 0.5, "k": None, "threshold": 0.5}, "alg_temp", ValueError),
    ({"x": torch.full((1, G), MASK).expand(B, G)}, "x", ValueError),  # stride 0: written in place
    ({"provisional": torch.zeros(1, 1, dtype=torch.bool).expand(B, G)}, "provisional", ValueError),
]


@pytest.mark.parametrize(("over", "name", "exc"), SELECT_CASES)
def test_select_errors_name_the_argument(over, name, exc):
    with pytest.raises(exc, match=name):
        _call(ops.select, _select_args(**over))


def test_device_mismatch_is_named():
    meta_x = torch.full((B, G), MASK, device="meta")
    with pytest.raises(ValueError, match="x"):
        ops.token_stats(torch.randn(B, G, V), meta_x, mask_id=MASK, backend="reference")


def test_denoise_step_validates_both_halves():
    logits, x, prov = torch.randn(B, G, V), torch.full((B, G), MASK), torch.zeros(B, G, dtype=torch.bool)
    with pytest.raises(ValueError, match="k/threshold/factor"):
        ops.denoise_step(logits, x, prov, mask_id=MASK, lo=0, hi=G, backend="reference")
    with pytest.raises(ValueError, match="score"):
        ops.denoise_step(logits, x, prov, mask_id=MASK, lo=0, hi=G, k=1, score="best", backend="reference")
    with pytest.raises(ValueError, match="provisional"):
        ops.denoise_step(logits, x, prov[:, :2], mask_id=MASK, lo=0, hi=G, k=1, backend="reference")


def test_inference_tensor_written_outside_inference_mode_is_named():
    with torch.inference_mode():
        x = torch.full((B, G), MASK)
    with pytest.raises(ValueError, match=r"x: .*inference"):
        _call(ops.select, _select_args(x=x))


@pytest.mark.parametrize("backend", ["reference", "cpu", "triton"])
def test_expanded_state_is_refused_on_every_backend_before_any_kernel(backend):
    from warmkern import backends

    if backends.unavailable_reason(backend, torch.device("cpu")) is not None:
        pytest.skip(backends.unavailable_reason(backend, torch.device("cpu")))
    x = torch.full((1, G), MASK).expand(B, G)
    with pytest.raises(ValueError, match="x: expected a tensor without internal overlap"):
        ops.denoise_step(torch.randn(B, G, V), x, torch.zeros(B, G, dtype=torch.bool), mask_id=MASK, lo=0, hi=G, k=1,
                         backend=backend)


def test_value_checks_work_under_torch_compile_fullgraph():
    """check_values=True traces (a device-side assert instead of a host branch) and still catches bad ids."""
    def step(logits, x):
        return ops.token_stats(logits, x, mask_id=MASK, backend="reference")

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    logits = torch.randn(B, G, V)
    x0, _, _ = compiled(logits, torch.full((B, G), MASK))
    assert torch.equal(x0, step(logits, torch.full((B, G), MASK))[0])
    with pytest.raises(RuntimeError, match="x: expected ids in"):
        compiled(logits, torch.full((B, G), V + 5))
