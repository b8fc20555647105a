"""End to end on CPU at LLaDA's vocabulary: full logits vs window-only logits vs the fused head vs LLaDA's loop.

A random Llama-architecture model with LLaDA's vocabulary (V = 126464, hidden 1024, 4 layers, bf16; causal
attention, which changes nothing for timing) decodes prompt 128 + gen 256 in blocks of 32, LLaDA's fixed
schedule (greedy, low-confidence, k = ceil per step). Every variant runs the same block/step driver and differs
only in how a step gets its statistics:

  llada          LLaDA's generate.py step: [B, L, V] logits, softmax over all of them (fp32), argmax, top-k
  full           the model's [B, L, V] logits, then ops.denoise_step on the 32 window rows
  window-logits  the model computes the window rows' logits only (HF logits_to_keep), then ops.denoise_step
  window-fused   the model stops before its head (warmkern.window); ops.head_token_stats does the head GEMM
                 chunk by chunk with the statistics, then ops.select: the window's logits never exist

Reported per variant: tokens identical to `llada`, wall time per step and in total, and the peak bytes allocated
inside one step (torch profiler, allocator events: what the step adds on top of the model's weights).

    python benchmarks/e2e_window.py [--steps 64] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

V, MASK, P, GEN, BLOCK = 126464, 126336, 128, 256, 32


def model_and_prompt(seed: int = 0, layers: int = 4, hidden: int = 1024):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=V, hidden_size=hidden, intermediate_size=2816, num_hidden_layers=layers,
                      num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=P + GEN,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
    prompt = torch.randint(0, 126000, (1, P), generator=torch.Generator().manual_seed(seed + 1))
    return model, prompt


def llada_step(model, x, s0, s1, k):
    """LLaDA's generate.py loop body (remasking='low_confidence', temperature 0, no CFG), softmax in fp32."""
    mask_index = x == MASK
    logits = model(x).logits
    x0 = torch.argmax(logits, dim=-1)
    p = F.softmax(logits.float(), dim=-1)
    x0_p = torch.squeeze(torch.gather(p, dim=-1, index=torch.unsqueeze(x0, -1)), -1)
    x0_p[:, s1:] = -float("inf")
    x0 = torch.where(mask_index, x0, x)
    confidence = torch.where(mask_index, x0_p, -float("inf"))
    transfer_index = torch.zeros_like(x0, dtype=torch.bool)
    for j in range(confidence.shape[0]):
        _, select_index = torch.topk(confidence[j], k=int(k[j]))
        transfer_index[j, select_index] = True
    x[transfer_index] = x0[transfer_index]


def warmkern_step(kind):
    from warmkern import ops, window
    from warmkern.models import ModelAdapter

    def step(model, x, s0, s1, k):
        adapter = ModelAdapter(model)
        xw = x[:, s0:s1]
        prov = torch.zeros_like(xw, dtype=torch.bool)
        rule = dict(mask_id=MASK, lo=0, hi=s1 - s0, k=k, backend="reference", check_values=False)
        if kind == "full":
            logits = adapter.forward(input_ids=x)[:, s0:s1]
            ops.denoise_step(logits, xw, prov, **rule)
        elif kind == "window-logits":
            logits = window.window_forward(adapter, start=s0, length=s1 - s0, hidden=False, input_ids=x)
            ops.denoise_step(logits, xw, prov, **rule)
        else:
            hidden = window.window_forward(adapter, start=s0, length=s1 - s0, hidden=True, input_ids=x)
            head = window.output_head(model)
            x0, sc, pc = ops.head_token_stats(hidden, head.weight, xw, bias=head.bias, mask_id=MASK,
                                              backend="reference", check_values=False)
            ops.select(sc, x0, pc, xw, prov, **rule)

    return step


def generate(step, model, prompt, steps: int) -> tuple[torch.Tensor, list[float]]:
    """The shared block driver: LLaDA's get_num_transfer_tokens per block, one `step` per denoising step."""
    x = torch.full((1, P + GEN), MASK, dtype=torch.long)
    x[:, :P] = prompt
    per_block = steps // (GEN // BLOCK)
    times = []
    for blk in range(GEN // BLOCK):
        s0, s1 = P + blk * BLOCK, P + (blk + 1) * BLOCK
        m = (x[:, s0:s1] == MASK).sum(1, keepdim=True)
        ks = (m // per_block).repeat(1, per_block)
        for r in range(m.shape[0]):
            ks[r, : int(m[r] % per_block)] += 1
        for i in range(per_block):
            t = time.perf_counter()
            step(model, x, s0, s1, ks[:, i])
            times.append(time.perf_counter() - t)
    return x, times


def peak_step_bytes(step, model, prompt) -> int:
    """Peak of the bytes allocated (minus freed) during one step, from the profiler's allocator events."""
    x = torch.full((1, P + GEN), MASK, dtype=torch.long)
    x[:, :P] = prompt
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        step(model, x, P, P + BLOCK, torch.tensor([4]))
    cur = top = 0
    for e in sorted(prof.events(), key=lambda e: e.time_range.start):
        cur += e.self_cpu_memory_usage
        top = max(top, cur)
    return top


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--variants", nargs="+", default=["llada", "full", "window-logits", "window-fused"])
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model, prompt = model_and_prompt()
    steps = {"llada": llada_step, **{k: warmkern_step(k) for k in ("full", "window-logits", "window-fused")}}
    res, tokens = {}, {}
    with torch.no_grad():
        for name in a.variants:
            x, times = generate(steps[name], model, prompt, a.steps)
            tokens[name] = x
            res[name] = dict(total_s=sum(times), step_ms=1e3 * sum(times) / len(times),
                             peak_step_mb=peak_step_bytes(steps[name], model, prompt) / 2**20)
    ref = a.variants[0]
    print(f"| variant | same tokens as {ref} | total s | ms/step | peak step MiB | speed-up vs full | memory vs full |")
    print("|---|---|---|---|---|---|---|")
    for name, r in res.items():
        r["same_tokens"] = bool(torch.equal(tokens[name], tokens[ref]))
        full = res.get("full", r)
        print(f"| {name} | {r['same_tokens']} | {r['total_s']:.1f} | {r['step_ms']:.0f} | {r['peak_step_mb']:.1f} | "
              f"{full['total_s'] / r['total_s']:.2f}x | {full['peak_step_mb'] / r['peak_step_mb']:.1f}x lower |")
    if a.json:
        a.json.write_text(json.dumps(dict(results=res, steps=a.steps, threads=a.threads), indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
