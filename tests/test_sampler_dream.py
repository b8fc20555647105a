"""Dream drop-in (issue 15 items 2-3, the sampler's side): top_p / top_k / alg_temp / eps and Dream's two
generation hooks, with Dream's names and meanings.

Token for token at temperature 0 against a hand-written Dream loop (tests/test_sampler_eager.eager_dream:
Dream applies top-p / top-k even at T = 0, where they renormalise the confidence); structural checks at
T > 0 and alg_temp > 0, where the random streams are Philox instead of torch's (same distribution, not
the same draws).
"""

from __future__ import annotations

import itertools

import pytest
import torch
from test_sampler_eager import eager_dream, tiny_pair

from warmkern import generate

G = 16
PROMPT = torch.tensor([[7, 8, 9, 10, 11], [12, 13, 14, 15, 16]])  # equal lengths: Dream averages counts over rows


def _dream(model, prompt, steps, mask_id, **kw):
    """warmkern's argument-for-argument equivalent of Dream's diffusion_generate (alg -> score)."""
    return generate(model, prompt, steps=steps, gen_length=G, block_length=G, mask_id=mask_id, schedule="dream",
                    logits_shift=True, backend="reference", **kw)


@pytest.mark.parametrize(("top_p", "top_k", "score", "eps"), [
    (0.5, None, "prob", 1e-3), (None, 3, "prob", 1e-3), (0.8, 5, "margin", 1e-3), (0.6, None, "entropy", 1e-3),
    (0.95, 10, "prob", 0.1), (1.0, None, "prob", 1e-3),
])
def test_truncation_at_temperature_zero_matches_dream(top_p, top_k, score, eps):
    model, tok = tiny_pair()
    mask = tok.mask_token_id
    want = eager_dream(model, PROMPT, steps=8, gen_length=G, mask_id=mask, score=score, eps=eps, top_p=top_p,
                       top_k=top_k)
    got = _dream(model, PROMPT, 8, mask, score=score, eps=eps, top_p=top_p, top_k=top_k)
    assert torch.equal(got, want)
    if top_p not in (None, 1.0) or top_k is not None:  # the truncation mattered (the test tells the cases apart)
        assert not torch.equal(eager_dream(model, PROMPT, steps=8, gen_length=G, mask_id=mask, score=score, eps=eps),
                               want)


def test_eps_sets_dreams_timesteps():
    model, tok = tiny_pair()
    _, st = _dream(model, PROMPT[:1], 8, tok.mask_token_id, eps=0.3, return_stats=True)
    ts = torch.linspace(1, 0.3, 9)
    left, want = G, []
    for i in range(8):
        n = int(left * (1 - ts[i + 1] / ts[i])) if i < 7 else left
        want.append(n)
        left -= n
    assert [r[0] for r in st.transfers_per_step] == want


def _dream_counts(transfers: list[list[int]], steps: int, eps: float = 1e-3) -> bool:
    """Whether per-step counts follow Dream's rule, k = int(masked * (1 - s / t)), everything at the last step."""
    ts = torch.linspace(1, eps, steps + 1)
    for r in range(len(transfers[0])):
        left = G
        for i, step in enumerate(transfers):
            want = int(torch.tensor(float(left)) * (1 - ts[i + 1] / ts[i])) if i < steps - 1 else left
            if step[r] != want:
                return False
            left -= step[r]
    return True


