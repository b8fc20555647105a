"""generate(): token-for-token parity with eager LLaDA / Dream, determinism, backends, stats, errors."""

from __future__ import annotations

import pytest
import torch
from test_sampler_eager import eager_dream, eager_llada, prompts, special_ids, tiny_pair

from warmkern import GenerationStats, WarmStart, backends, generate

G = 16


def _setup(b: int):
    model, tok = tiny_pair()
    prompt, am = prompts(tok, b)
    return model, tok, prompt, am


# (batch, block_length, steps, cfg, eos flags, temperature): B=1 and B=3 (different prompt lengths),
# one block and four blocks, steps < gen_length, CFG, EOS suppression / LLaDA's EOS-EOT confidence rule, Gumbel.
CASES = [
    (3, G, G, 0.0, False, 0.0),
    (1, 4, 8, 0.0, False, 0.0),
    (3, 4, 8, 0.0, True, 0.0),
    (3, 4, 12, 1.5, False, 0.0),
    (1, G, 8, 1.5, True, 0.0),
    (3, 4, 8, 0.0, False, 1.0),
    (3, 4, 8, 1.5, True, 1.0),
]


@pytest.mark.parametrize(("b", "blk", "steps", "cfg", "eos", "temp"), CASES)
def test_cold_matches_eager_llada(b, blk, steps, cfg, eos, temp):
    model, tok, prompt, am = _setup(b)
    ids = special_ids(tok)
    kw = dict(steps=steps, gen_length=G, block_length=blk, cfg_scale=cfg, temperature=temp, seed=3)
    want = eager_llada(model, prompt, am, logits_eos_inf=eos, confidence_eos_eot_inf=eos, **kw, **ids)
    got = generate(model, prompt, am, logits_eos_inf=eos, confidence_eos_eot_inf=eos, backend="reference", **kw, **ids)
    assert torch.equal(got, want)
    assert (got[:, prompt.shape[1]:] != ids["mask_id"]).all()
    if eos:  # logits_eos_inf: EOS is never drawn
        assert not (got[:, prompt.shape[1]:] == ids["eos_id"]).any()


def _first_step_confidences(model, prompt, am, mask_id, blk):
    """Sorted (descending) prob-confidences of row 0's first block at step 0: rules are set from these so
    that parallel decoding really happens whatever the random weights are."""
    x = torch.cat([prompt, torch.full((prompt.shape[0], G), mask_id)], 1)
    full = torch.cat([am, torch.ones((prompt.shape[0], G), dtype=am.dtype)], 1)
    with torch.no_grad():
        z = model(x, attention_mask=full).logits[0, prompt.shape[1] : prompt.shape[1] + blk].float()
    p = torch.softmax(z, -1)
    z[:, mask_id] = float("-inf")
    return p.gather(-1, z.argmax(-1, keepdim=True)).squeeze(-1).sort(descending=True).values


