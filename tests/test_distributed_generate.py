"""End to end over a column-parallel LM head: a tiny dLLM whose head is split by columns across 2 gloo processes
(uneven) decodes exactly the tokens of the unsplit model, on both ranks: `generate(..., vocab_group=group)`
(every rule and score mode, T = 0 and T > 0, CFG, top_k/top_p, Dream's schedule with alg_temp, per-row seeds, a
token warm start with the prior and remasking, infilling) and the WindowStats loop of tests/window_loop.py
(window-only logits)."""

from __future__ import annotations

import multiprocessing as mp

import dist_generate_worker as W
import pytest
import torch

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gloo-generate")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=W.main, args=(r, 2, str(tmp))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    errors = sorted((e.read_text() for e in tmp.glob("rank*.err")), key=lambda t: "Connection reset" in t)
    if errors:
        pytest.fail("a gloo worker failed:\n" + "\n".join(errors))
    for p in procs:
        if p.is_alive():
            p.kill()
        assert p.exitcode == 0
    return [torch.load(tmp / f"rank{r}.pt") for r in range(2)]


@pytest.mark.parametrize("case", list(W.CASES))
def test_split_head_decodes_what_the_unsplit_model_decodes(ranks, case):
    model, prompt, mask_id = W.model_prompt_mask()
    want = W.run_case(model, prompt, mask_id, W.CASES[case])
    assert (want[:, prompt.shape[1]:] != mask_id).all()
    for rank, got in enumerate(ranks):
        assert torch.equal(got[case], want), f"rank {rank}"


@pytest.mark.parametrize("case", list(W.GENERATE_CASES))
def test_generate_with_vocab_group_decodes_what_the_unsplit_model_decodes(ranks, case):
    model, prompt, mask_id = W.model_prompt_mask()
    want, want_nfe = W.generate_case(model, prompt, mask_id, case)
    if case != "infill-sampled":  # LLaDA's infilling leaves as many masks as the prompt held
        assert (want[:, prompt.shape[1]:] != mask_id).all()
    for rank, got in enumerate(ranks):
        got_x, got_nfe = got["generate"][case]
        assert torch.equal(got_x, want), f"rank {rank}"
        assert got_nfe == want_nfe, f"rank {rank}"


def test_generate_vocab_group_is_checked_before_any_forward():
    from warmkern import generate

    model, prompt, mask_id = W.model_prompt_mask()
    with pytest.raises(TypeError, match=r"vocab_group: expected a torch\.distributed ProcessGroup"):
        generate(model, prompt, mask_id=mask_id, steps=4, gen_length=4, block_length=4, vocab_group="tp")


def test_window_logits_decode_like_full_logits_when_sampling():
    """Window rows draw the Philox numbers of their region positions (position_offset), so the window path
    decodes what the full-logits path decodes, also at T > 0 with random scores."""
    model, prompt, mask_id = W.model_prompt_mask()
    kw = dict(temperature=1.0, seed=5, score="random")
    full = W.run_case(model, prompt, mask_id, dict(mode="full", **kw))
    assert torch.equal(W.run_case(model, prompt, mask_id, dict(mode="logits", **kw)), full)
    assert torch.equal(W.run_case(model, prompt, mask_id, dict(mode="fused", **kw)), full)