class Recording(torch.nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.inner, self.seen = model, []

    def forward(self, input_ids, attention_mask=None):
        self.seen.append(input_ids.clone())
        return self.inner(input_ids=input_ids, attention_mask=attention_mask)


@pytest.mark.parametrize("kw", [
    {"temperature": 0.7, "top_p": 0.9},
    {"temperature": 0.4, "top_p": 0.95, "score": "entropy", "alg_temp": 0.5},
    {"temperature": 0.0, "alg_temp": 1.0, "top_k": 8},
    {"temperature": 1.0, "top_k": 3, "score": "margin", "alg_temp": 0.2},
])
def test_structure_at_temperature_and_alg_temp(kw):
    """Only masked positions change, once; each step commits Dream's count; truncated tokens never appear."""
    model, tok = tiny_pair()
    rec = Recording(model)
    x, st = _dream(rec, PROMPT, 8, tok.mask_token_id, seed=torch.tensor([1, 2]), return_stats=True, **kw)
    states = [*rec.seen, x]
    for before, after in itertools.pairwise(states):
        changed = before != after
        assert not (changed & (before != tok.mask_token_id)).any()  # committed tokens and the prompt never change
    assert (x[:, PROMPT.shape[1]:] != tok.mask_token_id).all()
    assert _dream_counts(st.transfers_per_step, 8)
    if "top_k" in kw and kw["top_k"] == 3:  # T > 0 draws only among each position's 3 largest logits
        with torch.no_grad():
            for before, after in itertools.pairwise(states):
                z = model(before).logits
                z = torch.cat([z[:, :1], z[:, :-1]], dim=1)
                new = (before != after)
                top3 = z.topk(3, dim=-1).indices
                assert (top3 == after.unsqueeze(-1)).any(-1)[new].all()


def test_alg_temp_draws_positions_with_philox_per_row_seed():
    """alg_temp > 0 at T = 0: x0 is fixed, the positions committed are a sample (Philox stream 3, row seeds)."""
    model, tok = tiny_pair()
    runs = {}
    for seed in range(4):
        rec = Recording(model)
        _dream(rec, PROMPT[:1], 8, tok.mask_token_id, alg_temp=0.5, seed=seed)
        runs[seed] = [tuple((s[0] != tok.mask_token_id).nonzero().flatten().tolist()) for s in rec.seen]
    assert len({tuple(r) for r in runs.values()}) > 1  # different seeds, different commit orders
    again = Recording(model)
    _dream(again, PROMPT[:1], 8, tok.mask_token_id, alg_temp=0.5, seed=2)
    assert [tuple((s[0] != tok.mask_token_id).nonzero().flatten().tolist()) for s in again.seen] == runs[2]


# ----------------------------------------------------------------------------- hooks
def _hooks(banned: int, span: dict[int, int], log: list):
    """A Dream-style constrained decoding pair: ban a token; keep a fixed span in place."""

    def logits_hook(step, x, logits):
        log.append(("logits", step, tuple(x.shape), tuple(logits.shape)))
        logits = logits.clone()
        logits[:, :, banned] = -torch.inf
        return logits

    def tokens_hook(step, x, logits):
        log.append(("tokens", step, tuple(x.shape), None if logits is None else tuple(logits.shape)))
        for col, token in span.items():
            x[:, col] = token
        return x

    return logits_hook, tokens_hook


def test_hooks_match_dream_token_for_token():
    model, tok = tiny_pair()
    mask, p = tok.mask_token_id, PROMPT.shape[1]
    cold = _dream(model, PROMPT, 8, mask)
    banned = int(cold[:, p:].flatten().mode().values)  # the token the model likes most here
    span = {p + 3: 20, p + 4: 21}
    dream_log, ours_log = [], []
    want = eager_dream(model, PROMPT, steps=8, gen_length=G, mask_id=mask, top_p=0.9,
                       **dict(zip(("logits_hook", "tokens_hook"), _hooks(banned, span, dream_log), strict=True)))
    lh, th = _hooks(banned, span, ours_log)
    got = _dream(model, PROMPT, 8, mask, top_p=0.9, generation_logits_hook_func=lh, generation_tokens_hook_func=th)
    assert torch.equal(got, want)
    assert ours_log == dream_log  # same calls, same steps (None first), same shapes: x [B, L], logits [B, L, V]
    assert ours_log[0] == ("tokens", None, (2, p + G), None)
    assert not (got[:, p:] == banned).any()
    assert all((got[:, col] == token).all() for col, token in span.items())


def test_logits_hook_sees_both_halves_with_cfg():
    model, tok = tiny_pair()
    calls = []

    def ban(step, x, logits):
        calls.append(step)
        logits = logits.clone()
        logits[:, :, 20] = -torch.inf
        return logits

    x, st = generate(model, PROMPT, steps=4, gen_length=8, block_length=4, mask_id=tok.mask_token_id, cfg_scale=1.0,
                     backend="reference", generation_logits_hook_func=ban, return_stats=True)
    assert not (x[:, PROMPT.shape[1]:] == 20).any()
    assert calls == [s for s in range(st.nfe) for _ in range(2)]  # conditional, then unconditional logits


@pytest.mark.parametrize(("kw", "kind", "match"), [
    ({"generation_logits_hook_func": 3}, TypeError, r"^generation_logits_hook_func: expected a callable"),
    ({"generation_tokens_hook_func": "x"}, TypeError, r"^generation_tokens_hook_func: expected a callable"),
    ({"top_p": 1.5}, ValueError, r"^top_p: expected a value <= 1.0"),
    ({"top_p": float("nan")}, ValueError, r"^top_p: expected a finite number"),
    ({"top_k": -1}, ValueError, r"^top_k: expected an int in"),
    ({"top_k": 2.0}, TypeError, r"^top_k: expected an int"),
    ({"alg_temp": -0.1}, ValueError, r"^alg_temp: expected a value >= 0.0"),
    ({"alg_temp": 1e-45}, ValueError, r"^alg_temp: expected 0 or a value whose fp32 inverse is finite"),
    ({"alg_temp": 0.5, "threshold": 0.9}, ValueError, r"^alg_temp: expected None or 0 with threshold/factor"),
    ({"eps": 0.1, "schedule": "llada"}, ValueError, r"^eps: expected the default 0.001 unless schedule='dream'"),
    ({"eps": 2.0}, ValueError, r"^eps: expected a value <= 1.0"),
    ({"temperature": 1e-45}, ValueError, r"^temperature: expected 0 or a value whose fp32 inverse is finite"),
])
def test_dream_arguments_are_validated_before_any_forward(kw, kind, match):
    model, tok = tiny_pair()
    rec = Recording(model)
    args = {"schedule": "dream", "logits_shift": True, **kw}
    with pytest.raises(kind, match=match):
        generate(rec, PROMPT, steps=4, gen_length=8, block_length=8, mask_id=tok.mask_token_id, **args)
    assert not rec.seen


@pytest.mark.parametrize("bad", ["shape", "dtype", "type"])
def test_a_hook_returning_the_wrong_thing_is_named(bad):
    model, tok = tiny_pair()

    def logits_hook(step, x, logits):
        return {"shape": logits[:, 1:], "dtype": logits.long(), "type": logits.tolist()}[bad]

    kind = TypeError if bad == "type" else ValueError
    with pytest.raises(kind, match=r"^generation_logits_hook_func: expected it to return a float tensor"):
        generate(model, PROMPT, steps=4, gen_length=8, block_length=8, mask_id=tok.mask_token_id,
                 generation_logits_hook_func=logits_hook)
