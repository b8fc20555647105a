"""Warm start inside the decoding state: token injection, the draft mixed into input embeddings, and the
draft as a logit prior at masked positions."""

from __future__ import annotations

import torch
from torch import Tensor

from warmkern import ops, rng
from warmkern.models import ModelAdapter
from warmkern.sampler.config import SamplerConfig
from warmkern.sampler.plan import Step
from warmkern.warmstart import WarmStart


def set_up_warm_start(config: SamplerConfig, adapter: ModelAdapter, answer: Tensor, provisional: Tensor, rows: int,
                      prompt_len: int, seeds: int | Tensor) -> tuple[Tensor, EmbeddingInput | None, Tensor | None]:
    """Token mode injects into `answer` now; embedding mode returns the input mixer; a prior (mode 'prior',
    or `beta` with another mode) returns the kept draft ([B, G], -1 = none). Returns (injected, mixer, prior).

    The keep mask is drawn with the row seeds (Philox stream 2, keyed by the answer position), so a row
    keeps the same positions alone or in any batch.
    """
    ws = config.warm_start
    assert ws is not None
    draft = ws.prior().to(answer.device)
    keep = rng.keep_mask(seeds, ws.rate, tuple(answer.shape), device=answer.device)
    kept = torch.where(keep & (draft >= 0) & (draft != config.mask_id), draft, -1)
    injected = torch.zeros((), dtype=torch.int64, device=answer.device)
    mixer = None
    if ws.mode == "token":
        injected = inject_tokens(answer, provisional, kept, config.mask_id)
    elif ws.mode == "embedding":
        mixer = EmbeddingInput(adapter, ws, draft, keep, rows, prompt_len)
    return injected, mixer, kept if ws.prior_bias is not None else None


def inject_tokens(answer: Tensor, provisional: Tensor, kept: Tensor, mask_id: int) -> Tensor:
    """Write kept draft tokens into the (masked) answer as provisional tokens; returns how many (device)."""
    has = kept >= 0
    answer.copy_(torch.where(has, kept, mask_id))
    provisional.copy_(has)
    return has.sum()


class DraftPrior:
    """The draft as a logit prior: `prior_ids` of a step is the kept draft token at every position that is
    masked now (-1 elsewhere), so a position holding an (injected) token has no prior, and one remasked
    gets it back. `prior_bias` is beta (a float or a [B] tensor on the device)."""

    def __init__(self, kept_region: Tensor, beta: float | Tensor, mask_id: int) -> None:
        self.kept = kept_region
        self.bias = beta.to(kept_region.device) if isinstance(beta, Tensor) else beta
        self.mask_id = mask_id
        self.ids = torch.empty_like(kept_region)
        self.none = torch.full((), -1, dtype=torch.int64, device=kept_region.device)

    def prior_ids(self, region: Tensor) -> Tensor:
        return torch.where(region == self.mask_id, self.kept, self.none, out=self.ids)


class EmbeddingInput:
    """Embedding mode: masked answer positions embed as (1 - a) W[mask] + a W[draft] (`ops.warm_embed`).

    Built for the whole buffer (both CFG halves), with no prior on the prompt, so one launch per step
    produces the model's `inputs_embeds`. After the first step the op runs without its value checks (no
    host sync); an id it cannot embed sets `status`, which the state reads at its next host sync.
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
        self.status = torch.zeros((1,), dtype=torch.int32, device=device)

    def alpha(self, step: Step) -> Tensor:
        """Per-row alpha at this step of the block: constant, or decaying linearly to 0 over the row's plan."""
        a = torch.full((self.batch,), self.warm_start.alpha, dtype=torch.float32, device=self.out.device)
        if self.warm_start.alpha_schedule == "linear":
            a = a * (1.0 - step.index / step.plan.clamp(min=1).to(torch.float32)).clamp(min=0.0)
        return a.repeat(self.out.shape[0] // self.batch)

    def embed(self, buffer: Tensor, step: Step, mask_id: int, backend: str, check_values: bool) -> Tensor:
        ops.warm_embed(
            self.table.weight, buffer, self.draft, self.keep, mask_id=mask_id, alpha=self.alpha(step),
            scale=self.table.scale, out=self.out, backend=backend, check_values=check_values, status=self.status,
        )
        return self.out

    def check(self, flagged: int, buffer: Tensor, logits_vocab: int | None) -> None:
        """Turn a raised status flag into the error that says why (the bad ids are found on the host, once)."""
        if not flagged:
            return
        rows = self.table.weight.shape[0]
        bad = sorted(set(buffer[(buffer < 0) | (buffer >= rows)].tolist()))
        vocab = f"V={logits_vocab}" if logits_vocab is not None else "V unknown"
        ids = ", ".join(str(i) for i in bad[:8]) or "?"
        raise ValueError(
            f"model: its logits vocabulary ({vocab}) is larger than its input embedding table ({rows} rows); "
            f"token id {ids} cannot be embedded (warm_start.mode='embedding' feeds every decoded token "
            "through that table)"
        )
