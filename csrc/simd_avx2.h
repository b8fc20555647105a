// AVX2 traits of the span kernels: 8 fp32 lanes, comparisons as all-ones lanes. Where AVX2 lacks an
// AVX-512 instruction the replacement is exact, so both variants compute the same numbers:
//  - no masks: comparisons give all-ones lanes, and-ed into the result (e = 0 off the mask);
//  - no scalef: 2^n is added to p's exponent field as an integer. The shifter's sum t = d log2e +
//    1.5 * 2^23 holds n in its low mantissa bits and bit 22 is its lowest other set bit, so t's
//    bits << 23 are n << 23 mod 2^32 (one shift). Exact, since p * 2^n is normal for every kept
//    lane (p in [0.7, 1.5], n >= -116 at d >= kExpFloor): the same bits as scalef;
//  - no unsigned -> float conversion: fp32(w) from its two 16-bit halves (both exact in fp32, one
//    rounding in the add: the correctly rounded value, as static_cast<float>);
//  - no 512-bit reductions: 8-lane horizontal max / sum / min by shuffles.
#pragma once

#include <cstdint>
#include <limits>  // span_kernels.inc

#include "common.h"
#include "simd_shared_ops.h"

#if WK_X86
#include <immintrin.h>

namespace wk::avx2 {

struct Simd {
  WK_SIMD_SHARED_OPS(WK_OP_AVX2, _mm256, si256, __m256)

  // No masks: comparisons give all-ones lanes (M is a vector), and-ed into results.
  template <int OP>
  WK_OP_AVX2 M cmp(V a, V b) {
    return _mm256_cmp_ps(a, b, OP);
  }
  WK_OP_AVX2 unsigned mask_bits(M m) { return static_cast<unsigned>(_mm256_movemask_ps(m)); }
  WK_OP_AVX2 V blend(M m, V a, V b) { return _mm256_blendv_ps(a, b, m); }  // b where m
  // p * 2^n by the exponent field (see the header comment), 0 off `keep` (where t may be anything).
  WK_OP_AVX2 V pow2_keep(V p, V n, V t, M keep) {
    (void)n;
    const __m256i e = _mm256_add_epi32(_mm256_castps_si256(p), _mm256_slli_epi32(_mm256_castps_si256(t), 23));
    return _mm256_and_ps(_mm256_castsi256_ps(e), keep);
  }
  // a * b + c with b cleared off `keep` (there e = 0, and 0 * -inf would be NaN).
  WK_OP_AVX2 V fmadd_keep(V a, V b, V c, M keep) { return _mm256_fmadd_ps(a, _mm256_and_ps(b, keep), c); }
  WK_OP_AVX2 float hsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
  }
  WK_OP_AVX2 float hmax(V v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
  }

  WK_OP_AVX2 I dec32_where(I a, M m) { return _mm256_add_epi32(a, _mm256_castps_si256(m)); }  // true lanes are -1
  // kW consecutive 16-bit entries (bf16 / fp16) for the shared loads, whose fp16 path is F16C (part
  // of WK_TARGET_AVX2; cpu_isa checks it).
  WK_OP_AVX2 __m128i load_half(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
  WK_OP_AVX2 V u32_to_f32(I a) {
    const __m256 hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(a, 16));
    const __m256 lo = _mm256_cvtepi32_ps(_mm256_and_si256(a, _mm256_set1_epi32(0xFFFF)));
    return _mm256_add_ps(_mm256_mul_ps(hi, _mm256_set1_ps(65536.0f)), lo);
  }

  // Philox state in 64-bit lanes, as in simd_avx512.h (4 counters a register, two plain XORs).
  WK_OP_AVX2 I counters(uint64_t c0) {
    return _mm256_add_epi64(_mm256_set1_epi64x(static_cast<long long>(c0)), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  // One 32-entry Philox chain per Gumbel block: a second would not fit the 16 ymm registers.
  static constexpr int kGumbelGroups = 1;
  WK_OP_AVX2 I set64(uint64_t x) { return _mm256_set1_epi64x(static_cast<long long>(x)); }
  WK_OP_AVX2 I xor3(I a, I b, I c) { return _mm256_xor_si256(_mm256_xor_si256(a, b), c); }
  WK_OP_AVX2 uint32_t hmin_lo32(I a) {  // lanes 0, 2, 4, 6: the low halves of the 64-bit lanes
    __m128i m = _mm_min_epu32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    m = _mm_min_epu32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(3, 2, 3, 2)));
    return static_cast<uint32_t>(_mm_cvtsi128_si32(m));
  }
  // The low 32 bits of the 64-bit lanes of lo, then of hi, as kW 32-bit lanes.
  WK_OP_AVX2 I pack_lo32(I lo, I hi) {
    const __m256 s = _mm256_shuffle_ps(_mm256_castsi256_ps(lo), _mm256_castsi256_ps(hi), _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_permute4x64_epi64(_mm256_castps_si256(s), _MM_SHUFFLE(3, 1, 2, 0));
  }
  // g[w] lane l = word w of counter l  ->  g[i] lane l = entry 8 i + l (entry 4 c + w = word w of counter c).
  WK_OP_AVX2 void transpose4(V g[4]) {
    V u[4];
    unpack4(g, u);
    g[0] = _mm256_permute2f128_ps(u[0], u[1], 0x20);
    g[1] = _mm256_permute2f128_ps(u[2], u[3], 0x20);
    g[2] = _mm256_permute2f128_ps(u[0], u[1], 0x31);
    g[3] = _mm256_permute2f128_ps(u[2], u[3], 0x31);
  }
};

#define WK_KERNEL WK_TARGET_AVX2
#include "span_kernels.inc"
#undef WK_KERNEL

}  // namespace wk::avx2
#endif
