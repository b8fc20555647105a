"""Embedding mode and ids the embedding table cannot hold (issue 12 item 1, the sampler's side).

After its first step the sampler calls `warm_embed` without value checks (no host sync per step). A model
whose logits vocabulary is larger than its input embedding table can propose ids past the table; the op
then writes a zero row and raises its `status` flag, and the sampler turns the flag into a clear error at
its next host sync, naming the model and the id.
"""

from __future__ import annotations

import pytest
import torch

from warmkern import WarmStart, generate

TABLE, LOGITS_V, MASK = 20, 26, 19


class WideHead(torch.nn.Module):
    """A bidirectional LM with 20 embedding rows and 26 logits, the extra ones (20..25) strongly preferred."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(TABLE, 8)
        self.head = torch.nn.Linear(8, LOGITS_V)
        with torch.no_grad():
            self.head.bias[TABLE:] += 20.0
        self.calls = 0

    def get_input_embeddings(self):
        return self.emb

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None):
        self.calls += 1
        h = self.emb(input_ids) if inputs_embeds is None else inputs_embeds
        return self.head(torch.tanh(h + h.mean(dim=1, keepdim=True)))


@pytest.mark.parametrize("rule", [{}, {"threshold": 0.5}], ids=["fixed", "threshold"])
def test_an_id_past_the_embedding_table_is_a_clear_error_at_the_next_sync(rule):
    model = WideHead()
    prompt = torch.tensor([[1, 2, 3]])
    ws = WarmStart(torch.full((1, 8), 5), mode="embedding", alpha=0.5)
    with pytest.raises(ValueError, match=rf"^model: its logits vocabulary \(V={LOGITS_V}\) is larger than its input "
                                         rf"embedding table \({TABLE} rows\); token id 2[0-5].* cannot be embedded"):
        generate(model, prompt, steps=8, gen_length=8, block_length=2, mask_id=MASK, warm_start=ws,
                 backend="reference", **rule)
    # step 0 commits an id past the table, step 1 embeds it (the flag), the read that follows raises
    assert model.calls == 2


def test_ids_inside_the_table_raise_nothing():
    model = WideHead()
    with torch.no_grad():
        model.head.bias[TABLE:] -= 40.0  # the extra logits are never chosen
    ws = WarmStart(torch.full((1, 8), 5), mode="embedding", alpha=0.5)
    x = generate(model, torch.tensor([[1, 2, 3]]), steps=8, gen_length=8, block_length=2, mask_id=MASK, warm_start=ws,
                 backend="reference")
    assert (x[0, 3:] < TABLE).all() and (x[0, 3:] != MASK).all()
