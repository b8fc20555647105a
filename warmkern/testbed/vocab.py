"""The two tokenizers, built deterministically with the `tokenizers` library (no training, no downloads).

The dLLM gets a word-level vocabulary with digits as separate tokens (short sequences, local arithmetic);
the drafter gets a character-level one, so warm starting must cross a real tokenizer bridge.
"""

from __future__ import annotations

import random

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from warmkern.testbed import task

PAD, MASK, EOS, UNK = "[PAD]", "[MASK]", "[EOS]", "[UNK]"
NEWLINE = "¶"  # the dLLM tokenizer's stand-in for "\n", so solution lines survive word-level splitting


def _dllm_pretokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])


def _dllm_words() -> list[str]:
    """Every piece the generator can emit: scan many generated problems plus all digits."""
    pre = _dllm_pretokenizer()
    norm = normalizers.Replace("\n", f" {NEWLINE} ")
    rng = random.Random(12345)
    words: set[str] = {str(d) for d in range(10)} | {NEWLINE, "####", "+", "-", "*", "="}
    for _ in range(20000):
        p = task.make_problem(rng)
        for text in (p.prompt, p.solution):
            words.update(w for w, _ in pre.pre_tokenize_str(norm.normalize_str(text)))
    return sorted(words)


def build_dllm_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {tok: i for i, tok in enumerate([PAD, MASK, EOS, UNK, *_dllm_words()])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.normalizer = normalizers.Replace("\n", f" {NEWLINE} ")
    tok.pre_tokenizer = _dllm_pretokenizer()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, mask_token=MASK, eos_token=EOS, unk_token=UNK,
        padding_side="left",
    )


def build_drafter_tokenizer() -> PreTrainedTokenizerFast:
    """Character level: one token per character of the generator's alphabet."""
    rng = random.Random(12345)
    chars: set[str] = set("0123456789 \n#+-*=")
    for _ in range(5000):
        p = task.make_problem(rng)
        chars.update(p.prompt + p.solution)
    vocab = {tok: i for i, tok in enumerate([PAD, EOS, UNK, *sorted(chars)])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK, bos_token=EOS, padding_side="left",
    )
