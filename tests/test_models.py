"""Model adapter: output types, shifted logits, embeddings reproduced exactly, clear errors."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from test_sampler_eager import prompts, special_ids, tiny_pair

from warmkern import WarmStart, generate, ops
from warmkern.models import ModelAdapter


def _gen() -> torch.Generator:
    """A fixed generator, so test data does not depend on which tests ran before."""
    return torch.Generator().manual_seed(1234)


class ScaledEmbedding(torch.nn.Embedding):
    """Like Gemma's scaled word embedding: the lookup times a constant."""

    def __init__(self, n: int, d: int, scale: float) -> None:
        super().__init__(n, d)
        self.embed_scale = scale

    def forward(self, ids):
        return super().forward(ids) * self.embed_scale


class EmbedOnly(torch.nn.Module):
    """A minimal bidirectional LM that takes inputs_embeds and returns a plain logits tensor."""

    def __init__(self, vocab: int = 11, d: int = 8, scale: float = 1.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = ScaledEmbedding(vocab, d, scale) if scale != 1.0 else torch.nn.Embedding(vocab, d)
        self.mix = torch.nn.Linear(d, d)
        self.head = torch.nn.Linear(d, vocab)

    def get_input_embeddings(self):
        return self.emb

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None):
        h = self.emb(input_ids) if inputs_embeds is None else inputs_embeds
        h = h + self.mix(h.mean(dim=1, keepdim=True))  # every position sees every other one
        return self.head(torch.tanh(h))


class IdsOnly(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = EmbedOnly()

    def forward(self, input_ids, attention_mask=None):
        return self.inner(input_ids)


@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_warm_embed_alpha_zero_equals_the_models_own_embedding(scale):
    model = EmbedOnly(scale=scale)
    emb = ModelAdapter(model).embedding()
    assert emb.scale == scale
    ids = torch.tensor([[1, 4, 10, 3, 0], [10, 10, 2, 5, 6]])  # 10 plays the mask token
    draft = torch.tensor([[2, -1, 7, 3, 1], [4, 5, -1, 9, 8]])
    got = ops.warm_embed(emb.weight, ids, draft, torch.ones_like(ids, dtype=torch.bool), mask_id=10, alpha=0.0,
                         scale=emb.scale)
    assert torch.equal(got, model.get_input_embeddings()(ids))


def test_warm_embed_alpha_zero_equals_bert_word_embeddings():
    model, tok = tiny_pair()
    emb = ModelAdapter(model).embedding()
    ids = torch.randint(0, len(tok), (2, 7), generator=_gen())
    ids[0, 2] = tok.mask_token_id
    draft = torch.randint(0, len(tok), (2, 7), generator=_gen())
    keep = torch.ones(2, 7, dtype=torch.bool)
    got = ops.warm_embed(emb.weight, ids, draft.flip(1), keep, mask_id=tok.mask_token_id, alpha=0.0, scale=emb.scale)
    assert torch.equal(got, model.get_input_embeddings()(ids))
    # and BERT's inputs_embeds replaces only the word embeddings: same logits as from ids
    with torch.no_grad():
        a = model(input_ids=ids).logits
        b = model(inputs_embeds=got).logits
    assert torch.equal(a, b)


def test_embedding_mode_works_with_a_plain_tensor_model():
    model = EmbedOnly(scale=2.5)
    prompt = torch.tensor([[1, 2, 3]])
    cold = generate(model, prompt, steps=4, gen_length=4, block_length=4, mask_id=10)
    ws = WarmStart(torch.tensor([[4, 5, 6, 7]]), mode="embedding", alpha=0.0)
    assert torch.equal(generate(model, prompt, steps=4, gen_length=4, block_length=4, mask_id=10, warm_start=ws), cold)


def test_model_without_inputs_embeds_in_embedding_mode():
    ws = WarmStart(torch.tensor([[4, 5, 6, 7]]), mode="embedding")
    with pytest.raises(ValueError, match=r"warm_start\.mode='embedding'.*inputs_embeds"):
        generate(IdsOnly(), torch.tensor([[1, 2, 3]]), steps=4, gen_length=4, block_length=4, mask_id=10,
                 warm_start=ws)
    # token mode needs nothing special
    out = generate(IdsOnly(), torch.tensor([[1, 2, 3]]), steps=4, gen_length=4, block_length=4, mask_id=10,
                   warm_start=WarmStart(torch.tensor([[4, 5, 6, 7]]), rate=0.5))
    assert out.shape == (1, 7)


def test_embedding_that_is_not_a_lookup_is_refused():
    model = EmbedOnly()
    model.emb.forward = lambda ids: torch.nn.functional.embedding(ids, model.emb.weight) + 1.0
    with pytest.raises(ValueError, match="not a \\(scaled\\) table lookup"):
        ModelAdapter(model).embedding()


def test_output_types():
    model = EmbedOnly()
    x = torch.tensor([[1, 2, 3, 4]])
    want = model(x)
    for f in (lambda ids: want, lambda ids: (want, None), lambda ids: SimpleNamespace(logits=want)):
        assert torch.equal(ModelAdapter(f).forward(input_ids=x), want)
    with pytest.raises(TypeError, match="model"):
        ModelAdapter(lambda ids: {"nope": 1}).forward(input_ids=x)
    with pytest.raises(ValueError, match="model"):
        ModelAdapter(lambda ids: want[0]).forward(input_ids=x)


def test_logits_shift_reads_the_previous_position():
    logits = torch.arange(2 * 6 * 3, dtype=torch.float32).reshape(2, 6, 3)
    assert torch.equal(ModelAdapter(lambda i: i, logits_shift=True).region(logits, 2, 3), logits[:, 1:4])
    assert torch.equal(ModelAdapter(lambda i: i).region(logits, 2, 3), logits[:, 2:5])
    with pytest.raises(ValueError, match="logits_shift"):
        ModelAdapter(lambda i: i, logits_shift=True).region(logits, 0, 3)


def test_dream_attention_mask_becomes_4d_with_positions():
    model = EmbedOnly()
    model.config = SimpleNamespace(model_type="Dream")
    ad = ModelAdapter(model)
    am = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    full, pos = ad.prepare_attention_mask(am)
    assert full.shape == (2, 1, 4, 4) and full.dtype == torch.bool
    assert not full[0, 0, 0].any() and full[0, 0, 1, 1:].all()
    assert pos.tolist() == [[1, 0, 1, 2], [0, 1, 2, 3]]
    assert ad.prepare_attention_mask(torch.ones(2, 4, dtype=torch.long)) == (None, None)
    generic = ModelAdapter(EmbedOnly())
    assert generic.prepare_attention_mask(am)[0] is am


def test_prompt_and_device_handling_with_hf_model():
    model, tok = tiny_pair()
    prompt, am = prompts(tok, 2)
    ad = ModelAdapter(model)
    assert ad.device.type == "cpu" and ad.vocab_size == len(tok)
    x = generate(model, prompt, am, steps=2, gen_length=4, block_length=4, **special_ids(tok))
    assert torch.equal(x[:, : prompt.shape[1]], prompt)
