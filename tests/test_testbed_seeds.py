"""The testbed's eval gives every problem its own seed, so each draws its own warm-start keep mask.

`generate` keys random numbers by the row's seed and never by its place in the batch (issue 12), so the int
seed the eval used to pass gave all problems one keep mask: the calibrated token-injection row (rho = 0.75,
fixed budget) then ran 12 forwards on every problem (the seed-0 mask drops 12 of 32 positions) instead of
the ~8 an independent Bernoulli(0.75) mask per problem gives (RESULTS.md section 3).
"""

from __future__ import annotations

import pytest
import torch

from warmkern import rng
from warmkern.testbed import checkpoints, task
from warmkern.testbed.drafting import draft_problems
from warmkern.testbed.methods import Method
from warmkern.testbed.runner import Setting, _decode, problem_seeds

N = 6
RATE = 0.75


@pytest.fixture(scope="module")
def decoded():
    """The calibrated dLLM's fixed-budget token row on N test problems: batch, and each problem alone."""
    torch.manual_seed(0)
    pair = checkpoints.load_pair("calibrated")
    probs = task.problems("test", N)
    draft = draft_problems(pair, probs, N).batches[0]
    m = Method("token", "warm", mode="token", rate=RATE, remask_threshold=0.9, remask_budget="fixed")
    s = Setting(probs, N)
    batch = _decode(pair, m, probs, draft, s, 0)
    alone = [_decode(pair, m, [probs[k]], draft[k : k + 1], s, k) for k in (0, 3)]
    return batch, alone


def test_problem_seeds_are_distinct_and_keyed_by_the_problem_index():
    assert problem_seeds(0, 0, 4).tolist() == [0, 1, 2, 3]
    assert problem_seeds(2, 5, 2).tolist() == [(2 << 32) + 5, (2 << 32) + 6]
    assert problem_seeds(0, 3, 1).dtype == torch.int64
    with pytest.raises(ValueError, match="seed: expected 0 <= seed < 2\\*\\*31"):
        problem_seeds(2**31, 0, 1)


def test_each_problem_draws_its_own_keep_mask(decoded):
    (_, st, _), _ = decoded
    dropped = (~rng.keep_mask(problem_seeds(0, 0, N), RATE, (N, checkpoints.GEN_LENGTH))).sum(1).tolist()
    # A fixed budget plans one step per masked (dropped) position, so a row's NFE is its mask's drop count.
    assert st.nfe_per_row == dropped
    assert len(set(st.nfe_per_row)) > 1, "every problem drew the same keep mask (one int seed for the batch)"
    assert st.injected == N * checkpoints.GEN_LENGTH - sum(dropped)


def test_a_problem_decodes_alone_as_in_the_batch(decoded):
    (texts, st, _), alone = decoded
    for (a_texts, a_st, _), k in zip(alone, (0, 3)):
        assert a_texts == [texts[k]]
        assert a_st.nfe_per_row == [st.nfe_per_row[k]]
