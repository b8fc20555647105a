"""WarmStart.from_causal_lm as a new user calls it: one prompt as a str, bad lengths, empty prompts and
drafts, a fill token outside the vocabulary (issue 12 item 13)."""

from __future__ import annotations

import pytest
import torch
from test_sampler_eager import prompts, special_ids, tiny_pair

from warmkern import WarmStart, generate, tiny

G = 12


class EosDrafter:
    """A drafter that ends at once: its draft is empty."""

    def __init__(self, eos_id: int) -> None:
        self.eos_id = eos_id

    def generate(self, input_ids, attention_mask=None, **kwargs):
        return torch.cat([input_ids, torch.full((input_ids.shape[0], 1), self.eos_id)], dim=1)


def test_a_str_is_one_prompt():
    aux, aux_tok = tiny.drafter()
    _, tok = tiny_pair()
    one, texts = WarmStart.from_causal_lm(aux, aux_tok, tok, "how many coins are left", G, max_new_tokens=10)
    listed, listed_texts = WarmStart.from_causal_lm(aux, aux_tok, tok, ["how many coins are left"], G,
                                                    max_new_tokens=10)
    assert one.draft.shape == (1, G) and len(texts) == 1
    assert texts == listed_texts and torch.equal(one.draft, listed.draft)


def test_max_new_tokens_zero_is_refused():
    aux, aux_tok = tiny.drafter()
    _, tok = tiny_pair()
    with pytest.raises(ValueError, match=r"^max_new_tokens: expected"):
        WarmStart.from_causal_lm(aux, aux_tok, tok, ["tom has 3"], G, max_new_tokens=0)
    with pytest.raises(TypeError, match=r"^max_new_tokens: expected"):
        WarmStart.from_causal_lm(aux, aux_tok, tok, ["tom has 3"], G, max_new_tokens="8")


@pytest.mark.parametrize(("given", "bad"), [(["tom has 3", ""], 1), ([""], 0)])
def test_an_empty_prompt_is_named(given, bad):
    aux, aux_tok = tiny.drafter()
    _, tok = tiny_pair()
    with pytest.raises(ValueError, match=rf"^prompts\[{bad}\]: expected a prompt of at least one token"):
        WarmStart.from_causal_lm(aux, aux_tok, tok, given, G)


def test_an_empty_draft_leaves_the_answer_to_the_dllm():
    """fill_tail completes a draft; a drafter that says nothing must not answer all-EOS at nfe = 0."""
    aux_tok = tiny.char_tokenizer()
    model, tok = tiny_pair()
    ws, texts = WarmStart.from_causal_lm(EosDrafter(aux_tok.eos_token_id), aux_tok, tok, ["tom has 3", "how many"],
                                         G, fill_tail=tok.eos_token_id)
    assert texts == ["", ""]
    assert (ws.prior() == -1).all()
    prompt, am = prompts(tok, 2)
    kw = dict(steps=G, gen_length=G, block_length=4, return_stats=True, **special_ids(tok))
    cold, cold_stats = generate(model, prompt, am, **kw)
    warm, warm_stats = generate(model, prompt, am, warm_start=ws, **kw)
    assert warm_stats.nfe == cold_stats.nfe > 0
    assert torch.equal(warm, cold)


def test_a_non_empty_draft_still_gets_its_tail():
    aux, aux_tok = tiny.drafter()
    _, tok = tiny_pair()
    ws, _ = WarmStart.from_causal_lm(aux, aux_tok, tok, ["tom has 3"], G, max_new_tokens=4, fill_tail=tok.eos_token_id)
    drafted = int((ws.draft[0] != tok.eos_token_id).sum())
    assert 0 < drafted <= 4 and (ws.prior()[0, drafted:] == tok.eos_token_id).all()


def test_fill_tail_outside_the_vocabulary_is_named():
    model, tok = tiny_pair()
    prompt, am = prompts(tok, 1)
    ws = WarmStart(torch.tensor([[5, 6, -1, -1]]), fill_tail=len(tok))
    with pytest.raises(ValueError, match=r"^warm_start\.fill_tail: expected a token id in \[0, "):
        generate(model, prompt, am, steps=4, gen_length=4, block_length=4, warm_start=ws, **special_ids(tok))
