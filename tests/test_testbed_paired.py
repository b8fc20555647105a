"""Paired statistics of the testbed table (`warmkern/testbed/paired.py`) and `warmkern eval --merge`."""

from __future__ import annotations

import json
import math

import pytest

from warmkern import cli
from warmkern.testbed import eval_cli, paired
from warmkern.testbed.methods import RowResult
from warmkern.testbed.report import rows_to_json


def _pair(a: int, b: int, c: int, d: int) -> tuple[str, str]:
    """Bit strings of a row and its baseline with a both-right, b row-only, c baseline-only, d both-wrong."""
    return "1" * (a + b) + "0" * (c + d), "1" * a + "0" * b + "1" * c + "0" * d


def test_newcombe_interval_agrees_with_wald_when_it_should_and_is_antisymmetric():
    row, base = _pair(700, 60, 30, 210)  # many discordant pairs: Wald is accurate here
    diff, lo, hi = paired.newcombe(row, base)
    se = math.sqrt((60 + 30) - (60 - 30) ** 2 / 1000) / 1000
    assert diff == pytest.approx(0.03)
    assert lo == pytest.approx(diff - 1.96 * se, abs=2e-3) and hi == pytest.approx(diff + 1.96 * se, abs=2e-3)
    rdiff, rlo, rhi = paired.newcombe(base, row)
    assert (rdiff, rlo, rhi) == pytest.approx((-diff, -hi, -lo))
    assert paired.counts(row, base) == (700, 60, 30, 210)


def test_newcombe_interval_stays_in_range_and_covers_zero_without_discordance():
    same = "1" * 90 + "0" * 10
    diff, lo, hi = paired.newcombe(same, same)
    assert diff == 0 and lo < 0 < hi
    diff, lo, hi = paired.newcombe(*_pair(0, 20, 0, 0))  # the row always right, the baseline never
    assert diff == 1 and 0 < lo <= hi == 1
    with pytest.raises(ValueError, match="counts"):
        paired.newcombe("101", "10")


def _table_rows() -> list[dict]:
    drafter = {"method": "drafter alone", "key": "drafter", "dllm": None, "block_length": None, "correct": "1100"}

    def row(key, bits, nfe):
        return {"method": key, "key": key, "params": "p", "dllm": "uncalibrated", "block_length": 32,
                "accuracy": bits.count("1") / 4, "mean_nfe": nfe, "correct": bits}

    return [drafter, row("cold_tau", "1010", 2.0), row("prior_tau", "1110", 1.9)]


def test_paired_table_and_the_draft_split_read_the_bits():
    table = {"rows": _table_rows()}
    text = paired.paired_table(table)
    assert "| uncalibrated, 32 | prior_tau | p | 75.0% | +25.0 [" in text and "| 1 / 0 | 1.90 (2.00) |" in text
    split = paired.by_draft(table)
    assert "drafter right on 2 of 4" in split
    assert "| uncalibrated, 32 | prior_tau | 100.0% | 50.0% |" in split
    assert "| uncalibrated, 32 | cold_tau | 50.0% | 50.0% |" in split


def _old_table() -> dict:
    """A table as written before rows carried their key and bits (rows matched by name through hparams)."""
    res = [RowResult("drafter alone", "g", correct=[True, False])]
    for blk in (32, 8):
        res += [RowResult("cold top-k", "top-k", dllm="calibrated", block_length=blk, correct=[True, True],
                          nfe=[32, 32]),
                RowResult("cold threshold", "τ=0.7", dllm="calibrated", block_length=blk, correct=[True, False],
                          nfe=[2, 2])]
    rows = [{k: v for k, v in r.items() if k not in ("key", "correct", "backend")} | {"tag": "old"}
            for r in rows_to_json(res)]
    return {"split": "test", "n": 2, "seed": 0, "batch": 100, "gen_length": 32, "alone_n": 2, "block_lengths": [32, 8],
            "hparams": {"calibrated": {"tau": 0.7}}, "hparams_tuned": {"calibrated": True}, "rows": rows}


