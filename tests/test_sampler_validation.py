"""One validation dialect (issue 11 item 3) and every `generate` argument checked before any forward
(issue 12 item 10): a wrong type is a TypeError, a bad value a ValueError, "name: expected ..., got ...",
naming the public argument."""

from __future__ import annotations

import re

import pytest
import torch
from test_sampler_eager import prompts, special_ids, tiny_pair

from warmkern import WarmStart, generate, ops


class Counting(torch.nn.Module):
    """Counts forwards of the wrapped model (and keeps its embedding, so the vocabulary is known)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.inner = model
        self.calls = 0

    def get_input_embeddings(self):
        return self.inner.get_input_embeddings()

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None):
        self.calls += 1
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds)


def _error(fn) -> tuple[type, str, str]:
    """(exception type, argument name, the message after 'name: ') of a call that must fail."""
    with pytest.raises((TypeError, ValueError)) as info:
        fn()
    m = re.match(r"^([\w.\[\]/]+): (expected .*, got .*)$", str(info.value), flags=re.S)
    assert m, f"message shape: {info.value}"
    return type(info.value), m.group(1), m.group(2)


# ----------------------------------------------------------------------------- one dialect
def _calls(name: str, value):
    """The same argument given to generate / WarmStart / the ops (whichever take it)."""
    model, tok = tiny_pair()
    prompt, am = prompts(tok, 1)
    v = len(tok)
    logits, x = torch.randn(1, 4, v), torch.full((1, 4), tok.mask_token_id)
    prov = torch.zeros(1, 4, dtype=torch.bool)
    draft = torch.zeros((1, 4), dtype=torch.long)
    sel = dict(mask_id=tok.mask_token_id, lo=0, hi=4, backend="reference")

    def gen(**kw):
        return generate(model, prompt, am, steps=4, gen_length=4, block_length=4, **{**special_ids(tok), **kw})

    table = {
        "seed": [lambda: gen(seed=value), lambda: ops.token_stats(logits, x, mask_id=tok.mask_token_id, seed=value),
                 lambda: ops.denoise_step(logits, x, prov, k=1, seed=value, **sel)],
        "temperature": [lambda: gen(temperature=value),
                        lambda: ops.token_stats(logits, x, mask_id=tok.mask_token_id, temperature=value)],
        "cfg_scale": [lambda: gen(cfg_scale=value),
                      lambda: ops.token_stats(logits, x, mask_id=tok.mask_token_id, cfg_scale=value)],
        "score": [lambda: gen(score=value), lambda: ops.token_stats(logits, x, mask_id=tok.mask_token_id, score=value)],
        "mask_id": [lambda: gen(mask_id=value), lambda: ops.token_stats(logits, x, mask_id=value)],
        "threshold": [lambda: gen(threshold=value), lambda: ops.denoise_step(logits, x, prov, threshold=value, **sel)],
        "factor": [lambda: gen(factor=value), lambda: ops.denoise_step(logits, x, prov, factor=value, **sel)],
        "remask_threshold": [lambda: WarmStart(draft, remask_threshold=value),
                             lambda: ops.denoise_step(logits, x, prov, k=1, remask_threshold=value, **sel)],
        "remask_max": [lambda: WarmStart(draft, remask_max=value),
                       lambda: ops.denoise_step(logits, x, prov, k=1, remask_max=value, **sel)],
        "alpha": [lambda: WarmStart(draft, alpha=value),
                  lambda: ops.warm_embed(torch.randn(v, 3), x, x, prov, mask_id=tok.mask_token_id, alpha=value)],
        "backend": [lambda: gen(backend=value), lambda: ops.token_stats(logits, x, mask_id=0, backend=value)],
    }
    return table[name]


NAN, INF = float("nan"), float("inf")
SAME = [  # (argument, bad value, the rule's exception: wrong type -> TypeError, bad value -> ValueError)
    ("seed", "1", TypeError), ("seed", 1.0, TypeError), ("seed", -1, ValueError), ("seed", 2**63, ValueError),
    ("temperature", "0", TypeError), ("temperature", NAN, ValueError), ("temperature", -0.5, ValueError),
    ("cfg_scale", "1", TypeError), ("cfg_scale", INF, ValueError),
    ("score", "best", ValueError),
    ("mask_id", "3", TypeError), ("mask_id", True, TypeError), ("mask_id", 10**6, ValueError),
    ("threshold", "0.9", TypeError), ("threshold", NAN, ValueError),
    ("factor", INF, ValueError), ("factor", -1.0, ValueError),
    ("remask_threshold", "0.5", TypeError), ("remask_threshold", 1.5, ValueError),
    ("remask_max", True, TypeError), ("remask_max", -1, ValueError),
    ("alpha", 1.5, ValueError), ("alpha", NAN, ValueError),
    ("backend", "gpu", ValueError),
]


@pytest.mark.parametrize(("name", "value", "kind"), SAME, ids=[f"{n}={v!r}" for n, v, _ in SAME])
def test_the_same_bad_value_gets_the_same_error_everywhere(name, value, kind):
    errors = [_error(fn) for fn in _calls(name, value)]
    assert len(errors) >= 2
    assert {k for k, _, _ in errors} == {kind}, errors
    assert all(arg.split(".")[-1] == name for _, arg, _ in errors), errors  # warm_start.alpha is alpha
    assert len({text for _, _, text in errors}) == 1, errors  # word for word after "name: "


def test_seed_given_as_a_string_is_a_type_error_in_generate_and_the_ops():
    """The issue's example: generate raised ValueError where ops.token_stats raised TypeError."""
    errors = [_error(fn) for fn in _calls("seed", "1")]
    assert errors[0] == errors[1] == (TypeError, "seed", "expected an int, got str")


