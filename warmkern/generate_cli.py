"""`warmkern generate`: sample from a local dLLM directory, optionally warm-started by a local AR drafter.

Loads with `from_pretrained(..., local_files_only=True)` on directories only (never the Hub), so it is the
same code path as a user's own LLaDA / Dream / HF masked-LM checkpoint and a typo fails at once, in one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from warmkern.cli_args import Parser, UsageError, finite_at_least, int_at_least, run

# Warm-start flags: without --draft-model they would do nothing, so giving one is an error. name -> default.
WARM_FLAGS: dict[str, Any] = {
    "draft_max_new_tokens": None, "warm_mode": "token", "rate": 1.0, "alpha": 0.5, "alpha_schedule": "constant",
    "remask_threshold": None, "remask_max": None, "remask_budget": "extend", "fill_tail_eos": False,
}
# `generate` / `WarmStart` argument names -> the flag that sets them, to name the flag in their errors.
FLAG_OF = {
    "steps": "--steps", "gen_length": "--gen-length", "block_length": "--block-length", "seed": "--seed",
    "temperature": "--temperature", "cfg_scale": "--cfg-scale", "threshold": "--threshold", "factor": "--factor",
    "threshold/factor": "--threshold/--factor", "score": "--score", "mask_id": "--mask-id", "eos_id": "--eos-id",
    "eot_id": "--eot-id", "backend": "--backend", "warm_start.rate": "--rate", "warm_start.alpha": "--alpha",
    "warm_start.mode": "--warm-mode", "warm_start.remask_threshold": "--remask-threshold",
    "warm_start.remask_max": "--remask-max", "warm_start.alpha_schedule": "--alpha-schedule",
}


def _parser(prog: str) -> Parser:
    ap = Parser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="local dLLM directory (save_pretrained layout)")
    ap.add_argument("--prompt", action="append", required=True, help="prompt text (repeat for a batch)")
    ap.add_argument("--chat", action="store_true", help="wrap each prompt as a user message (chat template)")
    ap.add_argument("--gen-length", type=int_at_least(1), default=128)
    ap.add_argument("--block-length", type=int_at_least(1), default=None, help="default: gen-length")
    ap.add_argument("--steps", type=int_at_least(1), default=None, help="default: gen-length")
    ap.add_argument("--temperature", type=finite_at_least(0.0), default=0.0)
    ap.add_argument("--cfg-scale", type=finite_at_least(0.0), default=0.0)
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
    ap.add_argument("--seed", type=int_at_least(0), default=0)
    ap.add_argument("--backend", default=None, choices=["auto", "reference", "triton", "cpu"])
    ap.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--trust-remote-code", action="store_true", help="needed for LLaDA / Dream checkpoints")
    ap.add_argument("--draft-model", default=None, help="local causal LM directory: warm start from its draft")
    ap.add_argument("--draft-max-new-tokens", type=int_at_least(1), default=None, help="default: gen-length")
    ap.add_argument("--warm-mode", default=None, choices=["token", "embedding"], help="default: token")
    ap.add_argument("--rate", type=float, default=None, help="default: 1.0")
    ap.add_argument("--alpha", type=float, default=None, help="default: 0.5")
    ap.add_argument("--alpha-schedule", default=None, choices=["constant", "linear"], help="default: constant")
    ap.add_argument("--remask-threshold", type=float, default=None)
    ap.add_argument("--remask-max", type=int_at_least(0), default=None)
    ap.add_argument("--remask-budget", default=None, choices=["extend", "fixed"],
                    help="extend (default): remasked tokens get steps at the cold pace; fixed: the block-start plan")
    ap.add_argument("--fill-tail-eos", action="store_true", help="use EOS as the prior after the draft ends")
    ap.add_argument("--stats", action="store_true", help="print GenerationStats as JSON after the answers")
    ap.add_argument("--progress", action="store_true")
    return ap


def _local_dir(flag: str, path: str) -> Path:
    p = Path(path)
    if not (p / "config.json").is_file():
        what = "has no config.json" if p.is_dir() else "does not exist" if not p.exists() else "is not a directory"
        raise UsageError(f"{flag}: expected a local model directory (save_pretrained layout), got {path!r}, which "
                         f"{what} (warmkern never downloads from the Hub)")
    return p


def _check(args: argparse.Namespace) -> None:
    """Flag-level checks, before any model loads; fills the warm-start defaults."""
    given = [k for k in WARM_FLAGS if getattr(args, k) is not None and getattr(args, k) is not False]
    if given and args.draft_model is None:
        raise UsageError(f"--{given[0].replace('_', '-')}: a warm-start flag needs --draft-model (without a draft "
                         "it would do nothing)")
    for k, default in WARM_FLAGS.items():
        if getattr(args, k) is None:
            setattr(args, k, default)
    g = args.gen_length
    if g % (args.block_length or g):
        raise UsageError(f"--block-length: expected a divisor of --gen-length ({g}), got {args.block_length}")
    _local_dir("--model", args.model)
    if args.draft_model is not None:
        _local_dir("--draft-model", args.draft_model)


def _loaded(flag: str, path: str, load):
    """Run a `from_pretrained` call; a directory it cannot read is the user's error, named by flag."""
    try:
        return load()
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"{flag}: cannot load {path!r}: {first}") from None


