"""The draft as a logit prior (issue 14 item 1, the sampler's side): `WarmStart(draft, mode="prior", beta)`
keeps the answer masked and passes `prior_ids` / `prior_bias` on every step; `beta` with `mode="token"`
gives the prior to kept positions that hold no injected token (remasked ones).

The oracle is a model that adds beta to the logit of the kept draft token at every position it is shown
masked: the ops apply the prior to the logits before everything else, so both decode the same tokens.
"""

from __future__ import annotations

import pytest
import torch
from test_sampler_eager import prompts, special_ids, tiny_pair

from warmkern import WarmStart, generate, rng

G, BLK, STEPS = 16, 4, 8


def _draft(tok, b: int = 3) -> torch.Tensor:
    d = torch.randint(5, len(tok), (b, G), generator=torch.Generator().manual_seed(7))
    d[1, 10:] = -1
    return d


class PriorOracle(torch.nn.Module):
    """Adds beta[b] to the logit of kept[b, g] at every answer position the model is shown masked."""

    def __init__(self, model, kept: torch.Tensor, beta: torch.Tensor, prompt_len: int, mask_id: int) -> None:
        super().__init__()
        self.inner, self.kept, self.beta, self.p, self.mask_id = model, kept, beta, prompt_len, mask_id

    def forward(self, input_ids, attention_mask=None):
        z = self.inner(input_ids=input_ids, attention_mask=attention_mask).logits.float()
        ans = z[:, self.p :]
        masked = input_ids[:, self.p :] == self.mask_id
        hit = (torch.arange(z.shape[-1]) == self.kept.unsqueeze(-1)) & masked.unsqueeze(-1)
        z[:, self.p :] = torch.where(hit, ans + self.beta.reshape(-1, 1, 1), ans)
        return z


def _kept(draft: torch.Tensor, rate: float, seed, mask_id: int) -> torch.Tensor:
    keep = rng.keep_mask(seed, rate, tuple(draft.shape))
    return torch.where(keep & (draft >= 0) & (draft != mask_id), draft, -1)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
@pytest.mark.parametrize("rule", [{}, {"threshold": 0.3}, {"factor": 2.0}, {"schedule": "dream"}],
                         ids=["topk", "threshold", "factor", "dream"])
@pytest.mark.parametrize(("rate", "beta"), [(1.0, 1.0), (0.6, torch.tensor([0.5, 2.0, -1.0]))])
def test_prior_equals_a_model_with_the_bias_added(rule, temperature, rate, beta):
    model, tok = tiny_pair()
    prompt, am = prompts(tok, 3)
    draft, seeds = _draft(tok), torch.tensor([3, 4, 5])
    kw = dict(steps=STEPS, gen_length=G, block_length=BLK, temperature=temperature, seed=seeds, backend="reference",
              return_stats=True, **rule, **special_ids(tok))
    x, st = generate(model, prompt, am, warm_start=WarmStart(draft, mode="prior", rate=rate, beta=beta), **kw)
    bias = torch.as_tensor(beta, dtype=torch.float32).expand(3)
    oracle = PriorOracle(model, _kept(draft, rate, seeds, tok.mask_token_id), bias, prompt.shape[1], tok.mask_token_id)
    want, ost = generate(oracle, prompt, am, **kw)
    assert torch.equal(x, want)
    assert st.injected == st.survived == st.remasked == 0  # a prior injects nothing
    assert st.transfers_per_step == ost.transfers_per_step and st.planned_steps_per_block == ost.planned_steps_per_block


def test_mode_prior_defaults_to_beta_one_and_beta_zero_is_cold():
    model, tok = tiny_pair()
    prompt, am = prompts(tok, 3)
    draft = _draft(tok)
    kw = dict(steps=STEPS, gen_length=G, block_length=BLK, backend="reference", **special_ids(tok))
    assert WarmStart(draft, mode="prior").prior_bias == 1.0 and WarmStart(draft).prior_bias is None
    cold = generate(model, prompt, am, **kw)
    assert torch.equal(generate(model, prompt, am, warm_start=WarmStart(draft, mode="prior", beta=0.0), **kw), cold)
    one = generate(model, prompt, am, warm_start=WarmStart(draft, mode="prior"), **kw)
    assert torch.equal(one, generate(model, prompt, am, warm_start=WarmStart(draft, mode="prior", beta=1.0), **kw))
    assert not torch.equal(one, cold)


