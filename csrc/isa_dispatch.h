// Runtime ISA dispatch of a row loop. A job's `rows<ISA>(begin, end)` (an always-inline member) is
// compiled three times, inlined into a baseline, an AVX2 and an AVX-512 function, and run_rows calls
// the best one this CPU supports (cpu_isa, capped by WARMKERN_CPU_ISA) in parallel over the rows.
#pragma once

#include <ATen/Parallel.h>

#include <cstdint>

#include "common.h"

namespace wk {

template <class Job>
void rows_base(const Job& j, int64_t begin, int64_t end) {
  j.template rows<kIsaBase>(begin, end);
}
#if WK_X86
template <class Job>
WK_TARGET_AVX2 void rows_avx2(const Job& j, int64_t begin, int64_t end) {
  j.template rows<kIsaAvx2>(begin, end);
}
template <class Job>
WK_TARGET_AVX512 void rows_avx512(const Job& j, int64_t begin, int64_t end) {
  j.template rows<kIsaAvx512>(begin, end);
}
#endif

template <class Job>
void run_rows(const Job& j, int64_t n, int64_t grain) {
  void (*fn)(const Job&, int64_t, int64_t) = rows_base<Job>;
#if WK_X86
  const int isa = cpu_isa();
  if (isa == kIsaAvx512) fn = rows_avx512<Job>;
  else if (isa == kIsaAvx2) fn = rows_avx2<Job>;
#endif
  at::parallel_for(0, n, grain, [&](int64_t b, int64_t e) { fn(j, b, e); });
}

}  // namespace wk
