"""The GPU side of tests/parity.py's contract (issue 13, item 4) decides what the first CUDA run accepts:
check its rules here, on synthetic values, so they are neither vacuous nor wider than written."""

from __future__ import annotations

import torch
from parity import GPU_NEAR_TIE, near_boundary, near_tie


def test_gpu_near_tie_has_an_absolute_floor_the_interpreter_rule_lacks():
    a = torch.tensor([1e-3, 10.0, 10.0, -3.0])
    b = a + torch.tensor([5e-6, 5e-5, 2e-4, 2e-5])
    assert near_tie(a, b, gpu=True).tolist() == [True, True, False, True]
    assert near_tie(a, b, gpu=False).tolist() == [False, True, False, True]
    assert not near_tie(torch.tensor([0.0]), torch.tensor([2 * GPU_NEAR_TIE]), gpu=True).item()


def test_near_boundary_marks_close_scores_and_the_threshold_only_among_members():
    score = torch.tensor([[0.5, 0.5 + 1e-7, 0.3, 0.9, 0.9 + 1e-7]])
    member = torch.tensor([[True, True, True, True, False]])
    assert near_boundary(score, member).tolist() == [[True, True, False, False, False]]
    at = near_boundary(score, member, threshold=0.3 * (1 + 1e-6))
    assert at.tolist() == [[True, True, True, False, False]]
