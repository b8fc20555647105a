"""`python -m warmkern.testbed.train --model dllm|drafter`: train one model of the testbed pair on CPU.

The run is bounded by wall-clock minutes (the machine is shared, so step time varies); the learning rate
follows warmup + cosine over the elapsed fraction of that budget. Validation accuracy is logged and the
model is saved (save_pretrained + tokenizer) at every evaluation, so a usable model exists early.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

from warmkern.testbed import data, quickdecode, task, vocab
from warmkern.testbed.checkpoints import DLLM_DIR, DRAFTER_DIR, GEN_LENGTH, dllm_config, drafter_config


@dataclass
class RunConfig:
    model: str = "dllm"
    minutes: float = 45.0
    max_steps: int = 0  # > 0: stop after this many steps (smoke tests); the schedule then follows steps
    batch: int = 64
    lr: float = 2e-3
    warmup: float = 0.03
    hidden: int = 128
    layers: int = 4
    eval_every_min: float = 4.0
    val_n: int = 256
    threads: int = 2
    seed: int = 0
    out: Path | None = None
    init: Path | None = None  # continue from a saved model (a second phase with a fresh schedule)
    log_every: int = 25
    t_min: float = 0.05  # lower end of the masking-rate distribution (bounds the 1/t weight)
    # Visible-token term: CE also on the answer tokens left unmasked, a `corrupt` share of them replaced by
    # tokens drawn from other answers. Without it the model is never asked about visible tokens, so the
    # p(token) that remasking reads off an injected draft token is untrained noise (see RESULTS.md).
    visible_weight: float = 0.0
    corrupt: float = 0.15


def _lr_scale(frac: float, warmup: float) -> float:
    if frac < warmup:
        return max(frac / warmup, 0.01)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, (frac - warmup) / (1 - warmup))))


def diffusion_loss(model, prompt, pmask, answer, mask_id: int, gen: torch.Generator,
                   t_min: float = 0.05, visible_weight: float = 0.0, corrupt: float = 0.15) -> torch.Tensor:
    """Masked-diffusion loss: t ~ U(t_min,1) (stratified over the batch), mask answer tokens w.p. t, CE / t.

    With `visible_weight` > 0, a `corrupt` share of the unmasked answer tokens is replaced by tokens of
    other answers (plausible wrong digits / operators, like a weak draft's) and every unmasked answer
    token adds `visible_weight` * CE(original): the model learns to judge the tokens it can see, which
    is what remasking a provisional draft token asks of it.
    """
    b, g = answer.shape
    # t ~ U(t_min, 1): with batches this small, t near 0 gives 1/t weights that let one token dominate a step
    t = t_min + (1 - t_min) * (torch.arange(b) + torch.rand(b, generator=gen)) / b
    t = t[torch.randperm(b, generator=gen)]
    masked = torch.rand((b, g), generator=gen) < t[:, None]
    none = ~masked.any(1)  # keep every row informative: mask one random position where t drew none
    masked[none, torch.randint(0, g, (int(none.sum()),), generator=gen)] = True
    shown = answer
    if visible_weight > 0:
        swap = (torch.rand((b, g), generator=gen) < corrupt) & ~masked
        other = answer.reshape(-1)[torch.randint(0, b * g, (b, g), generator=gen)]
        shown = torch.where(swap, other, answer)
    x = torch.cat([prompt, torch.where(masked, mask_id, shown)], 1)
    am = torch.cat([pmask, torch.ones_like(answer)], 1)
    logits = model(input_ids=x, attention_mask=am).logits[:, prompt.shape[1]:]
    ce = F.cross_entropy(logits.reshape(b * g, -1).float(), answer.reshape(-1), reduction="none").view(b, g)
    loss = ((ce * masked) / t[:, None]).sum() / (b * g)
    if visible_weight > 0:
        loss = loss + visible_weight * (ce * ~masked).sum() / (b * g)
    return loss


def drafter_loss(model, ids, mask, labels) -> torch.Tensor:
    return model(input_ids=ids, attention_mask=mask, labels=labels).loss


def validate(cfg: RunConfig, model, tok) -> float:
    """Exact-match accuracy of greedy decoding on the first `val_n` validation problems."""
    model.eval()
    probs = task.problems("validation", cfg.val_n)
    correct = 0
    for i in range(0, len(probs), 128):
        chunk = probs[i:i + 128]
        if cfg.model == "dllm":
            ids, pm, _ = data.dllm_batch(tok, chunk, GEN_LENGTH)
            ans = quickdecode.dllm_greedy(model, ids, pm, GEN_LENGTH, tok.mask_token_id)
            texts = tok.batch_decode(ans)
        else:
            texts = quickdecode.drafter_greedy(model, tok, [p.prompt + data.DRAFT_SEP for p in chunk], 64)
        correct += sum(task.extract_answer(t) == p.answer for t, p in zip(texts, chunk))
    model.train()
    return correct / len(probs)


def build(cfg: RunConfig):
    torch.manual_seed(cfg.seed)
    if cfg.model == "dllm":
        tok = vocab.build_dllm_tokenizer()
        model = (AutoModelForMaskedLM.from_pretrained(cfg.init) if cfg.init
                 else AutoModelForMaskedLM.from_config(dllm_config(tok, cfg.hidden, cfg.layers)))
    else:
        tok = vocab.build_drafter_tokenizer()
        model = (AutoModelForCausalLM.from_pretrained(cfg.init) if cfg.init
                 else AutoModelForCausalLM.from_config(drafter_config(tok, cfg.hidden, cfg.layers)))
    return model, tok


class _Log:
    """Training records, rewritten as JSON lines at every addition (a killed run keeps its log)."""

    def __init__(self, path: Path, first: dict) -> None:
        self.path, self.records = path, [first]
        self.path.write_text("")

    def add(self, rec: dict) -> None:
        self.records.append(rec)
        self.path.write_text("".join(json.dumps(r) + "\n" for r in self.records))


def _batch_loss(cfg: RunConfig, model, tok, stream, gen: torch.Generator) -> torch.Tensor:
    probs = [next(stream) for _ in range(cfg.batch)]
    if cfg.model == "dllm":
        ids, pm, ans = data.dllm_batch(tok, probs, GEN_LENGTH)
        return diffusion_loss(model, ids, pm, ans, tok.mask_token_id, gen, cfg.t_min, cfg.visible_weight, cfg.corrupt)
    return drafter_loss(model, *data.drafter_batch(tok, probs))


def _record(event: str, step: int, t0: float, run_loss: float) -> dict:
    return {"event": event, "step": step, "elapsed_s": round(time.time() - t0, 1), "loss": round(run_loss, 4)}


def _checkpoint(cfg: RunConfig, model, tok, out: Path, log: _Log, rec: dict) -> None:
    """Validate, save the model where `out` says, log the record."""
    rec["val_acc"] = validate(cfg, model, tok) if cfg.val_n else float("nan")
    tqdm.write(json.dumps(rec), file=sys.stderr)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    log.add(rec)


def train(cfg: RunConfig) -> list[dict]:
    """Run training; returns the log records (also written as JSON lines next to the saved model)."""
    torch.set_num_threads(cfg.threads)
    model, tok = build(cfg)
    out = Path(cfg.out or (DLLM_DIR if cfg.model == "dllm" else DRAFTER_DIR))
    out.mkdir(parents=True, exist_ok=True)
    nparams = sum(p.numel() for p in model.parameters())
    log = _Log(out.parent / f"{cfg.model}_train_log{'_phase2' if cfg.init else ''}.jsonl",
               {"event": "start", "config": {k: str(v) for k, v in vars(cfg).items()}, "params": nparams})
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=0.01)
    gen = torch.Generator().manual_seed(cfg.seed)
    stream = task.train_stream(cfg.seed)
    random.seed(cfg.seed)
    t0, budget, next_eval = time.time(), cfg.minutes * 60, cfg.eval_every_min * 60
    step, run_loss = 0, 0.0
    bar = tqdm(total=cfg.max_steps or int(budget), unit="step" if cfg.max_steps else "s", file=sys.stderr,
               disable=None)
    model.train()
    while (frac := step / cfg.max_steps if cfg.max_steps else (time.time() - t0) / budget) < 1:
        for grp in opt.param_groups:
            grp["lr"] = cfg.lr * _lr_scale(frac, cfg.warmup)
        loss = _batch_loss(cfg, model, tok, stream, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        run_loss = loss.item() if step == 1 else 0.98 * run_loss + 0.02 * loss.item()
        if step % cfg.log_every == 0:
            log.add({"event": "train", "step": step, "elapsed_s": round(time.time() - t0, 1),
                     "loss": round(run_loss, 4), "raw_loss": round(loss.item(), 4), "lr": opt.param_groups[0]["lr"]})
        bar.update(1 if cfg.max_steps else int(time.time() - t0) - bar.n)
        bar.set_postfix(loss=f"{run_loss:.3f}", step=step)
        if not cfg.max_steps and time.time() - t0 >= next_eval:
            _checkpoint(cfg, model, tok, out, log, _record("eval", step, t0, run_loss))
            next_eval = time.time() - t0 + cfg.eval_every_min * 60
    bar.close()
    _checkpoint(cfg, model, tok, out, log, _record("final", step, t0, run_loss))
    return log.records


def parse(argv: list[str] | None = None) -> RunConfig:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=("dllm", "drafter"), required=True)
    d = RunConfig()
    for f in ("minutes", "max_steps", "batch", "lr", "warmup", "hidden", "layers", "eval_every_min", "val_n",
              "threads", "seed", "log_every", "t_min", "visible_weight", "corrupt"):
        ap.add_argument("--" + f.replace("_", "-"), type=type(getattr(d, f)), default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--init", type=Path, default=None)
    ns = ap.parse_args(argv)
    kw = {k: v for k, v in vars(ns).items() if v is not None}
    if ns.model == "drafter":  # smaller and shorter unless told otherwise
        kw = {"hidden": 96, "layers": 2, "minutes": 12.0, "lr": 3e-3, "threads": 1, "eval_every_min": 3.0} | kw
    return RunConfig(**kw)


def main(argv: list[str] | None = None) -> int:
    train(parse(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
