"""One model call per denoising step: the CFG mirror, embedding-mode inputs, the model, what it returned
(checked), and Dream's logits hook; out come the region logits the ops read."""

from __future__ import annotations

import torch
from torch import Tensor

from warmkern.models import ModelAdapter
from warmkern.sampler.config import SamplerConfig
from warmkern.sampler.hooks import aligned, run_logits_hook
from warmkern.sampler.plan import Step
from warmkern.sampler.stats import Clock
from warmkern.sampler.warm import EmbeddingInput


def _whole_sequence_mask(attention_mask: Tensor | None, gen_length: int, rows: int, device: torch.device
                         ) -> Tensor | None:
    """The prompt's attention mask extended over the answer (all ones), repeated for the CFG half."""
    if attention_mask is None:
        return None
    mask = attention_mask.to(device)
    mask = torch.cat([mask, torch.ones((mask.shape[0], gen_length), dtype=mask.dtype, device=device)], dim=1)
    return mask.repeat(rows // mask.shape[0], 1)


class ModelCall:
    """Calls the model on `buffer` (the batch, plus the unconditional half with CFG) once per step.

    The unconditional half keeps the prompt masked and mirrors the rest each step (LLaDA's un_x); when
    infilling it also shows what was masked in the prompt as it gets filled. `embedding` (embedding-mode
    warm start) turns the buffer into `inputs_embeds`.
    """

    def __init__(self, adapter: ModelAdapter, config: SamplerConfig, clock: Clock, buffer: Tensor, batch: int,
                 prompt_len: int, start: int, attention_mask: Tensor | None) -> None:
        self.adapter, self.config, self.clock = adapter, config, clock
        self.buffer, self.batch, self.prompt_len, self.start = buffer, batch, prompt_len, start
        x = buffer[:batch]
        self.x, self.region, self.answer = x, x[:, start:], x[:, prompt_len:]
        self.mirror_keep = self.region == config.mask_id if buffer.shape[0] > batch and start < prompt_len else None
        full_mask = _whole_sequence_mask(attention_mask, config.gen_length, buffer.shape[0], buffer.device)
        self.attention_mask, self.position_ids = adapter.prepare_attention_mask(full_mask)
        self.vocab = adapter.vocab_size
        self.logits_vocab: int | None = None  # the logits' V, known after the first call
        self.embedding: EmbeddingInput | None = None

    def __call__(self, step: Step, steps_done: int, backend: str) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Region logits (conditional, and unconditional with CFG) after Dream's logits hook, plus the aligned
        full-sequence conditional logits the tokens hook gets (None without hooks)."""
        started = self.clock.mark()
        self._mirror()
        inputs: dict[str, Tensor] = {"input_ids": self.buffer}
        model_started = started
        if self.embedding is not None:
            embeds = self.embedding.embed(self.buffer, step, self.config.mask_id, backend, steps_done == 0)
            inputs = {"inputs_embeds": embeds}
            model_started = self.clock.mark()
            self.clock.add("sampler", started, model_started)
        logits = self.adapter.forward(**inputs, attention_mask=self.attention_mask, position_ids=self.position_ids)
        self.clock.add("model", model_started, self.clock.mark())
        self._check_logits(logits, first=steps_done == 0)
        halves = [logits[: self.batch], logits[self.batch :]] if self.buffer.shape[0] > self.batch else [logits]
        config = self.config
        if config.logits_hook is None and config.tokens_hook is None:
            length = self.buffer.shape[1] - self.start
            regions = [self.adapter.region(h, self.start, length) for h in halves]
            return regions[0], regions[1] if len(regions) > 1 else None, None
        full = [aligned(h, config.logits_shift) for h in halves]
        if config.logits_hook is not None:
            full = [run_logits_hook(config.logits_hook, steps_done, self.x, h) for h in full]
        return full[0][:, self.start :], full[1][:, self.start :] if len(full) > 1 else None, full[0]

    def _mirror(self) -> None:
        """CFG: the unconditional half sees the current answer (and filled prompt holes), never the prompt."""
        if self.buffer.shape[0] == self.batch:
            return
        if self.mirror_keep is None:
            self.buffer[self.batch :, self.prompt_len :].copy_(self.answer)
        else:
            held = torch.where(self.mirror_keep, self.region, self.config.mask_id)
            self.buffer[self.batch :, self.start :].copy_(held)

    def _check_logits(self, logits: Tensor, first: bool) -> None:
        """Say what the model returned (before any op would blame `x`); vocabulary checks on first sight."""
        rows, length = self.buffer.shape
        if tuple(logits.shape[:2]) != (rows, length):
            raise ValueError(
                f"model: returned logits of shape {tuple(logits.shape)}, expected [{rows}, {length}, V] "
                f"(one row per input row, one position per input position; input shape ({rows}, {length}))"
            )
        if first:
            self.logits_vocab = int(logits.shape[-1])
            if self.logits_vocab != self.vocab:
                self.config.check_vocab(self.logits_vocab)
