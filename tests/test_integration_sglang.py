"""The sglang plugin (warmkern.integrations.sglang).

Without sglang: against stand-ins of sglang 0.5.23's interface (tests/sglang_standins.py). With sglang
importable (its own venv, see scripts/sglang_check.sh): against the real LowConfidence, ForwardBatch,
DllmConfig and plugin loader; those tests skip cleanly otherwise.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.util
import subprocess
import sys

import pytest
import sglang_standins as S
import torch

from warmkern.integrations import sglang as wk
from warmkern.integrations.sglang import requests as R

MASK = 5
N = 8
V = 40
HAS_SGLANG = importlib.util.find_spec("sglang") is not None


def make_algo(cfg: dict | None = None, block: int = N, mask: int = MASK, fdfo: bool = False):
    cls = wk.algorithm_class(S.DllmAlgorithm)
    cfg = {"backend": "reference", **(cfg or {})}
    return cls(S.DllmConfig("Warmkern", cfg, block, mask, fdfo))


def requests(n: int, prompt_len: int = 3, **sp) -> list[S.Req]:
    return [S.Req(f"rid-{i}", list(range(10, 10 + prompt_len)), S.SamplingParams(**sp)) for i in range(n)]


def seen(algo, reqs):
    for r in reqs:
        assert algo.validate_request(r) is None
    return reqs


# ----------------------------------------------------------------------------- config
def test_config_defaults_are_low_confidence():
    c = wk.WarmkernConfig.from_mapping(None)
    assert (c.rule, c.threshold, c.temperature, c.score) == ("threshold", 0.95, 0.0, "prob")


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"rul": "topk"}, "unknown key"),
        ({"rule": "top"}, "rule"),
        ({"k": 0}, "k"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": 1e-45}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"suppress_ids": [1, -2]}, "suppress_ids[1]"),
        ({"inject_draft": "yes"}, "inject_draft"),
        ({"alg_temp": 0.5}, "alg_temp"),
        ({"remask_threshold": 0.3}, "remask_threshold"),
        ({"score_temperature": "sampling"}, "score_temperature"),
        ({"threshold": float("nan")}, "threshold"),
    ],
)
def test_config_errors_name_the_key(raw, key):
    with pytest.raises(ValueError, match=r"dllm-algorithm-config: .*" + key.replace("[", r"\[").replace("]", r"\]")):
        wk.WarmkernConfig.from_mapping(raw)


def test_config_accepts_sglang_keys():
    c = wk.WarmkernConfig.from_mapping({"block_size": 32, "capture_input_preparation": False, "rule": "topk", "k": 2})
    assert (c.rule, c.k) == ("topk", 2)


# ----------------------------------------------------------------------------- equivalence (stand-in rule)
def test_strict_threshold_is_the_next_fp32():
    t = wk.strict_threshold(0.5)
    assert t > 0.5 and torch.tensor(t, dtype=torch.float32).item() == t
    assert torch.nextafter(torch.tensor(0.5), torch.tensor(0.0)).item() < 0.5 < t


def _compare_steps(algo, reqs, model, threshold, literal_mask=False, max_steps=N + 1):
    fb_a = S.block_batch(reqs, N, MASK, literal_mask)
    fb_b = S.block_batch(reqs, N, MASK, literal_mask)
    states = algo.init_step_state(fb_b)
    algo.prepare_inputs(model, fb_b, states)
    for _ in range(max_steps):
        logits = model.forward(fb_a)
        ids_a = fb_a.input_ids.view(len(reqs), N)
        done_a = S.low_confidence_step(ids_a, logits.view(len(reqs), N, V), MASK, threshold, fb_a.dllm_prompt_mask)
        done_b = algo.step(fb_b, logits, states)
        assert done_a == done_b
        assert torch.equal(fb_a.input_ids, fb_b.input_ids)
        if all(done_a):
            return
    raise AssertionError("did not finish")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("threshold", [0.95, 0.5, 0.1])
def test_matches_low_confidence_rule_step_by_step(seed, threshold):
    algo = make_algo({"threshold": threshold})
    reqs = seen(algo, requests(3, prompt_len=2 + seed % 3))
    _compare_steps(algo, reqs, S.TinyModel(V, N, MASK, seed=seed, scale=1.0 + seed), threshold)


def test_matches_low_confidence_with_literal_masks_in_the_prompt():
    algo = make_algo({"threshold": 0.9})
    reqs = seen(algo, requests(2, prompt_len=4))
    reqs[0].origin_input_ids[2] = MASK  # a literal [MASK] in the prompt stays (sglang's dllm_prompt_mask)
    _compare_steps(algo, reqs, S.TinyModel(V, N, MASK, seed=3), 0.9, literal_mask=True)


def test_threshold_equality_is_not_a_commit():
    """p = 0.5 exactly at threshold 0.5: LowConfidence's rule is strict; only the fallback position commits."""
    algo = make_algo({"threshold": 0.5})
    reqs = seen(algo, requests(1, prompt_len=0))
    fb = S.block_batch(reqs, N, MASK)
    logits = torch.full((N, V), -1e4)
    logits[:, 1] = logits[:, 2] = 0.0  # p = 0.5, 0.5 at every position
    logits[3, 7] = 5.0  # position 3 is confident
    states = algo.init_step_state(fb)
    algo.step(fb, logits, states)
    ids = fb.input_ids.clone()
    ref = torch.full((1, N), MASK)
    S.low_confidence_step(ref, logits.view(1, N, V), MASK, 0.5)
    assert torch.equal(ids, ref.view(-1)) and (ids != MASK).sum() == 1


