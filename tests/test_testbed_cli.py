"""`warmkern eval` / `demo` as a careless user types them: bad flags fail at once, in one line, exit 2, and no
result is ever computed only to be lost (output paths are checked first; the JSON is written before the plot)."""

from __future__ import annotations

import json

import pytest

from warmkern import cli
from warmkern.testbed import eval_cli, methods
from warmkern.testbed.methods import RowResult


def _no_compute(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the table was computed before the flags were checked")

    monkeypatch.setattr(eval_cli, "evaluate", boom)


def _one_line_error(capsys, rc: int, flag: str, cmd: str = "eval") -> str:
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith(f"warmkern {cmd}: error: ") and flag in err, err
    return err


@pytest.mark.parametrize("args,flag", [
    (["--n", "0"], "--n"), (["--n", "-3"], "--n"), (["--n", "abc"], "--n"), (["--batch", "0"], "--batch"),
    (["--alone-n", "-1"], "--alone-n"), (["--threads", "0"], "--threads"),
    (["--block-lengths", "5"], "--block-lengths"),
    (["--methods", "cold_topk,nope"], "--methods"), (["--hparams", "/no/such/hparams.json"], "--hparams"),
    (["--hparams-out", "x.json"], "--hparams-out"), (["--dllm", "bert"], "--dllm"), (["--seed", str(2**31)], "--seed"),
])
def test_eval_rejects_bad_flags_in_one_line_before_computing(monkeypatch, capsys, args, flag):
    _no_compute(monkeypatch)
    _one_line_error(capsys, cli.main(["eval", *args]), flag)


def test_eval_checks_output_paths_before_computing(monkeypatch, capsys, tmp_path):
    _no_compute(monkeypatch)
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    for flag, path in (("--json", a_file / "rows.json"), ("--plot", a_file / "plot.png"), ("--json", tmp_path)):
        _one_line_error(capsys, cli.main(["eval", "--n", "3", flag, str(path)]), flag)


def _fake_rows() -> list[RowResult]:
    return [RowResult("cold top-k", "top-k", dllm="calibrated", block_length=8, correct=[True, False], nfe=[32, 32],
                      wall_s=1.0, latency_s=[0.1])]


def test_eval_writes_the_json_before_the_plot(monkeypatch, tmp_path):
    monkeypatch.setattr(eval_cli, "evaluate", lambda *a, **k: _fake_rows())

    def failing_plot(*a, **k):
        raise OSError("plotting failed")

    monkeypatch.setattr(eval_cli, "plot", failing_plot)
    out = tmp_path / "rows.json"
    with pytest.raises(OSError, match="plotting failed"):
        eval_cli.main(["eval", "--n", "2", "--json", str(out), "--plot", str(tmp_path / "p.png")])
    rows = json.loads(out.read_text())["rows"]
    assert rows[0]["dllm"] == "calibrated" and rows[0]["block_length"] == 8 and rows[0]["accuracy"] == 0.5


def test_tune_never_overwrites_the_packaged_hparams_implicitly(monkeypatch, capsys):
    _no_compute(monkeypatch)
    before = methods.HPARAMS_PATH.read_bytes()
    err = _one_line_error(capsys, cli.main(["eval", "--split", "validation", "--tune"]), "--hparams-out")
    assert "--tune" in err and methods.HPARAMS_PATH.read_bytes() == before


def test_tune_errors_name_the_command_used(capsys):
    err = _one_line_error(capsys, cli.main(["demo", "--tune"]), "--split validation", cmd="demo")
    assert "eval" not in err
    _one_line_error(capsys, cli.main(["eval", "--split", "validation", "--tune", "--hparams-out", "x.json",
                                      "--plot", "p.png"]), "--plot")


def test_tune_writes_its_dllm_entry_and_keeps_the_others(monkeypatch, tmp_path):
    from warmkern.testbed import tune

    seen = {}

    def fake_tune(dllm, probs, batch, seed, keys, previous):
        seen.update(dllm=dllm, n=len(probs), keys=keys, previous=previous)
        return {"tau": 0.8}, {"n": len(probs), "rows": {"prior_tau": "new grid"}}

    monkeypatch.setattr(tune, "tune", fake_tune)
    out, log = tmp_path / "hp.json", tmp_path / "log.json"
    out.write_text(json.dumps({"calibrated": {"tau": 0.7}}))
    log.write_text(json.dumps({"uncalibrated": {"n": 300, "rows": {"token_remask": "old grid"}}}))
    rc = eval_cli.main(["eval", "--split", "validation", "--tune", "--dllm", "uncalibrated", "--n", "5",
                        "--methods", "token_remask,prior_tau", "--hparams-out", str(out), "--json", str(log)])
    assert rc == 0
    assert json.loads(out.read_text()) == {"calibrated": {"tau": 0.7}, "uncalibrated": {"tau": 0.8}}
    # the grids of rows not re-tuned stay in the log
    assert json.loads(log.read_text()) == {"uncalibrated": {"n": 5, "rows": {"token_remask": "old grid",
                                                                           "prior_tau": "new grid"}}}
    assert seen["dllm"] == "uncalibrated" and seen["n"] == 5 and seen["keys"] == ("token_remask", "prior_tau")


def test_tune_grid_has_prior_points_once_warmstart_has_the_prior(monkeypatch):
    from warmkern import warmstart
    from warmkern.testbed import tune

    keys = ("prior_tau", "prior_topk")
    monkeypatch.setattr(warmstart, "MODES", ("token", "embedding"))
    assert tune._grid(keys) == []
    monkeypatch.setattr(warmstart, "MODES", ("token", "embedding", "prior"))
    grid = tune._grid(keys)
    taus = {(m.beta, m.threshold) for k, m in grid if k == "prior_tau"}
    assert taus == {(b, t) for b in tune.BETAS for t in tune.TAUS}
    assert {m.beta for k, m in grid if k == "prior_topk"} == set(tune.BETAS)
    assert all(m.mode == "prior" and m.kind == "warm" for _, m in grid)
