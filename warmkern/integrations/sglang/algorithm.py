"""The Warmkern dLLM algorithm for sglang, written against sglang's interface but importing none of it.

`WarmkernSteps` holds the behaviour; `warmkern.integrations.sglang.algorithm_class()` puts sglang's
`DllmAlgorithm` behind it (or a stand-in in tests). Mirrors the interface of sglang 0.5.23
(`sglang.srt.dllm.algorithm.base.DllmAlgorithm`): `__init__(DllmConfig)` sets `block_size`, `mask_id`;
`init_step_state(forward_batch)`, `prepare_inputs(model_runner, forward_batch, states)` before each
forward, `step(forward_batch, full_logits, states) -> list[bool]` committing tokens in
`forward_batch.input_ids` ([B * block_size], in place), `max_steps(block_size)`, `validate_request(req)`.
ForwardBatch fields read: `batch_size`, `input_ids`, `dllm_prompt_mask` (None or [B, block] bool, a
prefix of each block), `rids`, `positions` (fallback only).

Each step is one `warmkern.ops.denoise_step` on the block's logits; the only host sync is the
`done` list sglang's loop needs (as in LowConfidence).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

from warmkern import ops
from warmkern.integrations.sglang import requests as R
from warmkern.integrations.sglang.config import WarmkernConfig
from warmkern.integrations.sglang.rows import BatchRows, RowState

log = logging.getLogger("warmkern")


def strict_threshold(threshold: float) -> float:
    """The fp32 value t' with `score >= t'` == `score > fp32(threshold)` (sglang's rule is strict)."""
    t = torch.tensor(threshold, dtype=torch.float32)
    return float(torch.nextafter(t, torch.tensor(math.inf, dtype=torch.float32)))


class WarmkernSteps:
    """dLLM decoding by warmkern's fused denoise step: threshold/top-k/factor rules, seeded sampling,
    a draft prior and draft injection with remasking (see README "Serving with sglang")."""

    _mask_id: int | None = None  # set by the first instance: validate_request is a classmethod

    def __init__(self, config: Any) -> None:
        super().__init__(config)  # sglang's DllmAlgorithm: block_size, mask_id, fdfo
        self.block_size = int(config.block_size)
        self.mask_id = int(config.mask_id)
        self.cfg = WarmkernConfig.from_mapping(getattr(config, "algorithm_config", None))
        type(self)._mask_id = self.mask_id
        self._op_kwargs = {**self._rule_kwargs(), **self._stats_kwargs(), "backend": self.cfg.backend}
        self._batch = BatchRows()
        self._vocab: int | None = None
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ sglang hooks
    @classmethod
    def validate_request(cls, req: Any) -> str | None:
        """Remember the request (by rid, weakly) and check its warmkern custom parameters."""
        R.remember(req)
        mask = cls._mask_id if cls._mask_id is not None else -1
        return R.check_custom_params(getattr(req.sampling_params, "custom_params", None), mask)

    def max_steps(self, block_size: int) -> int:
        """sglang's budget (block + 1), doubled with injection: each remasked token needs a commit."""
        return 2 * block_size + 2 if self.cfg.inject_draft else block_size + 1

    def init_step_state(self, forward_batch: Any) -> list[RowState]:
        rids = forward_batch.rids or [None] * forward_batch.batch_size
        offsets: list[int] | None = None
        states = []
        for i, rid in enumerate(rids):
            req = R.lookup(rid) if rid is not None else None
            if req is not None:
                info = R.request_info(req, str(rid), self.cfg.seed)
            else:
                offsets = offsets if offsets is not None else self._block_offsets(forward_batch)
                seed = R.request_seed(None, str(rid if rid is not None else i), self.cfg.seed)
                info = R.RequestInfo(seed=seed, block_offset=offsets[i], prompt_len=offsets[i])
            bias = info.prior_bias if info.prior_bias is not None else self.cfg.prior_bias
            states.append(RowState(info=info, bias=bias))
        return states

    def prepare_inputs(self, model_runner: Any, forward_batch: Any, states: list[RowState]) -> None:
        """First forward of a row's block: build its prior row; inject its draft when configured."""
        fresh = [s for s in states if not s.prepared]
        if not fresh:
            return
        vocab = getattr(getattr(model_runner, "model_config", None), "vocab_size", None) or self._vocab
        device = forward_batch.input_ids.device
        n = self.block_size
        rows = [s.prior_row(n, vocab) if s.info.draft else None for s in fresh]
        with_draft = [(s, r) for s, r in zip(fresh, rows) if r is not None]
        if with_draft:
            table = torch.tensor([r for _, r in with_draft], dtype=torch.int64).to(device, non_blocking=True)
            for j, (s, _) in enumerate(with_draft):
                s.prior = table[j]
        for s in fresh:
            s.prepared = True
        if self.cfg.inject_draft and with_draft:
            self._inject(forward_batch, states, {id(s) for s, _ in with_draft})

    def step(self, forward_batch: Any, full_logits: torch.Tensor, states: list[RowState]) -> list[bool]:
        """One fused denoise step on the block; returns which rows were finished before it (sglang's rule)."""
        b, n = forward_batch.batch_size, self.block_size
        logits = full_logits.view(b, n, full_logits.shape[-1])
        self._vocab = logits.shape[-1]
        ids = forward_batch.input_ids.view(b, n)
        x = ids if ids.dtype == torch.int64 else ids.to(torch.int64)
        lo = self._window_start(forward_batch)
        in_window = torch.arange(n, device=x.device) >= (lo.reshape(-1, 1) if torch.is_tensor(lo) else lo)
        masks_before = ((x == self.mask_id) & in_window).sum(dim=1)
        self._batch.update(states, n, x.device)
        _, n_remask = ops.denoise_step(
            logits, x, self._batch.provisional, mask_id=self.mask_id, lo=lo, hi=n, seed=self._batch.seeds(x.device),
            prior_ids=self._batch.prior, prior_bias=self._batch.bias if self._batch.prior is not None else 0.0,
            check_values=False, **self._op_kwargs,
        )
        if x is not ids:
            ids.copy_(x)
        for s in states:
            s.step += 1
        return ((masks_before == 0) & (n_remask == 0)).tolist()

    # ------------------------------------------------------------------ helpers
    def _rule_kwargs(self) -> dict[str, Any]:
        c = self.cfg
        if c.rule == "topk":
            return {"k": c.k, "alg_temp": c.alg_temp}
        if c.rule == "threshold":
            return {"threshold": strict_threshold(c.threshold)}
        return {"factor": c.factor}

    def _stats_kwargs(self) -> dict[str, Any]:
        c = self.cfg
        return dict(temperature=c.temperature, score=c.score, score_temperature=c.score_temperature,
                    suppress_ids=c.suppress_ids, pick_suppress_ids=c.pick_suppress_ids,
                    score_suppress_ids=c.score_suppress_ids, top_k=c.top_k, top_p=c.top_p,
                    remask_threshold=c.remask_threshold, remask_max=c.remask_max)

    def _window_start(self, forward_batch: Any) -> torch.Tensor | int:
        """Per row, the number of prompt positions at the block's start (sglang's dllm_prompt_mask)."""
        prompt = getattr(forward_batch, "dllm_prompt_mask", None)
        return 0 if prompt is None else prompt.sum(dim=1).to(torch.int64)

    def _inject(self, forward_batch: Any, states: list[RowState], fresh: set[int]) -> None:
        """Write the `fresh` rows' draft tokens into their masked in-window slots, marked provisional."""
        b, n = forward_batch.batch_size, self.block_size
        device = forward_batch.input_ids.device
        self._batch.update(states, n, device)
        none = torch.full((n,), -1, dtype=torch.int64, device=device)
        draft = torch.stack([s.prior if id(s) in fresh else none for s in states])
        ids = forward_batch.input_ids.view(b, n)
        lo = self._window_start(forward_batch)
        in_window = torch.arange(n, device=device) >= (lo.reshape(-1, 1) if torch.is_tensor(lo) else lo)
        put = (ids == self.mask_id) & in_window & (draft >= 0)
        ids.copy_(torch.where(put, draft.to(ids.dtype), ids))
        self._batch.provisional |= put

    def _block_offsets(self, forward_batch: Any) -> list[int]:
        """Fallback for a request the plugin never saw: block starts from positions (a host sync)."""
        if "offsets" not in self._warned:
            self._warned.add("offsets")
            log.warning("warmkern: a request was not seen by validate_request; reading block positions (host sync)")
        pos = forward_batch.positions.view(forward_batch.batch_size, self.block_size)[:, 0]
        return [int(p) for p in pos.tolist()]