def test_mask_argmax_is_the_documented_difference():
    """Where the mask token is a position's argmax LowConfidence writes [MASK] back; warmkern never proposes it."""
    algo = make_algo({"threshold": 0.9})
    reqs = seen(algo, requests(1, prompt_len=0))
    fb = S.block_batch(reqs, N, MASK)
    logits = torch.zeros(N, V)
    logits[:, MASK] = 10.0
    logits[:, 3] = 5.0
    ref = torch.full((1, N), MASK)
    S.low_confidence_step(ref, logits.view(1, N, V), MASK, 0.9)
    algo.step(fb, logits, algo.init_step_state(fb))
    assert (ref == MASK).all()  # LowConfidence: no progress this step
    assert fb.input_ids[0].item() == 3 and (fb.input_ids[1:] == MASK).all()


def test_run_loop_matches_and_counts_forwards():
    model_a, model_b = S.TinyModel(V, N, MASK, seed=9), S.TinyModel(V, N, MASK, seed=9)
    lc = make_algo({"threshold": 0.7})
    reqs = seen(lc, requests(3))
    out_b, nfe_b = lc.run_sync(model_b, S.block_batch(reqs, N, MASK))

    class LowConf(S.DllmAlgorithm):
        def step(self, fb, logits, states):
            ids = fb.input_ids.view(fb.batch_size, self.block_size)
            return S.low_confidence_step(ids, logits.view(fb.batch_size, self.block_size, -1), MASK, 0.7)

    out_a, nfe_a = LowConf(S.DllmConfig("LowConfidence", {}, N, MASK)).run_sync(model_a, S.block_batch(reqs, N, MASK))
    assert nfe_a == nfe_b and all(torch.equal(a, b) for a, b in zip(out_a, out_b))
    assert all((o != MASK).all() for o in out_b)


# ----------------------------------------------------------------------------- seeds
def test_request_seed_from_sampling_seed_or_rid():
    assert R.request_seed(7, "a", 0) == 7
    assert R.request_seed(-1, "a", 0) == (1 << 63) - 1  # taken mod 2^63
    want = int.from_bytes(hashlib.blake2b(b"3:rid-x", digest_size=8).digest(), "little") & ((1 << 63) - 1)
    assert R.request_seed(None, "rid-x", 3) == want
    assert R.request_seed(None, "rid-x", 4) != want


