"""`warmkern generate`: sample from a local dLLM directory, optionally warm-started by a local AR drafter.

Loads with `from_pretrained` on paths only (never the hub), so it is the same code path as a user's
own LLaDA / Dream / HF masked-LM checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

import torch


def _parser(prog: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__)
    ap.add_argument("--model", required=True, help="local dLLM directory (save_pretrained layout)")
    ap.add_argument("--prompt", action="append", required=True, help="prompt text (repeat for a batch)")
    ap.add_argument("--chat", action="store_true", help="wrap each prompt as a user message (chat template)")
    ap.add_argument("--gen-length", type=int, default=128)
    ap.add_argument("--block-length", type=int, default=None, help="default: gen-length")
    ap.add_argument("--steps", type=int, default=None, help="default: gen-length")
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--cfg-scale", type=float, default=0.0)
    ap.add_argument("--remasking", default="low_confidence", choices=["low_confidence", "random"])
    ap.add_argument("--score", default=None, choices=["prob", "margin", "entropy", "random"])
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--factor", type=float, default=None)
    ap.add_argument("--schedule", default="llada", choices=["llada", "dream"])
    ap.add_argument("--logits-shift", action="store_true", help="Dream-style models (position i read at i-1)")
    ap.add_argument("--mask-id", type=int, default=None, help="default: the tokenizer's mask token, else 126336")
    ap.add_argument("--eos-id", type=int, default=None, help="default: the tokenizer's eos token, else 126081")
    ap.add_argument("--eot-id", type=int, default=126348)
    ap.add_argument("--logits-eos-inf", action="store_true")
    ap.add_argument("--confidence-eos-eot-inf", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", default=None, choices=["auto", "reference", "triton", "cpu"])
    ap.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--trust-remote-code", action="store_true", help="needed for LLaDA / Dream checkpoints")
    ap.add_argument("--draft-model", default=None, help="local causal LM directory: warm start from its draft")
    ap.add_argument("--draft-max-new-tokens", type=int, default=None)
    ap.add_argument("--warm-mode", default="token", choices=["token", "embedding"])
    ap.add_argument("--rate", type=float, default=1.0)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--alpha-schedule", default="constant", choices=["constant", "linear"])
    ap.add_argument("--remask-threshold", type=float, default=None)
    ap.add_argument("--remask-max", type=int, default=None)
    ap.add_argument("--remask-budget", default="extend", choices=["extend", "fixed"],
                    help="extend: remasked tokens get steps at the cold pace; fixed: the block-start plan")
    ap.add_argument("--fill-tail-eos", action="store_true", help="use EOS as the prior after the draft ends")
    ap.add_argument("--stats", action="store_true", help="print GenerationStats as JSON after the answers")
    ap.add_argument("--progress", action="store_true")
    return ap


def _load_dllm(path: str, dtype: torch.dtype, trust: bool, device: str) -> Any:
    from transformers import AutoModel, AutoModelForMaskedLM

    try:
        model = AutoModelForMaskedLM.from_pretrained(path, dtype=dtype, trust_remote_code=trust)
    except (ValueError, KeyError):  # LLaDA / Dream register AutoModel only
        model = AutoModel.from_pretrained(path, dtype=dtype, trust_remote_code=trust)
    return model.to(device).eval()


def _first(*values: int | None) -> int:
    return next(v for v in values if v is not None)  # type: ignore[return-value]


def main(argv: list[str]) -> int:
    """Entry point; argv[0] is the command name (as `warmkern.cli` passes it)."""
    args = _parser(f"warmkern {argv[0]}" if argv else "warmkern generate").parse_args(argv[1:])
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from warmkern.sampler import generate
    from warmkern.warmstart import WarmStart

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype)
    tok = AutoTokenizer.from_pretrained(args.model, trust_remote_code=args.trust_remote_code)
    model = _load_dllm(args.model, dtype, args.trust_remote_code, device)
    mask_id = _first(args.mask_id, tok.mask_token_id, 126336)
    eos_id = _first(args.eos_id, tok.eos_token_id, 126081)
    prompts: list[Any] = [[{"role": "user", "content": p}] for p in args.prompt] if args.chat else list(args.prompt)
    if args.chat and getattr(tok, "chat_template", None):
        texts = [tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in prompts]
        special = False
    else:
        texts, special = list(args.prompt), True
    side = tok.padding_side
    tok.padding_side = "left"
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=special)
    tok.padding_side = side

    g = args.gen_length
    warm = None
    if args.draft_model:
        aux_tok = AutoTokenizer.from_pretrained(args.draft_model)
        aux = AutoModelForCausalLM.from_pretrained(args.draft_model, dtype=dtype).to(device).eval()
        warm, drafts = WarmStart.from_causal_lm(
            aux, aux_tok, tok, prompts, g, args.draft_max_new_tokens, mode=args.warm_mode, rate=args.rate,
            alpha=args.alpha, alpha_schedule=args.alpha_schedule, remask_threshold=args.remask_threshold,
            remask_max=args.remask_max, fill_tail=eos_id if args.fill_tail_eos else None,
            remask_budget=args.remask_budget,
        )
        for d in drafts:
            print(f"[draft] {d}", file=sys.stderr)
    x, stats = generate(
        model, enc["input_ids"], enc["attention_mask"], steps=args.steps or g, gen_length=g,
        block_length=args.block_length or g, temperature=args.temperature, cfg_scale=args.cfg_scale,
        remasking=args.remasking, mask_id=mask_id, logits_eos_inf=args.logits_eos_inf,
        confidence_eos_eot_inf=args.confidence_eos_eot_inf, threshold=args.threshold, factor=args.factor,
        score=args.score, schedule=args.schedule, logits_shift=args.logits_shift, eos_id=eos_id,
        eot_id=args.eot_id, warm_start=warm, seed=args.seed, backend=args.backend, progress=args.progress,
        return_stats=True,
    )
    for row in tok.batch_decode(x[:, enc["input_ids"].shape[1] :], skip_special_tokens=True):
        print(row)
    if args.stats:
        print(json.dumps(asdict(stats)))
    return 0


if __name__ == "__main__":
    sys.exit(main(["generate", *sys.argv[1:]]))
