"""Testbed smoke tests: task generator, tokenizers, a few training steps, and the demo on a few problems."""

from __future__ import annotations

import json
import re

import pytest
import torch

from warmkern.testbed import checkpoints, data, task, train, vocab


def test_splits_are_deterministic_and_disjoint_streams():
    a, b = task.problems("test", 30), task.problems("test", 30)
    assert a == b
    assert task.problems("test", 10, offset=20) == a[20:]
    assert a != task.problems("validation", 30)
    stream = task.train_stream(0)
    assert [next(stream) for _ in range(30)] != a


def test_solutions_are_correct_and_small():
    for p in task.problems("validation", 300):
        lines = p.solution.split("\n")
        assert 3 <= len(lines) <= 4 and lines[-1] == f"#### {p.answer}"
        prev = None
        for line in lines[:-1]:
            m = re.fullmatch(r"(\d+) ([-+*]) (\d+) = (\d+)", line)
            assert m, line
            x, op, k, y = int(m[1]), m[2], int(m[3]), int(m[4])
            assert y == {"+": x + k, "-": x - k, "*": x * k}[op] and 0 <= y <= task.MAX_VALUE
            assert prev is None or x == prev
            assert op == "*" or str(x if prev is None else k) in p.prompt
            prev = y
        assert task.extract_answer(p.solution) == p.answer


def test_extract_answer_handles_detokenized_digits():
    assert task.extract_answer("1 2 + 3 = 1 5 ¶ #### 1 5 [EOS] [EOS]") == 15
    assert task.extract_answer("3 + 4 = 7") is None
    assert task.extract_answer("#### 7\n#### 12") == 12


def test_tokenizers_special_ids_and_digits():
    dt, at = vocab.build_dllm_tokenizer(), vocab.build_drafter_tokenizer()
    assert len({dt.mask_token_id, dt.eos_token_id, dt.pad_token_id}) == 3
    p = task.problems("test", 1)[0]
    toks = dt.convert_ids_to_tokens(dt(p.solution, add_special_tokens=False).input_ids)
    assert all(len(t) == 1 for t in toks if t.isdigit())  # digits are separate tokens
    assert dt.unk_token_id not in dt(p.prompt + " " + p.solution, add_special_tokens=False).input_ids
    ids = at(p.solution, add_special_tokens=False).input_ids
    assert len(ids) == len(p.solution) and at.decode(ids) == p.solution  # character level, lossless


def test_dllm_batch_layout():
    dt = vocab.build_dllm_tokenizer()
    probs = task.problems("test", 5)
    ids, pm, ans = data.dllm_batch(dt, probs, checkpoints.GEN_LENGTH)
    assert ids.shape == pm.shape and ans.shape == (5, checkpoints.GEN_LENGTH)
    assert bool((pm[:, -1] == 1).all())  # left padded: every prompt ends at the answer
    assert bool((ans[:, -1] == dt.eos_token_id).all())


@pytest.mark.parametrize("which", ["dllm", "drafter"])
def test_few_training_steps_reduce_loss(tmp_path, which):
    cfg = train.RunConfig(model=which, max_steps=40, batch=16, lr=3e-3, hidden=32, layers=1, val_n=0,
                          threads=1, out=tmp_path / which, log_every=1)
    recs = [r for r in train.train(cfg) if r["event"] == "train"]
    losses = [r["raw_loss"] for r in recs]
    assert len(losses) == 40
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < 0.8 * first, (first, last)
    assert (tmp_path / which / "model.safetensors").exists() and (tmp_path / f"{which}_train_log.jsonl").exists()


