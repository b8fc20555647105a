"""The block plan: how many steps a block plans, which rows take part in step i and with what rule,
how remasks grow the plan, and when the host reads counts back from the device.

Counts live on the device, so a fixed schedule needs no host sync inside a block: the host knows only
the plan made at block start and reads the device once at the block's end (is anything left, how far
did each row's plan grow, what does the next block hold). Threshold/factor rules read once per step
(to stop early); steps beyond the block-start plan read once per step (to know when to stop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import torch
from torch import Tensor

if TYPE_CHECKING:
    from warmkern.sampler.config import SamplerConfig
    from warmkern.sampler.state import DecodingState

Count = TypeVar("Count", int, Tensor)


# ----------------------------------------------------------------------------- schedules
def planned_steps(masked: list[int], steps: int, gen_length: int, verify: list[bool]) -> list[int]:
    """ceil(masked * steps / gen_length) per row (LLaDA's steps / num_blocks when cold).

    A row whose block holds provisional tokens to verify (remasking on) plans at least one step, so
    the dLLM looks at every injected token once.
    """
    return [max(-(-m * steps // gen_length), 1 if v else 0) for m, v in zip(masked, verify)]


def remask_budget(remasked: Count, steps: int, gen_length: int) -> Count:
    """Steps granted to `remasked` tokens, ceil(remasked * steps / gen_length): what they would have got
    had they been masked at block start. The same expression serves host ints and device tensors."""
    return (remasked * steps + gen_length - 1) // gen_length


def llada_k(masked_now: Tensor, plan: Tensor, i: int) -> Tensor:
    """k = ceil(masked_now / steps_left): LLaDA's get_num_transfer_tokens counts when nothing is remasked.

    `steps_left` is clamped to 1, so a row past its plan (or a late extra step) commits everything left.
    """
    left = (plan - i).clamp(min=1)
    return (masked_now + left - 1) // left


def noise_step(block: int, index: int, n_blocks: int) -> int:
    """Philox step of step `index` of `block`: block + n_blocks * index (injective, the step itself with one block).

    Keyed by the block and the step's index within it, never by a count over the batch's steps: a row takes
    steps 0, 1, ... of each block alone or in any batch, while the batch may run more steps in a block
    than the row (threshold rows, grown plans), so a global counter would not be row-independent.
    """
    return block + n_blocks * index


def dream_ratios(plan: list[int], n_steps: int, device: torch.device, eps: float) -> Tensor:
    """[B, n_steps] fp32 share of the masked tokens committed at each step: 1 - s/t, 1 at a row's last step.

    Built with the same fp32 torch ops as Dream (`linspace(1, eps, n + 1)`, `1 - s / t`) so the
    floor below lands on the same integer.
    """
    table = torch.ones((len(plan), max(n_steps, 1)), dtype=torch.float32)
    for n in sorted(set(plan)):  # one row of ratios per distinct plan length, not per batch row
        if n < 2:
            continue
        ts = torch.linspace(1, eps, n + 1)
        ratio = 1 - ts[1:n] / ts[: n - 1]
        rows = torch.tensor([steps == n for steps in plan])
        table[rows, : n - 1] = ratio
    return table.to(device)


def dream_k(masked_now: Tensor, ratio: Tensor) -> Tensor:
    """k = floor(m * (1 - s/t)) in fp32, as Dream's `int(num_mask_token * (1 - s / t))`."""
    return torch.floor(masked_now.to(torch.float32) * ratio).to(torch.int64)


# ----------------------------------------------------------------------------- one step's request
@dataclass(frozen=True)
class Part:
    """Rows' windows [lo, hi) over the decoding region and their rule: k per row, or None = threshold/factor.

    A row outside the part has an empty window (lo = hi = 0).
    """

    lo: Tensor
    hi: Tensor
    k: Tensor | None


@dataclass(frozen=True)
class Step:
    """What step `index` of a block asks of the state: one part per rule (disjoint rows)."""

    index: int
    noise: int  # the Philox step (`noise_step`)
    plan: Tensor  # [B] steps each row plans for the block (grown by remasks): the alpha schedule reads it
    parts: list[Part]
    active: Tensor  # [B] bool: rows taking part (the others decode exactly as if they were not in the batch)


# ----------------------------------------------------------------------------- one block
class BlockPlan:
    """The steps of one block, per row, as a batch-of-one run of that row would take them.

    `host` is the per-row plan the host knows: the block-start plan, grown by remask budgets when the
    host reads them (threshold/factor every step, fixed schedules at the block end). `device` is the
    same plan grown on the device after every step, so fixed schedules need no read inside the plan.
    A block runs while a row has planned steps left or still owes tokens (`owed`); a row whose plan is
    used up and still owes tokens it did not just remask has positions no allowed token can fill.
    """

    def __init__(self, config: SamplerConfig, state: DecodingState, block: int, counts: list[list[int]]) -> None:
        self.config, self.state, self.block = config, state, block
        self.window = state.candidate_window(block)
        masked, provisional = counts
        verify = [config.verify and c > 0 for c in provisional]
        self.host = planned_steps(masked, config.steps, config.gen_length, verify)
        self.planned = self.horizon = max(self.host)
        self.start = torch.tensor(self.host, dtype=torch.int64, device=state.device)
        self.device = self.start
        dream = config.schedule == "dream" and not config.adaptive
        self.ratios = dream_ratios(self.host, self.planned, state.device, config.eps) if dream else None
        # Infilling: the window also holds earlier masks (the prompt's); the block owes only its own count.
        block_lo = state.block_window(block)[0]
        self.before = state.masked(self.window[0], block_lo) if self.window[0] < block_lo else None
        self.index = 0
        self.remasks = torch.zeros((state.batch_size,), dtype=torch.int64, device=state.device)
        self.finished = self.planned == 0
        self.left: list[int] | None = None  # owed per row, as last read by the host after the block-start plan
        self.last_remasks: list[int] = []
        self.read_at = 0
        # Token warm starts change the next block's counts: read them with this block's last read.
        more = config.prefilled and block + 1 < config.n_blocks
        self.peek = state.block_counts(block + 1) if more else None
        self.next_counts = None if more else counts

    def owed(self) -> Tensor:
        """[B] tokens the block still has to commit: its masked positions (LLaDA's per-block count)."""
        masked = self.state.masked(*self.window)
        return masked if self.before is None else masked - self.before

    def _granted(self, remasked: int) -> int:
        return remask_budget(remasked, self.config.steps, self.config.gen_length) if self.config.grow else 0

    def _grown(self, remasks: list[int]) -> list[int]:
        """The host plan grown by the budget of each row's remasks (unchanged unless remask_budget='extend')."""
        return [steps + self._granted(remasked) for steps, remasked in zip(self.host, remasks)]

    # ------------------------------------------------------------------ stepping
    def needs_step(self) -> bool:
        """Whether step `index` runs; reads the device only where the host plan cannot tell."""
        if self.finished:
            return False
        if self.left is None:
            if self._within_plan():
                return True
            if self.finished:
                return False
            self._read(block_end=True)
        elif self.index > self.read_at:
            self._read(block_end=False)
        adaptive = self.config.adaptive
        if not any(owed > 0 or (not adaptive and steps > self.index) for owed, steps in zip(self.left, self.host)):
            self.finished = True
            return False
        self._check_stuck()
        return True

    def _within_plan(self) -> bool:
        """Inside the plan: fixed schedules step without reading; threshold/factor read to stop early."""
        i, config = self.index, self.config
        if i > 0 and config.adaptive:
            if config.grow:  # read the remasks too, and move the forced last step with the grown plan
                owed, remasks = self.state.read([self.owed(), self.remasks])
                self.host = self._grown(remasks)
                self.horizon = max(self.host)
                if not any(owed):
                    self.finished = True
                    return False
            elif i < self.horizon and not any(owed > 0 for owed in self.state.read([self.owed()])[0]):
                self.finished = True
                return False
        return i < self.horizon

    def _read(self, block_end: bool) -> None:
        """One read: what each row owes, what the last step remasked, how far each plan grew."""
        rows = [self.owed(), self.remasks, self.device]
        if block_end and self.peek is not None:
            rows.extend(self.peek)
        host = self.state.read(rows)
        self.left, self.last_remasks = host[0], host[1]
        if not self.config.adaptive:
            self.host = host[2]
        elif not block_end:
            self.host = self._grown(self.last_remasks)
        if block_end and self.peek is not None:
            self.next_counts = host[-2:]
        self.read_at = self.index

    def _check_stuck(self) -> None:
        """A row whose last step committed everything (its plan before that step's remasks was used up)
        owes only what that step remasked, unless some positions have no finite logit."""
        assert self.left is not None
        stuck = [
            owed - remasked if steps - self._granted(remasked) <= self.index else 0  # plan used up before the remasks
            for owed, remasked, steps in zip(self.left, self.last_remasks, self.host)
        ]
        if any(count > 0 for count in stuck):
            raise RuntimeError(
                f"generate: {sum(stuck)} answer position(s) in block {self.block} have no finite logit for any "
                "allowed token (NaN or -inf logits), so decoding cannot progress; check the model output, "
                "eos_id with logits_eos_inf, and any generation hook (one that masks tokens again or bans "
                "every token)"
            )

    def next_step(self) -> Step:
        """Windows and rule of step `index`: a row takes part while it has planned steps left (fixed
        schedules; `device` includes steps granted to remasks) or owes tokens (after its plan, or at any
        point in threshold/factor mode after the first step); the others get an empty window, so a row's
        tokens never depend on which rows share its batch. k is ceil(owed / steps left) (LLaDA; all of it
        once a row's plan is used up) or floor(owed (1 - s/t)) (Dream, over the block-start plan, then
        LLaDA's k over the steps it grew by); threshold/factor rows commit everything at their last step.
        """
        i, owed = self.index, self.owed()
        noise = noise_step(self.block, i, self.config.n_blocks)
        lo_i, hi_i = self.window
        if self.config.adaptive:
            active = (owed > 0) | ((self.device > 0) & (i == 0))
        else:
            active = (owed > 0) | (self.device > i)
        lo, hi = active.long() * lo_i, active.long() * hi_i
        if not self.config.adaptive:
            k = llada_k(owed, self.device, i)
            if self.ratios is not None and i < self.ratios.shape[1]:
                # At and after a row's last Dream step (ratio 1) llada_k commits everything unless the plan grew.
                k = torch.where(i < self.start - 1, dream_k(owed, self.ratios[:, i]), k)
            return Step(i, noise, self.device, [Part(lo, hi, k)], active)
        forced = [i >= p - 1 for p in self.host]
        if all(forced) or not any(forced):
            return Step(i, noise, self.device, [Part(lo, hi, owed if forced[0] else None)], active)
        last = torch.tensor(forced, device=self.state.device)
        parts = [Part(lo * last, hi * last, owed), Part(lo * ~last, hi * ~last, None)]
        return Step(i, noise, self.device, parts, active)

    def advance(self, remasks: Tensor) -> None:
        """After step `index`: remember its remasks and grow the device plan by their budget."""
        self.index += 1
        self.remasks = remasks
        if self.config.grow:
            self.device = self.device + remask_budget(remasks, self.config.steps, self.config.gen_length)

    def finish(self) -> list[list[int]]:
        """The next block's [masked, provisional] counts per row (read now if the block ended early)."""
        if self.next_counts is None:
            assert self.peek is not None
            self.next_counts = self.state.read(list(self.peek))
        return self.next_counts