def test_step_seed_differs_by_block_and_step():
    keys = {R.step_seed(11, off, st) for off in (0, 8, 16) for st in range(4)}
    assert len(keys) == 12 and all(0 <= k < (1 << 63) for k in keys)


def _sample_run(algo, reqs, model_seed=1):
    out, _ = algo.run_sync(S.TinyModel(V, N, MASK, seed=model_seed, scale=0.5), S.block_batch(reqs, N, MASK))
    return out


SAMPLING = {"rule": "topk", "k": 2, "temperature": 1.0}


def test_sampling_is_per_request_and_batch_independent():
    """A request decodes the same alone as in any batch, and the same on every rank (a fresh process state)."""
    algo = make_algo(SAMPLING)
    reqs = seen(algo, requests(3, sampling_seed=None))
    batch = _sample_run(algo, reqs)
    for i, r in enumerate(reqs):
        rank2 = make_algo(SAMPLING)  # another TP rank: own instance, own copy of the request
        copy = seen(rank2, [S.Req(r.rid, list(r.origin_input_ids), S.SamplingParams())])
        assert torch.equal(_sample_run(rank2, copy)[0], batch[i])


def test_sampling_seed_controls_the_sample():
    algo = make_algo(SAMPLING)
    a = seen(algo, [S.Req("x", [10, 11, 12], S.SamplingParams(sampling_seed=5))])
    b = seen(algo, [S.Req("y", [10, 11, 12], S.SamplingParams(sampling_seed=5))])
    c = seen(algo, [S.Req("z", [10, 11, 12], S.SamplingParams(sampling_seed=6))])
    assert torch.equal(_sample_run(algo, a)[0], _sample_run(algo, b)[0])  # same seed, other rid: same sample
    outs = [_sample_run(algo, [S.Req(f"q{s}", [10, 11, 12], S.SamplingParams(sampling_seed=s))])[0] for s in range(6)]
    assert len({tuple(o.tolist()) for o in [*outs, _sample_run(algo, c)[0]]}) > 1


def _run_fdfo_queue(algo, reqs, model, width=2):
    """FDFO as sglang runs it: at most `width` rows at once; a done row leaves, a waiting one joins."""
    queue, running, results = list(range(len(reqs))), [], {}
    tokens = {i: S.block_batch([r], N, MASK).input_ids for i, r in enumerate(reqs)}
    for _ in range(100):
        while queue and len(running) < width:
            running.append((queue.pop(0), None))
        if not running:
            return results
        rows = [i for i, _ in running]
        fb = S.block_batch([reqs[i] for i in rows], N, MASK)
        fb.input_ids = torch.cat([tokens[i] for i in rows])
        done, carried = algo.run_fdfo(model, fb, [st for _, st in running])
        for j, i in enumerate(rows):
            tokens[i] = fb.input_ids.view(-1, N)[j].clone()
            if done[j]:
                results[i] = tokens[i][len(reqs[i].origin_input_ids):]
        running = [(i, st) for i, st, d in zip(rows, carried, done) if not d]
    raise AssertionError("FDFO loop did not finish")


def test_fdfo_carried_states_match_sync():
    """First-done-first-out: rows join a running batch with fresh states; each row decodes as in sync mode."""
    algo = make_algo({**SAMPLING, "k": 1})
    reqs = seen(algo, [S.Req(f"f{i}", list(range(10, 10 + p))) for i, p in enumerate((1, 5, 2))])
    sync = _sample_run(algo, reqs)  # row 1 finishes first, row 2 then joins row 0 mid-block
    results = _run_fdfo_queue(algo, reqs, S.TinyModel(V, N, MASK, seed=1, scale=0.5))
    assert sorted(results) == [0, 1, 2]
    assert all(torch.equal(results[i], sync[i]) for i in range(3))


