"""confidence_eos_eot_inf exactly as LLaDA's generate.py (issue 12 item 8).

LLaDA draws `x0 = argmax(logits_with_noise)` and only then writes
`logits_with_noise[:, :, EOS] = logits[:, :, EOT] = -inf`; the confidence is softmax(logits)[x0]. At T = 0
`add_gumbel_noise` returns `logits` itself, so EOS and EOT leave the confidence softmax (every other
position's confidence is renormalised) while x0 may still be EOS / EOT (confidence 0). warmkern used to keep
the full softmax and demote EOS / EOT scores instead, which commits positions in another order: the model
below makes the two rules disagree on the very first step.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from test_sampler_eager import eager_llada

from warmkern import generate

MASK, EOS, EOT, V = 1, 2, 3, 10
TINY = 1e-6


def _row(probs: dict[int, float]) -> list[float]:
    """Logits of one position: the given probabilities, the other ordinary tokens sharing what is left, the
    specials (pad, mask, EOS, EOT) tiny unless given."""
    rest = [t for t in range(4, V) if t not in probs]
    share = (1.0 - sum(probs.values())) / len(rest)
    p = [probs.get(t, TINY if t < 4 else share) for t in range(V)]
    return [math.log(q) for q in p]


# Answer positions: A = token 5 with EOS close behind (renormalised, A is the most confident), B = token 6
# alone (the most confident under the full softmax), C = EOS itself, D = EOT itself.
ANSWER = torch.tensor([_row({5: 0.50, EOS: 0.45}), _row({6: 0.60}), _row({EOS: 0.70}), _row({EOT: 0.60})])


class FixedLogits:
    """A model whose answer logits are ANSWER whatever it is shown; it records what it is shown."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def __call__(self, ids: torch.Tensor, attention_mask=None) -> torch.Tensor:
        self.seen.append(ids.clone())
        z = torch.zeros((ids.shape[0], ids.shape[1], V))
        z[:, -ANSWER.shape[0]:] = ANSWER
        return z

    def commit_order(self, final: torch.Tensor) -> list[int]:
        """Answer position committed at each step (one per step here)."""
        states = [*self.seen, final]
        order = []
        for before, after in itertools.pairwise(states):
            changed = (before[0, -4:] != after[0, -4:]).nonzero().flatten().tolist()
            assert len(changed) == 1
            order.extend(changed)
        return order


def _old_demotion_order() -> list[int]:
    """The rule warmkern had: full-softmax p(x0), positions whose x0 is EOS / EOT ranked last."""
    p = torch.softmax(ANSWER, -1)
    pick = ANSWER.clone()
    pick[:, MASK] = -math.inf
    x0 = pick.argmax(-1)
    conf = p.gather(-1, x0[:, None]).squeeze(-1)
    demoted = (x0 == EOS) | (x0 == EOT)
    return sorted(range(4), key=lambda g: (bool(demoted[g]), -float(conf[g]), g))


KW = dict(steps=4, gen_length=4, block_length=4, mask_id=MASK, eos_id=EOS, eot_id=EOT, confidence_eos_eot_inf=True)


def test_llada_rule_and_the_old_demotion_commit_in_different_orders():
    prompt = torch.tensor([[4, 7]])
    model = FixedLogits()
    got = generate(model, prompt, backend="reference", **KW)
    llada = FixedLogits()
    want = eager_llada(llada, prompt, None, **KW)
    assert torch.equal(got, want)
    order = model.commit_order(got)
    assert order == llada.commit_order(want) == [0, 1, 2, 3]  # A renormalised over the vocabulary minus EOS/EOT
    assert _old_demotion_order() == [1, 0, 2, 3]  # the demotion ranked B first: the test tells the rules apart
    assert got[0, -4:].tolist() == [5, 6, EOS, EOT]  # x0 may be EOS / EOT (drawn before the -inf write)


@pytest.mark.parametrize("temperature", [0.5, 1.0])
@pytest.mark.parametrize("logits_eos_inf", [False, True])
def test_llada_rule_at_temperature(temperature, logits_eos_inf):
    """T > 0: only EOT leaves the confidence softmax; EOS stays in it and may be drawn (LLaDA's write to the
    noisy copy comes after the draw); logits_eos_inf removes EOS from both."""
    prompt = torch.tensor([[4, 7]])
    kw = {**KW, "temperature": temperature, "logits_eos_inf": logits_eos_inf}
    for seed in range(6):
        model, llada = FixedLogits(), FixedLogits()
        got = generate(model, prompt, backend="reference", seed=seed, **kw)
        want = eager_llada(llada, prompt, None, seed=seed, **kw)
        assert torch.equal(got, want), seed
        assert model.commit_order(got) == llada.commit_order(want), seed
        if logits_eos_inf:
            assert EOS not in got[0, -4:].tolist()
