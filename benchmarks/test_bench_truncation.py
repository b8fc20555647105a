"""The truncation cutoff (csrc/truncation.h) at LLaDA's V: R = 64 rows of V = 126464 fp32, side by side.

Contenders per group (one truncation setting, one logit scale):
- radix: warmkern_cpu::_truncation_cutoff (3 passes over the row + radix select on the candidates);
- sort_cpp: warmkern_cpu::_truncation_cutoff_sort (the sort-based first version, same threading);
- torch_sort: reference.truncation_keep (torch.sort + cumsum over the whole row: what eager code does);
- floor: zs.amax(-1), one read of the rows (the least any cutoff search costs).
Scale 3 is a T = 1 row of LLM-like logits (the nucleus holds thousands of entries), scale 15 the same
logits at T = 0.2 (Dream's usual temperatures: a nucleus of a few entries).

Run (1 thread: the 2 shared cores of the dev box make 2-thread timings noise):
OMP_NUM_THREADS=1 python -m pytest benchmarks/test_bench_truncation.py --benchmark-enable \
    --benchmark-columns=min,median,rounds
"""

from __future__ import annotations

import pytest
import torch

from warmkern import cpu  # noqa: F401  (loads warmkern._C, which registers the private ops)
from warmkern.reference import truncation_keep

R, V = 64, 126464
SETTINGS = {"top_p=0.95": (0, 0.95), "top_k=50": (50, 1.0), "both": (50, 0.95)}
CONTENDERS = ("radix", "sort_cpp", "torch_sort", "floor")

pytestmark = pytest.mark.skipif(not hasattr(torch.ops.warmkern_cpu, "_truncation_cutoff"),
                                reason="warmkern._C without _truncation_cutoff (not built)")


def _rows(scale: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return (torch.randn(R, V, generator=gen) * scale).contiguous()


def _fn(contender: str, zs: torch.Tensor, top_k: int, top_p: float):
    if contender == "radix":
        return lambda: torch.ops.warmkern_cpu._truncation_cutoff(zs, top_k, top_p)
    if contender == "sort_cpp":
        return lambda: torch.ops.warmkern_cpu._truncation_cutoff_sort(zs, top_k, top_p)
    if contender == "torch_sort":
        return lambda: truncation_keep(zs, top_k, top_p)
    return lambda: zs.amax(dim=-1)


@pytest.mark.parametrize("contender", CONTENDERS)
@pytest.mark.parametrize("scale", [3.0, 15.0], ids=lambda s: f"scale{s:g}")
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_truncation_cutoff(benchmark, setting: str, scale: float, contender: str) -> None:
    top_k, top_p = SETTINGS[setting]
    zs = _rows(scale)
    if contender in ("radix", "sort_cpp"):  # how many entries the kernel keeps differently from the spec
        name = "_truncation_cutoff" if contender == "radix" else "_truncation_cutoff_sort"
        c = getattr(torch.ops.warmkern_cpu, name)(zs, top_k, top_p)
        differ = int(((zs >= c.unsqueeze(-1)) != truncation_keep(zs, top_k, top_p)).sum())
        benchmark.extra_info["entries_differing_from_spec"] = differ
        if contender == "radix":  # these fixed rows have no mass-above within rounding of top_p
            assert differ == 0
    benchmark.group = f"truncation R={R} V={V} {setting} scale={scale:g}"
    benchmark.extra_info.update({"rows": R, "vocab": V, "top_k": top_k, "top_p": top_p,
                                 "threads": torch.get_num_threads()})
    slow = contender in ("sort_cpp", "torch_sort")  # seconds a call: a few rounds say enough
    benchmark.pedantic(_fn(contender, zs, top_k, top_p), rounds=3 if slow else 15, warmup_rounds=1)
