"""Infilling: a prompt holding mask_id is decoded the way LLaDA's generate does it (issue 12 item 9).

LLaDA's candidate set at every step is each masked position before the current block's end (the
prompt's holes included), while the step's count k comes from the current block's masks at block
start; so as many positions as the prompt held masks are still masked at the end.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from test_sampler import _backends
from test_sampler_eager import prompts, special_ids, tiny_pair

from warmkern import WarmStart, generate

NEG_INF = float("-inf")


def get_num_transfer_tokens(mask_index: torch.Tensor, steps: int) -> torch.Tensor:
    """LLaDA's: an even split of a block's masks over its steps, the first `remainder` steps one more."""
    mask_num = mask_index.sum(dim=1, keepdim=True)
    base = mask_num // steps
    remainder = mask_num % steps
    num_transfer_tokens = torch.zeros(mask_num.size(0), steps, dtype=torch.int64) + base
    for i in range(mask_num.size(0)):
        num_transfer_tokens[i, : remainder[i]] += 1
    return num_transfer_tokens


@torch.no_grad()
def llada_generate(model, prompt, attention_mask, *, steps, gen_length, block_length, cfg_scale, mask_id):
    """LLaDA's generate loop transcribed (temperature 0, remasking='low_confidence'), with the spec's two
    documented conventions: x0 never is mask_id, and ties go to the lower position (torch.topk's order)."""
    x = torch.full((prompt.shape[0], prompt.shape[1] + gen_length), mask_id, dtype=torch.long)
    x[:, : prompt.shape[1]] = prompt.clone()
    if attention_mask is not None:
        ones = torch.ones((prompt.shape[0], gen_length), dtype=attention_mask.dtype)
        attention_mask = torch.cat([attention_mask, ones], dim=-1)
    prompt_index = x != mask_id
    num_blocks = gen_length // block_length
    steps = steps // num_blocks
    for num_block in range(num_blocks):
        block_start = prompt.shape[1] + num_block * block_length
        block_mask_index = x[:, block_start : block_start + block_length] == mask_id
        num_transfer_tokens = get_num_transfer_tokens(block_mask_index, steps)
        for i in range(steps):
            mask_index = x == mask_id
            if cfg_scale > 0.0:
                un_x = x.clone()
                un_x[prompt_index] = mask_id
                both_mask = None if attention_mask is None else torch.cat([attention_mask, attention_mask], dim=0)
                logits = model(torch.cat([x, un_x], dim=0), attention_mask=both_mask).logits
                logits, un_logits = torch.chunk(logits, 2, dim=0)
                logits = un_logits + (cfg_scale + 1) * (logits - un_logits)
            else:
                logits = model(x, attention_mask=attention_mask).logits
            allowed = logits.clone()
            allowed[:, :, mask_id] = NEG_INF  # convention: x0 is never the mask token
            x0 = torch.argmax(allowed, dim=-1)
            p = torch.softmax(logits.float(), dim=-1)
            x0_p = torch.gather(p, dim=-1, index=x0.unsqueeze(-1)).squeeze(-1)
            x0_p[:, block_start + block_length :] = NEG_INF
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, NEG_INF)
            transfer_index = torch.zeros_like(x0, dtype=torch.bool)
            for j in range(confidence.shape[0]):
                conf = confidence[j].tolist()
                order = sorted(range(len(conf)), key=lambda g: (-conf[g], g))
                transfer_index[j, order[: int(num_transfer_tokens[j, i])]] = True
            x[transfer_index] = x0[transfer_index]
    return x


def _holed_prompts(tok, b: int):
    """Left-padded prompts with mask_id written into some prompt positions (row 1 of 3 has none)."""
    prompt, am = prompts(tok, b)
    prompt = prompt.clone()
    p = prompt.shape[1]
    prompt[0, p - 3] = tok.mask_token_id
    prompt[0, p - 6] = tok.mask_token_id
    if b > 2:
        prompt[2, p - 1] = tok.mask_token_id
    return prompt, am