def _load_dllm(path: str, dtype: torch.dtype, trust: bool, device: str) -> Any:
    from transformers import AutoModel, AutoModelForMaskedLM

    kw = dict(dtype=dtype, trust_remote_code=trust, local_files_only=True)
    try:
        model = AutoModelForMaskedLM.from_pretrained(path, **kw)
    except (ValueError, KeyError):  # LLaDA / Dream register AutoModel only
        model = _loaded("--model", path, lambda: AutoModel.from_pretrained(path, **kw))
    return model.to(device).eval()


def _first(*values: int | None) -> int:
    return next(v for v in values if v is not None)  # type: ignore[return-value]


def _flag_error(e: ValueError) -> UsageError:
    """A `generate` / `WarmStart` argument error, with the argument's name replaced by its flag."""
    msg = str(e)
    name, sep, rest = msg.partition(":")
    return UsageError(f"{FLAG_OF[name]}:{rest}" if sep and name in FLAG_OF else msg)


def _encode(tok: Any, args: argparse.Namespace) -> tuple[dict, list[Any]]:
    """Left-padded prompt batch (chat template when asked and available) and the prompts for the drafter."""
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
    return enc, prompts


def _warm_start(args: argparse.Namespace, tok: Any, prompts: list[Any], dtype: torch.dtype, device: str, eos: int):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from warmkern.warmstart import WarmStart

    path = args.draft_model
    aux_tok = _loaded("--draft-model", path, lambda: AutoTokenizer.from_pretrained(path, local_files_only=True))
    aux = _loaded("--draft-model", path, lambda: AutoModelForCausalLM.from_pretrained(
        path, dtype=dtype, local_files_only=True)).to(device).eval()
    warm, drafts = WarmStart.from_causal_lm(
        aux, aux_tok, tok, prompts, args.gen_length, args.draft_max_new_tokens, mode=args.warm_mode,
        rate=args.rate, alpha=args.alpha, alpha_schedule=args.alpha_schedule, remask_threshold=args.remask_threshold,
        remask_max=args.remask_max, fill_tail=eos if args.fill_tail_eos else None, remask_budget=args.remask_budget,
    )
    for d in drafts:
        print(f"[draft] {d}", file=sys.stderr)
    return warm


def _main(prog: str, rest: list[str]) -> int:
    args = _parser(prog).parse_args(rest)
    _check(args)
    # transformers and the sampler load only now (seconds), so a mistyped flag fails at once
    from transformers import AutoTokenizer

    from warmkern.sampler import generate

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype)
    tok = _loaded("--model", args.model, lambda: AutoTokenizer.from_pretrained(
        args.model, trust_remote_code=args.trust_remote_code, local_files_only=True))
    model = _load_dllm(args.model, dtype, args.trust_remote_code, device)
    mask_id = _first(args.mask_id, tok.mask_token_id, 126336)
    eos_id = _first(args.eos_id, tok.eos_token_id, 126081)
    enc, prompts = _encode(tok, args)
    g = args.gen_length
    try:
        warm = _warm_start(args, tok, prompts, dtype, device, eos_id) if args.draft_model else None
        x, stats = generate(
            model, enc["input_ids"], enc["attention_mask"], steps=args.steps or g, gen_length=g,
            block_length=args.block_length or g, temperature=args.temperature, cfg_scale=args.cfg_scale,
            remasking=args.remasking, mask_id=mask_id, logits_eos_inf=args.logits_eos_inf,
            confidence_eos_eot_inf=args.confidence_eos_eot_inf, threshold=args.threshold, factor=args.factor,
            score=args.score, schedule=args.schedule, logits_shift=args.logits_shift, eos_id=eos_id,
            eot_id=args.eot_id, warm_start=warm, seed=args.seed, backend=args.backend, progress=args.progress,
            return_stats=True,
        )
    except ValueError as e:
        raise _flag_error(e) from None
    for row in tok.batch_decode(x[:, enc["input_ids"].shape[1] :], skip_special_tokens=True):
        print(row)
    if args.stats:
        print(json.dumps(asdict(stats)))
    return 0


def main(argv: list[str]) -> int:
    """Entry point; argv[0] is the command name (as `warmkern.cli` passes it)."""
    prog = f"warmkern {argv[0]}" if argv else "warmkern generate"
    return run(prog, lambda: _main(prog, list(argv[1:])))


if __name__ == "__main__":
    sys.exit(main(["generate", *sys.argv[1:]]))
