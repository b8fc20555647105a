"""What a generation did: per-step counts kept on the device, timing, and the one definition of NFE."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class GenerationStats:
    """What one `generate` call did. Counts are totals over the batch unless said otherwise.

    nfe: denoising steps run; each is one model call (CFG's conditional/unconditional pair is one
    batched call), so this is the number of function evaluations.
    transfers_per_step / remasks_per_step: one list per denoising step, one int per batch row.
    planned_steps_per_block: the plan made at block start (longest row); steps_per_block: steps run,
    including those granted to remasked tokens (remask_budget='extend') and extra steps.
    nfe_per_row: steps each row took part in, i.e. what running that row alone costs (rows
    decode exactly as a batch of one; a row sits out steps after it is done).
    survived = injected - remasked: draft tokens that ended in the output as injected.
    time_model_s / time_sampler_s: wall time in model forwards vs everything the sampler does
    (embedding, stats, selection); on CUDA measured with events, so the loop itself never syncs.
    """

    nfe: int = 0
    steps_per_block: list[int] = field(default_factory=list)
    planned_steps_per_block: list[int] = field(default_factory=list)
    transfers_per_step: list[list[int]] = field(default_factory=list)
    remasks_per_step: list[list[int]] = field(default_factory=list)
    nfe_per_row: list[int] = field(default_factory=list)
    injected: int = 0
    survived: int = 0
    remasked: int = 0
    time_model_s: float = 0.0
    time_sampler_s: float = 0.0
    backend: str = ""
    batch_size: int = 0

    @property
    def steps(self) -> int:
        return sum(self.steps_per_block)


class Clock:
    """Accumulates model vs sampler time; CUDA events (read once at the end) instead of syncs."""

    def __init__(self, device: torch.device, enabled: bool) -> None:
        self.cuda = enabled and device.type == "cuda"
        self.enabled = enabled
        self.spans: dict[str, list] = {"model": [], "sampler": []}
        self.totals = {"model": 0.0, "sampler": 0.0}

    def mark(self) -> object:
        if not self.enabled:
            return None
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def add(self, kind: str, start: object, end: object) -> None:
        if not self.enabled:
            return
        if self.cuda:
            self.spans[kind].append((start, end))
        else:
            self.totals[kind] += end - start  # type: ignore[operator]

    def seconds(self) -> tuple[float, float]:
        if self.cuda:
            torch.cuda.synchronize()
            for kind, spans in self.spans.items():
                self.totals[kind] += sum(a.elapsed_time(b) for a, b in spans) / 1000.0
        return self.totals["model"], self.totals["sampler"]


class StepLog:
    """Per-step device counters, read back once at the end (the loop never syncs for statistics)."""

    def __init__(self, batch_size: int, backend: str, clock: Clock, progress_total: int | None) -> None:
        self.stats = GenerationStats(backend=backend, batch_size=batch_size)
        self.clock = clock
        self.transfers: list[Tensor] = []
        self.remasks: list[Tensor] = []
        self.active: list[Tensor] = []
        self.bar = None
        if progress_total is not None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=progress_total, desc="warmkern.generate", leave=False)

    def record(self, active: Tensor, transfers: Tensor, remasks: Tensor) -> None:
        """One denoising step: which rows took part ([B] bool) and what each row transferred / remasked."""
        self.active.append(active)
        self.transfers.append(transfers)
        self.remasks.append(remasks)
        if self.bar is not None:
            if len(self.transfers) > self.bar.total:
                self.bar.total = len(self.transfers)
            self.bar.update(1)

    def end_block(self, steps_run: int, planned: int) -> None:
        self.stats.steps_per_block.append(steps_run)
        self.stats.planned_steps_per_block.append(planned)

    def finish(self, injected: Tensor) -> GenerationStats:
        """Read everything back (one sync) and fill in the totals."""
        if self.bar is not None:
            self.bar.close()
        st = self.stats
        st.nfe = len(self.transfers)  # one model call per step
        st.nfe_per_row = [0] * st.batch_size
        if self.transfers:
            st.transfers_per_step = torch.stack(self.transfers).tolist()
            st.remasks_per_step = torch.stack(self.remasks).tolist()
            st.nfe_per_row = torch.stack(self.active).sum(0).tolist()
        st.remasked = sum(sum(r) for r in st.remasks_per_step)
        st.injected = int(injected)
        st.survived = st.injected - st.remasked
        st.time_model_s, st.time_sampler_s = self.clock.seconds()
        return st