@pytest.mark.parametrize(("b", "block_length", "steps", "cfg"), [
    (1, 16, 16, 0.0), (3, 4, 8, 0.0), (3, 8, 16, 1.0), (1, 4, 4, 0.0),
])
def test_infilling_matches_llada_token_for_token(b, block_length, steps, cfg):
    model, tok = tiny_pair()
    prompt, am = _holed_prompts(tok, b)
    kw = dict(steps=steps, gen_length=16, block_length=block_length, cfg_scale=cfg, mask_id=tok.mask_token_id)
    want = llada_generate(model, prompt, am, **kw)
    got, st = generate(model, prompt, am, backend="reference", return_stats=True, **kw)
    assert torch.equal(got, want)
    holes = (prompt == tok.mask_token_id).sum(1)
    assert ((got[:, : prompt.shape[1]] == tok.mask_token_id).sum(1) < holes).any()  # prompt holes were filled
    assert torch.equal((got == tok.mask_token_id).sum(1), holes)  # LLaDA's budget: as many masks stay
    assert st.nfe == steps and st.steps_per_block == [steps // (16 // block_length)] * (16 // block_length)


def _static_model(table: torch.Tensor):
    """A 'model' whose logits depend on the position only: confidences are known in advance."""

    def forward(ids, attention_mask=None):
        return SimpleNamespace(logits=table[: ids.shape[1]].expand(ids.shape[0], -1, -1))

    return forward


def test_infilling_hand_checked():
    """vocab 6, mask 5, prompt [1, M, 2], 2 blocks of 2, one token per step. Position p prefers token t_p
    with logit a_p: confidences rank 5 > 1 > 4 > 3 > 6.
    block 0: step 0 picks among {1, 3, 4} -> 1; step 1 among {3, 4} -> 4 (3 is left over, masked)
    block 1: step 0 among {3, 5, 6} -> 5; step 1 among {3, 6} -> 3. Position 6 stays masked."""
    prefer = {1: (3, 4.0), 3: (4, 2.0), 4: (0, 3.0), 5: (2, 5.0), 6: (1, 1.0)}
    table = torch.zeros(7, 6)
    for pos, (token, logit) in prefer.items():
        table[pos, token] = logit
    prompt = torch.tensor([[1, 5, 2]])
    x, st = generate(_static_model(table), prompt, steps=4, gen_length=4, block_length=2, mask_id=5,
                     backend="reference", return_stats=True)
    assert x.tolist() == [[1, 3, 2, 4, 0, 2, 5]]
    assert st.nfe == 4 and st.transfers_per_step == [[1]] * 4 and st.steps_per_block == [2, 2]
    assert torch.equal(x, llada_generate(_static_model(table), prompt, None, steps=4, gen_length=4, block_length=2,
                                         cfg_scale=0.0, mask_id=5))


@pytest.mark.parametrize("backend", _backends())
def test_infilling_agrees_across_backends(backend):
    model, tok = tiny_pair()
    prompt, am = _holed_prompts(tok, 3)
    kw = dict(steps=8, gen_length=8, block_length=4, cfg_scale=1.0, **special_ids(tok))
    assert torch.equal(generate(model, prompt, am, backend=backend, **kw),
                       generate(model, prompt, am, backend="reference", **kw))


def test_infilling_with_a_warm_start():
    """Rate 0 keeps nothing: the same as cold; a draft with remasking still leaves LLaDA's count of masks."""
    model, tok = tiny_pair()
    prompt, am = _holed_prompts(tok, 3)
    kw = dict(steps=8, gen_length=16, block_length=4, **special_ids(tok))
    cold = generate(model, prompt, am, **kw)
    draft = torch.randint(5, len(tok), (3, 16), generator=torch.Generator().manual_seed(0))
    assert torch.equal(generate(model, prompt, am, warm_start=WarmStart(draft, rate=0.0, remask_threshold=0.5), **kw),
                       cold)
    x, st = generate(model, prompt, am, warm_start=WarmStart(draft, rate=0.7, remask_threshold=0.2),
                     return_stats=True, **kw)
    assert st.injected > 0 and st.remasked > 0
    assert torch.equal((x == tok.mask_token_id).sum(1), (prompt == tok.mask_token_id).sum(1))
    assert torch.equal(x[:, : prompt.shape[1]][prompt != tok.mask_token_id], prompt[prompt != tok.mask_token_id])
