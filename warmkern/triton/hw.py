"""Hardware numbers the launch configuration and the roofline model use, each with its source.

Everything here is a published number or a stated assumption; nothing is measured on this machine
(it has no GPU). `kernels-report` predicts from these, so a first GPU run checks them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Gpu:
    name: str
    cc: int
    sms: int
    clock_ghz: float  # SM clock the issue rate is computed at
    hbm_tbps: float  # peak DRAM bandwidth, TB/s
    smem_per_sm: int  # shared memory per SM, bytes
    regs_per_sm: int = 65536
    max_warps_per_sm: int = 64
    max_blocks_per_sm: int = 32
    schedulers: int = 4  # warp schedulers per SM, one warp-instruction per clock each
    l2_mb: float = 50.0  # L2 cache (the truncation search re-reads a row from it when the rows in use fit)

    @property
    def issue_rate(self) -> float:
        """Warp-instructions per second the whole GPU can issue."""
        return self.sms * self.schedulers * self.clock_ghz * 1e9


# Sources: NVIDIA H100 Tensor Core GPU datasheet / architecture whitepaper (132 SMs on SXM5, 3.35 TB/s
# HBM3, 228 KB shared memory per SM, 64K registers, 64 warps and 32 CTAs per SM, 4 schedulers per SM);
# H200 datasheet (same GH100 SM array, 4.8 TB/s HBM3e). Clock: 1.755 GHz as issue 13 specifies (the
# H100 PCIe boost clock, chipsandcheese "Nvidia's H100: Funny L2, and Tons of Bandwidth", 2023; the
# SXM5 part boosts higher, so issue-bound times here are conservative). A100: datasheet (108 SMs,
# 1.41 GHz boost, 1.555 TB/s on the 40 GB part, 164 KB shared memory per SM). L2: 50 MB on GH100
# (H100 / H200 datasheets), 40 MB on A100.
H100 = Gpu("H100 SXM", 90, 132, 1.755, 3.35, 228 * 1024)
H200 = Gpu("H200", 90, 132, 1.755, 4.8, 228 * 1024)
A100 = Gpu("A100 40GB", 80, 108, 1.41, 1.555, 164 * 1024, l2_mb=40.0)
BY_CC = {90: H100, 80: A100}

# Occupancy rules (CUDA occupancy calculator, compute capability 8.x / 9.x): registers are allocated
# per warp in units of 256, each CTA reserves 1 KB of shared memory for the system.
REG_ALLOC_UNIT = 256
SMEM_RESERVED_PER_BLOCK = 1024

# Latencies (assumptions, sourced): dependent arithmetic issues every ~4 cycles (Jia et al.,
# "Dissecting the NVIDIA Volta GPU architecture via microbenchmarking", 2018; the same on Ampere /
# Hopper per Luo et al., "Benchmarking and Dissecting the Nvidia Hopper GPU Architecture",
# arXiv:2402.13499); an L2 hit takes ~260 cycles on H100 (chipsandcheese 2023, Luo et al.); a DRAM
# access under a streaming load is taken as 800 ns (pointer-chase latency is ~0.5 us unloaded per
# chipsandcheese; queueing at full bandwidth adds to it), which sizes the bytes a kernel must keep in
# flight (Little's law) to reach peak bandwidth.
DEP_ISSUE_CYCLES = 4
BARRIER_CYCLES = 20  # a CTA-wide bar.sync once every warp has arrived (assumption, same sources)
L2_LATENCY_CYCLES = 260
DRAM_LATENCY_NS = 800.0
LAUNCH_US = 2.0  # GPU-side start of a kernel plus its first DRAM round trip (assumption)


def blocks_per_sm(gpu: Gpu, regs: int, shared: int, num_warps: int) -> int:
    """Resident CTAs per SM from registers, shared memory and CTA size (theoretical occupancy)."""
    regs_per_warp = -(-max(regs, 1) * 32 // REG_ALLOC_UNIT) * REG_ALLOC_UNIT
    by_regs = (gpu.regs_per_sm // regs_per_warp) // num_warps
    by_smem = gpu.smem_per_sm // (shared + SMEM_RESERVED_PER_BLOCK)
    by_warps = gpu.max_warps_per_sm // num_warps
    return max(0, min(by_regs, by_smem, by_warps, gpu.max_blocks_per_sm))
