"""Warm start: token injection with remasking, embedding interpolation, and the draft bridge."""

from __future__ import annotations

import pytest
import torch
from test_sampler_eager import prompts, special_ids, tiny_pair

from warmkern import WarmStart, draft_from_texts, generate, rng, tiny

G, BLK, STEPS = 16, 4, 8


def _gen() -> torch.Generator:
    """A fixed generator, so test data does not depend on which tests ran before."""
    return torch.Generator().manual_seed(1234)


class Recorder(torch.nn.Module):
    """Wraps a model and keeps a copy of every input it is called with."""

    def __init__(self, model):
        super().__init__()
        self.inner = model
        self.ids: list[torch.Tensor] = []
        self.embeds: list[torch.Tensor] = []

    def get_input_embeddings(self):
        return self.inner.get_input_embeddings()

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None):
        if inputs_embeds is not None:
            self.embeds.append(inputs_embeds.clone())
        else:
            self.ids.append(input_ids.clone())
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds)


def _cold(b=3, **kw):
    model, tok = tiny_pair()
    prompt, am = prompts(tok, b)
    args = dict(steps=STEPS, gen_length=G, block_length=BLK, **special_ids(tok), **kw)
    x, st = generate(model, prompt, am, return_stats=True, **args)
    return model, tok, prompt, am, args, x, st


def test_rate_zero_equals_cold():
    model, tok, prompt, am, args, cold, cst = _cold()
    draft = torch.randint(5, len(tok), (3, G), generator=_gen())
    for ws in (WarmStart(draft, rate=0.0, remask_threshold=0.5), WarmStart(draft, mode="embedding", rate=0.0)):
        x, st = generate(model, prompt, am, warm_start=ws, return_stats=True, **args)
        assert torch.equal(x, cold)
        assert st.nfe == cst.nfe and st.injected == 0


