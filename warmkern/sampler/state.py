"""The decoding state: sequence buffers, the warm start, one step (model call, ops, Dream's tokens hook) and the
host reads."""

from __future__ import annotations

import torch
from torch import Tensor

from warmkern import backends, ops
from warmkern.models import ModelAdapter
from warmkern.sampler.config import SamplerConfig
from warmkern.sampler.forward import ModelCall
from warmkern.sampler.hooks import run_tokens_hook
from warmkern.sampler.plan import Part, Step
from warmkern.sampler.stats import Clock
from warmkern.sampler.warm import DraftPrior, EmbeddingInput, set_up_warm_start


def region_starts(prompt: Tensor, config: SamplerConfig) -> list[int]:
    """Per row, the first column the ops decode: P, or its first masked prompt column when it holds mask_id.

    Infilling follows LLaDA's generate: every masked position before the current block's end is a
    candidate, while each block commits as many tokens as it held masks at its start. A row's noise is
    keyed by the position in *its own* region (from its own first hole), so it does not depend on the
    other rows of the batch.
    """
    prompt_len = prompt.shape[1]
    holes = prompt == config.mask_id
    first = torch.where(holes.any(1), holes.int().argmax(1), prompt_len).tolist()
    start = min(first)
    if start == prompt_len:
        return first
    if config.adaptive or config.schedule != "llada":
        got = f"threshold={config.threshold}" if config.threshold is not None else (
            f"factor={config.factor}" if config.factor is not None else f"schedule={config.schedule!r}")
        raise ValueError(
            f"prompt: holds mask_id {config.mask_id} (infilling, as LLaDA's generate does it): expected "
            f"schedule='llada' without threshold/factor, got {got}"
        )
    if config.logits_shift and start == 0:
        raise ValueError("prompt: holds mask_id at position 0, which logits_shift=True cannot predict "
                         "(position i is read at i-1)")
    return first


