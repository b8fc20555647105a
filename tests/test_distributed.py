"""warmkern.distributed on the real engine: 4 gloo processes (and a 2-process subgroup of them), spawned once
for the module, each with an uneven vocabulary shard. Every rank's tokens, scores, counts and updated x /
provisional equal the one-process warmkern.ops result on the full logits (tests/parity.py's tolerances for
scores; tokens, selections and counts identical, also when sampling).
"""

from __future__ import annotations

import multiprocessing as mp

import dist_worker as W
import pytest
import torch

from warmkern import distributed, ops

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
RANKS = {4: range(4), 2: range(2)}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gloo")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=W.main, args=(r, 4, str(tmp))) for r in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    errors = [(tmp / f"rank{r}.err") for r in range(4) if (tmp / f"rank{r}.err").exists()]
    if errors:  # the root cause first: the others usually report a peer that went away
        texts = sorted((e.read_text() for e in errors), key=lambda t: "Connection reset" in t)
        pytest.fail("a gloo worker failed:\n" + "\n".join(texts))
    for p in procs:
        if p.is_alive():
            p.kill()
        assert p.exitcode == 0, f"gloo worker exit code {p.exitcode}"
    return [torch.load(tmp / f"rank{r}.pt") for r in range(4)]


def _stats_kw(kw, uncond):
    return dict(kw, uncond_logits=uncond, mask_id=W.MASK, backend="reference")


@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("case", list(W.STATS_CASES))
def test_token_stats_equals_the_one_process_op_on_every_rank(results, case, world):
    logits, uncond, x, _, kw = W.case_inputs(case)
    want = ops.token_stats(logits, x, **_stats_kw(kw, uncond))
    for rank in RANKS[world]:
        got = results[rank][world][case]
        assert torch.equal(got[0], want[0]), f"rank {rank}: x0"
        torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-6, equal_nan=True)
        torch.testing.assert_close(got[2], want[2], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("case", list(W.DENOISE_CASES))
def test_denoise_step_leaves_every_rank_with_the_one_process_x(results, case, world):
    logits, uncond, x, prov, kw = W.case_inputs(case)
    nt, nr = ops.denoise_step(logits, x, prov, **_stats_kw(kw, uncond))
    assert nt.sum() > 0 and (nr.sum() > 0 or "remask" not in case), "the case commits (and remasks) something"
    for rank in RANKS[world]:
        got_nt, got_nr, got_x, got_prov = results[rank][world][case]
        assert torch.equal(got_x, x) and torch.equal(got_prov, prov), f"rank {rank}"
        assert torch.equal(got_nt, nt) and torch.equal(got_nr, nr), f"rank {rank}"


@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("case", list(W.CPU_CASES))
def test_the_cpu_state_pass_gives_the_one_process_result_on_every_rank(results, case, world):
    """backend="cpu": the C++ token_stats_partial on each rank's shard, merged over gloo."""
    logits, uncond, x, prov, kw = W.case_inputs(case)
    if case in W.STATS_CASES:
        want = ops.token_stats(logits, x, **_stats_kw(kw, uncond))
    else:
        want = (*ops.denoise_step(logits, x, prov, **_stats_kw(kw, uncond)), x, prov)
    for rank in RANKS[world]:
        got = results[rank][("cpu", world)][case]
        if case in W.STATS_CASES:
            assert torch.equal(got[0], want[0]), f"rank {rank}: x0"
            torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-6, equal_nan=True)
            torch.testing.assert_close(got[2], want[2], rtol=1e-5, atol=1e-6)
        else:
            assert all(torch.equal(a, b) for a, b in zip(got, want)), f"rank {rank}"


def test_ranks_that_disagree_all_raise(results):
    for rank in range(4):
        errors = results[rank]["errors"]
        assert "different arguments" in errors["seed"], rank
        assert errors["tiling"].startswith("vocab_start: expected the ranks' shards to tile"), rank


def test_signatures_are_the_op_tables():
    import inspect

    for name in ("token_stats", "denoise_step"):
        ours = inspect.signature(getattr(distributed, name)).parameters
        theirs = inspect.signature(getattr(ops, name)).parameters
        kw_only = [n for n, p in theirs.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
        assert set(kw_only) <= set(ours), name
        assert {"vocab_start", "group", "vocab_total"} <= set(ours)


def test_unknown_keyword_raises_before_any_collective():
    with pytest.raises(TypeError, match="demote_ids"):
        distributed.token_stats(torch.zeros(1, 1, 4), torch.zeros(1, 1, dtype=torch.int64), vocab_start=0,
                                mask_id=0, demote_ids=(1,))


def test_tiling_errors_name_vocab_start():
    assert distributed._tiling([0, 30, 50], [30, 20, 47], 97) == [0, 1, 2]
    assert distributed._tiling([50, 0, 30], [47, 30, 20], 97) == [1, 2, 0]
    with pytest.raises(ValueError, match="vocab_start"):
        distributed._tiling([0, 31], [30, 67], 97)
    with pytest.raises(ValueError, match="vocab_start"):
        distributed._tiling([0, 30], [30, 60], 97)
