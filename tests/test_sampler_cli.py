"""`warmkern generate` on a tiny model saved to disk (the from_pretrained path a user's checkpoint takes)."""

from __future__ import annotations

import json
import time

import pytest

from warmkern import cli, tiny


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The tiny dLLM and drafter saved as a user's local checkpoints."""
    root = tmp_path_factory.mktemp("models")
    model, tok = tiny.dllm()
    model.save_pretrained(root / "dllm")
    tok.save_pretrained(root / "dllm")
    aux, aux_tok = tiny.drafter()
    aux.save_pretrained(root / "draft")
    aux_tok.save_pretrained(root / "draft")
    return root


def test_generate_cli_cold_and_warm(saved, capsys):
    tmp_path = saved
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


def _one_line_error(capsys, rc: int, flag: str, loaded: bool = False) -> str:
    """The error is one line naming the flag, no traceback; `loaded`: transformers' loading bar may come first."""
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and "Traceback" not in err, err
    line = err.rstrip("\n").split("\n")[-1] if loaded else err
    assert line.count("\n") <= 1 and line.startswith("warmkern generate: error: ") and flag in line, err
    return line


def test_generate_missing_model_fails_at_once_without_the_hub(capsys, tmp_path):
    """No Hub look-up (it retried for ~51 s) and no traceback: a path that is not a local model is a flag error."""
    (tmp_path / "empty").mkdir()
    for path in ("no_such_dir", "/nonexistent", str(tmp_path / "empty")):
        t0 = time.perf_counter()
        err = _one_line_error(capsys, cli.main(["generate", "--model", path, "--prompt", "hi"]), "--model")
        assert time.perf_counter() - t0 < 5 and path in err


def test_generate_loads_local_files_only(saved, monkeypatch, capsys):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    seen = []
    for cls in (AutoTokenizer, AutoModelForMaskedLM):
        orig = cls.from_pretrained.__func__

        def spy(klass, path, *a, _orig=orig, **kw):
            seen.append(kw.get("local_files_only"))
            return _orig(klass, path, *a, **kw)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    assert cli.main(["generate", "--model", str(saved / "dllm"), "--prompt", "hi", "--gen-length", "4"]) == 0
    assert seen and all(seen)


@pytest.mark.parametrize("args,flag", [
    (["--gen-length", "0"], "--gen-length"), (["--steps", "0"], "--steps"), (["--block-length", "3"], "--block-length"),
    (["--seed", "-1"], "--seed"), (["--remask-threshold", "0.5"], "--remask-threshold"), (["--rate", "0"], "--rate"),
    (["--fill-tail-eos"], "--fill-tail-eos"), (["--warm-mode", "embedding"], "--warm-mode"),
    (["--draft-model", "no_such_draft"], "--draft-model"), (["--temperature", "-1"], "--temperature"),
])
def test_generate_bad_flags_are_one_line_errors_naming_the_flag(saved, capsys, args, flag):
    """Warm-start flags without --draft-model are errors (they used to be ignored); sampler argument errors
    name the flag, not the Python argument."""
    base = ["generate", "--model", str(saved / "dllm"), "--prompt", "tom has 3 apples", "--gen-length", "8"]
    _one_line_error(capsys, cli.main([*base, *args]), flag)


def test_generate_sampler_errors_name_the_flag(saved, capsys):
    base = ["generate", "--model", str(saved / "dllm"), "--prompt", "tom has 3 apples", "--gen-length", "8"]
    err = _one_line_error(capsys, cli.main([*base, "--steps", "3", "--block-length", "4"]), "--steps", loaded=True)
    assert "steps:" not in err.replace("--steps:", "")
    err = _one_line_error(capsys, cli.main([*base, "--draft-model", str(saved / "draft"), "--rate", "1.5"]), "--rate",
                          loaded=True)
    assert "warm_start" not in err


def test_generate_warm_flags_with_a_draft_model_are_used(saved, capsys):
    base = ["generate", "--model", str(saved / "dllm"), "--prompt", "tom has 3 apples", "--gen-length", "8",
            "--draft-model", str(saved / "draft"), "--stats"]
    assert cli.main([*base, "--rate", "0"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["injected"] == 0
    assert cli.main(base) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["injected"] > 0