# ----------------------------------------------------------------------------- draft prior / injection
def _draft_req(rid, prompt, draft, bias=None, offset=0):
    params = {R.DRAFT_KEY: draft} | ({} if bias is None else {R.PRIOR_BIAS_KEY: bias})
    return S.Req(rid, prompt, S.SamplingParams(custom_params=params), dllm_block_offset=offset)


def test_prior_aligns_with_the_answer_and_wins_with_a_large_bias():
    algo = make_algo({"rule": "topk", "k": N, "prior_bias": 1e4})
    prompt = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]  # 11 tokens: answer starts at 3 in block 1
    draft = [30 + i for i in range(9)]
    reqs = seen(algo, [_draft_req("d", prompt, draft, offset=8), S.Req("plain", prompt, dllm_block_offset=8)])
    fb = S.block_batch(reqs, N, MASK)
    states = algo.init_step_state(fb)
    model = S.TinyModel(V, N, MASK)
    algo.prepare_inputs(model, fb, states)
    algo.step(fb, model.forward(fb), states)
    rows = fb.input_ids.view(2, N)
    assert rows[0].tolist() == [18, 19, 20, 30, 31, 32, 33, 34]  # draft[g] at answer position g
    assert rows[1, 3:].tolist() != [30, 31, 32, 33, 34]


def test_prior_bias_per_request_and_off_by_default():
    algo = make_algo({"rule": "topk", "k": N})
    reqs = seen(algo, [_draft_req("a", [10], [30] * 7), _draft_req("b", [10], [30] * 7, bias=1e4)])
    fb = S.block_batch(reqs, N, MASK)
    states = algo.init_step_state(fb)
    model = S.TinyModel(V, N, MASK)
    algo.prepare_inputs(model, fb, states)
    algo.step(fb, model.forward(fb), states)
    rows = fb.input_ids.view(2, N)
    assert rows[1, 1:].tolist() == [30] * 7 and rows[0, 1:].tolist() != [30] * 7


def test_draft_ids_outside_the_vocabulary_are_dropped():
    algo = make_algo({"rule": "topk", "k": N, "prior_bias": 1e4, "inject_draft": True})
    reqs = seen(algo, [_draft_req("a", [10], [V + 3, 31, 32])])
    fb = S.block_batch(reqs, N, MASK)
    states = algo.init_step_state(fb)
    algo.prepare_inputs(S.TinyModel(V, N, MASK), fb, states)
    assert fb.input_ids[:4].tolist() == [10, MASK, 31, 32]


def test_validate_request_errors_and_weak_registry():
    algo = make_algo()
    bad = [
        ({R.DRAFT_KEY: "1 2"}, "expected a list"),
        ({R.DRAFT_KEY: [1, -3]}, r"\[1\]"),
        ({R.DRAFT_KEY: [MASK]}, "other than mask_id"),
        ({R.PRIOR_BIAS_KEY: float("inf")}, R.PRIOR_BIAS_KEY),
    ]
    for params, msg in bad:
        err = algo.validate_request(S.Req("e", [1], S.SamplingParams(custom_params=params)))
        assert err is not None and pytest.importorskip("re").search(msg, err), err
    r = S.Req("weak", [1])
    algo.validate_request(r)
    assert R.lookup("weak") is r
    del r
    gc.collect()
    assert R.lookup("weak") is None


def test_injection_and_remasking():
    """Injected draft tokens are provisional; the ones the model doubts are remasked and re-decoded."""
    cfg = {"rule": "topk", "k": 1, "inject_draft": True, "remask_threshold": 0.2}
    algo = make_algo(cfg)
    model = S.TinyModel(V, N, MASK, seed=4)
    greedy = make_algo({"rule": "topk", "k": 1})
    reqs = seen(greedy, requests(1, prompt_len=2))
    ref, nfe_cold = greedy.run_sync(S.TinyModel(V, N, MASK, seed=4), S.block_batch(reqs, N, MASK))
    draft = [*ref[0].tolist()[:3], 7, 7, 7]  # right, right, right, wrong, wrong, right (by chance)
    assert ref[0].tolist()[3:] == [13, 38, 7]
    dreq = seen(algo, [_draft_req("inj", [10, 11], draft)])
    fb = S.block_batch(dreq, N, MASK)
    states = algo.init_step_state(fb)
    algo.prepare_inputs(model, fb, states)
    assert fb.input_ids[2:].tolist() == draft and states[0].provisional[2:].all()
    out, nfe = algo.run_sync(model, S.block_batch(dreq, N, MASK))
    assert out[0].tolist() == ref[0].tolist()  # the two wrong tokens were remasked and re-decoded
    assert nfe < nfe_cold


