// The baseline variant's Gumbel-max block: 16 Philox calls -> 64 Gumbel values -> 64 picks z/T + g,
// with the prefilter of the SIMD blocks (span_kernels.inc). GCC cannot vectorise the Philox
// products, so the x86 variants use their intrinsic blocks instead; this one serves the base
// variant (any CPU, aarch64 included).
#pragma once

#include <cstdint>
#include <limits>

#include "common.h"

namespace wk {

constexpr int kGumbelBaseLanes = 16;                              // Philox calls per block
constexpr int64_t kGumbelBaseEntries = 4 * kGumbelBaseLanes;      // entries per block

template <int ISA>
WK_INLINE float gumbel_block_base(const float* z, float it, float zmax_it, float best_so_far, uint64_t ctr0,
                                  uint32_t step, uint32_t key0, uint32_t key1, float* picks) {
  constexpr int L = kGumbelBaseLanes;
  uint32_t a0[L], a1[L], a2[L], a3[L];
  for (int l = 0; l < L; ++l) {
    const uint64_t ctr = ctr0 + static_cast<uint64_t>(l);
    a0[l] = static_cast<uint32_t>(ctr);
    a1[l] = static_cast<uint32_t>(ctr >> 32);
    a2[l] = step;
    a3[l] = static_cast<uint32_t>(kStreamGumbel);
  }
  uint32_t k0 = key0, k1 = key1;
  for (int round = 0; round < 10; ++round) {
    for (int l = 0; l < L; ++l) {
      const uint64_t p0 = static_cast<uint64_t>(a0[l]) * kPhiloxM0;
      const uint64_t p1 = static_cast<uint64_t>(a2[l]) * kPhiloxM1;
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ a1[l] ^ k0;
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ a3[l] ^ k1;
      a1[l] = static_cast<uint32_t>(p1);
      a3[l] = static_cast<uint32_t>(p0);
      a0[l] = n0;
      a2[l] = n2;
    }
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  uint32_t wmin = 0xFFFFFFFFu;  // the smallest word bounds every noise value of the block
  for (int l = 0; l < L; ++l) {
    const uint32_t m01 = a0[l] < a1[l] ? a0[l] : a1[l];
    const uint32_t m23 = a2[l] < a3[l] ? a2[l] : a3[l];
    const uint32_t m = m01 < m23 ? m01 : m23;
    wmin = m < wmin ? m : wmin;
  }
  if (zmax_it + (gumbel<ISA>(uniform_from_word(wmin)) + 1e-3f) < best_so_far)
    return -std::numeric_limits<float>::infinity();
  float g0[L], g1[L], g2[L], g3[L];
  for (int l = 0; l < L; ++l) {
    g0[l] = gumbel<ISA>(uniform_from_word(a0[l]));
    g1[l] = gumbel<ISA>(uniform_from_word(a1[l]));
    g2[l] = gumbel<ISA>(uniform_from_word(a2[l]));
    g3[l] = gumbel<ISA>(uniform_from_word(a3[l]));
  }
  for (int l = 0; l < L; ++l) {
    picks[4 * l + 0] = z[4 * l + 0] * it + g0[l];
    picks[4 * l + 1] = z[4 * l + 1] * it + g1[l];
    picks[4 * l + 2] = z[4 * l + 2] * it + g2[l];
    picks[4 * l + 3] = z[4 * l + 3] * it + g3[l];
  }
  float best = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : best)
  for (int64_t i = 0; i < kGumbelBaseEntries; ++i) best = picks[i] > best ? picks[i] : best;
  return best;
}

}  // namespace wk