@pytest.mark.parametrize(("b", "blk", "steps", "rule"), [
    (1, G, G, "threshold"), (3, 4, 16, "threshold"), (3, 4, 8, "threshold"), (1, G, G, "factor"), (3, 4, 16, "factor"),
])
def test_threshold_and_factor_match_eager(b, blk, steps, rule):
    model, tok, prompt, am = _setup(b)
    ids = special_ids(tok)
    conf = _first_step_confidences(model, prompt, am, ids["mask_id"], blk)
    if rule == "threshold":  # the 3 most confident of the block pass at step 0
        # Midway to the 4th, not at the 3rd: fp32 softmaxes may differ by an ulp between implementations
        # (torch's vectorised softmax here, the spec's exp / sum), which flipped ">= conf[2]" on an AVX2 host.
        kw = {"threshold": float((conf[2] + conf[3]) / 2)}
    else:  # ranks 1..3 pass at step 0: factor >= max over r <= 3 of (r + 1)(1 - score_r)
        kw = {"factor": float(max((r + 2) * (1 - conf[r]) for r in range(3))) * (1 + 1e-6)}
    kw.update(steps=steps, gen_length=G, block_length=blk)
    want = eager_llada(model, prompt, am, **kw, **ids)
    got, st = generate(model, prompt, am, backend="reference", return_stats=True, **kw, **ids)
    assert torch.equal(got, want)
    assert st.nfe <= steps
    assert all(s <= steps // (G // blk) for s in st.steps_per_block)
    assert st.transfers_per_step[0][0] >= 3  # parallel decoding really happened
    assert b > 1 or st.nfe < G  # and (one row alone) saved steps


@pytest.mark.parametrize(("b", "steps", "score"), [(1, 8, "prob"), (2, 5, "margin")])
def test_dream_schedule_matches_eager_dream(b, steps, score):
    model, tok = tiny_pair()
    prompt = torch.tensor([[7, 8, 9, 10, 11], [12, 13, 14, 15, 16]])[:b]
    mask_id = tok.mask_token_id
    want = eager_dream(model, prompt, steps=steps, gen_length=G, mask_id=mask_id, score=score)
    got = generate(model, prompt, steps=steps, gen_length=G, block_length=G, mask_id=mask_id, schedule="dream",
                   logits_shift=True, score=score, backend="reference")
    assert torch.equal(got, want)


def test_same_seed_same_output_and_stats():
    model, tok, prompt, am = _setup(3)
    kw = dict(steps=4, gen_length=8, block_length=4, temperature=1.0, seed=11, return_stats=True, **special_ids(tok))
    a, sa = generate(model, prompt, am, **kw)
    b, sb = generate(model, prompt, am, **kw)
    c, _ = generate(model, prompt, am, **{**kw, "seed": 12})
    assert torch.equal(a, b)
    assert sa.transfers_per_step == sb.transfers_per_step
    assert not torch.equal(a, c)  # the seed matters at T > 0


def _backends() -> list:
    """Every backend but the reference (the baseline), skipped with the reason when it cannot run here."""
    out = []
    for name in backends.BACKENDS[1:]:
        why = backends.unavailable_reason(name, torch.device("cpu"))
        mod = None if why else backends.module(name)
        if mod is not None and not all(hasattr(mod, op) for op in ("warm_embed", "denoise_step")):
            why = f"backend {name!r} has no kernels yet"
        out.append(pytest.param(name, marks=pytest.mark.skip(reason=why)) if why else name)
    return out


@pytest.mark.parametrize("backend", _backends())
def test_backends_agree(backend):
    assert backends.BACKENDS[0] == "reference"
    model, tok, prompt, am = _setup(2)
    kw = dict(steps=4, gen_length=8, block_length=4, seed=5, **special_ids(tok))
    cold = generate(model, prompt, am, backend="reference", **kw)
    draft = cold[:, prompt.shape[1]:].flip(1)
    variants = [
        {"temperature": 1.0},
        {"temperature": 0.0, "warm_start": WarmStart(draft, mode="embedding", alpha=0.7, rate=0.6)},
        {"temperature": 1.0, "warm_start": WarmStart(draft, rate=0.8, remask_threshold=0.3)},
    ]
    for v in variants:
        want = generate(model, prompt, am, backend="reference", **kw, **v)
        got = generate(model, prompt, am, backend=backend, **kw, **v)
        assert torch.equal(got, want), v


def test_stats_cold():
    model, tok, prompt, am = _setup(3)
    x, st = generate(model, prompt, am, steps=8, gen_length=G, block_length=4, cfg_scale=1.0, return_stats=True,
                     progress=True, **special_ids(tok))
    assert isinstance(st, GenerationStats)
    assert st.nfe == 8  # CFG's batched pair counts as one forward
    assert st.nfe_per_row == [8, 8, 8]
    assert st.steps_per_block == [2, 2, 2, 2]
    assert len(st.transfers_per_step) == 8 and all(len(r) == 3 for r in st.transfers_per_step)
    assert st.transfers_per_step == [[2, 2, 2]] * 8  # LLaDA's even split of 4 masks over 2 steps
    assert st.injected == st.survived == st.remasked == 0
    assert st.time_model_s > 0 and st.time_sampler_s > 0
    assert x.shape == (3, prompt.shape[1] + G)


def test_plain_tensor_model_and_no_attention_mask():
    model, tok, prompt, _ = _setup(1)
    want = generate(model, prompt, steps=4, gen_length=8, block_length=8, **special_ids(tok))
    got = generate(lambda ids: model(ids).logits, prompt, steps=4, gen_length=8, block_length=8, **special_ids(tok))
    assert torch.equal(got, want)


def test_nan_logits_raise_clearly():
    model, tok, prompt, _ = _setup(1)
    p = prompt.shape[1]

    def broken(ids, **kw):
        z = model(ids, **kw).logits.clone()
        z[:, p + 2] = float("nan")
        return z

    with pytest.raises(RuntimeError, match="no finite logit"):
        generate(broken, prompt, steps=8, gen_length=8, block_length=4, **special_ids(tok))
    with pytest.raises(RuntimeError, match="no finite logit"):
        generate(broken, prompt, steps=8, gen_length=8, block_length=4, threshold=0.5, **special_ids(tok))
    # remasked tokens growing the plan (remask_budget='extend') must not hide stuck positions
    ws = WarmStart(torch.full((1, 8), 7), rate=0.5, remask_threshold=1.0)
    for kw in ({}, {"threshold": 0.5}):
        with pytest.raises(RuntimeError, match="no finite logit"):
            generate(broken, prompt, steps=8, gen_length=8, block_length=4, warm_start=ws, **kw, **special_ids(tok))


@pytest.mark.parametrize("kw", [{}, {"temperature": 1.0}, {"threshold": 0.9}, {"cfg_scale": 1.0}])
def test_a_plus_inf_logit_wins(kw):
    """README's NaN/inf policy: one +inf logit (an fp16 overflow) in an otherwise finite row is that position's
    token, with confidence 1; NaN counts as -inf."""
    model, tok, prompt, am = _setup(2)
    p = prompt.shape[1]

    def overflowing(ids, attention_mask=None):
        z = model(ids, attention_mask=attention_mask).logits.clone()
        z[:2, p + 1, 30] = float("inf")  # the conditional rows (with CFG, inf - inf would be NaN)
        z[:, p + 2, 31] = float("nan")
        return z

    x, st = generate(overflowing, prompt, am, steps=8, gen_length=8, block_length=4, backend="reference",
                     return_stats=True, **kw, **special_ids(tok))
    assert (x[:, p + 1] == 30).all() and (x[:, p + 2] != 31).all()
    assert (x[:, p:] != tok.mask_token_id).all()
    if not kw:  # confidence 1: the +inf position is committed at the first step
        assert st.transfers_per_step[0] == [1, 1]


@pytest.mark.parametrize(("kw", "name"), [
    ({"gen_length": 10, "block_length": 4}, "block_length"),
    ({"gen_length": 16, "block_length": 4, "steps": 6}, "steps"),
    ({"remasking": "lowest"}, "remasking"),
    ({"schedule": "cosine"}, "schedule"),
    ({"threshold": 0.9, "factor": 1.0}, "threshold/factor"),
    ({"temperature": -1.0}, "temperature"),
    ({"mask_id": 10**6}, "mask_id"),
    ({"warm_start": WarmStart(torch.zeros((1, 3), dtype=torch.long))}, "warm_start.draft"),
    ({"warm_start": "token"}, "warm_start"),
    ({"remasking": "random", "score": "margin"}, "score"),
])
def test_bad_input_names_the_argument(kw, name):
    model, tok, prompt, _ = _setup(1)
    args = {"steps": 8, "gen_length": 8, "block_length": 8, **special_ids(tok), **kw}
    with pytest.raises((ValueError, TypeError), match=name.replace("/", ".")):
        generate(model, prompt, **args)


def test_bad_prompt():
    model, tok = tiny_pair()
    with pytest.raises(ValueError, match="prompt"):
        generate(model, torch.zeros((1, 3)), steps=4, gen_length=4, block_length=4, mask_id=tok.mask_token_id)
    with pytest.raises(ValueError, match="attention_mask"):
        generate(model, torch.zeros((1, 3), dtype=torch.long), torch.ones((1, 2)), steps=4, gen_length=4,
                 block_length=4, mask_id=tok.mask_token_id)


class _Bidirectional(torch.nn.Module):
    """A pure-torch bidirectional LM: no hidden host syncs of its own (HF mask utilities have some)."""

    def __init__(self, vocab: int = 23, d: int = 16) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(vocab, d)
        self.mix = torch.nn.Linear(d, d)
        self.head = torch.nn.Linear(d, vocab)

    def get_input_embeddings(self):
        return self.emb

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None):
        h = self.emb(input_ids) if inputs_embeds is None else inputs_embeds
        return self.head(torch.tanh(h + self.mix(h.mean(dim=1, keepdim=True))))


