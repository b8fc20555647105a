"""generate(..., lm_head='window' | 'fused'): the model computes the block's rows only (or stops at its head's
input and ops.head_token_stats does the head), and generate returns the tokens and statistics of lm_head='full'
— greedy and sampled (the block's rows keep their region positions' Philox noise), every rule, CFG, truncation,
Dream's schedule with the logits shift and alg_temp, warm starts."""

from __future__ import annotations

import pytest
import torch

from warmkern import WarmStart, generate, tiny

DRAFT = torch.randint(4, 99, (2, 16), generator=torch.Generator().manual_seed(0))
CASES = {
    "greedy": dict(),
    "sampled-row-seeds-random": dict(temperature=1.0, seed=[5, 9], remasking="random"),
    "cfg-top-p": dict(cfg_scale=0.5, top_p=0.9, temperature=0.7, seed=2),
    "dream-shift-top-k-alg-temp": dict(schedule="dream", logits_shift=True, block_length=16, top_k=10,
                                       temperature=0.7, alg_temp=0.3, score="entropy", seed=4),
    "threshold-rows-apart": dict(threshold=0.2, score="margin", temperature=0.5, seed=[4, 9], steps=16,
                                 warm_start=WarmStart(DRAFT, mode="token", rate=0.5)),
    "token-prior-remask": dict(temperature=0.5, seed=[1, 2],
                               warm_start=WarmStart(DRAFT, mode="token", rate=0.7, remask_threshold=0.3, beta=2.0)),
    "embedding": dict(temperature=0.5, seed=3, warm_start=WarmStart(DRAFT, mode="embedding", alpha=0.5)),
    "factor-eos-eot": dict(factor=1.0, logits_eos_inf=True, confidence_eos_eot_inf=True, eos_id=3, eot_id=98),
}


@pytest.fixture(scope="module")
def dllm():
    model, tok = tiny.dllm(seed=0)
    prompt, mask = tiny.encode_prompts(tok, ["tom has 3 apples and ann gives him 4 more", "how many coins"])
    return model, prompt, mask, tok.mask_token_id


def _run(dllm, lm_head, **kw):
    model, prompt, mask, mask_id = dllm
    kw = dict(dict(steps=8, gen_length=16, block_length=4), **kw)
    return generate(model, prompt, mask, mask_id=mask_id, backend="reference", lm_head=lm_head, return_stats=True,
                    **kw)


@pytest.mark.parametrize("lm_head", ["window", "fused"])
@pytest.mark.parametrize("case", list(CASES))
def test_window_rows_decode_what_full_logits_decode(dllm, case, lm_head):
    want, want_stats = _run(dllm, "full", **CASES[case])
    got, stats = _run(dllm, lm_head, **CASES[case])
    assert torch.equal(got, want)
    assert stats.nfe_per_row == want_stats.nfe_per_row
    assert stats.transfers_per_step == want_stats.transfers_per_step
    assert stats.remasks_per_step == want_stats.remasks_per_step


@pytest.mark.parametrize("lm_head", ["window", "fused"])
def test_a_model_taking_logits_to_keep_decodes_like_full_logits(lm_head):
    """A Llama-architecture model (HF's index logits_to_keep for 'window'), read with Dream's shift."""
    model = tiny.drafter()[0]
    prompt = torch.randint(5, model.config.vocab_size, (2, 6), generator=torch.Generator().manual_seed(1))
    kw = dict(steps=4, gen_length=8, block_length=4, mask_id=4, logits_shift=True, temperature=0.8, seed=[3, 4],
              backend="reference")
    assert torch.equal(generate(model, prompt, lm_head=lm_head, **kw), generate(model, prompt, **kw))


def test_lm_head_errors_name_the_argument(dllm):
    model, prompt, _, mask_id = dllm
    kw = dict(steps=4, gen_length=4, block_length=4, mask_id=mask_id)
    with pytest.raises(ValueError, match="lm_head: expected one of"):
        generate(model, prompt, lm_head="rows", **kw)
    with pytest.raises(ValueError, match="lm_head: expected 'full' with Dream's generation hooks"):
        generate(model, prompt, lm_head="window", generation_tokens_hook_func=lambda s, x, lg: x, **kw)
    holes = prompt.clone()
    holes[0, 3] = mask_id
    with pytest.raises(ValueError, match="lm_head: expected 'full' when the prompt holds mask_id"):
        generate(model, holes, lm_head="fused", **kw)

    def plain(input_ids, **_):
        return torch.zeros(input_ids.shape[0], input_ids.shape[1], 99)

    with pytest.raises(ValueError, match=r"lm_head: expected 'full' for this model \(function: its "):
        generate(plain, prompt, lm_head="window", **kw)
