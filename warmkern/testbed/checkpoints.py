"""The shipped testbed checkpoints: how they are built (configs), where they live, how they load.

Every model is a plain `transformers` class loaded with `from_pretrained` on a local directory: exactly
the path a user's real LLaDA/Dream + AR drafter take through warmkern. Two dLLMs ship:

- ``calibrated`` (``assets/dllm``): phase 2, trained with the visible-token term, so its p(token) of a
  visible draft token means something (remasking works);
- ``uncalibrated`` (``assets/dllm_phase1``): phase 1 only, trained like LLaDA and Dream (masked positions
  only). It stands in for an off-the-shelf dLLM that nobody can retrain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transformers import (
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoTokenizer,
    LlamaConfig,
    ModernBertConfig,
    PreTrainedTokenizerBase,
)

ASSETS = Path(__file__).resolve().parent / "assets"
DLLM_DIRS: dict[str, Path] = {"calibrated": ASSETS / "dllm", "uncalibrated": ASSETS / "dllm_phase1"}
DLLM_DIR = DLLM_DIRS["calibrated"]
DRAFTER_DIR = ASSETS / "drafter"
GEN_LENGTH = 32  # fixed answer length G: the longest solution is 27 dLLM tokens, the rest is EOS
_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def dllm_config(tok: PreTrainedTokenizerBase, hidden: int = 128, layers: int = 4) -> ModernBertConfig:
    """Bidirectional encoder with RoPE (left padding shifts no position) and a masked-LM head."""
    return ModernBertConfig(
        vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=max(1, hidden // 32),
        intermediate_size=3 * hidden, max_position_embeddings=128, global_attn_every_n_layers=1,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id,
        cls_token_id=tok.eos_token_id, sep_token_id=tok.eos_token_id, tie_word_embeddings=True,
        embedding_dropout=0.0, attention_dropout=0.0, mlp_dropout=0.0,
    )


def drafter_config(tok: PreTrainedTokenizerBase, hidden: int = 96, layers: int = 2) -> LlamaConfig:
    """Small causal LM over characters: the cheap, weaker auxiliary model."""
    return LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=max(1, hidden // 32),
        num_key_value_heads=max(1, hidden // 32), intermediate_size=3 * hidden, max_position_embeddings=256,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id,
        tie_word_embeddings=True,
    )


def assets_missing(dllms: tuple[str, ...] = ("calibrated",)) -> list[str]:
    """Names of the asset files that a run of these dLLMs (and the drafter) needs and that are not present."""
    dirs = [DLLM_DIRS[d] for d in dllms] + [DRAFTER_DIR]
    return [str(d / f) for d in dirs for f in _FILES if not (d / f).exists()]


def load_dllm(path: Path | None = None):
    path = path or DLLM_DIR
    model = AutoModelForMaskedLM.from_pretrained(path, local_files_only=True).eval()
    return model, AutoTokenizer.from_pretrained(path, local_files_only=True)


def load_drafter(path: Path | None = None):
    path = path or DRAFTER_DIR
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).eval()
    return model, AutoTokenizer.from_pretrained(path, local_files_only=True)


@dataclass
class Pair:
    """A loaded dLLM + the drafter and the token ids the sampler needs; `dllm_name` labels the table rows."""

    dllm: object
    dtok: PreTrainedTokenizerBase
    drafter: object
    atok: PreTrainedTokenizerBase
    dllm_name: str

    @property
    def mask_id(self) -> int:
        return int(self.dtok.mask_token_id)

    @property
    def eos_id(self) -> int:
        return int(self.dtok.eos_token_id)


def load_pair(dllm: str | Path = "calibrated") -> Pair:
    """The drafter with a shipped dLLM (by name) or a saved dLLM directory (named by its path)."""
    path = DLLM_DIRS[dllm] if isinstance(dllm, str) and dllm in DLLM_DIRS else Path(dllm)
    model, tok = load_dllm(path)
    drafter, atok = load_drafter()
    return Pair(model, tok, drafter, atok, dllm if isinstance(dllm, str) and dllm in DLLM_DIRS else str(path))
