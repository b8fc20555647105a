"""Warm start: an autoregressive draft as the dLLM's prior, and the bridge that produces one.

A `WarmStart` carries a draft in the dLLM's vocabulary (`-1` = no prior) and says how to use it:
`mode="token"` writes kept draft tokens into the answer as provisional tokens (the dLLM may remask
them), `mode="embedding"` keeps the answer masked and mixes the draft into the input embeddings,
`mode="prior"` keeps the answer masked and adds `beta` to the logit of the draft token at every masked
position, every step (fused into the ops as `prior_ids` / `prior_bias`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from warmkern import validation as V

MODES = ("token", "embedding", "prior")
ALPHA_SCHEDULES = ("constant", "linear")
REMASK_BUDGETS = ("extend", "fixed")


@dataclass
class WarmStart:
    """A draft `[B, G]` (dLLM token ids, -1 = no prior) and how the sampler uses it.

    rate: share of draft positions kept (Bernoulli per position, Philox stream 2 keyed by the row's
    seed and the answer position, so every backend keeps the same ones and a row keeps the same ones
    alone or in a batch); only kept positions are injected, mixed in or given the prior.
    beta: the draft prior, added to the logit of the kept draft token at each masked position before
    temperature, truncation, sampling and every score (a finite float, or a [B] tensor per row; 1.0 by
    default with mode="prior", None = no prior otherwise). It composes with mode="token": a position that
    holds an injected token has no prior; one remasked gets it. A prior injects nothing (no provisional
    tokens, `GenerationStats.injected` counts only injected tokens).
    alpha / alpha_schedule: embedding-mode weight of the draft, constant or decaying linearly to 0 over
    each block's planned steps. remask_threshold / remask_max: token mode's skepticism (remask
    provisional tokens whose current probability falls below it).
    remask_budget: "extend" (default) gives remasked tokens steps at the cold pace: a step that remasks
    nr tokens of a row grows that row's plan for the block by ceil(nr * steps / gen_length), what they
    would have got had they been masked at block start. "fixed" keeps the plan made at block start, so
    tokens remasked at its last step are all decoded in one extra forward (cheaper, less accurate).
    fill_tail: prior token (typically EOS) for positions after the draft ends.
    """

    draft: Tensor
    mode: str = "token"
    rate: float = 1.0
    alpha: float = 0.5
    alpha_schedule: str = "constant"
    remask_threshold: float | None = None
    remask_max: int | None = None
    fill_tail: int | None = None
    remask_budget: str = "extend"
    beta: float | Tensor | None = None
    texts: list[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        """Validate through warmkern.validation: TypeError for a wrong type, ValueError for a bad value."""
        if not isinstance(self.draft, Tensor):
            self.draft = torch.as_tensor(self.draft, dtype=torch.int64)
        V.check_tensor("warm_start.draft", self.draft, dtypes=(torch.int64,), ndim=2, unit_last_stride=False)
        self.mode = V.check_choice("warm_start.mode", self.mode, MODES)
        self.rate = V.check_float("warm_start.rate", self.rate, lo=0.0, hi=1.0)
        self.alpha = V.check_float("warm_start.alpha", self.alpha, lo=0.0, hi=1.0)
        self.alpha_schedule = V.check_choice("warm_start.alpha_schedule", self.alpha_schedule, ALPHA_SCHEDULES)
        self.remask_threshold = V.optional(
            V.check_float, "warm_start.remask_threshold", self.remask_threshold, lo=0.0, hi=1.0
        )
        if self.remask_threshold is not None and self.mode != "token":
            raise ValueError(
                f"warm_start.remask_threshold: expected None with mode={self.mode!r} (only mode='token' has "
                f"provisional tokens to remask), got {self.remask_threshold}"
            )
        self.remask_budget = V.check_choice("warm_start.remask_budget", self.remask_budget, REMASK_BUDGETS)
        self.remask_max = V.optional(V.check_int, "warm_start.remask_max", self.remask_max, lo=0)
        self.fill_tail = V.optional(V.check_id, "warm_start.fill_tail", self.fill_tail, vocab=V.INT64_MAX)
        if isinstance(self.beta, Tensor):
            self.beta = V.per_row_tensor("warm_start.beta", self.beta, self.draft.shape[0], self.beta.device,
                                         dtype=torch.float32, check_values=True)
        else:
            self.beta = V.optional(V.check_float, "warm_start.beta", self.beta)

    @property
    def prior_bias(self) -> float | Tensor | None:
        """The logit bias of the draft prior: `beta`, 1.0 in mode "prior" when not given, else None (no prior)."""
        if self.beta is None and self.mode == "prior":
            return 1.0
        return self.beta

    def prior(self) -> Tensor:
        """The draft with `fill_tail` written after each row's last drafted position (a new tensor)."""
        d = self.draft
        if self.fill_tail is None:
            return d.clone()
        pos = torch.arange(d.shape[1], device=d.device)
        last = torch.where(d >= 0, pos, -1).amax(dim=1, keepdim=True) if d.shape[1] else d[:, :0]
        return torch.where(pos > last, torch.full_like(d, self.fill_tail), d)

    @classmethod
    def from_causal_lm(
        cls,
        aux_model: Any,
        aux_tokenizer: Any,
        dllm_tokenizer: Any,
        prompts: Sequence[str] | Sequence[Sequence[dict]],
        gen_length: int,
        max_new_tokens: int | None = None,
        *,
        mode: str = "token",
        rate: float = 1.0,
        alpha: float = 0.5,
        alpha_schedule: str = "constant",
        remask_threshold: float | None = None,
        remask_max: int | None = None,
        fill_tail: int | None = None,
        remask_budget: str = "extend",
        beta: float | Tensor | None = None,
        **generate_kwargs: Any,
    ) -> tuple[WarmStart, list[str]]:
        """Draft greedily with a causal LM, bridge to the dLLM vocabulary; returns (warm start, draft texts).

        `prompts`: a str (one prompt), a list of message dicts (one conversation), or a list of either.
        `max_new_tokens` defaults to gen_length. `fill_tail` is written after each drafted row here, so the
        returned WarmStart's own fill_tail is None: a row the drafter left empty keeps no prior at all and
        the dLLM decodes it (a fill token completes a draft; it never makes an answer on its own).
        """
        draft, texts = draft_with_causal_lm(
            aux_model, aux_tokenizer, dllm_tokenizer, prompts, gen_length, max_new_tokens,
            fill_tail=fill_tail, **generate_kwargs,
        )
        ws = cls(
            draft, mode=mode, rate=rate, alpha=alpha, alpha_schedule=alpha_schedule,
            remask_threshold=remask_threshold, remask_max=remask_max, fill_tail=None, texts=texts,
            remask_budget=remask_budget, beta=beta,
        )
        return ws, texts


