"""The one place that knows how to call a model: ids vs embeddings, masks, output types, shifted logits.

The sampler only ever asks for "logits of the generation region" and "the embedding table", so any
HF masked / bidirectional LM, LLaDA (`LLaDAModelLM`, remote code) and Dream (Qwen2-based, logits of
position i predicted at i-1) plug in without the sampler knowing which one it talks to.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


def _forward_of(model: object) -> Callable:
    return model.forward if isinstance(model, torch.nn.Module) else model  # type: ignore[return-value]


def _accepts(fn: Callable, name: str) -> bool:
    """Whether `fn` takes keyword `name` (directly or through **kwargs)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins / C callables: assume the HF convention
        return True
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def model_device(model: object) -> torch.device:
    """Device of the model's parameters (cpu for parameterless callables)."""
    dev = getattr(model, "device", None)
    if isinstance(dev, torch.device):
        return dev
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            return p.device
    return torch.device("cpu")


def model_type(model: object) -> str:
    cfg = getattr(model, "config", None)
    return str(getattr(cfg, "model_type", "") or "").lower()


@dataclass
class Embedding:
    """The model's token embedding as `scale * weight[id]` (what `warm_embed` reproduces)."""

    weight: Tensor
    scale: float


class ModelAdapter:
    """Calls `model` the way the sampler needs; built once per `generate` call."""

    def __init__(self, model: object, *, logits_shift: bool = False) -> None:
        if not callable(model):
            raise TypeError(f"model: expected a callable (an nn.Module or function), got {type(model).__name__}")
        self.model = model
        self.logits_shift = bool(logits_shift)
        self.device = model_device(model)
        self.kind = "dream" if model_type(model) == "dream" else "generic"
        self._embedding: Embedding | None = None

    # ------------------------------------------------------------------ inputs
    def prepare_attention_mask(self, attention_mask: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        """(mask to pass, position ids to pass) for the whole sequence, computed once per generation.

        Dream's own sampler turns a padded 2-D mask into a 4-D boolean mask plus position ids counted
        from the first real token (and passes no mask when nothing is padded); we do the same.
        """
        if attention_mask is None or self.kind != "dream":
            return attention_mask, None
        if bool(attention_mask.all()):
            return None, None
        am = attention_mask.bool()
        pos = attention_mask.long().cumsum(-1) - 1
        pos = pos.masked_fill(~am, 1)
        full = am[:, None, None, :] & am[:, None, :, None]
        return full, pos

    def accepts_inputs_embeds(self) -> bool:
        return _accepts(_forward_of(self.model), "inputs_embeds")

    # ------------------------------------------------------------------ calls
    def forward(
        self, *, input_ids: Tensor | None = None, inputs_embeds: Tensor | None = None,
        attention_mask: Tensor | None = None, position_ids: Tensor | None = None, extra: dict | None = None,
    ) -> Tensor:
        """Full-sequence logits [B, L, V] (an HF output's `.logits`, or the tensor a model returns).

        `extra`: more keyword arguments for the model (warmkern.window passes `logits_to_keep`).
        """
        kwargs: dict[str, Tensor] = dict(extra or {})
        if attention_mask is not None:
            kwargs["attention_mask"] = attention_mask
        if position_ids is not None:
            kwargs["position_ids"] = position_ids
        if inputs_embeds is not None:
            out = self.model(inputs_embeds=inputs_embeds, **kwargs)
        else:
            out = self.model(input_ids, **kwargs)
        logits = out if isinstance(out, Tensor) else getattr(out, "logits", None)
        if logits is None and isinstance(out, (tuple, list)) and out and isinstance(out[0], Tensor):
            logits = out[0]
        if not isinstance(logits, Tensor):
            raise TypeError(f"model: expected an output with .logits or a logits tensor, got {type(out).__name__}")
        if logits.dim() != 3:
            raise ValueError(f"model: expected logits of shape [B, L, V], got {tuple(logits.shape)}")
        return logits

    def region(self, logits: Tensor, start: int, length: int) -> Tensor:
        """Logits predicting positions [start, start+length): a strided view, shifted for Dream-style models."""
        if self.logits_shift:
            if start < 1:
                raise ValueError("logits_shift: needs a prompt of at least one token (position i is read at i-1)")
            return logits[:, start - 1 : start + length - 1]
        return logits[:, start : start + length]

    # ------------------------------------------------------------------ embeddings
    def _input_embeddings(self) -> object | None:
        get = getattr(self.model, "get_input_embeddings", None)
        try:
            return get() if callable(get) else None
        except (NotImplementedError, AttributeError):  # some models do not expose it
            return None

    def embedding(self) -> Embedding:
        """Embedding weight and scale from `get_input_embeddings()`, checked against the module itself."""
        if self._embedding is not None:
            return self._embedding
        emb = self._input_embeddings()
        weight = getattr(emb, "weight", None)
        if not isinstance(weight, Tensor) or weight.dim() != 2:
            raise ValueError(
                "warm_start.mode='embedding': the model has no get_input_embeddings() returning an embedding "
                f"with a [V, D] weight ({type(self.model).__name__})"
            )
        raw = getattr(emb, "embed_scale", 1.0)
        scale = float(raw.item() if isinstance(raw, Tensor) else raw)
        ids = torch.tensor([0, weight.shape[0] - 1], device=weight.device)
        with torch.no_grad():
            got = emb(ids)
        want = (weight[ids].float() * scale).to(weight.dtype)
        if got.shape != want.shape or not torch.allclose(got.float(), want.float(), rtol=1e-2, atol=1e-6):
            raise ValueError(
                "warm_start.mode='embedding': the model's input embedding is not a (scaled) table lookup, "
                f"so interpolated inputs_embeds cannot reproduce it ({type(emb).__name__})"
            )
        self._embedding = Embedding(weight.detach(), scale)
        return self._embedding

    @property
    def vocab_size(self) -> int | None:
        """Rows of the embedding table (or config.vocab_size); None if the model does not say."""
        weight = getattr(self._input_embeddings(), "weight", None)
        if isinstance(weight, Tensor) and weight.dim() == 2:
            return int(weight.shape[0])
        v = getattr(getattr(self.model, "config", None), "vocab_size", None)
        return int(v) if isinstance(v, int) else None
