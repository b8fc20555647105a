"""Worker of tests/test_distributed_generate.py: rank r of 2 holds a tiny dLLM whose LM head keeps only its
column slice of the vocabulary and decodes with vocab_group; saves the tokens. Two splits: 60 + 39 of 99 for
the WindowStats loop, 3 + 96 for `generate` (mask_id 2 in the first shard; EOS 3, EOT and most draft ids in
the second)."""

from __future__ import annotations

import os
import traceback

import torch

SPLIT = [60, 39]
GENERATE_SPLIT = [3, 96]
EOS = dict(eos_id=3, eot_id=98)
CASES = {
    "greedy-full": dict(mode="full"),
    "greedy-window-margin": dict(mode="logits", score="margin"),
    "sampled-window": dict(mode="logits", temperature=1.0, seed=7),
    "sampled-cfg-top-k-random": dict(mode="logits", temperature=0.8, seed=3, cfg_scale=0.5, top_k=20, score="random"),
}


GENERATE_CASES = {
    "greedy-eos-eot": dict(logits_eos_inf=True, confidence_eos_eot_inf=True, **EOS),
    "sampled-row-seeds": dict(temperature=1.0, seed=[7, 2**40 + 1]),
    "cfg-top-k-random": dict(temperature=0.8, cfg_scale=0.5, top_k=20, remasking="random", seed=3),
    "threshold-margin-warm-rows-apart": dict(threshold=0.2, score="margin", temperature=0.5, seed=[4, 9],
                                             warm="token-half", steps=16),
    "factor-entropy": dict(factor=1.0, score="entropy", confidence_eos_eot_inf=True, **EOS),
    "dream-top-p-alg-temp": dict(schedule="dream", logits_shift=True, block_length=16, top_p=0.9, temperature=0.7,
                                 alg_temp=0.3, score="entropy", seed=5),
    "warm-token-prior-remask": dict(warm="token", temperature=0.5, seed=[1, 2]),
    "infill-sampled": dict(infill=True, temperature=1.0, seed=[3, 4]),
    "window-rows-cfg-top-p": dict(lm_head="window", temperature=0.9, seed=[2, 6], top_p=0.9, cfg_scale=0.5),
}


def generate_case(model, prompt, mask_id, name: str, group=None):
    """`generate` on one case; returns (tokens, nfe per row)."""
    from warmkern import WarmStart, generate

    kw = dict(GENERATE_CASES[name])
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    warm = kw.pop("warm", None)
    if warm:  # "token-half": rows prefilled differently, so threshold rows reach their last step apart
        draft = torch.randint(4, 99, (prompt.shape[0], 16), generator=gen)
        draft[:, -3:] = -1
        kw["warm_start"] = (WarmStart(draft, mode="token", rate=0.5) if warm == "token-half" else
                            WarmStart(draft, mode="token", rate=0.7, remask_threshold=0.3, beta=2.0))
    if kw.pop("infill", None):
        prompt = prompt.clone()
        prompt[0, 4:6] = mask_id
        prompt[1, 8] = mask_id
    kw = dict(dict(steps=8, gen_length=16, block_length=4), **kw)
    x, stats = generate(model, prompt, mask_id=mask_id, backend="reference", return_stats=True, vocab_group=group,
                        **kw)
    return x, stats.nfe_per_row


def model_prompt_mask():
    from warmkern import tiny

    model, tok = tiny.dllm(seed=0)
    prompt, _ = tiny.encode_prompts(tok, ["tom has 3 apples and ann gives him 4 more", "how many coins"])
    return model, prompt, tok.mask_token_id


def column_shard(model, rank: int, split: list[int] = SPLIT):
    """The model with its LM head cut to this rank's columns (a column-parallel head)."""
    head = model.get_output_embeddings()
    start, n = sum(split[:rank]), split[rank]
    part = torch.nn.Linear(head.in_features, n, bias=head.bias is not None)
    with torch.no_grad():
        part.weight.copy_(head.weight[start : start + n])
        if head.bias is not None:
            part.bias.copy_(head.bias[start : start + n])
    model.set_output_embeddings(part)
    return model


def run_case(model, prompt, mask_id, case: dict, group=None):
    from window_loop import decode

    from warmkern.models import ModelAdapter
    from warmkern.window import WindowStats

    kw = dict(case)
    stats = WindowStats(ModelAdapter(model), kw.pop("mode"), vocab_group=group, backend="reference")
    return decode(stats, prompt, steps=8, gen=16, block=4, mask_id=mask_id, **kw)


def main(rank: int, world: int, tmpdir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    try:
        dist.init_process_group("gloo", init_method=f"file://{os.path.join(tmpdir, 'store')}", rank=rank,
                                world_size=world)
        model, prompt, mask_id = model_prompt_mask()
        model = column_shard(model, rank)
        out = {name: run_case(model, prompt, mask_id, case, group=dist.group.WORLD) for name, case in CASES.items()}
        model = column_shard(model_prompt_mask()[0], rank, GENERATE_SPLIT)
        out["generate"] = {name: generate_case(model, prompt, mask_id, name, group=dist.group.WORLD)
                           for name in GENERATE_CASES}
        dist.destroy_process_group()
        torch.save(out, os.path.join(tmpdir, f"rank{rank}.pt"))
    except Exception:
        with open(os.path.join(tmpdir, f"rank{rank}.err"), "w") as f:
            f.write(traceback.format_exc())
        raise
