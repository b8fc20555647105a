"""Model configs, asset paths and loading for the shipped testbed pair.

Both models are plain `transformers` classes built from configs and loaded with `from_pretrained` on a
local directory: exactly the path a user's real LLaDA/Dream + AR drafter take through warmkern.
"""

from __future__ import annotations

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
DLLM_DIR = ASSETS / "dllm"
DRAFTER_DIR = ASSETS / "drafter"
GEN_LENGTH = 32  # fixed answer length G: the longest solution is 27 dLLM tokens, the rest is EOS


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


def assets_missing() -> list[str]:
    """Names of the asset files a demo needs that are not present."""
    need = [DLLM_DIR / "config.json", DLLM_DIR / "model.safetensors", DLLM_DIR / "tokenizer.json",
            DRAFTER_DIR / "config.json", DRAFTER_DIR / "model.safetensors", DRAFTER_DIR / "tokenizer.json"]
    return [str(p) for p in need if not p.exists()]


def load_dllm(path: Path | None = None):
    path = path or DLLM_DIR
    model = AutoModelForMaskedLM.from_pretrained(path).eval()
    return model, AutoTokenizer.from_pretrained(path)


def load_drafter(path: Path | None = None):
    path = path or DRAFTER_DIR
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    return model, AutoTokenizer.from_pretrained(path)