def test_draft_equal_to_cold_output_needs_no_forward():
    model, _, prompt, am, args, cold, _ = _cold()
    x, st = generate(model, prompt, am, warm_start=WarmStart(cold[:, prompt.shape[1]:]), return_stats=True, **args)
    assert torch.equal(x, cold)
    assert st.nfe == 0 and st.steps_per_block == [0] * (G // BLK) and st.nfe_per_row == [0, 0, 0]
    assert st.injected == st.survived == 3 * G and st.remasked == 0


def test_verifying_forward_once_per_block():
    model, tok, prompt, am, args, cold, _ = _cold()
    p = prompt.shape[1]
    with torch.no_grad():
        full_mask = torch.cat([am, torch.ones(3, G, dtype=am.dtype)], 1)
        probs = torch.softmax(model(cold, attention_mask=full_mask).logits, -1)
    p_cur = probs[:, p:].gather(-1, cold[:, p:, None]).squeeze(-1)
    ws = WarmStart(cold[:, p:], remask_threshold=float(p_cur.min()) * 0.5)
    x, st = generate(model, prompt, am, warm_start=ws, return_stats=True, **args)
    assert torch.equal(x, cold)
    assert st.nfe == G // BLK and st.steps_per_block == [1] * (G // BLK)
    assert st.remasked == 0 and st.survived == 3 * G
    # a threshold above every probability remasks everything, once, and decoding still completes
    x, st = generate(model, prompt, am, warm_start=WarmStart(cold[:, p:], remask_threshold=1.0), return_stats=True,
                     **args)
    assert st.remasked == 3 * G and st.survived == 0
    assert (x[:, p:] != tok.mask_token_id).all()


def test_keep_mask_is_philox_stream_two():
    model, tok, prompt, am, args, _, _ = _cold(seed=7)
    draft = torch.full((3, G), tok.convert_tokens_to_ids("cat"))
    draft[:, -3:] = -1
    rec = Recorder(model)
    _, st = generate(rec, prompt, am, warm_start=WarmStart(draft, rate=0.5), return_stats=True, **args)
    keep = rng.keep_mask(7, 0.5, (3, G)) & (draft >= 0)
    first = rec.ids[0][:, prompt.shape[1]:]
    assert torch.equal(first == draft, keep)
    assert st.injected == int(keep.sum())


def test_remasking_touches_only_provisional_tokens_in_the_active_block():
    model, tok, prompt, am, args, _, _ = _cold()
    p, mask = prompt.shape[1], tok.mask_token_id
    draft = torch.randint(5, len(tok), (3, G), generator=_gen())
    draft[1, 5:] = -1
    rec = Recorder(model)
    x, st = generate(rec, prompt, am, warm_start=WarmStart(draft, rate=0.7, remask_threshold=0.3, remask_max=2),
                     return_stats=True, **args)
    seq = [*rec.ids, x]
    injected = (seq[0][:, p:] != mask)
    assert st.remasked > 0 and st.injected == int(injected.sum())
    assert all(r <= 2 for step in st.remasks_per_step for r in step)  # remask_max per row per step
    block_of_step = [j for j, n in enumerate(st.steps_per_block) for _ in range(n)]
    ever_remasked = torch.zeros_like(injected)
    for t in range(len(seq) - 1):
        a, b = seq[t], seq[t + 1]
        assert torch.equal(a[:, :p], prompt)  # prompt never changes
        remasked = (a != mask) & (b == mask)
        remasked = remasked[:, p:]
        assert not (remasked & ~injected).any()  # only injected (provisional) tokens
        assert not (remasked & ever_remasked).any()  # at most once
        lo = block_of_step[t] * BLK
        outside = torch.ones(G, dtype=torch.bool)
        outside[lo : lo + BLK] = False
        assert not remasked[:, outside].any()  # only inside the active block
        changed = (a != b)[:, p:] & (a[:, p:] != mask)
        assert not (changed & ~remasked).any()  # a committed token is only ever changed by remasking it
        ever_remasked |= remasked
    assert int(ever_remasked.sum()) == st.remasked


def test_embedding_alpha_zero_equals_cold():
    model, tok, prompt, am, args, cold, cst = _cold(cfg_scale=1.0)
    ws = WarmStart(torch.randint(5, len(tok), (3, G), generator=_gen()), mode="embedding", alpha=0.0)
    x, st = generate(model, prompt, am, warm_start=ws, return_stats=True, **args)
    assert torch.equal(x, cold) and st.nfe == cst.nfe


def test_embedding_inputs_follow_the_alpha_schedule():
    model, tok, prompt, am, args, _, _ = _cold(b=1)
    p, mask = prompt.shape[1], tok.mask_token_id
    w = model.get_input_embeddings().weight
    draft = torch.randint(5, len(tok), (1, G), generator=_gen())
    draft[0, -2:] = -1
    rec = Recorder(model)
    ws = WarmStart(draft, mode="embedding", alpha=0.8, alpha_schedule="linear")
    x, st = generate(rec, prompt, am, warm_start=ws, return_stats=True, **args)
    assert len(rec.embeds) == st.nfe == STEPS and not rec.ids
    plan = STEPS // (G // BLK)
    final = x[0, p:]
    for t, e in enumerate(rec.embeds):
        assert torch.equal(e[0, :p], w[prompt[0]])  # the prompt embeds as itself
        a = 0.8 * (1 - (t % plan) / plan)
        mixed = torch.where((draft[0] >= 0)[:, None], (1 - a) * w[mask] + a * w[draft[0].clamp(min=0)], w[mask])
        decoded = (e[0, p:] == w[final]).all(-1)
        torch.testing.assert_close(e[0, p:][~decoded], mixed[~decoded], rtol=1e-6, atol=1e-7)
        assert int(decoded.sum()) == sum(sum(r) for r in st.transfers_per_step[:t])  # decoded rows embed as tokens


def test_fill_tail_prior():
    d = torch.tensor([[5, 6, -1, -1], [-1, -1, -1, -1], [1, -1, 2, -1]])
    ws = WarmStart(d, fill_tail=9)
    assert ws.prior().tolist() == [[5, 6, 9, 9], [9, 9, 9, 9], [1, -1, 2, 9]]
    assert torch.equal(WarmStart(d).prior(), d)


def test_draft_from_texts_truncates_pads_and_fills():
    tok = tiny.dllm_tokenizer()
    cat, dog = tok.convert_tokens_to_ids(["cat", "dog"])
    d = draft_from_texts(["cat dog cat dog", "dog"], tok, 3)
    assert d.tolist() == [[cat, dog, cat], [dog, -1, -1]]
    d = draft_from_texts(["dog"], tok, 3, fill_tail=tok.eos_token_id)
    assert d.tolist() == [[dog, tok.eos_token_id, tok.eos_token_id]]
    raw = draft_from_texts(["cat dog"], tok.backend_tokenizer, 3)  # a bare tokenizers.Tokenizer works too
    assert raw.tolist() == [[cat, dog, -1]]


def test_bridge_round_trips_between_different_tokenizers():
    words, chars = tiny.dllm_tokenizer(), tiny.char_tokenizer()
    text = "tom has 12 apples and ann gives him 3 more"
    c_ids = chars(text, add_special_tokens=False)["input_ids"]
    back = chars.decode(c_ids)
    assert back == text
    d = draft_from_texts([back], words, 32)
    n = int((d >= 0).sum())
    assert words.decode(d[0, :n].tolist()) == "tom has 1 2 apples and ann gives him 3 more"
    assert words.decode(words(text, add_special_tokens=False)["input_ids"]) == words.decode(d[0, :n].tolist())


def test_from_causal_lm_with_a_different_tokenizer():
    aux, aux_tok = tiny.drafter()
    _, tok = tiny_pair()
    ws, texts = WarmStart.from_causal_lm(aux, aux_tok, tok, ["tom has 3", "how many coins are left"], 12,
                                         max_new_tokens=10, remask_threshold=0.4, fill_tail=tok.eos_token_id)
    assert isinstance(texts, list) and len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert ws.draft.shape == (2, 12) and ws.mode == "token" and ws.remask_threshold == 0.4
    assert torch.equal(ws.draft, draft_from_texts(texts, tok, 12, fill_tail=tok.eos_token_id))
    # greedy and batched: a single-prompt run gives the same draft as its row in the batch
    _, alone = WarmStart.from_causal_lm(aux, aux_tok, tok, ["how many coins are left"], 12, max_new_tokens=10)
    assert alone[0] == texts[1]


def test_from_causal_lm_with_identical_vocabularies_skips_the_text():
    from transformers import LlamaConfig, LlamaForCausalLM

    _, tok = tiny_pair()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    aux = LlamaForCausalLM(cfg).eval()
    tok.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    try:
        msgs = [[{"role": "user", "content": "tom has 3 apples"}], [{"role": "user", "content": "how many"}]]
        ws, _ = WarmStart.from_causal_lm(aux, tok, tok, msgs, 8, max_new_tokens=6, mode="embedding", alpha=0.3)
        enc = tok(["tom has 3 apples ", "how many "], return_tensors="pt", padding=True, padding_side="left",
                  add_special_tokens=False)
        out = aux.generate(**enc, max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id)
    finally:
        tok.chat_template = None
    new = out[:, enc["input_ids"].shape[1]:]
    for r in range(2):
        row = new[r].tolist()
        cut = row.index(tok.eos_token_id) if tok.eos_token_id in row else len(row)
        assert ws.draft[r, :cut].tolist() == row[:cut]  # ids taken as they are, [UNK] and all
        assert (ws.draft[r, cut:] == -1).all()
    assert ws.mode == "embedding" and ws.alpha == 0.3


@pytest.mark.parametrize(("kw", "name"), [
    ({"mode": "tokens"}, "warm_start.mode"),
    ({"rate": 1.5}, "warm_start.rate"),
    ({"alpha": -0.1}, "warm_start.alpha"),
    ({"alpha_schedule": "cosine"}, "warm_start.alpha_schedule"),
    ({"mode": "embedding", "remask_threshold": 0.5}, "warm_start.remask_threshold"),
    ({"remask_max": -1}, "warm_start.remask_max"),
    ({"fill_tail": -2}, "warm_start.fill_tail"),
])
def test_warm_start_validation(kw, name):
    with pytest.raises(ValueError, match=name):
        WarmStart(torch.zeros((1, 4), dtype=torch.long), **kw)
    with pytest.raises(ValueError, match=r"warm_start\.draft"):
        WarmStart(torch.zeros(4, dtype=torch.long))


def test_draft_ids_outside_the_vocabulary():
    model, tok = tiny_pair()
    prompt, am = prompts(tok, 1)
    with pytest.raises(ValueError, match=r"warm_start\.draft"):
        generate(model, prompt, am, steps=4, gen_length=4, block_length=4, mask_id=tok.mask_token_id,
                 warm_start=WarmStart(torch.tensor([[1, 2, len(tok), -1]])))


@pytest.mark.parametrize("rule", [{}, {"threshold": 0.2}])
def test_rows_decode_as_if_alone(rule):
    """Rows with different drafts plan different step counts; each still decodes exactly as a batch of one."""
    model, tok = tiny_pair()
    prompt = torch.tensor([[7, 8, 9, 10], [11, 12, 13, 14], [15, 16, 17, 18]])
    draft = torch.randint(5, len(tok), (3, G), generator=_gen())
    draft[1, ::2] = -1
    draft[2] = -1
    draft[2, 9:11] = 5
    kw = dict(steps=STEPS, gen_length=G, block_length=BLK, mask_id=tok.mask_token_id, **rule)
    ws = WarmStart(draft, remask_threshold=0.05)
    x, st = generate(model, prompt, warm_start=ws, return_stats=True, **kw)
    assert st.remasked > 0 and len(set(map(tuple, st.transfers_per_step))) > 1
    for r in range(3):
        alone, st1 = generate(model, prompt[r : r + 1], warm_start=WarmStart(draft[r : r + 1], remask_threshold=0.05),
                              return_stats=True, **kw)
        assert torch.equal(alone, x[r : r + 1]), r
        assert st.nfe_per_row[r] == st1.nfe == st1.nfe_per_row[0]


# ----------------------------------------------------------------------------- remask budget
def _wrong_draft(tok) -> torch.Tensor:
    return torch.randint(5, len(tok), (3, G), generator=_gen())


def test_remask_budget_extend_decodes_remasked_tokens_at_the_cold_pace():
    """ρ = 1 wrong draft: every block starts with 0 masks and plans one verifying step; the tokens it
    remasks get ceil(nr * steps / G) more steps instead of being decoded in one forward."""
    model, tok, prompt, am, args, _, _ = _cold()
    pace = -(-BLK * STEPS // G)  # cold tokens per step
    ws = WarmStart(_wrong_draft(tok), remask_threshold=1.0)  # remasks every injected token at the first look
    x, st = generate(model, prompt, am, warm_start=ws, return_stats=True, **args)
    assert st.remasked == 3 * G and (x[:, prompt.shape[1]:] != tok.mask_token_id).all()
    assert st.planned_steps_per_block == [1] * (G // BLK)
    assert st.steps_per_block == [1 + -(-BLK * STEPS // G)] * (G // BLK)  # 1 verify + the cold budget of 4 tokens
    assert all(t <= pace for step in st.transfers_per_step for t in step)
    assert st.nfe_per_row == [st.nfe] * 3
    # "fixed": the old behaviour, everything remasked decoded in one extra step
    ws = WarmStart(_wrong_draft(tok), remask_threshold=1.0, remask_budget="fixed")
    _, st2 = generate(model, prompt, am, warm_start=ws, return_stats=True, **args)
    assert st2.steps_per_block == [2] * (G // BLK)
    assert [max(s) for s in st2.transfers_per_step] == [0, BLK] * (G // BLK)


@pytest.mark.parametrize("kw", [{}, {"threshold": 0.3}, {"schedule": "dream"}], ids=["topk", "threshold", "dream"])
@pytest.mark.parametrize("budget", ["extend", "fixed"])
def test_remask_budget_rows_decode_as_a_batch_of_one(kw, budget):
    model, tok, prompt, am, args, _, _ = _cold()
    draft = _wrong_draft(tok)
    draft[1, 9:] = -1  # rows with different remask counts and plans
    ws = dict(rate=0.8, remask_threshold=0.05, remask_budget=budget)
    x, st = generate(model, prompt, am, warm_start=WarmStart(draft, **ws), return_stats=True, **args, **kw)
    assert st.remasked > 0 and (x[:, prompt.shape[1]:] != tok.mask_token_id).all()
    for r in range(3):
        # keep masks are drawn per (row, position); give each lone row the batch's keep decisions
        keep = rng.keep_mask(args.get("seed", 0), 0.8, (3, G))[r : r + 1]
        alone = WarmStart(torch.where(keep, draft[r : r + 1], -1), rate=1.0, remask_threshold=0.05,
                          remask_budget=budget)
        xr, sr = generate(model, prompt[r : r + 1], am[r : r + 1], warm_start=alone, return_stats=True, **args, **kw)
        assert torch.equal(xr, x[r : r + 1])
        assert sr.nfe == st.nfe_per_row[r]
    if budget == "extend" and not kw:
        assert max(st.steps_per_block) > max(st.planned_steps_per_block)


def test_remask_budget_is_validated():
    with pytest.raises(ValueError, match=r"warm_start\.remask_budget"):
        WarmStart(torch.zeros((1, 4), dtype=torch.int64), remask_budget="grow")