class _Spy(torch.nn.Module):
    """A model that records its input and returns fixed logits, to see exactly what the loss showed and scored."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(vocab_size))
        self.seen: torch.Tensor | None = None

    def forward(self, input_ids, attention_mask):
        self.seen = input_ids
        return type("Out", (), {"logits": self.bias.expand(*input_ids.shape, -1)})()


def test_visible_term_corrupts_only_unmasked_answer_tokens_and_adds_their_ce():
    dt = vocab.build_dllm_tokenizer()
    ids, pm, ans = data.dllm_batch(dt, task.problems("train", 32), checkpoints.GEN_LENGTH)
    spy, mask, p = _Spy(len(dt)), dt.mask_token_id, ids.shape[1]
    plain = train.diffusion_loss(spy, ids, pm, ans, mask, torch.Generator().manual_seed(1))
    shown_plain = spy.seen[:, p:].clone()
    both = train.diffusion_loss(spy, ids, pm, ans, mask, torch.Generator().manual_seed(1), visible_weight=0.5,
                                corrupt=0.5)
    shown = spy.seen[:, p:]
    assert torch.equal(spy.seen[:, :p], ids)  # the prompt is never touched
    masked = shown_plain == mask
    assert torch.equal(shown == mask, masked)  # same masking draw: the term only adds to it
    swapped = (shown != ans) & ~masked
    assert 0.2 < float(swapped.sum() / (~masked).sum()) < 0.5  # ~corrupt of the visible tokens (some swaps are no-ops)
    # uniform logits: CE = log V for every token, so the term adds exactly 0.5 * log V * visible share
    ce = torch.log(torch.tensor(float(len(dt))))
    assert torch.allclose(both - plain, 0.5 * ce * (~masked).sum() / masked.numel())


@pytest.mark.skipif(bool(checkpoints.assets_missing()), reason="testbed assets not trained yet")
def test_shipped_dllm_judges_visible_draft_tokens():
    """Remasking reads p(token) of a visible draft token: the shipped dLLM must rate correct ones high, wrong ones low.

    A dLLM trained only on masked positions fails this (before the visible-token phase: 75% of correct
    draft tokens had p < 0.5, so nearly every injected token was remasked and warm starts saved nothing).
    """
    from warmkern.testbed.calibration import visible_token_probs

    torch.set_num_threads(1)
    pair = checkpoints.load_pair("calibrated")
    probs = task.problems("validation", 64)
    ids, pm, gold = data.dllm_batch(pair.dtok, probs, checkpoints.GEN_LENGTH)
    draft = gold.clone()
    wrong = torch.rand(draft.shape, generator=torch.Generator().manual_seed(0)) < 0.2
    draft[wrong] = gold.reshape(-1)[torch.randperm(gold.numel(), generator=torch.Generator().manual_seed(1))[
        : int(wrong.sum())]]
    wrong &= draft != gold
    p = visible_token_probs(pair.dllm, ids, pm, draft)
    assert float((p[~wrong] < 0.5).float().mean()) < 0.02  # correct tokens survive a remask threshold of 0.5
    assert float((p[wrong] < 0.5).float().mean()) > 0.6  # most wrong ones are remasked


def test_demo_reports_missing_assets(monkeypatch, capsys):
    from warmkern.testbed import eval_cli

    monkeypatch.setattr(checkpoints, "assets_missing", lambda dllms: ["/nowhere/model.safetensors"])
    assert eval_cli.main(["demo"]) == 1
    assert "missing" in capsys.readouterr().err


@pytest.mark.skipif(bool(checkpoints.assets_missing(tuple(checkpoints.DLLM_DIRS))), reason="testbed assets missing")
def test_demo_runs_both_dllms_and_block_lengths_with_costs(tmp_path, capsys):
    from warmkern.testbed import eval_cli

    torch.manual_seed(0)
    out_json = tmp_path / "demo.json"
    assert eval_cli.main(["demo", "--n", "4", "--batch", "3", "--alone-n", "1", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    for title in ("calibrated dLLM (phase 2, shipped), block_length 32", "uncalibrated dLLM (phase 1), block_length 8",
                  "drafter alone"):
        assert title in out
    rows = json.loads(out_json.read_text())["rows"]
    settings = {(r["dllm"], r["block_length"]) for r in rows}
    assert settings == {(None, None), *((d, b) for d in ("calibrated", "uncalibrated") for b in (32, 8))}
    for r in rows:
        assert r["n"] == 4 and r["alone_n"] == 1 and r["s_per_sample"] > 0 and r["s_per_sample_alone"] > 0
        cold = r["method"].startswith("cold")
        assert (r["drafter_forwards"] is None) == cold  # warm rows pay for the draft; cold rows do not
        assert (r["mean_nfe"] is None) == (r["dllm"] is None)
    names = {r["method"] for r in rows}
    assert {"drafter alone", "cold top-k", "cold threshold", "token injection + remasking"} <= names
    topk = [r for r in rows if r["method"] == "cold top-k"]
    assert all(r["mean_nfe"] == 32 for r in topk)


def test_table_rows_from_hparams_keep_their_names_and_budgets():
    from warmkern.testbed import methods, tune

    tr = [m for k, m in tune._grid() if k == "token_remask"]
    assert {m.remask_budget for m in tr} == {"extend", "fixed"}
    hp = dict(methods.DEFAULT_HPARAMS)
    hp["token_remask_alt"] = {**hp["token_remask"], "remask_budget": "fixed"}
    rows = {m.name: m for m in methods.methods_from_hparams(hp)}
    assert rows["token injection + remasking"].remask_budget == "extend"
    assert rows["token injection + remasking, fixed budget"].remask_budget == "fixed"
    assert "fixed" in rows["token injection + remasking, fixed budget"].describe()
    hp["token_remask"], hp["token_remask_alt"] = hp["token_remask_alt"], hp["token_remask"]  # fixed won: extend row
    rows = {m.name: m for m in methods.methods_from_hparams(hp)}
    assert rows["token injection + remasking"].remask_budget == "fixed"
    assert rows["token injection + remasking, extend budget"].remask_budget == "extend"
    assert [m.key for m in methods.methods_from_hparams(hp, ("cold_tau", "cold_topk"))] == ["cold_topk", "cold_tau"]


def test_prior_rows_come_from_their_hparams_entries():
    """The draft-prior rows are ready for `WarmStart(mode="prior", beta=...)`: their names say "prior" and
    their WarmStart arguments carry beta (and the τ of the entry)."""
    from warmkern.testbed import methods

    hp = dict(methods.DEFAULT_HPARAMS)
    assert not {"draft prior threshold", "draft prior top-k"} & {m.name for m in methods.methods_from_hparams(hp)}
    hp["prior_tau"] = {"threshold": 0.7, "beta": 1.0, "rate": 1.0, "remask_threshold": None}
    hp["prior_topk"] = {"threshold": None, "beta": 2.0}
    rows = {m.name: m for m in methods.methods_from_hparams(hp)}
    tau, topk = rows["draft prior threshold"], rows["draft prior top-k"]
    assert tau.warm_start_kwargs() == {"mode": "prior", "rate": 1.0, "beta": 1.0} and tau.threshold == 0.7
    assert topk.warm_start_kwargs()["beta"] == 2.0 and topk.threshold is None
    assert tau.describe() == "τ=0.7, β=1.0" and "prior" in tau.name


def test_tune_rules_pick_fewest_nfe_within_a_point_or_most_accurate_within_cold_tau_nfe():
    from warmkern.testbed import tune
    from warmkern.testbed.methods import Method

    def c(acc, nfe):
        return Method("x", "warm"), {"accuracy": acc, "mean_nfe": nfe}

    cands = [c(0.90, 8.0), c(0.905, 13.0), c(0.80, 2.0)]
    assert tune._pick(cands, 0.895)[1]["mean_nfe"] == 8.0
    assert tune._pick(cands, 0.95)[1]["accuracy"] == 0.905  # none within a point: the most accurate
    prior = [c(0.75, 2.0), c(0.77, 2.3), c(0.74, 1.9)]
    assert tune._pick_within_nfe(prior, 2.1)[1]["accuracy"] == 0.75
    assert tune._pick_within_nfe(prior, 1.0)[1]["accuracy"] == 0.77  # none that cheap: the most accurate


@pytest.mark.skipif(bool(checkpoints.assets_missing()), reason="testbed assets missing")
def test_kv_cached_drafter_matches_hf_generate_and_counts_its_forwards():
    """The testbed's drafter (KV cache, rows leave the batch at EOS) writes exactly what `model.generate` writes,
    and a row's forwards are its tokens up to and including EOS (one prefill + one per further token)."""
    from warmkern.testbed import drafting, quickdecode

    torch.set_num_threads(1)
    pair = checkpoints.load_pair("calibrated")
    probs = task.problems("validation", 12)
    prompts = [p.prompt + data.DRAFT_SEP for p in probs]
    ids, forwards = drafting.greedy_generate(pair.drafter, pair.atok, prompts, drafting.MAX_NEW_TOKENS)
    assert pair.atok.batch_decode(ids) == quickdecode.drafter_greedy(pair.drafter, pair.atok, prompts, 64)
    assert forwards == [len(r) + 1 for r in ids] and len(set(forwards)) > 1  # every row ended with EOS
    capped, fw = drafting.greedy_generate(pair.drafter, pair.atok, prompts[:2], 5)
    assert fw == [5, 5] and [len(r) for r in capped] == [5, 5] and capped == [r[:5] for r in ids[:2]]
    alone = drafting.draft_problems(pair, probs[:3], 1)
    batched = drafting.draft_problems(pair, probs[:3], 3)
    assert torch.equal(torch.cat(alone.batches), batched.batches[0]) and alone.forwards == batched.forwards
    assert len(alone.batch_seconds) == 3 and alone.seconds == pytest.approx(sum(alone.batch_seconds))


