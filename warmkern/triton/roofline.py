"""The roofline model `kernels-report` prints: a prediction from SASS counts and `hw` constants.

For a vocabulary kernel launched as P programs of which Pw do work (each reads e = E / Pw logits of
the E the op must read, B bytes in all):
  hbm_floor     = B / peak DRAM bandwidth                                (the target's yardstick)
  issue_bound   = ceil(Pw / SMs) * (e * wipe + post * warps) / (schedulers * clock)
                  wipe = warp-instructions per element of the vocabulary loop's common path,
                  post = instructions per program after the loop (lane reduction, finalize)
  mem_bound     = B / min(peak, SMs * in-flight bytes per SM / DRAM latency)      (Little's law)
  tail          = (tail_instr * dependent-issue cycles + barriers + L2 round trips) / clock
                  the serial work after the last vocabulary loop beyond that program's own epilogue:
                  the merge of the splits + finalize (split launches), the row's selection (denoise)
  predicted     = launch + max(issue_bound, mem_bound) + tail
With truncation (top_k / top_p) every working program first searches its position's cutoff over the
whole row (`truncate`): + row * trunc_wipe per program in issue_bound (pass 0, one full bracket pass,
the narrow ones), and the passes re-read the row: from L2 while the rows resident programs use fit in
it (free here), else that share of the re-reads comes from DRAM (+ in mem_bound).
Issue and memory are assumed to overlap perfectly and issue never to stall on anything but memory,
so `predicted` is optimistic where the loop has long dependency chains and pessimistic where the
clock runs above `hw` (the SXM parts boost higher). It is a model, labelled as predicted.
"""

from __future__ import annotations

from dataclasses import dataclass

from warmkern.triton import hw


@dataclass(frozen=True)
class Work:
    """What a launch must do, independent of the GPU."""

    elements: int  # logits elements read per input tensor (positions computed x V)
    bytes: int  # bytes the op must read (logits, and uncond logits with CFG)
    programs: int  # programs launched
    working: int  # programs that do vocabulary work
    inflight_bytes: int  # bytes one working program keeps in flight (prefetched tiles)
    row_elements: int = 0  # entries of the whole row each working program's truncation search reads
    reread_bytes: int = 0  # the truncation passes' re-reads of every row (before the L2 discount)
    resident_row_bytes: int = 0  # bytes of the rows one resident program keeps in use (shared by splits)


@dataclass(frozen=True)
class Code:
    """What the compiled kernel costs, from its SASS."""

    regs: int
    shared: int
    num_warps: int
    wipe: float  # warp-instructions per vocabulary element in the loop
    post_instr: int  # per-program instructions after the loop (per warp)
    tail_instr: int  # serial tail instructions (per warp)
    tail_barriers: int
    tail_round_trips: int  # dependent L2 round trips in the tail (atomics, scratch loads)
    trunc_wipe: float = 0.0  # warp-instructions per row entry of the truncation search (all its passes)


def predict(gpu: hw.Gpu, work: Work, code: Code) -> dict[str, float]:
    """The model's times (us) and ratios for one launch on `gpu`."""
    hz = gpu.clock_ghz * 1e9
    per_sm = max(1, hw.blocks_per_sm(gpu, code.regs, code.shared, code.num_warps))
    per_sm_programs = -(-work.working // gpu.sms)
    per_prog = work.elements / max(work.working, 1)
    per_prog_instr = per_prog * code.wipe + work.row_elements * code.trunc_wipe + code.post_instr * code.num_warps
    issue_us = per_sm_programs * per_prog_instr / (gpu.schedulers * hz) * 1e6
    resident = min(per_sm, per_sm_programs)
    active_sms = min(gpu.sms, work.working)
    bw = min(gpu.hbm_tbps * 1e12, active_sms * resident * work.inflight_bytes / (hw.DRAM_LATENCY_NS * 1e-9))
    in_use = active_sms * resident * work.resident_row_bytes
    dram_share = max(0.0, 1.0 - gpu.l2_mb * 1e6 / in_use) if in_use else 0.0  # crude LRU: what does not fit
    mem_us = (work.bytes + work.reread_bytes * dram_share) / bw * 1e6 if work.bytes else 0.0
    floor_us = work.bytes / (gpu.hbm_tbps * 1e12) * 1e6
    tail_cycles = (code.tail_instr * hw.DEP_ISSUE_CYCLES + code.tail_barriers * hw.BARRIER_CYCLES
                   + code.tail_round_trips * hw.L2_LATENCY_CYCLES)
    tail_us = tail_cycles / hz * 1e6
    predicted = hw.LAUNCH_US + max(issue_us, mem_us) + tail_us
    return {
        "hbm_floor_us": floor_us,
        "issue_bound_us": issue_us,
        "mem_bound_us": mem_us,
        "tail_us": tail_us,
        "predicted_us": predicted,
        "predicted_over_floor": predicted / floor_us if floor_us else float("nan"),
        "blocks_per_sm": per_sm,
        "waves": -(-work.working // (gpu.sms * per_sm)),
        "idle_cta_frac": 1.0 - work.working / max(work.programs, 1),
        "reread_dram_share": dram_share,
    }
