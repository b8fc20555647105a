"""`warmkern demo` / `warmkern eval`: cold vs warm-started decoding of the shipped dLLM, one table.

Every row decodes the same problems with the same seed; only the method changes. Hyper-parameters come
from `assets/hparams.json`, written by `warmkern eval --split validation --tune` (validation only); the
test split is for reporting.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from warmkern.testbed import data, models, task
from warmkern.testbed.methods import DEFAULT_HPARAMS, HPARAMS_PATH, Method, RowResult, methods_from_hparams
from warmkern.testbed.report import format_table, plot, rows_to_json


def _missing_assets_message(missing: list[str]) -> str:
    return (
        "warmkern demo: the testbed assets are missing:\n  " + "\n  ".join(missing) + "\n"
        "Train them with `python -m warmkern.testbed.train --model dllm` and `--model drafter` "
        "(they are committed in the repository; a partial checkout or an sdist without package data lacks them)."
    )


class Pair:
    """The loaded dLLM + drafter and the token ids the sampler needs."""

    def __init__(self, dllm_dir: Path | None = None) -> None:
        self.dllm, self.dtok = models.load_dllm(dllm_dir)
        self.drafter, self.atok = models.load_drafter()
        self.mask_id, self.eos_id = self.dtok.mask_token_id, self.dtok.eos_token_id


def draft_all(pair: Pair, probs: list[task.Problem], batch: int, bar) -> tuple[list[torch.Tensor], list[str], float]:
    """Drafter output for every batch: dLLM-vocabulary drafts (EOS-filled tail), texts, and wall seconds."""
    from warmkern.warmstart import draft_with_causal_lm

    drafts, texts = [], []
    t0 = time.perf_counter()
    for i in range(0, len(probs), batch):
        chunk = probs[i:i + batch]
        d, t = draft_with_causal_lm(
            pair.drafter, pair.atok, pair.dtok, [p.prompt + data.DRAFT_SEP for p in chunk], models.GEN_LENGTH,
            max_new_tokens=64, fill_tail=pair.eos_id, eos_token_id=pair.atok.eos_token_id,
        )
        drafts.append(d)
        texts.extend(t)
        bar.update(1)
    return drafts, texts, time.perf_counter() - t0


def _row_nfe(stats, verify: bool) -> list[int]:
    """Forward passes each row needed: up to its last step with a transfer or remask.

    Rows of a batch finish at different steps; counting per row gives what a batch-of-one run takes
    (each row's decisions depend only on its own logits).
    """
    steps = stats.transfers_per_step
    if not steps:
        return [1 if verify else 0] * stats.batch_size
    out = []
    for b in range(stats.batch_size):
        active = [s for s in range(len(steps)) if steps[s][b] or stats.remasks_per_step[s][b]]
        out.append(active[-1] + 1 if active else (1 if verify else 0))
    return out


def run_method(pair: Pair, m: Method, probs: list[task.Problem], batch: int, drafts, draft_texts, draft_s: float,
               seed: int, bar) -> RowResult:
    from warmkern import WarmStart, generate

    res = RowResult(name=m.name, params=m.describe())
    if m.kind == "drafter":
        res.correct = [task.extract_answer(t) == p.answer for t, p in zip(draft_texts, probs)]
        res.wall_s = draft_s
        res.nfe = []
        bar.update((len(probs) + batch - 1) // batch)
        return res
    G = models.GEN_LENGTH
    for j, i in enumerate(range(0, len(probs), batch)):
        chunk = probs[i:i + batch]
        ids, pm = data.encode_prompts(pair.dtok, [p.prompt for p in chunk])
        ws = None
        if m.kind == "warm":
            ws = WarmStart(drafts[j], mode=m.mode, rate=m.rate, alpha=m.alpha, alpha_schedule=m.alpha_schedule,
                           remask_threshold=m.remask_threshold, fill_tail=pair.eos_id,
                           remask_budget=m.remask_budget)
        t0 = time.perf_counter()
        x, st = generate(
            pair.dllm, ids, attention_mask=pm, steps=G, gen_length=G, block_length=G, temperature=0.0,
            mask_id=pair.mask_id, eos_id=pair.eos_id, eot_id=pair.eos_id, threshold=m.threshold,
            warm_start=ws, seed=seed, return_stats=True,
        )
        res.wall_s += time.perf_counter() - t0
        texts = pair.dtok.batch_decode(x[:, ids.shape[1]:])
        res.correct.extend(task.extract_answer(t) == p.answer for t, p in zip(texts, chunk))
        res.nfe.extend(_row_nfe(st, m.kind == "warm" and m.remask_threshold is not None))
        res.model_s += st.time_model_s
        res.sampler_s += st.time_sampler_s
        res.remasked += st.remasked
        res.injected += st.injected
        if not res.examples:
            res.examples = texts[:2]
        bar.update(1)
    if m.kind == "warm":
        res.wall_s += draft_s  # the draft is part of a warm start's cost
        res.draft_s = draft_s
    return res


def evaluate(probs: list[task.Problem], methods: list[Method], batch: int = 64, seed: int = 0,
             desc: str = "eval", threads: int | None = None) -> list[RowResult]:
    """Run every method on `probs`; the drafter runs once and its drafts feed every warm row."""
    if threads:
        torch.set_num_threads(threads)
    pair = Pair()
    n_batches = (len(probs) + batch - 1) // batch
    with tqdm(total=n_batches * (len(methods) + 1), desc=desc, unit="batch", file=sys.stderr) as bar:
        drafts, texts, draft_s = draft_all(pair, probs, batch, bar)
        return [run_method(pair, m, probs, batch, drafts, texts, draft_s, seed, bar) for m in methods]


def load_hparams() -> dict:
    if HPARAMS_PATH.exists():
        return json.loads(HPARAMS_PATH.read_text())
    return dict(DEFAULT_HPARAMS)


def main(argv: list[str]) -> int:
    cmd, rest = argv[0], argv[1:]
    ap = argparse.ArgumentParser(prog=f"warmkern {cmd}", description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("validation", "test"), default="test")
    ap.add_argument("--n", type=int, default=200 if cmd == "demo" else 1000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--tune", action="store_true", help="grid-search hyper-parameters (validation split only)")
    args = ap.parse_args(rest)
    missing = models.assets_missing()
    if missing:
        print(_missing_assets_message(missing), file=sys.stderr)
        return 1
    if args.tune:
        if args.split != "validation":
            print("warmkern eval --tune: tuning is only allowed on --split validation", file=sys.stderr)
            return 2
        from warmkern.testbed.tune import tune

        tune(task.problems("validation", args.n), batch=args.batch, seed=args.seed, json_path=args.json,
             threads=args.threads)
        return 0
    hp = load_hparams()
    probs = task.problems(args.split, args.n)
    rows = evaluate(probs, methods_from_hparams(hp), batch=args.batch, seed=args.seed, desc=cmd, threads=args.threads)
    header = (f"warmkern {cmd}: {args.n} {args.split} problems, G={models.GEN_LENGTH}, seed {args.seed}, "
              f"hyper-parameters from {'validation tuning' if HPARAMS_PATH.exists() else 'defaults'}")
    print(header)
    print(format_table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"split": args.split, "n": args.n, "seed": args.seed, "hparams": hp,
                                         "gen_length": models.GEN_LENGTH, "rows": rows_to_json(rows)}, indent=1))
    if args.plot:
        plot(rows, args.plot, title=header)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["demo"]))