def test_injection_off_leaves_input_untouched():
    algo = make_algo({"prior_bias": 1.0})
    dreq = seen(algo, [_draft_req("n", [10], [31, 32])])
    fb = S.block_batch(dreq, N, MASK)
    before = fb.input_ids.clone()
    algo.prepare_inputs(S.TinyModel(V, N, MASK), fb, algo.init_step_state(fb))
    assert torch.equal(before, fb.input_ids)


def test_unseen_request_falls_back_to_positions():
    algo = make_algo(SAMPLING)
    fb = S.block_batch([S.Req("never-validated", [10, 11, 12], dllm_block_offset=0)], N, MASK)
    states = algo.init_step_state(fb)
    assert states[0].info.block_offset == 0
    assert states[0].info.seed == R.request_seed(None, "never-validated", 0)


# ----------------------------------------------------------------------------- packaging
def test_imports_without_sglang_and_register_needs_it():
    code = (
        "import sys; sys.modules['sglang'] = None\n"
        "import warmkern.integrations.sglang as m\n"
        "try:\n    m.register()\nexcept ImportError:\n    print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.stdout.strip() == "ok", res.stderr


def test_entry_point_declared():
    text = open("pyproject.toml").read()
    assert '[project.entry-points."sglang.srt.plugins"]' in text
    assert 'warmkern = "warmkern.integrations.sglang:register"' in text


# ----------------------------------------------------------------------------- the real sglang (its own venv)
needs_sglang = pytest.mark.skipif(not HAS_SGLANG, reason="sglang not installed (see scripts/sglang_check.sh)")


@pytest.fixture(scope="module")
def sgl():
    """sglang's dLLM modules, the plugin loaded through sglang's own loader (entry point)."""
    from sglang.srt.dllm import algorithm as table
    from sglang.srt.dllm.algorithm.base import DllmAlgorithm
    from sglang.srt.dllm.algorithm.low_confidence import LowConfidence
    from sglang.srt.dllm.config import DllmConfig
    from sglang.srt.model_executor.forward_batch_info import ForwardBatch, ForwardMode
    from sglang.srt.plugins import load_plugins

    load_plugins()
    return dict(table=table, base=DllmAlgorithm, LowConfidence=LowConfidence, DllmConfig=DllmConfig,
                ForwardBatch=ForwardBatch, ForwardMode=ForwardMode)


def _real_batch(sgl, reqs, literal_mask=False):
    fb = S.block_batch(reqs, N, MASK, literal_mask)
    b = fb.batch_size
    zeros = torch.zeros(b, dtype=torch.int64)
    return sgl["ForwardBatch"](
        forward_mode=sgl["ForwardMode"].DLLM_EXTEND, batch_size=b, input_ids=fb.input_ids, req_pool_indices=zeros,
        seq_lens=zeros, out_cache_loc=torch.zeros(b * N, dtype=torch.int64), seq_lens_sum=0, rids=fb.rids,
        positions=fb.positions, dllm_prompt_mask=fb.dllm_prompt_mask,
    )


def _real_pair(sgl, threshold):
    cfg = sgl["DllmConfig"]
    warm_cls = sgl["table"].get_algorithm_cls(wk.ALGORITHM_NAME)
    lc = sgl["LowConfidence"](cfg("LowConfidence", {"threshold": threshold}, N, MASK, 4))
    warm = warm_cls(cfg(wk.ALGORITHM_NAME, {"threshold": threshold, "backend": "reference"}, N, MASK, 4))
    return lc, warm


@needs_sglang
def test_real_plugin_registered_by_sglang_loader(sgl):
    cls = sgl["table"].get_algorithm_cls("Warmkern")
    assert cls is wk.algorithm_class() and issubclass(cls, sgl["base"]) and cls.__name__ == "Warmkern"


@needs_sglang
@pytest.mark.parametrize("literal_mask", [False, True])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("threshold", [0.95, 0.6, 0.2])
def test_real_low_confidence_equivalence_step_by_step(sgl, seed, threshold, literal_mask):
    lc, warm = _real_pair(sgl, threshold)
    reqs = seen(warm, requests(3, prompt_len=1 + seed))
    if literal_mask:
        reqs[1].origin_input_ids[0] = MASK
    fa, fb = _real_batch(sgl, reqs, literal_mask), _real_batch(sgl, reqs, literal_mask)
    model = S.TinyModel(V, N, MASK, seed=seed, scale=0.7 + seed)
    states = warm.init_step_state(fb)
    warm.prepare_inputs(model, fb, states)
    for _ in range(N + 1):
        logits = model.forward(fa)
        done_a = lc.step(fa, logits, None)
        done_b = warm.step(fb, logits, states)
        assert done_a == done_b and torch.equal(fa.input_ids, fb.input_ids)
        if all(done_a):
            break
    assert all(done_a)


@needs_sglang
def test_real_run_loop_matches_low_confidence(sgl):
    from types import SimpleNamespace

    class Runner:
        def __init__(self):
            self.model = S.TinyModel(V, N, MASK, seed=11)
            self.model_config = self.model.model_config

        def forward(self, fb, pp_proxy_tensors=None):
            full = self.model.forward(fb)
            return SimpleNamespace(logits_output=SimpleNamespace(full_logits=full), can_run_graph=False)

    lc, warm = _real_pair(sgl, 0.8)
    reqs = seen(warm, requests(4, prompt_len=2))
    out_a = lc.run(Runner(), _real_batch(sgl, reqs))
    out_b = warm.run(Runner(), _real_batch(sgl, reqs))
    assert [t.tolist() for t in out_a[1]] == [t.tolist() for t in out_b[1]]
    assert all((t != MASK).all() for t in out_b[1])


@needs_sglang
def test_real_validate_request_through_dllm_config(sgl):
    from sglang.srt.sampling.sampling_params import SamplingParams

    cfg = sgl["DllmConfig"](wk.ALGORITHM_NAME, {}, N, MASK, 4)
    wk.algorithm_class()(cfg)
    good = S.Req("ok-1", [1, 2], SamplingParams(custom_params={R.DRAFT_KEY: [3, 4]}))
    bad = S.Req("bad-1", [1, 2], SamplingParams(custom_params={R.DRAFT_KEY: [3, MASK]}))
    assert cfg.validate_request(good) is None and R.lookup("ok-1") is good
    assert "mask_id" in cfg.validate_request(bad)


# ----------------------------------------------------------------------------- GPU only
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_step_syncs_only_for_the_done_list():
    """On CUDA a step's only host sync is the `done` list sglang's loop needs (as LowConfidence's)."""
    import warnings

    algo = make_algo({"rule": "topk", "k": 2, "temperature": 1.0})
    reqs = seen(algo, requests(3))
    model = S.TinyModel(V, N, MASK)
    fb = S.block_batch(reqs, N, MASK)
    logits = model.forward(fb).cuda()
    fb.input_ids = fb.input_ids.cuda()
    states = algo.init_step_state(fb)
    algo.prepare_inputs(model, fb, states)
    algo.step(fb, logits, states)  # first call: allocations, lazy init
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            algo.step(fb, logits, states)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    assert len(syncs) == 1, [str(w.message) for w in syncs]