def draft_from_texts(
    texts: Sequence[str], dllm_tokenizer: Any, gen_length: int, fill_tail: int | None = None
) -> Tensor:
    """Encode texts with the dLLM tokenizer (no special tokens), truncate / pad to `[B, gen_length]`.

    A str is one text. `fill_tail` pads rows that hold at least one token (see `pad_rows`).
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    return pad_rows(encode_plain(dllm_tokenizer, texts), gen_length, fill_tail)


# ----------------------------------------------------------------------------- tokenizer bridge
def encode_plain(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Token ids of each text without special tokens (an HF tokenizer or a `tokenizers.Tokenizer`)."""
    if hasattr(tokenizer, "encode_batch"):  # tokenizers.Tokenizer
        return [list(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def pad_rows(rows: Sequence[Sequence[int]], length: int, fill: int | None) -> Tensor:
    """`[B, length]` int64: each row truncated, then padded with `fill` (or -1 = no prior).

    An empty row stays -1 (no prior) even with `fill`: a fill token completes a draft, it is not one,
    so a drafter that says nothing leaves the whole answer to the dLLM.
    """
    out = torch.full((len(rows), length), -1, dtype=torch.int64)
    for i, ids in enumerate(rows):  # host-side list handling, once per draft
        ids = list(ids)[:length]
        if ids:
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
            if fill is not None:
                out[i, len(ids) :] = int(fill)
    return out


def _vocab(tokenizer: Any) -> dict[str, int] | None:
    get = getattr(tokenizer, "get_vocab", None)
    return get() if callable(get) else None


def _prompt_list(prompts: object) -> list[Any]:
    """A str is one prompt and a list of message dicts one conversation; else a sequence of those."""
    if isinstance(prompts, str):
        return [prompts]
    if not isinstance(prompts, Sequence):
        got = type(prompts).__name__
        raise TypeError(f"prompts: expected a str, a list of messages or a sequence of them, got {got}")
    items = list(prompts)
    if not items:
        raise ValueError("prompts: expected at least one prompt, got an empty sequence")
    if all(isinstance(p, dict) for p in items):
        return [items]
    for i, p in enumerate(items):
        if not isinstance(p, (str, Sequence)):
            raise TypeError(f"prompts[{i}]: expected a str or a list of messages, got {type(p).__name__}")
    return items


def _prompt_texts(tokenizer: Any, prompts: Sequence[Any]) -> tuple[list[str], bool]:
    """Prompts as strings (chat template for message lists when the tokenizer has one)."""
    if all(isinstance(p, str) for p in prompts):
        return list(prompts), True
    texts = []
    for p in prompts:
        if isinstance(p, str):
            raise ValueError("prompts: expected all strings or all message lists, got a mix")
        msgs = list(p)
        if getattr(tokenizer, "chat_template", None):
            texts.append(tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False))
        else:
            texts.append("\n".join(str(m["content"]) for m in msgs))
    has_template = bool(getattr(tokenizer, "chat_template", None))
    return texts, not has_template  # a rendered template already holds its special tokens


def _encode_left_padded(tokenizer: Any, texts: list[str], add_special: bool) -> dict[str, Tensor]:
    """Left-padded batch encoding (the drafter continues each row); every prompt must hold a token."""
    side, pad_token = tokenizer.padding_side, tokenizer.pad_token
    try:
        tokenizer.padding_side = "left"
        if pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=add_special)
    finally:
        tokenizer.padding_side = side
        if pad_token is None:
            tokenizer.pad_token = pad_token
    for i, n in enumerate(enc["attention_mask"].sum(1).tolist()):
        if n == 0:
            raise ValueError(f"prompts[{i}]: expected a prompt of at least one token, got {texts[i]!r}")
    return enc


