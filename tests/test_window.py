"""warmkern.window: the model computes the window rows only (logits_to_keep or a pre-hook on the LM head),
and the window's final hidden states + the head weight give the same statistics as the full logits."""

from __future__ import annotations

import pytest
import torch

from warmkern import ops, tiny, window
from warmkern.models import ModelAdapter


def _ids(vocab, b=2, length=12, seed=0):
    return torch.randint(0, vocab, (b, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shift", [False, True])
@pytest.mark.parametrize("kind", ["bert-hook", "llama-logits-to-keep"])
def test_window_logits_are_those_rows_of_the_full_logits(kind, shift):
    model = tiny.dllm()[0] if kind == "bert-hook" else tiny.drafter()[0]
    assert window.takes_index_logits_to_keep(model) == (kind != "bert-hook")
    adapter = ModelAdapter(model, logits_shift=shift)
    ids = _ids(model.config.vocab_size)
    full = adapter.region(adapter.forward(input_ids=ids), 5, 4)
    got = window.window_forward(adapter, start=5, length=4, hidden=False, input_ids=ids)
    torch.testing.assert_close(got, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shift", [False, True])
@pytest.mark.parametrize("kind", ["bert", "llama"])
def test_window_hidden_and_the_head_weight_give_the_full_logits_statistics(kind, shift):
    model = tiny.dllm()[0] if kind == "bert" else tiny.drafter()[0]
    adapter = ModelAdapter(model, logits_shift=shift)
    ids = _ids(model.config.vocab_size, seed=1)
    head = window.output_head(model)
    hidden = window.window_forward(adapter, start=5, length=4, hidden=True, input_ids=ids)
    assert hidden.shape == (2, 4, model.config.hidden_size)
    x = torch.full((2, 4), 4)
    want = ops.token_stats(adapter.region(adapter.forward(input_ids=ids), 5, 4).contiguous(), x, mask_id=4,
                           score="margin", backend="reference")
    got = ops.head_token_stats(hidden.contiguous(), head.weight, x, bias=head.bias, mask_id=4, score="margin", chunk=16)
    assert torch.equal(got[0], want[0])
    torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-6)


def test_a_model_without_a_linear_head_is_a_named_error():
    def model(input_ids, **kw):
        return torch.zeros(input_ids.shape[0], input_ids.shape[1], 7)

    with pytest.raises(ValueError, match="get_output_embeddings"):
        window.window_forward(ModelAdapter(model), start=1, length=2, hidden=False, input_ids=_ids(7))
