"""End to end over a column-parallel LM head: a tiny dLLM whose head is split by columns across 2 gloo processes
(uneven) decodes exactly the tokens of the unsplit model, on both ranks (greedy and sampled, window-only logits,
CFG, top-k, random scores). The loop is tests/window_loop.py (the sampler's step over warmkern.window)."""

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


def test_window_logits_decode_like_full_logits_when_sampling():
    """Window rows draw the Philox numbers of their region positions (position_offset), so the window path
    decodes what the full-logits path decodes, also at T > 0 with random scores."""
    model, prompt, mask_id = W.model_prompt_mask()
    kw = dict(temperature=1.0, seed=5, score="random")
    full = W.run_case(model, prompt, mask_id, dict(mode="full", **kw))
    assert torch.equal(W.run_case(model, prompt, mask_id, dict(mode="logits", **kw)), full)
    assert torch.equal(W.run_case(model, prompt, mask_id, dict(mode="fused", **kw)), full)
