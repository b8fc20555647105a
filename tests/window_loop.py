"""A minimal LLaDA-schedule decoding loop over warmkern.window.WindowStats (WindowStats' own modes, apart from
generate's lm_head option that calls it): each step asks for the window's stats, scatters them into the region and
runs ops.select on the region, as the sampler does."""

from __future__ import annotations

import torch

from warmkern import ops
from warmkern.window import WindowStats


@torch.no_grad()
def decode(stats: WindowStats, prompt: torch.Tensor, *, steps: int, gen: int, block: int, mask_id: int,
           cfg_scale: float = 0.0, seed=0, **stats_kw) -> torch.Tensor:
    b, p = prompt.shape
    x = torch.full((b, p + gen), mask_id, dtype=torch.int64)
    x[:, :p] = prompt
    region, prov = x[:, p:], torch.zeros((b, gen), dtype=torch.bool)
    per_block, step = steps // (gen // block), 0
    for lo in range(0, gen, block):
        hi = lo + block
        m = (region[:, lo:hi] == mask_id).sum(1, keepdim=True)
        ks = (m // per_block).repeat(1, per_block)
        for r in range(b):
            ks[r, : int(m[r] % per_block)] += 1
        for i in range(per_block):
            ids = x
            if cfg_scale > 0:
                un = x.clone()
                un[:, :p] = mask_id
                ids = torch.cat([x, un])
            kw = dict(stats_kw, mask_id=mask_id, cfg_scale=cfg_scale, seed=seed, step=step)
            x0w, scw, pcw = stats(region[:, lo:hi], start=p + lo, position_offset=lo, stats_kw=kw, input_ids=ids)
            x0, sc = torch.full_like(region, mask_id), torch.full((b, gen), float("-inf"))
            pc = torch.zeros((b, gen))
            x0[:, lo:hi], sc[:, lo:hi], pc[:, lo:hi] = x0w, scw, pcw
            ops.select(sc, x0, pc, region, prov, mask_id=mask_id, lo=lo, hi=hi, k=ks[:, i], backend="reference")
            step += 1
    return x
