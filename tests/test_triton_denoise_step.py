"""The single-launch Triton denoise_step against the reference, step by step like a sampler."""

from __future__ import annotations

import pytest
import torch
from parity import assert_selection_match, near_boundary

from warmkern import launches, ops, reference, rng
from warmkern import triton as wt

DEV = "cuda" if torch.cuda.is_available() else "cpu"
B, G, V = 2, 8, 300
MASK = 200

CASES = [  # (id, split, select rule, remask, stats options)
    ("greedy-prob-topk", "1", dict(k=torch.tensor([2, 3])), {}, dict(score="prob")),
    ("sampled-margin-threshold-remask", "2", dict(threshold=0.05), dict(remask_threshold=0.3, remask_max=2),
     dict(score="margin", temperature=0.8)),
    ("entropy-factor-cfg", "2", dict(factor=1.0), {}, dict(score="entropy", cfg=True)),
    ("random-topk-remask-ids", "1", dict(k=torch.tensor([1, 4])), dict(remask_threshold=0.5),
     dict(score="random", temperature=0.5, suppress_ids=(3, 4), pick_suppress_ids=(7,), score_suppress_ids=(9,))),
    ("scaled-factor-remask-dream", None, dict(factor=0.6), dict(remask_threshold=0.4),
     dict(score="prob", temperature=1.3, score_temperature="sampling", dream=True)),
    ("dream-topp-topk-alg-temp", "2", dict(k=torch.tensor([2, 1]), alg_temp=0.5), {},
     dict(score="entropy", temperature=0.4, top_p=0.95, top_k=20)),
    ("prior-threshold-remask", "1", dict(threshold=0.4), dict(remask_threshold=0.3),
     dict(score="prob", prior=True, top_k=9)),
]


def step_inputs(gen, opts):
    if opts.pop("dream", False):
        full = torch.randn(B, G + 6, V, generator=gen) * 2
        logits = full[:, 3 : 3 + G]
    else:
        logits = (torch.randn(B, G, V, generator=gen) * 2).to(torch.bfloat16)
    logits[1, 5] = float("nan")  # a dead position
    if opts.pop("prior", False):
        opts["prior_ids"] = torch.randint(-1, V, (B, G), generator=gen)
        opts["prior_bias"] = torch.tensor([1.0, 3.0])
    if opts.pop("cfg", False):
        opts["uncond_logits"] = torch.randn(B, G, V, generator=gen).to(logits.dtype)
        opts["cfg_scale"] = 0.8
    return logits, opts


def gpu_allowed(logits, x, prov, lo, hi, step, kw):
    """Positions a GPU step may select differently (tests/parity.py, GPU contract): reference scores or
    p_cur within RTOL of a decision boundary."""
    rule = ("k", "threshold", "factor", "remask_threshold", "remask_max", "alg_temp")
    stats_kw = {k: v for k, v in kw.items() if k not in rule}
    x0, sc, pc = reference.token_stats(logits, x, mask_id=MASK, seed=11, step=step, **stats_kw)
    pos = torch.arange(G)
    win = (pos >= lo[:, None]) & (pos < hi[:, None])
    elig = (x == MASK) & (x0 != MASK) & win
    order = sc
    if kw.get("alg_temp"):  # the order is that of the alg_temp keys: their boundaries count
        order = reference.alg_temp_keys(sc, kw["alg_temp"], rng.row_seeds(11, x.shape[0]), step)
    allowed = near_boundary(order, elig, kw.get("threshold"))
    if kw.get("factor") is not None:
        allowed |= elig  # the factor rule compares each score with rank-dependent bounds: any may flip
    if kw.get("remask_threshold") is not None:
        allowed |= near_boundary(pc, prov & win & (x != MASK), kw["remask_threshold"])
    return allowed


