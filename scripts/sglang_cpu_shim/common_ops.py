"""CHECK-ONLY stub (scripts/sglang_check.sh, CPU-only hosts): sglang-kernel's CUDA wheel cannot load its
compiled `common_ops` without libcuda; its loader's last resort is `import common_ops`, which finds this
empty module, so sgl_kernel's pure-Python part imports. Any compiled op it would call stays missing (and
fails loudly if a code path reaches it). Never used by warmkern itself.
"""