def draft_with_causal_lm(
    aux_model: Any, aux_tokenizer: Any, dllm_tokenizer: Any, prompts: Sequence[Any], gen_length: int,
    max_new_tokens: int | None = None, *, fill_tail: int | None = None, **generate_kwargs: Any,
) -> tuple[Tensor, list[str]]:
    """Greedy batched drafts (left padded) re-expressed in the dLLM's vocabulary, plus their texts.

    Rows are padded with `fill_tail` after the draft; a row the drafter left empty stays -1 (no prior).
    """
    gen_length = V.check_int("gen_length", gen_length, lo=1)
    max_new_tokens = gen_length if max_new_tokens is None else V.check_int("max_new_tokens", max_new_tokens, lo=1)
    texts_in, add_special = _prompt_texts(aux_tokenizer, _prompt_list(prompts))
    pad_id = aux_tokenizer.pad_token_id
    if pad_id is None:
        pad_id = aux_tokenizer.eos_token_id
    enc = _encode_left_padded(aux_tokenizer, texts_in, add_special)
    dev = next(aux_model.parameters()).device if isinstance(aux_model, torch.nn.Module) else torch.device("cpu")
    kwargs = {"max_new_tokens": max_new_tokens, "do_sample": False, "pad_token_id": pad_id}
    kwargs.update(generate_kwargs)
    with torch.no_grad():
        out = aux_model.generate(
            input_ids=enc["input_ids"].to(dev), attention_mask=enc["attention_mask"].to(dev), **kwargs
        )
    new = out[:, enc["input_ids"].shape[1] :].cpu()
    texts = aux_tokenizer.batch_decode(new, skip_special_tokens=True)
    aux_vocab, dllm_vocab = _vocab(aux_tokenizer), _vocab(dllm_tokenizer)
    if aux_vocab is not None and aux_vocab == dllm_vocab:
        stop = {aux_tokenizer.eos_token_id, pad_id} - {None}
        rows = []
        for r in new.tolist():  # keep ids up to the first EOS / pad: the round trip would drop them too
            cut = next((i for i, t in enumerate(r) if t in stop), len(r))
            rows.append(r[:cut])
        return pad_rows(rows, gen_length, fill_tail), texts
    return draft_from_texts(texts, dllm_tokenizer, gen_length, fill_tail), texts
