"""A tiny randomly initialised dLLM (BERT-style masked LM) and AR drafter, built in memory.

No hub, no weights on disk: the tests, the README quick start and `python -m warmkern.tiny` use these to
exercise the whole sampler path in seconds on a CPU (their outputs are noise: for trained models and real
accuracy see `warmkern.testbed` and `make demo`). The two models have *different* tokenizers (word level vs
character level) so the draft bridge is real.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import BertConfig, BertForMaskedLM, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

DLLM_SPECIALS = ["[PAD]", "[UNK]", "[MASK]", "[EOS]", "[EOT]"]
WORDS = (
    "the a an one two three four five six seven eight nine ten cat dog bird fish apple apples pear "
    "pears has have had gives gave takes took buys bought sells sold now left total how many more "
    "less than each per and or is are was were to of in on with answer so then it they she he tom "
    "him her ann bob sue eats ate box boxes bag bags coin coins day days + - * = ? . , ####"
).split()
DIGITS = [str(d) for d in range(10)]
CHAR_SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]


def dllm_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer: specials, digits as separate tokens, a small word list."""
    vocab = {t: i for i, t in enumerate(DLLM_SPECIALS + DIGITS + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Digits(individual_digits=True)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", mask_token="[MASK]", eos_token="[EOS]",
        additional_special_tokens=["[EOT]"],
    )


def char_tokenizer() -> PreTrainedTokenizerFast:
    """Character-level tokenizer (printable ASCII) for the drafter: a different vocabulary on purpose."""
    vocab = {t: i for i, t in enumerate(CHAR_SPECIALS + [chr(c) for c in range(32, 127)])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def dllm(seed: int = 0, hidden: int = 32, layers: int = 2) -> tuple[BertForMaskedLM, PreTrainedTokenizerFast]:
    """A random bidirectional masked LM (eval mode, fp32) and its tokenizer."""
    tok = dllm_tokenizer()
    cfg = BertConfig(
        vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=256, initializer_range=0.3,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    return BertForMaskedLM(cfg).eval(), tok


def drafter(seed: int = 1, hidden: int = 32, layers: int = 2) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    """A random causal LM over characters (eval mode, fp32) and its tokenizer."""
    tok = char_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg).eval(), tok


def ids(tok: PreTrainedTokenizerFast, name: str) -> int:
    return int(tok.convert_tokens_to_ids(name))


def encode_prompts(tok: PreTrainedTokenizerFast, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompt ids and attention mask, as LLaDA expects."""
    side = tok.padding_side
    tok.padding_side = "left"
    try:
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tok.padding_side = side
    return enc["input_ids"], enc["attention_mask"]


def _row(name: str, stats, seconds: float) -> str:
    tr = sum(sum(r) for r in stats.transfers_per_step)
    return (
        f"{name:<38} nfe={stats.nfe:>3}  steps/block={stats.steps_per_block}  transferred={tr:>3}  "
        f"injected={stats.injected:>3}  survived={stats.survived:>3}  remasked={stats.remasked:>3}  "
        f"model={stats.time_model_s * 1e3:6.1f}ms  sampler={stats.time_sampler_s * 1e3:6.1f}ms  wall={seconds:5.2f}s"
    )


def main(argv: list[str] | None = None) -> int:
    """Cold vs warm generation on the tiny random pair; prints GenerationStats per variant."""
    from warmkern.sampler import generate
    from warmkern.warmstart import WarmStart

    ap = argparse.ArgumentParser(prog="python -m warmkern.tiny", description=main.__doc__)
    ap.add_argument("--gen-length", type=int, default=32)
    ap.add_argument("--block-length", type=int, default=8)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--backend", default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    model, tok = dllm()
    aux, aux_tok = drafter()
    prompts = ["tom has 3 apples and ann gives him 4 more", "how many coins are left"]
    prompt, am = encode_prompts(tok, prompts)
    special = {"mask_id": tok.mask_token_id, "eos_id": tok.eos_token_id, "eot_id": ids(tok, "[EOT]")}
    g, blk, steps = args.gen_length, args.block_length, args.steps
    common = dict(
        attention_mask=am, steps=steps, gen_length=g, block_length=blk, seed=args.seed, backend=args.backend,
        return_stats=True, **special,
    )

    def run(name: str, **kw):
        t0 = time.perf_counter()
        x, st = generate(model, prompt, **common, **kw)
        print(_row(name, st, time.perf_counter() - t0))
        return x, st

    print(f"tiny dLLM: BERT-style, vocab {len(tok)}; B={prompt.shape[0]} P={prompt.shape[1]} G={g} "
          f"block={blk} steps={steps}")
    cold, _ = run("cold top-k")
    run("cold threshold 0.9", threshold=0.9)
    oracle = cold[:, prompt.shape[1]:]
    run("warm token, draft = cold output", warm_start=WarmStart(oracle))
    run("warm token + verify (thr 0.01)", warm_start=WarmStart(oracle, remask_threshold=0.01))
    noisy = oracle.clone()
    gen = torch.Generator().manual_seed(0)
    flip = torch.rand(noisy.shape, generator=gen) < 0.3
    noisy[flip] = torch.randint(len(DLLM_SPECIALS), len(tok), noisy.shape, generator=gen)[flip]
    run("warm token, 30% corrupted, remask<.05", warm_start=WarmStart(noisy, remask_threshold=0.05))
    run("warm embedding a=0.5, draft = cold", warm_start=WarmStart(oracle, mode="embedding"))
    run("warm embedding a=0.5 + threshold 0.9", warm_start=WarmStart(oracle, mode="embedding"), threshold=0.9)
    ws, texts = WarmStart.from_causal_lm(aux, aux_tok, tok, prompts, g, max_new_tokens=24, remask_threshold=0.05)
    run("warm token, random drafter, remask<.05", warm_start=ws)
    print(f"drafter texts (random weights): {texts!r}")
    print("cold output:", tok.batch_decode(oracle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
