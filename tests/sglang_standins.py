"""Small stand-ins for the parts of sglang's dLLM interface the Warmkern plugin touches (sglang 0.5.23).

They let the plugin's tests run without sglang (which pins its own CUDA torch and never enters `make
test`). Mirrored, by behaviour (written from the interface, not copied):
- `DllmConfig`: block_size, mask_id, algorithm_config, first_done_first_out_mode.
- `DllmAlgorithm`: `__init__(config)`; the synchronous loop (`run_sync`): block starts = prompt
  positions, fresh states, prepare_inputs, forward, then up to max_steps of (step; stop when all done;
  prepare_inputs; forward); the FDFO loop (`run_fdfo`): one forward + one step with carried states.
- `ForwardBatch`: batch_size, input_ids ([B * block] int64), dllm_prompt_mask, rids, positions.
- `Req` / `SamplingParams`: rid, origin_input_ids, output_ids, dllm_block_offset, sampling_seed,
  custom_params.
- `low_confidence_step`: the rule of sglang's LowConfidence (argmax over the whole vocabulary, its
  softmax probability as confidence, masked non-prompt positions only, commit confidence > threshold or
  else the single most confident position; `done` = no such position before the step).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import torch


@dataclass
class DllmConfig:
    algorithm: str
    algorithm_config: dict[str, Any]
    block_size: int
    mask_id: int
    first_done_first_out_mode: bool = False


class DllmAlgorithm:
    """The base class's constructor and its two execution loops."""

    def __init__(self, config: DllmConfig) -> None:
        self.block_size = config.block_size
        self.mask_id = config.mask_id
        self.fdfo = config.first_done_first_out_mode

    def init_step_state(self, forward_batch: ForwardBatch) -> list[Any]:
        return [None] * forward_batch.batch_size

    def prepare_inputs(self, model_runner: Any, forward_batch: ForwardBatch, states: list[Any]) -> None:
        pass

    def max_steps(self, block_size: int) -> int:
        return block_size + 1

    def prompt_mask(self, forward_batch: ForwardBatch) -> torch.Tensor:
        if forward_batch.dllm_prompt_mask is not None:
            return forward_batch.dllm_prompt_mask
        return forward_batch.input_ids.view(forward_batch.batch_size, self.block_size) != self.mask_id

    def run_sync(self, model_runner: Any, forward_batch: ForwardBatch) -> tuple[list[torch.Tensor], int]:
        """Returns (the generated part of each row's block, forwards run)."""
        starts = self.prompt_mask(forward_batch).sum(dim=1).tolist()
        states = self.init_step_state(forward_batch)
        self.prepare_inputs(model_runner, forward_batch, states)
        logits, nfe = model_runner.forward(forward_batch), 1
        for _ in range(self.max_steps(self.block_size)):
            if all(self.step(forward_batch, logits, states)):
                break
            self.prepare_inputs(model_runner, forward_batch, states)
            logits, nfe = model_runner.forward(forward_batch), nfe + 1
        ids = forward_batch.input_ids.view(forward_batch.batch_size, self.block_size)
        return [ids[i, s:].clone() for i, s in enumerate(starts)], nfe

    def run_fdfo(self, model_runner: Any, forward_batch: ForwardBatch, carried: list[Any]) -> tuple[list, list]:
        """One forward + one step; returns (done per row, states to carry: None for done rows)."""
        fresh = None
        states = []
        for i, c in enumerate(carried):
            if c is None:
                fresh = fresh if fresh is not None else self.init_step_state(forward_batch)
                states.append(fresh[i])
            else:
                states.append(c)
        self.prepare_inputs(model_runner, forward_batch, states)
        done = self.step(forward_batch, model_runner.forward(forward_batch), states)
        return done, [None if d else s for d, s in zip(done, states)]


@dataclass
class ForwardBatch:
    batch_size: int
    input_ids: torch.Tensor
    rids: list[str] | None = None
    positions: torch.Tensor | None = None
    dllm_prompt_mask: torch.Tensor | None = None


@dataclass
class SamplingParams:
    sampling_seed: int | None = None
    custom_params: dict[str, Any] | None = None


@dataclass
class Req:
    rid: str
    origin_input_ids: list[int]
    sampling_params: SamplingParams = field(default_factory=SamplingParams)
    output_ids: list[int] = field(default_factory=list)
    dllm_block_offset: int = 0


def block_batch(reqs: list[Req], block_size: int, mask_id: int, literal_mask: bool = False) -> ForwardBatch:
    """The ForwardBatch of each request's current block: committed tokens, then masks (as sglang fills it)."""
    rows, pos, prompt = [], [], []
    for r in reqs:
        committed = list(r.origin_input_ids) + list(r.output_ids)
        start = r.dllm_block_offset
        row = [committed[p] if p < len(committed) else mask_id for p in range(start, start + block_size)]
        rows.append(row)
        pos.append(list(range(start, start + block_size)))
        prompt.append([p < len(committed) for p in range(start, start + block_size)])
    return ForwardBatch(
        batch_size=len(reqs),
        input_ids=torch.tensor(rows, dtype=torch.int64).view(-1),
        rids=[r.rid for r in reqs],
        positions=torch.tensor(pos, dtype=torch.int64).view(-1),
        dllm_prompt_mask=torch.tensor(prompt) if literal_mask else None,
    )


class TinyModel:
    """A deterministic stand-in for model_runner: logits of a block depend on its current tokens.

    forward(fb) -> [B * block, V] fp32; `calls` counts forwards. `mask_bias` shifts the mask token's
    logit (very negative by default: a real dLLM rarely predicts [MASK]).
    """

    def __init__(self, vocab: int, block_size: int, mask_id: int, seed: int = 0, mask_bias: float = -30.0,
                 scale: float = 3.0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.pos = torch.randn(block_size, vocab, generator=g) * scale
        self.tok = torch.randn(vocab, vocab, generator=g) * scale / 2
        self.block_size, self.mask_id, self.mask_bias = block_size, mask_id, mask_bias
        self.model_config = SimpleNamespace(vocab_size=vocab)
        self.calls = 0

    def forward(self, fb: ForwardBatch) -> torch.Tensor:
        self.calls += 1
        ids = fb.input_ids.view(fb.batch_size, self.block_size)
        ctx = self.tok[ids].mean(dim=1, keepdim=True)  # [B, 1, V]: every position sees the block
        logits = self.pos.unsqueeze(0) + ctx
        logits[..., self.mask_id] += self.mask_bias
        return logits.reshape(-1, logits.shape[-1]).contiguous()


def low_confidence_step(ids: torch.Tensor, logits: torch.Tensor, mask_id: int, threshold: float,
                        prompt_mask: torch.Tensor | None = None) -> list[bool]:
    """sglang's LowConfidence rule on ids [B, n] (updated in place) and logits [B, n, V]; returns done."""
    masked = ids == mask_id
    if prompt_mask is not None:
        masked &= ~prompt_mask
    done = (masked.sum(dim=1) == 0).tolist()
    x = logits.argmax(dim=-1)
    conf = torch.softmax(logits, dim=-1).gather(-1, x.unsqueeze(-1)).squeeze(-1)
    conf = torch.where(masked, conf, torch.full_like(conf, float("-inf")))
    commit = conf > threshold
    best = torch.zeros_like(commit)
    best[torch.arange(ids.shape[0]), conf.argmax(dim=1)] = True
    commit = torch.where(commit.any(dim=1, keepdim=True), commit, best)
    ids.copy_(torch.where(commit & masked, x, ids))
    return done
