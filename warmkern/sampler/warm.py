"""Warm start inside the decoding state: token injection, or the draft mixed into input embeddings."""

from __future__ import annotations

import torch
from torch import Tensor

from warmkern import ops, rng
from warmkern.models import ModelAdapter
from warmkern.sampler.config import SamplerConfig
from warmkern.sampler.plan import Step
from warmkern.warmstart import WarmStart


def set_up_warm_start(config: SamplerConfig, adapter: ModelAdapter, answer: Tensor, provisional: Tensor, rows: int,
                      prompt_len: int) -> tuple[Tensor, EmbeddingInput | None]:
    """Token mode injects into `answer` now; embedding mode returns the input mixer. Returns (injected, mixer)."""
    ws = config.warm_start
    assert ws is not None
    prior = ws.prior().to(answer.device)
    keep = rng.keep_mask(config.seed, ws.rate, tuple(answer.shape), device=answer.device)
    if ws.mode == "token":
        return inject_tokens(answer, provisional, prior, keep, config.mask_id), None
    injected = torch.zeros((), dtype=torch.int64, device=answer.device)
    return injected, EmbeddingInput(adapter, ws, prior, keep, rows, prompt_len)


def inject_tokens(answer: Tensor, provisional: Tensor, prior: Tensor, keep: Tensor, mask_id: int) -> Tensor:
    """Write kept draft tokens into the (masked) answer as provisional tokens; returns how many (device)."""
    has = keep & (prior >= 0) & (prior != mask_id)
    answer.copy_(torch.where(has, prior, mask_id))
    provisional.copy_(has)
    return has.sum()


class EmbeddingInput:
    """Embedding mode: masked answer positions embed as (1 - a) W[mask] + a W[draft] (`ops.warm_embed`).

    Built for the whole buffer (both CFG halves), with no prior on the prompt, so one launch per step
    produces the model's `inputs_embeds`.
    """

    def __init__(self, adapter: ModelAdapter, warm_start: WarmStart, prior: Tensor, keep: Tensor, rows: int,
                 prompt_len: int) -> None:
        if not adapter.accepts_inputs_embeds():
            raise ValueError(
                f"warm_start.mode='embedding': the model ({type(adapter.model).__name__}) does not accept "
                "inputs_embeds; use warm_start.mode='token' instead"
            )
        self.table = adapter.embedding()
        self.warm_start = warm_start
        batch, gen_length = prior.shape
        device = prior.device
        no_prior = torch.full((batch, prompt_len), -1, dtype=torch.int64, device=device)
        off = torch.zeros((batch, prompt_len), dtype=torch.bool, device=device)
        self.draft = torch.cat([no_prior, prior], dim=1).repeat(rows // batch, 1)
        self.keep = torch.cat([off, keep], dim=1).repeat(rows // batch, 1)
        self.batch = batch
        weight = self.table.weight
        self.out = torch.empty((rows, prompt_len + gen_length, weight.shape[1]), dtype=weight.dtype, device=device)

    def alpha(self, step: Step) -> Tensor:
        """Per-row alpha at this step of the block: constant, or decaying linearly to 0 over the row's plan."""
        a = torch.full((self.batch,), self.warm_start.alpha, dtype=torch.float32, device=self.out.device)
        if self.warm_start.alpha_schedule == "linear":
            a = a * (1.0 - step.index / step.plan.clamp(min=1).to(torch.float32)).clamp(min=0.0)
        return a.repeat(self.out.shape[0] // self.batch)

    def embed(self, buffer: Tensor, step: Step, mask_id: int, backend: str, check_values: bool) -> Tensor:
        ops.warm_embed(
            self.table.weight, buffer, self.draft, self.keep, mask_id=mask_id, alpha=self.alpha(step),
            scale=self.table.scale, out=self.out, backend=backend, check_values=check_values,
        )
        return self.out
