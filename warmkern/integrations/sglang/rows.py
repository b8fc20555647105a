"""Per-row decoding state of the plugin, and the batch tensors assembled from it.

sglang keeps one state object per request of a block (`init_step_state`); in first-done-first-out mode
(`--dllm-fdfo`) states are carried across batches of changing composition. So a row's tensors live in
its state, and the batch tensors are stacked from them only when the batch's rows change (the rows
then become views of the new batch tensors, so in-place updates by the op reach the states).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from warmkern.integrations.sglang.requests import RequestInfo, step_seed


@dataclass(eq=False)
class RowState:
    """One request's block: its info, the step counter, and device rows (prior ids, provisional)."""

    info: RequestInfo
    step: int = 0
    prepared: bool = False
    prior: torch.Tensor | None = None  # [n] int64 draft token per block position (-1 = none)
    bias: float = 0.0
    provisional: torch.Tensor | None = None  # [n] bool: injected, not yet confirmed

    def prior_row(self, n: int, vocab: int | None) -> list[int]:
        """Draft token of each block position (-1 = none); ids >= vocab (when known) are dropped."""
        start = self.info.block_offset - self.info.prompt_len
        row = []
        for j in range(n):
            g = start + j
            t = self.info.draft[g] if 0 <= g < len(self.info.draft) else -1
            row.append(t if vocab is None or t < vocab else -1)
        return row


class BatchRows:
    """Stacked [B, ...] tensors of a list of RowStates, rebuilt only when the rows change."""

    def __init__(self) -> None:
        self.rows: list[RowState] = []
        self.prior: torch.Tensor | None = None
        self.bias: torch.Tensor | None = None
        self.provisional: torch.Tensor | None = None

    def update(self, states: list[RowState], n: int, device: torch.device) -> None:
        """Restack when `states` is not the same rows in the same order as last time."""
        if len(states) == len(self.rows) and all(a is b for a, b in zip(states, self.rows)):
            return
        self.rows = list(states)
        prov = [s.provisional if s.provisional is not None else torch.zeros(n, dtype=torch.bool, device=device)
                for s in states]
        self.provisional = torch.stack(prov) if prov else torch.zeros(0, n, dtype=torch.bool, device=device)
        for i, s in enumerate(states):
            s.provisional = self.provisional[i]
        if any(s.prior is not None and s.bias != 0.0 for s in states):
            none = torch.full((n,), -1, dtype=torch.int64, device=device)
            self.prior = torch.stack([s.prior if s.prior is not None else none for s in states])
            self.bias = torch.tensor([s.bias for s in states], dtype=torch.float32).to(device, non_blocking=True)
        else:
            self.prior, self.bias = None, None

    def seeds(self, device: torch.device) -> torch.Tensor:
        """[B] int64 Philox keys of this step (host arithmetic, one host-to-device copy, no sync)."""
        keys = [step_seed(s.info.seed, s.info.block_offset, s.step) for s in self.rows]
        return torch.tensor(keys, dtype=torch.int64).to(device, non_blocking=True)
