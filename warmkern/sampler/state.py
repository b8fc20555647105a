"""The decoding state: sequence buffers, the CFG mirror, the warm start, the forward and the ops call."""

from __future__ import annotations

import torch
from torch import Tensor

from warmkern import backends, ops
from warmkern.models import ModelAdapter
from warmkern.sampler.config import SamplerConfig
from warmkern.sampler.plan import Part, Step
from warmkern.sampler.stats import Clock
from warmkern.sampler.warm import EmbeddingInput, set_up_warm_start


def region_start(prompt: Tensor, config: SamplerConfig) -> int:
    """First column the ops decode: P, or the first masked prompt column when the prompt holds mask_id.

    Infilling follows LLaDA's generate: every masked position before the current block's end is a
    candidate, while each block commits as many tokens as it held masks at its start.
    """
    prompt_len = prompt.shape[1]
    holes = (prompt == config.mask_id).any(0).nonzero()
    if holes.numel() == 0:
        return prompt_len
    start = int(holes[0])
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
    return start


def _whole_sequence_mask(attention_mask: Tensor | None, gen_length: int, rows: int, device: torch.device
                         ) -> Tensor | None:
    """The prompt's attention mask extended over the answer (all ones), repeated for the CFG half."""
    if attention_mask is None:
        return None
    mask = attention_mask.to(device)
    mask = torch.cat([mask, torch.ones((mask.shape[0], gen_length), dtype=mask.dtype, device=device)], dim=1)
    return mask.repeat(rows // mask.shape[0], 1)


class DecodingState:
    """Buffers of one generation and the step that changes them.

    `buffer` [rows, P + G]: the batch, and with CFG a second half that keeps the prompt masked and mirrors
    the rest each step (LLaDA's un_x). The ops work on `region` = buffer[:B, start:]: the answer
    (start = P), or from the first masked prompt column when infilling. `provisional` marks injected
    draft tokens the dLLM may still remask.
    """

    def __init__(self, adapter: ModelAdapter, prompt: Tensor, attention_mask: Tensor | None, config: SamplerConfig,
                 clock: Clock) -> None:
        self.adapter, self.config, self.clock = adapter, config, clock
        self.device = device = adapter.device
        self.backend = backends.resolve(config.backend, device)
        self.vocab = adapter.vocab_size
        self.batch_size, self.prompt_len = batch, prompt_len = prompt.shape
        start = region_start(prompt, config)
        length = prompt_len + config.gen_length
        self.buffer = torch.full((2 * batch if config.cfg_scale > 0 else batch, length), config.mask_id,
                                 dtype=torch.int64, device=device)
        self.x = self.buffer[:batch]
        self.x[:, :prompt_len] = prompt.to(device)
        self.start, self.answer_offset = start, prompt_len - start
        self.region, self.answer = self.x[:, start:], self.x[:, prompt_len:]
        self.provisional = torch.zeros((batch, length - start), dtype=torch.bool, device=device)
        # Infilling with CFG: the unconditional half shows what was masked in the prompt as it gets filled.
        self.mirror_keep = self.region == config.mask_id if config.cfg_scale > 0 and start < prompt_len else None
        full_mask = _whole_sequence_mask(attention_mask, config.gen_length, self.buffer.shape[0], device)
        self.attention_mask, self.position_ids = adapter.prepare_attention_mask(full_mask)
        self.injected = torch.zeros((), dtype=torch.int64, device=device)
        self.embedding: EmbeddingInput | None = None
        if config.warm_start is not None:
            answer_flags = self.provisional[:, self.answer_offset :]
            self.injected, self.embedding = set_up_warm_start(
                config, adapter, self.answer, answer_flags, self.buffer.shape[0], prompt_len
            )
        self.steps_done = 0

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
        """Counts of the first block: read back with token warm starts, else every position masked."""
        if self.config.warm_mode == "token":
            return self.block_counts(0).tolist()
        return [[self.config.block_length] * self.batch_size, [0] * self.batch_size]

    def end_block(self, block: int) -> None:
        lo, hi = self.block_window(block)
        self.provisional[:, lo:hi] = False  # survivors of a finished block are final

    def result(self) -> Tensor:
        return self.x.clone() if self.buffer.shape[0] > self.batch_size else self.x

    # ------------------------------------------------------------------ one step
    def step(self, step: Step) -> tuple[Tensor, Tensor]:
        """One forward, then the selection rule(s); returns (transfers, remasks) per row, on the device.

        One part is one fused denoise_step; two parts (rows of a threshold batch at different points of
        their plans) share one token_stats.
        """
        cond, uncond = self._forward(step)
        started = self.clock.mark()
        stats_kw, rule_kw, call_kw = self._op_arguments(uncond)
        if len(step.parts) == 1:
            transfers, remasks = ops.denoise_step(
                cond, self.region, self.provisional, **self._part_arguments(step.parts[0]), **stats_kw, **rule_kw,
                **call_kw,
            )
        else:
            x0, score, p_cur = ops.token_stats(cond, self.region, **stats_kw, **call_kw)
            transfers = remasks = torch.zeros((self.batch_size,), dtype=torch.int64, device=self.device)
            for part in step.parts:
                part_transfers, part_remasks = ops.select(
                    score, x0, p_cur, self.region, self.provisional, mask_id=self.config.mask_id,
                    **self._part_arguments(part), **rule_kw, **call_kw,
                )
                transfers, remasks = transfers + part_transfers, remasks + part_remasks
        self.clock.add("sampler", started, self.clock.mark())
        self.steps_done += 1
        return transfers, remasks

    def _op_arguments(self, uncond: Tensor | None) -> tuple[dict, dict, dict]:
        """The ops' keyword arguments, in one place: (token statistics, selection rule, how to call)."""
        config = self.config
        ws = config.warm_start
        stats_kw = dict(
            mask_id=config.mask_id, temperature=config.temperature, score=config.score,
            score_temperature=config.score_temperature, suppress_ids=config.suppress_ids,
            demote_ids=config.demote_ids, uncond_logits=uncond, cfg_scale=config.cfg_scale, seed=config.seed,
            step=self.steps_done,
        )
        rule_kw = dict(remask_threshold=ws.remask_threshold if ws is not None else None,
                       remask_max=ws.remask_max if ws is not None else None)
        call_kw = dict(backend=self.backend, check_values=self.steps_done == 0)
        return stats_kw, rule_kw, call_kw

    def _part_arguments(self, part: Part) -> dict:
        rule = part.k is None  # threshold/factor rows
        return dict(lo=part.lo, hi=part.hi, k=part.k, threshold=self.config.threshold if rule else None,
                    factor=self.config.factor if rule else None)

    def _forward(self, step: Step) -> tuple[Tensor, Tensor | None]:
        """Logits of the region (conditional, and unconditional with CFG) from one model call."""
        started = self.clock.mark()
        self._mirror()
        inputs: dict[str, Tensor] = {"input_ids": self.buffer}
        model_started = started
        if self.embedding is not None:
            embeds = self.embedding.embed(self.buffer, step, self.config.mask_id, self.backend, self.steps_done == 0)
            inputs = {"inputs_embeds": embeds}
            model_started = self.clock.mark()
            self.clock.add("sampler", started, model_started)
        logits = self.adapter.forward(**inputs, attention_mask=self.attention_mask, position_ids=self.position_ids)
        self.clock.add("model", model_started, self.clock.mark())
        self._check_logits(logits)
        batch, length = self.batch_size, self.buffer.shape[1] - self.start
        cond = self.adapter.region(logits[:batch], self.start, length)
        uncond = self.adapter.region(logits[batch:], self.start, length) if self.buffer.shape[0] > batch else None
        return cond, uncond

    def _mirror(self) -> None:
        """CFG: the unconditional half sees the current answer (and filled prompt holes), never the prompt."""
        if self.buffer.shape[0] == self.batch_size:
            return
        if self.mirror_keep is None:
            self.buffer[self.batch_size :, self.prompt_len :].copy_(self.answer)
        else:
            held = torch.where(self.mirror_keep, self.region, self.config.mask_id)
            self.buffer[self.batch_size :, self.start :].copy_(held)

    def _check_logits(self, logits: Tensor) -> None:
        """Say what the model returned (before any op would blame `x`); vocabulary checks on first sight."""
        rows, length = self.buffer.shape
        if tuple(logits.shape[:2]) != (rows, length):
            raise ValueError(
                f"model: returned logits of shape {tuple(logits.shape)}, expected [{rows}, {length}, V] "
                f"(one row per input row, one position per input position; input shape ({rows}, {length}))"
            )
        if self.steps_done == 0 and logits.shape[-1] != self.vocab:
            self.config.check_vocab(int(logits.shape[-1]))
