// Runtime ISA selection: the wheel is built for baseline x86-64/aarch64, the kernels carry
// AVX2/AVX-512 variants (function target attributes) and pick the best one the CPU supports.
#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>

#include "common.h"

namespace wk {

static int detect_hw() {
  int best = kIsaBase;
#if WK_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
    best = kIsaAvx2;
  if (best == kIsaAvx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    best = kIsaAvx512;
#endif
  return best;
}

// Read on every call (a getenv per kernel launch is noise) so a test can pin each variant in turn.
// Unset or empty: the best variant; an unknown value is an error, not a silent fallback.
int cpu_isa() {
  static const int hw = detect_hw();
  const char* cap = std::getenv("WARMKERN_CPU_ISA");  // tests and benchmarks pin a variant
  if (cap == nullptr || cap[0] == '\0') return hw;
  int want;
  if (std::strcmp(cap, "base") == 0) {
    want = kIsaBase;
  } else if (std::strcmp(cap, "avx2") == 0) {
    want = kIsaAvx2;
  } else if (std::strcmp(cap, "avx512") == 0) {
    want = kIsaAvx512;
  } else {
    TORCH_CHECK_VALUE(false, "WARMKERN_CPU_ISA: expected one of base, avx2, avx512 (or unset), got '", cap, "'");
  }
  return want < hw ? want : hw;  // capped at what this CPU supports
}

}  // namespace wk