# ----------------------------------------------------------------------------- before any forward
def _bad_generate_inputs(tok) -> list[tuple[dict, str]]:
    v = len(tok)
    draft = torch.full((1, 8), 5)
    return [
        ({"threshold": float("nan")}, "threshold"),
        ({"factor": float("inf")}, "factor"),
        ({"seed": 2**63}, "seed"),
        ({"seed": "1"}, "seed"),
        ({"eos_id": v + 7, "logits_eos_inf": True}, "eos_id"),
        ({"eos_id": -1}, "eos_id"),
        ({"eos_id": 126081, "confidence_eos_eot_inf": True}, "eos_id"),  # LLaDA's default id, a small vocabulary
        ({"eot_id": v, "confidence_eos_eot_inf": True}, "eot_id"),
        ({"mask_id": v}, "mask_id"),
        ({"steps": 0}, "steps"),
        ({"gen_length": "8"}, "gen_length"),
        ({"temperature": float("nan")}, "temperature"),
        ({"cfg_scale": float("inf")}, "cfg_scale"),
        ({"score": "best"}, "score"),
        ({"schedule": "cosine"}, "schedule"),
        ({"remasking": None}, "remasking"),
        ({"logits_shift": "yes"}, "logits_shift"),
        ({"confidence_eos_eot_inf": 1}, "confidence_eos_eot_inf"),
        ({"backend": "gpu"}, "backend"),
        ({"warm_start": WarmStart(draft, fill_tail=v)}, "warm_start.fill_tail"),
        ({"warm_start": WarmStart(torch.full((1, 8), v))}, "warm_start.draft"),
        ({"warm_start": WarmStart(torch.full((1, 5), 5))}, "warm_start.draft"),
    ]


def test_every_bad_argument_fails_before_any_forward():
    model, tok = tiny_pair()
    prompt, am = prompts(tok, 1)
    for kw, name in _bad_generate_inputs(tok):
        counted = Counting(model)
        args = {"steps": 8, "gen_length": 8, "block_length": 4, **special_ids(tok), **kw}
        _, arg, text = _error(lambda: generate(counted, prompt, am, **args))  # noqa: B023
        assert arg == name, (kw, arg, text)
        assert counted.calls == 0, kw
        assert "demote_ids" not in text and "suppress_ids" not in text


@pytest.mark.parametrize(("kw", "name"), [({"threshold": 0.9}, "prompt"), ({"schedule": "dream"}, "prompt")])
def test_infilling_outside_llada_schedule_fails_before_any_forward(kw, name):
    model, tok = tiny_pair()
    prompt, am = prompts(tok, 1)
    prompt = prompt.clone()
    prompt[0, -2] = tok.mask_token_id
    counted = Counting(model)
    with pytest.raises(ValueError, match=rf"^{name}: .*expected schedule='llada' without threshold/factor"):
        generate(counted, prompt, am, steps=8, gen_length=8, block_length=8, **special_ids(tok), **kw)
    assert counted.calls == 0


def test_a_bad_prompt_fails_before_any_forward():
    model, tok = tiny_pair()
    counted = Counting(model)
    for bad, kind in ((torch.zeros((1, 3)), TypeError), ([[1, 2, 3]], TypeError), (torch.zeros(3, dtype=torch.long),
                                                                                      ValueError)):
        got, arg, _ = _error(lambda: generate(counted, bad, steps=4, gen_length=4, block_length=4,  # noqa: B023
                                              mask_id=tok.mask_token_id))
        assert issubclass(got, kind) and arg == "prompt"
    assert counted.calls == 0


def test_vocabulary_checks_read_the_first_logits_when_the_model_does_not_say():
    """A plain function gives no vocabulary: the check runs on the first logits, before any op, by public name."""
    model, tok = tiny_pair()
    prompt, am = prompts(tok, 1)
    calls = []

    def plain(ids, attention_mask=None):
        calls.append(1)
        return model(ids, attention_mask=attention_mask).logits

    for kw, name in (({"confidence_eos_eot_inf": True}, "eos_id"), ({"logits_eos_inf": True, "eos_id": 999}, "eos_id"),
                     ({"confidence_eos_eot_inf": True, "eos_id": 0, "eot_id": len(tok)}, "eot_id")):
        calls.clear()
        _, arg, text = _error(lambda: generate(plain, prompt, am, steps=4, gen_length=4, block_length=4,
                                               mask_id=tok.mask_token_id, **kw))  # noqa: B023
        assert arg == name and len(calls) == 1 and "_ids" not in text.split(" got")[0]


@pytest.mark.parametrize("cfg", [0.0, 1.0])
def test_a_model_returning_the_wrong_length_is_named(cfg):
    model, tok = tiny_pair()
    prompt, am = prompts(tok, 2)

    def short(ids, attention_mask=None):
        return model(ids, attention_mask=attention_mask).logits[:, :-1]

    rows, length = (4 if cfg else 2), prompt.shape[1] + 8  # CFG doubles the rows of one call
    with pytest.raises(ValueError, match=rf"^model: returned logits of shape \({rows}, {length - 1}, {len(tok)}\), "
                                         rf"expected \[{rows}, {length}, V\]"):
        generate(short, prompt, am, steps=8, gen_length=8, block_length=8, cfg_scale=cfg, mask_id=tok.mask_token_id)
