"""Step schedules: how many steps a block plans and how many tokens each step commits.

Counts are per row and live on the device, so a fixed schedule needs no host sync inside a block:
only the planned step counts (one small list per block) are known on the host.
"""

from __future__ import annotations

import torch
from torch import Tensor

SCHEDULES = ("llada", "dream")
DREAM_EPS = 1e-3  # Dream's diffusion_generate default: timesteps = linspace(1, eps, steps + 1)


def planned_steps(masked: list[int], steps: int, gen_length: int, verify: list[bool]) -> list[int]:
    """ceil(masked * steps / gen_length) per row (LLaDA's steps / num_blocks when cold).

    A row whose block holds provisional tokens to verify (remasking on) plans at least one step, so
    the dLLM looks at every injected token once.
    """
    return [max(-(-m * steps // gen_length), 1 if v else 0) for m, v in zip(masked, verify)]


def llada_k(masked_now: Tensor, plan: Tensor, i: int) -> Tensor:
    """k = ceil(masked_now / steps_left): LLaDA's get_num_transfer_tokens counts when nothing is remasked.

    `steps_left` is clamped to 1, so a row past its plan (or a late extra step) commits everything left.
    """
    left = (plan - i).clamp(min=1)
    return (masked_now + left - 1) // left


def dream_ratios(plan: list[int], n_steps: int, device: torch.device) -> Tensor:
    """[B, n_steps] fp32 share of the masked tokens committed at each step: 1 - s/t, 1 at a row's last step.

    Built with the same fp32 torch ops as Dream (`linspace(1, eps, n + 1)`, `1 - s / t`) so the
    floor below lands on the same integer.
    """
    table = torch.ones((len(plan), max(n_steps, 1)), dtype=torch.float32)
    for n in sorted(set(plan)):  # one row of ratios per distinct plan length, not per batch row
        if n < 2:
            continue
        ts = torch.linspace(1, DREAM_EPS, n + 1)
        r = 1 - ts[1:n] / ts[: n - 1]
        rows = torch.tensor([p == n for p in plan])
        table[rows, : n - 1] = r
    return table.to(device)


def dream_k(masked_now: Tensor, ratio: Tensor) -> Tensor:
    """k = floor(m * (1 - s/t)) in fp32, as Dream's `int(num_mask_token * (1 - s / t))`."""
    return torch.floor(masked_now.to(torch.float32) * ratio).to(torch.int64)