@pytest.mark.parametrize(("name", "split", "rule", "remask", "opts"), CASES, ids=[c[0] for c in CASES])
def test_denoise_step_parity_over_a_few_steps(name, split, rule, remask, opts, monkeypatch):
    if split:
        monkeypatch.setenv("WARMKERN_TRITON_SPLIT", split)
    monkeypatch.setenv("WARMKERN_TRITON_BLOCK_V", "128")  # 3 tiles, the last partial
    gen = torch.Generator().manual_seed(len(name))
    x = torch.where(torch.rand(B, G, generator=gen) < 0.7, MASK, torch.randint(0, MASK, (B, G), generator=gen))
    prov = (x != MASK) & (torch.rand(B, G, generator=gen) < 0.6)
    xa, pa, xb, pb = x.clone(), prov.clone(), x.clone().to(DEV), prov.clone().to(DEV)
    lo, hi = torch.tensor([0, 2]), torch.tensor([G, 6])  # row 1: rows outside [2, 6) are skipped
    for step in range(3):
        logits, kw = step_inputs(gen, dict(opts))
        kw.update(rule, **remask)
        allowed = gpu_allowed(logits, xa, pa, lo, hi, step, kw) if DEV == "cuda" else None
        want = reference.denoise_step(logits, xa, pa, mask_id=MASK, lo=lo, hi=hi, seed=11, step=step, **kw)
        dev_kw = {k: (v.to(DEV) if isinstance(v, torch.Tensor) else v) for k, v in kw.items()}
        launches.reset()
        got = wt.denoise_step(logits.to(DEV), xb, pb, mask_id=MASK, lo=lo.to(DEV), hi=hi.to(DEV), seed=11,
                              step=step, **dev_kw)
        assert launches.snapshot() == {"denoise_step": 1}
        assert_selection_match(xb, xa, pb, pa, allowed=allowed)
        if allowed is None or not allowed.any():
            assert torch.equal(got[0].cpu(), want[0]) and torch.equal(got[1].cpu(), want[1]), f"step {step}"
        xb.copy_(xa)  # a near-boundary difference on a GPU must not snowball into later steps
        pb.copy_(pa)


def test_sampler_step_launch_budget():
    """A sampler-like step through the public ops: 1 launch for warm_embed, 1 for stats + select."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(V, 16, generator=gen)
    x = torch.full((B, G), MASK)
    draft = torch.randint(0, MASK, (B, G), generator=gen)
    keep = torch.ones(B, G, dtype=torch.bool)
    prov = torch.zeros(B, G, dtype=torch.bool)
    x_dev, prov_dev = x.clone().to(DEV), prov.clone().to(DEV)
    launches.reset()
    emb = ops.warm_embed(w.to(DEV), x_dev, draft.to(DEV), keep.to(DEV), mask_id=MASK, alpha=0.5, backend="triton")
    assert launches.snapshot() == {"warm_embed": 1}
    logits = torch.randn(B, G, V, generator=gen)  # stands in for model(emb)
    launches.reset()
    nt, _ = ops.denoise_step(logits.to(DEV), x_dev, prov_dev, mask_id=MASK, lo=0, hi=G, k=2, backend="triton",
                             check_values=False)
    assert launches.snapshot() == {"denoise_step": 1}
    ref_x = x.clone()
    reference.denoise_step(logits, ref_x, prov.clone(), mask_id=MASK, lo=torch.zeros(B, dtype=torch.int64),
                           hi=torch.full((B,), G), k=torch.full((B,), 2))
    assert torch.equal(x_dev.cpu(), ref_x) and nt.cpu().tolist() == [2, 2] and emb.shape == (B, G, 16)


@pytest.mark.parametrize("mode", ["embedding"])  # token mode + remask: covered op by op above (interpreter time)
def test_generate_end_to_end_matches_reference(mode):
    """The sampler on the triton backend decodes the same tokens, with 1 + 1 launches per step."""
    eager = pytest.importorskip("test_sampler_eager")
    from warmkern import WarmStart, generate

    model, tok = eager.tiny_pair()
    ids = eager.special_ids(tok)
    prompt, am = eager.prompts(tok, 2)
    draft = torch.randint(0, 50, (2, 16), generator=torch.Generator().manual_seed(0))
    draft[:, 12:] = -1
    ws = (WarmStart(draft, mode="embedding", alpha=0.6, rate=0.8, alpha_schedule="linear") if mode == "embedding"
          else WarmStart(draft, mode="token", rate=0.9, remask_threshold=0.5, remask_max=2))
    kw = dict(steps=8, gen_length=16, block_length=8, seed=5, warm_start=ws, temperature=0.7)
    want = generate(model, prompt, am, backend="reference", **kw, **ids)
    launches.reset()
    got = generate(model, prompt.to(DEV), am.to(DEV), backend="triton", **kw, **ids) if DEV == "cpu" else None
    if got is None:
        pytest.skip("the tiny model runs on CPU")
    assert torch.equal(got, want)
    n = launches.snapshot()
    assert n["denoise_step"] == 8 and n.get("warm_embed", 0) == (8 if mode == "embedding" else 0)
