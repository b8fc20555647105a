"""`warmkern generate` on a tiny model saved to disk (the from_pretrained path a user's checkpoint takes)."""

from __future__ import annotations

import json

from warmkern import cli, tiny


def test_generate_cli_cold_and_warm(tmp_path, capsys):
    model, tok = tiny.dllm()
    model.save_pretrained(tmp_path / "dllm")
    tok.save_pretrained(tmp_path / "dllm")
    aux, aux_tok = tiny.drafter()
    aux.save_pretrained(tmp_path / "draft")
    aux_tok.save_pretrained(tmp_path / "draft")
    base = ["generate", "--model", str(tmp_path / "dllm"), "--prompt", "tom has 3 apples", "--prompt", "how many",
            "--gen-length", "8", "--block-length", "4", "--steps", "4", "--stats"]
    assert cli.main(base) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 3
    stats = json.loads(out[-1])
    assert stats["nfe"] == 4 and stats["injected"] == 0 and stats["batch_size"] == 2
    assert cli.main([*base, "--draft-model", str(tmp_path / "draft"), "--remask-threshold", "0.3",
                     "--fill-tail-eos"]) == 0
    captured = capsys.readouterr()
    warm = json.loads(captured.out.strip().splitlines()[-1])
    assert warm["injected"] > 0 and warm["injected"] == warm["survived"] + warm["remasked"]
    assert captured.err.count("[draft]") == 2
    assert cli.main([*base, "--draft-model", str(tmp_path / "draft"), "--remask-threshold", "1.0",
                     "--remask-budget", "fixed"]) == 0
    fixed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert fixed["steps_per_block"] == [2, 2] and fixed["remasked"] == fixed["injected"] > 0