def _host_syncs(monkeypatch, **kw) -> int:
    """Calls that read a tensor's value on the host (each one is a device sync on CUDA) during generate."""
    n = 0
    for name in ("__bool__", "item", "tolist", "__int__", "__float__", "__index__"):
        orig = getattr(torch.Tensor, name)

        def counted(self, *a, _orig=orig, **k):
            nonlocal n
            n += 1
            return _orig(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)
    try:
        generate(_Bidirectional(), torch.tensor([[1, 2, 3], [4, 5, 6]]), gen_length=16, block_length=4, mask_id=22,
                 backend="reference", **kw)
    finally:
        monkeypatch.undo()
    return n


@pytest.mark.parametrize("warm", [None, "token", "embedding", "prior"])
def test_fixed_schedules_do_not_sync_per_step(monkeypatch, warm):
    draft = torch.arange(32).reshape(2, 16) % 20
    ws = {"token": WarmStart(draft, rate=0.5, remask_threshold=0.01), "embedding": WarmStart(draft, mode="embedding"),
          "prior": WarmStart(draft, mode="prior", beta=torch.tensor([1.0, 2.0])), None: None}[warm]
    few, many = _host_syncs(monkeypatch, steps=8, warm_start=ws), _host_syncs(monkeypatch, steps=16, warm_start=ws)
    assert few == many  # the count does not grow with the number of steps
    assert many <= 4 + 24  # one per block (4 blocks) + set-up / first-step validation + final stats read-out