@pytest.mark.skipif(bool(checkpoints.assets_missing(tuple(checkpoints.DLLM_DIRS))), reason="testbed assets missing")
def test_uncalibrated_dllm_ships_small_and_cannot_judge_visible_tokens():
    """The phase-1 dLLM is the stand-in for an off-the-shelf model: shipped (<= 4 MB), loadable beside the
    calibrated one, and trained like LLaDA (masked positions only), so p(token) of a *correct* visible token
    is mostly low - what makes remasking fail on it."""
    from warmkern.testbed.calibration import visible_token_probs

    weights = checkpoints.DLLM_DIRS["uncalibrated"] / "model.safetensors"
    assert weights.stat().st_size <= 4 * 2**20
    torch.set_num_threads(1)
    cal, unc = checkpoints.load_pair("calibrated"), checkpoints.load_pair("uncalibrated")
    assert (unc.dllm_name, cal.dllm_name) == ("uncalibrated", "calibrated")
    assert cal.dtok.get_vocab() == unc.dtok.get_vocab()  # one tokenizer: the drafts serve both
    probs = task.problems("validation", 32)
    ids, pm, gold = data.dllm_batch(unc.dtok, probs, checkpoints.GEN_LENGTH)
    p_unc = visible_token_probs(unc.dllm, ids, pm, gold)
    p_cal = visible_token_probs(cal.dllm, ids, pm, gold)
    assert float((p_unc < 0.5).float().mean()) > 0.5 and float((p_cal < 0.5).float().mean()) < 0.02