def test_token_injection_with_beta_gives_the_prior_to_remasked_positions_only():
    """Injected tokens carry no prior (their p_cur is the dLLM's own belief); once remasked, a position gets it."""
    model, tok = tiny_pair()
    prompt, am = prompts(tok, 3)
    draft, mask = _draft(tok), tok.mask_token_id
    kw = dict(steps=STEPS, gen_length=G, block_length=BLK, seed=9, backend="reference", return_stats=True,
              **special_ids(tok))
    ws = dict(rate=0.7, remask_threshold=0.3)
    x, st = generate(model, prompt, am, warm_start=WarmStart(draft, beta=1.5, **ws), **kw)
    oracle = PriorOracle(model, _kept(draft, 0.7, 9, mask), torch.full((3,), 1.5), prompt.shape[1], mask)
    want, ost = generate(oracle, prompt, am, warm_start=WarmStart(draft, **ws), **kw)
    assert torch.equal(x, want)
    assert st.remasked > 0 and st.injected == ost.injected > 0  # the prior changes nothing about injection
    plain = generate(model, prompt, am, warm_start=WarmStart(draft, **ws), **kw)[0]
    assert not torch.equal(plain, x)  # ...but the remasked positions decode with it


@pytest.mark.parametrize("kw", [{"cfg_scale": 1.0}, {"cfg_scale": 1.0, "temperature": 1.0},
                                {"threshold": 0.5, "temperature": 1.0}, {"factor": 1.0}])
def test_a_strong_prior_copies_the_draft_with_cfg_and_temperature(kw):
    model, tok = tiny_pair()
    prompt, am = prompts(tok, 3)
    draft = _draft(tok)
    draft[1, 10:] = 7
    x, st = generate(model, prompt, am, steps=STEPS, gen_length=G, block_length=BLK, backend="reference", seed=1,
                     warm_start=WarmStart(draft, mode="prior", beta=60.0), return_stats=True, **kw, **special_ids(tok))
    assert torch.equal(x[:, prompt.shape[1]:], draft)
    assert st.injected == 0
    if "threshold" in kw or "factor" in kw:  # every position is certain at once: one step per block
        assert st.steps_per_block == [1] * (G // BLK)


def test_prior_mode_does_not_inject_and_the_answer_starts_masked():
    model, tok = tiny_pair()
    prompt, am = prompts(tok, 3)
    seen = []

    def recording(ids, attention_mask=None):
        seen.append(ids.clone())
        return model(ids, attention_mask=attention_mask).logits

    _, st = generate(recording, prompt, am, steps=STEPS, gen_length=G, block_length=BLK, backend="reference",
                     warm_start=WarmStart(_draft(tok), mode="prior"), return_stats=True, **special_ids(tok))
    assert (seen[0][:, prompt.shape[1]:] == tok.mask_token_id).all()
    assert st.injected == 0 and st.planned_steps_per_block == [STEPS // (G // BLK)] * (G // BLK)


@pytest.mark.parametrize(("beta", "kind", "match"), [
    (float("nan"), ValueError, r"^warm_start\.beta: expected a finite number, got nan"),
    (float("inf"), ValueError, r"^warm_start\.beta: expected a finite number"),
    ("1", TypeError, r"^warm_start\.beta: expected a float, got str"),
    (torch.tensor([1.0, 2.0]), ValueError, r"^warm_start\.beta: expected a number or a tensor of shape \(3,\)"),
    (torch.tensor([1, 2, 3]), TypeError, r"^warm_start\.beta: expected a float tensor"),
    (torch.tensor([1.0, float("inf"), 0.0]), ValueError, r"^warm_start\.beta: expected finite values"),
])
def test_beta_is_validated(beta, kind, match):
    with pytest.raises(kind, match=match):
        WarmStart(torch.zeros((3, 4), dtype=torch.long), mode="prior", beta=beta)


def test_from_causal_lm_passes_beta():
    from warmkern import tiny

    aux, aux_tok = tiny.drafter()
    _, tok = tiny_pair()
    ws, _ = WarmStart.from_causal_lm(aux, aux_tok, tok, ["tom has 3"], 8, max_new_tokens=6, mode="prior", beta=0.7)
    assert ws.mode == "prior" and ws.prior_bias == 0.7
