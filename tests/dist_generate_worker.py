"""Worker of tests/test_distributed_generate.py: rank r of 2 holds a tiny dLLM whose LM head keeps only its
column slice of the vocabulary (uneven: 60 + 39 of 99) and decodes with vocab_group; saves the tokens."""

from __future__ import annotations

import os
import traceback

import torch

SPLIT = [60, 39]
CASES = {
    "greedy-full": dict(mode="full"),
    "greedy-window-margin": dict(mode="logits", score="margin"),
    "sampled-window": dict(mode="logits", temperature=1.0, seed=7),
    "sampled-cfg-top-k-random": dict(mode="logits", temperature=0.8, seed=3, cfg_scale=0.5, top_k=20, score="random"),
}


def model_prompt_mask():
    from warmkern import tiny

    model, tok = tiny.dllm(seed=0)
    prompt, _ = tiny.encode_prompts(tok, ["tom has 3 apples and ann gives him 4 more", "how many coins"])
    return model, prompt, tok.mask_token_id


def column_shard(model, rank: int):
    """The model with its LM head cut to this rank's columns (a column-parallel head)."""
    head = model.get_output_embeddings()
    start, n = sum(SPLIT[:rank]), SPLIT[rank]
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
        dist.destroy_process_group()
        torch.save(out, os.path.join(tmpdir, f"rank{rank}.pt"))
    except Exception:
        with open(os.path.join(tmpdir, f"rank{rank}.err"), "w") as f:
            f.write(traceback.format_exc())
        raise