class DecodingState:
    """Buffers of one generation and the step that changes them.

    `buffer` [rows, P + G]: the batch, and with CFG a second half (`ModelCall` mirrors it). The ops work on
    `region` = buffer[:B, start:]: the answer (start = P), or from the first masked prompt column of any row
    when infilling (`offsets`: where each row's own region starts inside it). `provisional` marks injected
    draft tokens the dLLM may still remask.
    """

    def __init__(self, adapter: ModelAdapter, prompt: Tensor, attention_mask: Tensor | None, config: SamplerConfig,
                 clock: Clock) -> None:
        self.adapter, self.config, self.clock = adapter, config, clock
        self.device = device = adapter.device
        self.backend = backends.resolve(config.backend, device)
        self.batch_size, self.prompt_len = batch, prompt_len = prompt.shape
        starts = region_starts(prompt, config)
        start = min(starts)
        # Rows whose regions start later get their own op call when noise is drawn (it is keyed by position).
        self.offsets = [s - start for s in starts] if config.noisy and max(starts) > start else None
        length = prompt_len + config.gen_length
        self.buffer = torch.full((2 * batch if config.cfg_scale > 0 else batch, length), config.mask_id,
                                 dtype=torch.int64, device=device)
        self.x = self.buffer[:batch]
        self.x[:, :prompt_len] = prompt.to(device)
        self.start, self.answer_offset = start, prompt_len - start
        self.region, self.answer = self.x[:, start:], self.x[:, prompt_len:]
        self.provisional = torch.zeros((batch, length - start), dtype=torch.bool, device=device)
        self.model_call = ModelCall(adapter, config, clock, self.buffer, batch, prompt_len, start, attention_mask)
        seed = config.seed
        self.seed = seed.to(device).expand(batch).contiguous() if isinstance(seed, Tensor) else seed
        self._set_up_warm_start()
        self.model_call.embedding = self.embedding
        self.steps_done = 0
        if config.tokens_hook is not None:
            run_tokens_hook(config.tokens_hook, None, self.x, None)

    def _set_up_warm_start(self) -> None:
        config = self.config
        self.injected = torch.zeros((), dtype=torch.int64, device=self.device)
        self.embedding: EmbeddingInput | None = None
        self.prior: DraftPrior | None = None
        if config.warm_start is None:
            return
        answer_flags = self.provisional[:, self.answer_offset :]
        self.injected, self.embedding, kept = set_up_warm_start(
            config, self.adapter, self.answer, answer_flags, self.buffer.shape[0], self.prompt_len, self.seed
        )
        if kept is not None:  # the prior lives in region columns: none over the prompt's holes
            holes = torch.full((self.batch_size, self.answer_offset), -1, dtype=torch.int64, device=self.device)
            bias = config.warm_start.prior_bias
            assert bias is not None
            self.prior = DraftPrior(torch.cat([holes, kept], dim=1), bias, config.mask_id)

    # ------------------------------------------------------------------ geometry and counts (region columns)
    def block_window(self, block: int) -> tuple[int, int]:
        lo = self.answer_offset + block * self.config.block_length
        return lo, lo + self.config.block_length

    def candidate_window(self, block: int) -> tuple[int, int]:
        """Where step candidates lie: the block, or everything before its end when infilling (LLaDA)."""
        lo, hi = self.block_window(block)
        return (0, hi) if self.start < self.prompt_len else (lo, hi)

    def masked(self, lo: int, hi: int) -> Tensor:
        return (self.region[:, lo:hi] == self.config.mask_id).sum(1)

    def block_counts(self, block: int) -> Tensor:
        """[2, B] device tensor: masked and provisional counts of a block."""
        lo, hi = self.block_window(block)
        return torch.stack([self.masked(lo, hi), self.provisional[:, lo:hi].sum(1)])

    def opening_counts(self) -> list[list[int]]:
        """Counts of the first block: read back when blocks may start filled, else every position masked."""
        if self.config.prefilled:
            return self.read(list(self.block_counts(0)))
        return [[self.config.block_length] * self.batch_size, [0] * self.batch_size]

    def read(self, rows: list[Tensor]) -> list[list[int]]:
        """The host sync: [B] device rows read in one go; embedding mode's status flag rides along and is checked."""
        if self.embedding is not None:
            rows = [*rows, self.embedding.status.to(torch.int64).expand(self.batch_size)]
        host = torch.stack(rows).tolist() if rows else []
        if self.embedding is not None:
            self.embedding.check(host.pop()[0], self.buffer, self.model_call.logits_vocab)
        return host

    def end_block(self, block: int) -> None:
        lo, hi = self.block_window(block)
        self.provisional[:, lo:hi] = False  # survivors of a finished block are final

    def result(self) -> Tensor:
        self.read([])  # the last steps' status (embedding mode)
        return self.x.clone() if self.buffer.shape[0] > self.batch_size else self.x

    # ------------------------------------------------------------------ one step
    def step(self, step: Step) -> tuple[Tensor, Tensor]:
        """One forward, then the selection rule(s); returns (transfers, remasks) per row, on the device.

        One part is one fused denoise_step; two parts (rows of a threshold batch at different points of
        their plans) share one token_stats. Dream's tokens hook runs after the update.
        """
        cond, uncond, hooked = self.model_call(step, self.steps_done, self.backend)
        started = self.clock.mark()
        stats_kw, rule_kw, call_kw = self._op_arguments(uncond, step)
        if len(step.parts) == 1:
            transfers, remasks = self._denoise(cond, step.parts[0], stats_kw, rule_kw, call_kw)
        else:
            x0, score, p_cur = ops.token_stats(cond, self.region, **stats_kw, **call_kw)
            transfers = remasks = torch.zeros((self.batch_size,), dtype=torch.int64, device=self.device)
            for part in step.parts:
                part_transfers, part_remasks = ops.select(
                    score, x0, p_cur, self.region, self.provisional, mask_id=self.config.mask_id,
                    **self._part_arguments(part), **rule_kw, **call_kw,
                )
                transfers, remasks = transfers + part_transfers, remasks + part_remasks
        if self.config.tokens_hook is not None:
            run_tokens_hook(self.config.tokens_hook, self.steps_done, self.x, hooked)
        self.clock.add("sampler", started, self.clock.mark())
        self.steps_done += 1
        return transfers, remasks

    def _denoise(self, cond: Tensor, part: Part, stats_kw: dict, rule_kw: dict, call_kw: dict) -> tuple[Tensor, Tensor]:
        """One fused denoise_step; with infilling rows whose regions start at different columns and noise, one
        call per row on its own region (so its noise is keyed by positions in its own region)."""
        if self.offsets is None:
            return ops.denoise_step(cond, self.region, self.provisional, **self._part_arguments(part), **stats_kw,
                                    **rule_kw, **call_kw)
        counts = []
        for r, off in enumerate(self.offsets):
            window = {n: (v[r : r + 1] - off).clamp(min=0) for n, v in (("lo", part.lo), ("hi", part.hi))}
            k = None if part.k is None else part.k[r : r + 1]
            row_kw = {n: _row_slice(v, r, off) for n, v in stats_kw.items()}
            counts.append(ops.denoise_step(
                cond[r : r + 1, off:], self.region[r : r + 1, off:], self.provisional[r : r + 1, off:],
                **self._part_arguments(Part(window["lo"], window["hi"], k)), **row_kw, **rule_kw, **call_kw,
            ))
        return torch.cat([c[0] for c in counts]), torch.cat([c[1] for c in counts])

    def _op_arguments(self, uncond: Tensor | None, step: Step) -> tuple[dict, dict, dict]:
        """The ops' keyword arguments, in one place: (token statistics, selection rule, how to call)."""
        config = self.config
        ws = config.warm_start
        stats_kw = dict(
            mask_id=config.mask_id, temperature=config.temperature, score=config.score,
            score_temperature=config.score_temperature, suppress_ids=config.suppress_ids,
            score_suppress_ids=config.score_suppress_ids,
            uncond_logits=uncond, cfg_scale=config.cfg_scale, seed=self.seed, step=step.noise,
            top_k=config.top_k, top_p=config.top_p,
            prior_ids=self.prior.prior_ids(self.region) if self.prior is not None else None,
            prior_bias=self.prior.bias if self.prior is not None else 0.0,
        )
        rule_kw = dict(remask_threshold=ws.remask_threshold if ws is not None else None,
                       remask_max=ws.remask_max if ws is not None else None, alg_temp=config.alg_temp)
        call_kw = dict(backend=self.backend, check_values=self.steps_done == 0)
        return stats_kw, rule_kw, call_kw

    def _part_arguments(self, part: Part) -> dict:
        rule = part.k is None  # threshold/factor rows
        return dict(lo=part.lo, hi=part.hi, k=part.k, threshold=self.config.threshold if rule else None,
                    factor=self.config.factor if rule else None)


def _row_slice(value: object, row: int, offset: int) -> object:
    """Row `row` of a per-row op argument: [B, G(, V)] tensors from column `offset`, [B] tensors as [1]."""
    if not isinstance(value, Tensor) or value.dim() == 0:
        return value
    return value[row : row + 1, offset:] if value.dim() >= 2 else value[row : row + 1]