def test_eval_merge_replaces_the_rows_it_measured_and_keeps_the_others(monkeypatch, tmp_path):
    new = [RowResult("drafter alone", "g", key="drafter", correct=[True, False]),
           RowResult("cold threshold", "τ=0.7", dllm="calibrated", block_length=32, key="cold_tau",
                     correct=[True, True], nfe=[1, 3], backend="reference"),
           RowResult("draft prior threshold", "τ=0.7, β=1.0", dllm="calibrated", block_length=32, key="prior_tau",
                     correct=[True, False], nfe=[1, 1], backend="reference")]
    monkeypatch.setattr(eval_cli, "evaluate", lambda *a, **k: new)
    out = tmp_path / "t.json"
    out.write_text(json.dumps(_old_table()))
    rc = eval_cli.main(["eval", "--n", "2", "--dllm", "calibrated", "--block-lengths", "32", "--methods",
                        "cold_tau,prior_tau", "--json", str(out), "--merge"])
    assert rc == 0
    t = json.loads(out.read_text())
    got = [(r["dllm"], r["block_length"], r["key"], r.get("tag")) for r in t["rows"]]
    assert got == [(None, None, "drafter", None), ("calibrated", 32, "cold_topk", "old"),
                   ("calibrated", 32, "cold_tau", None), ("calibrated", 32, "prior_tau", None),
                   ("calibrated", 8, "cold_topk", "old"), ("calibrated", 8, "cold_tau", "old")]
    prior = t["rows"][3]
    assert prior["correct"] == "10" and prior["backend"] == "reference"
    assert prior["nfe_change"] == pytest.approx(1 / 32 - 1)  # against the kept cold top-k row
    assert t["block_lengths"] == [32, 8] and len(t["runs"]) == 2 and t["runs"][1]["backends"] == ["reference"]


@pytest.mark.parametrize("args,why", [(["--n", "3"], "n 2 there, 3 here"), (["--split", "validation"], "split")])
def test_eval_merge_refuses_a_table_of_other_problems_before_computing(monkeypatch, capsys, tmp_path, args, why):
    def boom(*a, **k):
        raise AssertionError("computed before the flags were checked")

    monkeypatch.setattr(eval_cli, "evaluate", boom)
    out = tmp_path / "t.json"
    out.write_text(json.dumps(_old_table()))
    assert cli.main(["eval", "--n", "2", *args, "--json", str(out), "--merge"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("warmkern eval: error: --merge: ") and why in err
    assert cli.main(["eval", "--n", "2", "--merge"]) == 2
    assert "--merge: needs --json" in capsys.readouterr().err


def _target_table(prior_bits: str, prior_nfe: float) -> dict:
    rows = _table_rows()
    rows[2] = dict(rows[2], correct=prior_bits, accuracy=prior_bits.count("1") / 4, mean_nfe=prior_nfe)
    return {"rows": rows}


def test_targets_need_the_margin_and_no_more_nfe_than_cold_tau():
    met = paired.targets(_target_table("1110", 1.9))  # +25 points at fewer NFE: the bar is +2
    assert "| uncalibrated, 32 | 75.0% at 1.90 NFE | 50.0% at 2.00 NFE | +25.0 [" in met
    assert "| ≥ +2 at ≤ NFE | met: +23.0 points vs the bar, NFE -0.10, CI includes 0 |" in met
    dearer = paired.targets(_target_table("1110", 2.5))  # the same gain at more NFE than cold τ: missed
    assert "missed: +23.0 points vs the bar, NFE +0.50 (above)" in dearer
    short = paired.targets(_target_table("1010", 1.0), need={"uncalibrated": 0.02})  # equal to cold τ
    assert "missed: accuracy 2.0 points short, NFE -1.00" in short
    assert paired.targets(_target_table("1110", 1.9), need={"calibrated": 0.01}).count("\n") == 1  # header only


def test_paired_main_prints_each_baseline_the_targets_and_the_draft_split(tmp_path, capsys):
    topk = {"method": "cold_topk", "key": "cold_topk", "params": "p", "dllm": "uncalibrated", "block_length": 32,
            "accuracy": 0.25, "mean_nfe": 32.0, "correct": "0010"}
    rows = [*_table_rows(), topk]
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"rows": rows}))
    assert paired.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "vs cold_tau: Δ points" in out and "vs cold_topk: Δ points" in out
    assert "| uncalibrated, 32 | prior_tau | p | 75.0% | +50.0 [" in out  # against cold top-k (25%)
    assert "issue 14 targets" in out and "met: +23.0 points vs the bar" in out and "drafter right on 2 of 4" in out
