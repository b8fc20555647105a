"""Row independence (issue 12 item 4): row i of a batch run with seeds s decodes exactly as a batch of one
with seed s[i], at any temperature, for fixed / threshold / factor schedules, token / embedding / prior
warm starts and CFG.

The shipped testbed dLLM has rotary positions, so a left-padded row sees what it sees alone (its logits
agree to float rounding); the lone runs here drop the padding entirely. A model with absolute positions
(warmkern.tiny's BERT) changes its *own* logits under left padding, which no sampler can undo: that is
shown below, together with the sampler's half of the promise on that model (a row alone with the same
padding decodes as in the batch).
"""

from __future__ import annotations

import functools

import pytest
import torch
from test_sampler_eager import prompts, special_ids, tiny_pair

from warmkern import WarmStart, generate
from warmkern.testbed import data, models, task

pytestmark = pytest.mark.skipif(bool(models.assets_missing()), reason="testbed assets not trained yet")

G, BLK, STEPS = 32, 8, 16
SEEDS = torch.tensor([11, 22, 33])
RULES = {"fixed": {}, "threshold": {"threshold": 0.7}, "factor": {"factor": 1.0}}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The testbed model is small: one thread is ~30x faster than many on a loaded host (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@functools.cache
def _testbed():
    """(model, tokenizer, prompt, attention mask, draft) on three validation problems of different lengths."""
    model, tok = models.load_dllm()
    probs = [task.problems("validation", 8)[i] for i in (0, 1, 2)]
    prompt, am, gold = data.dllm_batch(tok, probs, G)
    draft = gold.clone()
    draft[:, ::5] = 30  # some wrong draft tokens, so remasking has work to do
    draft[2, 20:] = -1
    return model, tok, prompt, am, draft


def _warm(kind: str, draft: torch.Tensor, rows: slice) -> dict:
    """The warm start (and CFG) variants, for the rows `rows` of the batch."""
    d = draft[rows]
    return {
        "cold": {},
        "token": {"warm_start": WarmStart(d, rate=0.7, remask_threshold=0.3)},
        "embedding": {"warm_start": WarmStart(d, mode="embedding", rate=0.6, alpha=0.5)},
        "prior": {"warm_start": WarmStart(d, mode="prior", rate=0.8, beta=torch.tensor([1.0, 0.5, 2.0])[rows])},
        "token+prior": {"warm_start": WarmStart(d, rate=0.5, remask_threshold=0.3, beta=1.0)},
        "cfg": {"cfg_scale": 0.5},
    }[kind]


def _alone(prompt: torch.Tensor, am: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row r without its left padding."""
    n = int(am[r].sum())
    return prompt[r : r + 1, prompt.shape[1] - n :], am[r : r + 1, prompt.shape[1] - n :]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
@pytest.mark.parametrize("warm", ["cold", "token", "embedding", "prior", "token+prior", "cfg"])
@pytest.mark.parametrize("rule", list(RULES))
def test_a_row_decodes_as_a_batch_of_one_with_its_seed(rule, warm, temperature):
    model, tok, prompt, am, draft = _testbed()
    kw = dict(steps=STEPS, gen_length=G, block_length=BLK, mask_id=tok.mask_token_id, temperature=temperature,
              backend="reference", return_stats=True, **RULES[rule])
    x, st = generate(model, prompt, am, seed=SEEDS, **kw, **_warm(warm, draft, slice(None)))
    assert (x[:, prompt.shape[1]:] != tok.mask_token_id).all()
    for r in range(3):
        p, m = _alone(prompt, am, r)
        alone, st1 = generate(model, p, m, seed=int(SEEDS[r]), **kw, **_warm(warm, draft, slice(r, r + 1)))
        assert torch.equal(alone[0, p.shape[1]:], x[r, prompt.shape[1]:]), r
        assert st1.nfe == st.nfe_per_row[r], r


def test_an_int_seed_is_every_rows_seed():
    model, tok, prompt, am, draft = _testbed()
    kw = dict(steps=STEPS, gen_length=G, block_length=BLK, mask_id=tok.mask_token_id, temperature=1.0,
              backend="reference", threshold=0.7)
    x = generate(model, prompt, am, seed=5, warm_start=WarmStart(draft, rate=0.5, remask_threshold=0.3), **kw)
    assert torch.equal(x, generate(model, prompt, am, seed=[5, 5, 5],
                                   warm_start=WarmStart(draft, rate=0.5, remask_threshold=0.3), **kw))
    for r in range(3):
        p, m = _alone(prompt, am, r)
        alone = generate(model, p, m, seed=5, warm_start=WarmStart(draft[r : r + 1], rate=0.5, remask_threshold=0.3),
                         **kw)
        assert torch.equal(alone[0, p.shape[1]:], x[r, prompt.shape[1]:]), r


def test_distinct_seeds_give_distinct_samples_of_one_prompt():
    model, tok, prompt, am, _ = _testbed()
    same = prompt[:1].expand(4, -1)
    x = generate(model, same, am[:1].expand(4, -1), seed=torch.arange(4), steps=STEPS, gen_length=G,
                 block_length=BLK, mask_id=tok.mask_token_id, temperature=2.0, backend="reference")
    assert len({tuple(row.tolist()) for row in x}) > 1


def test_infilling_rows_with_holes_at_different_columns_decode_as_alone():
    """Noise is keyed by the position in the row's own region (from its first hole), not the batch's."""
    model, tok, prompt, am, _ = _testbed()
    holey = prompt.clone()
    holey[0, 10] = holey[1, 20] = holey[1, 22] = tok.mask_token_id  # row 2: no hole
    kw = dict(steps=8, gen_length=16, block_length=8, mask_id=tok.mask_token_id, temperature=2.0, remasking="random",
              backend="reference")
    x = generate(model, holey, am, seed=SEEDS, **kw)
    for r in range(3):
        p, m = _alone(holey, am, r)
        alone = generate(model, p, m, seed=int(SEEDS[r]), **kw)
        assert torch.equal(alone[0], x[r, prompt.shape[1] - p.shape[1]:]), r


# ----------------------------------------------------------------------------- the padding caveat
def _padded_vs_alone_logits(model, prompt, am, mask_id) -> float:
    """Largest logit difference of a left-padded row's answer positions against the same row alone."""
    r = int(am.sum(1).argmin())  # the most padded row
    x = torch.cat([prompt, torch.full((prompt.shape[0], 8), mask_id)], 1)
    full = torch.cat([am, torch.ones((prompt.shape[0], 8), dtype=am.dtype)], 1)
    p, _ = _alone(prompt, am, r)
    xa = torch.cat([p, torch.full((1, 8), mask_id)], 1)
    with torch.no_grad():
        batch = model(x, attention_mask=full).logits[r, -8:]
        alone = model(xa, attention_mask=torch.ones_like(xa)).logits[0, -8:]
    return float((batch - alone).abs().max())


def test_left_padding_changes_an_absolute_position_models_own_logits():
    """The README's caveat: BERT (absolute positions, LLaDA-style generate passes no position ids) shifts a
    padded row's positions, so its logits differ from the row alone before any sampling; a RoPE model's do not
    (beyond float rounding). The sampler keeps its half: the same row, alone with the same padding, decodes
    exactly as in the batch, at T > 0 with a warm start."""
    bert, btok = tiny_pair()
    bprompt, bam = prompts(btok, 3)
    assert _padded_vs_alone_logits(bert, bprompt, bam, btok.mask_token_id) > 0.1
    model, tok, prompt, am, _ = _testbed()
    assert _padded_vs_alone_logits(model, prompt, am, tok.mask_token_id) < 1e-3
    kw = dict(steps=8, gen_length=16, block_length=4, temperature=1.0, backend="reference", **special_ids(btok))
    draft = torch.randint(5, len(btok), (3, 16), generator=torch.Generator().manual_seed(0))
    x = generate(bert, bprompt, bam, seed=SEEDS, warm_start=WarmStart(draft, rate=0.5, remask_threshold=0.2), **kw)
    for r in range(3):
        alone = generate(bert, bprompt[r : r + 1], bam[r : r + 1], seed=int(SEEDS[r]),
                         warm_start=WarmStart(draft[r : r + 1], rate=0.5, remask_threshold=0.2), **kw)
        assert torch.equal(alone, x[r : r + 1]), r


@pytest.mark.parametrize(("seed", "kind", "match"), [
    ([1, 2], ValueError, r"^seed: expected an int or 3 per-row seeds"),
    ([1, -2, 3], ValueError, r"^seed\[1\]: expected an int in"),
    (torch.tensor([1.0, 2.0, 3.0]), TypeError, r"^seed: expected an int or an int64 tensor, got dtype float32"),
    (torch.tensor([[1, 2, 3]]), ValueError, r"^seed: expected an int or a 1-D tensor"),
    (torch.tensor([1, -1, 3]), ValueError, r"^seed: expected values >= 0, got -1"),
    ("7", TypeError, r"^seed: expected an int, got str"),
])
def test_bad_seeds_are_named_before_any_forward(seed, kind, match):
    model, tok = tiny_pair()
    prompt, am = prompts(tok, 3)
    calls = []

    def counted(ids, attention_mask=None):
        calls.append(1)
        return model(ids, attention_mask=attention_mask).logits

    with pytest.raises(kind, match=match):
        generate(counted, prompt, am, steps=4, gen_length=4, block_length=4, seed=seed, **special_ids(tok))
    assert not calls
