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
#include <limits>

#include "common.h"

#if WK_X86
#include <immintrin.h>

namespace wk::avx2 {

#define WK_OP WK_TARGET_AVX2 static inline __attribute__((always_inline))

struct Simd {
  using V = __m256;   // 8 fp32 lanes
  using I = __m256i;  // 8 32-bit or 4 64-bit integer lanes
  using M = __m256;   // comparison result: all-ones lanes where true
  static constexpr int kW = 8;
  // One 32-entry Philox chain per Gumbel block: a second would not fit the 16 ymm registers.
  static constexpr int kGumbelGroups = 1;

  WK_OP V set1(float x) { return _mm256_set1_ps(x); }
  WK_OP I set32(int32_t x) { return _mm256_set1_epi32(x); }
  WK_OP I set64(uint64_t x) { return _mm256_set1_epi64x(static_cast<long long>(x)); }
  WK_OP I bits(V v) { return _mm256_castps_si256(v); }
  WK_OP V from_bits(I i) { return _mm256_castsi256_ps(i); }

  // 2 * kW consecutive entries as two vectors, in any order of the entries (sums and maxima).
  WK_OP void load2(const float* p, V& a, V& b) {
    a = _mm256_loadu_ps(p);
    b = _mm256_loadu_ps(p + 8);
  }
  WK_OP void load2(const Bf16* p, V& a, V& b) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));  // lane i = entries 2i | 2i+1
    a = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
    b = _mm256_castsi256_ps(_mm256_and_si256(w, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
  }
  WK_OP void load2(const F16* p, V& a, V& b) {  // F16C is part of WK_TARGET_AVX2 (cpu_isa checks it)
    a = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    b = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p) + 1));
  }
  // kW consecutive entries in order (locating the argmax).
  WK_OP V load(const float* p) { return _mm256_loadu_ps(p); }
  WK_OP V load(const Bf16* p) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
  WK_OP V load(const F16* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  WK_OP void store(float* p, V v) { _mm256_storeu_ps(p, v); }

  WK_OP V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  WK_OP V fnmadd(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }
  WK_OP V max(V a, V b) { return _mm256_max_ps(a, b); }  // b where either is NaN
  WK_OP V min(V a, V b) { return _mm256_min_ps(a, b); }
  WK_OP M lt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  WK_OP M ge(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  WK_OP V blend(M m, V a, V b) { return _mm256_blendv_ps(a, b, m); }  // b where m
  // p * 2^n by the exponent field (see the header comment), 0 off `keep` (where t may be anything).
  WK_OP V pow2_keep(V p, V n, V t, M keep) {
    (void)n;
    const __m256i e = _mm256_add_epi32(_mm256_castps_si256(p), _mm256_slli_epi32(_mm256_castps_si256(t), 23));
    return _mm256_and_ps(_mm256_castsi256_ps(e), keep);
  }
  // a * b + c with b cleared off `keep` (there e = 0, and 0 * -inf would be NaN).
  WK_OP V fmadd_keep(V a, V b, V c, M keep) { return _mm256_fmadd_ps(a, _mm256_and_ps(b, keep), c); }
  WK_OP float hsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
  }
  WK_OP float hmax(V v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
  }
  WK_OP unsigned eq_bits(V a, V b) {
    return static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_EQ_OQ)));
  }

  template <int N>
  WK_OP I srl32(I a) {
    return _mm256_srli_epi32(a, N);
  }
  WK_OP I sub32(I a, I b) { return _mm256_sub_epi32(a, b); }
  WK_OP I dec32_where(I a, M m) { return _mm256_add_epi32(a, _mm256_castps_si256(m)); }  // true lanes are -1
  WK_OP V i32_to_f32(I a) { return _mm256_cvtepi32_ps(a); }
  WK_OP V u32_to_f32(I a) {
    const __m256 hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(a, 16));
    const __m256 lo = _mm256_cvtepi32_ps(_mm256_and_si256(a, _mm256_set1_epi32(0xFFFF)));
    return _mm256_add_ps(_mm256_mul_ps(hi, _mm256_set1_ps(65536.0f)), lo);
  }

  // Philox state in 64-bit lanes, as in simd_avx512.h (4 counters a register, two plain XORs).
  WK_OP I counters(uint64_t c0) {
    return _mm256_add_epi64(_mm256_set1_epi64x(static_cast<long long>(c0)), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  template <int N>
  WK_OP I srl64(I a) {
    return _mm256_srli_epi64(a, N);
  }
  WK_OP I mul32(I a, I b) { return _mm256_mul_epu32(a, b); }
  WK_OP I xor3(I a, I b, I c) { return _mm256_xor_si256(_mm256_xor_si256(a, b), c); }
  WK_OP I minu32(I a, I b) { return _mm256_min_epu32(a, b); }
  WK_OP uint32_t hmin_lo32(I a) {  // lanes 0, 2, 4, 6: the low halves of the 64-bit lanes
    __m128i m = _mm_min_epu32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    m = _mm_min_epu32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(3, 2, 3, 2)));
    return static_cast<uint32_t>(_mm_cvtsi128_si32(m));
  }
  // The low 32 bits of the 64-bit lanes of lo, then of hi, as kW 32-bit lanes.
  WK_OP I pack_lo32(I lo, I hi) {
    const __m256 s = _mm256_shuffle_ps(_mm256_castsi256_ps(lo), _mm256_castsi256_ps(hi), _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_permute4x64_epi64(_mm256_castps_si256(s), _MM_SHUFFLE(3, 1, 2, 0));
  }
  // g[w] lane l = word w of counter l  ->  g[i] lane l = entry 8 i + l (entry 4 c + w = word w of counter c).
  WK_OP void transpose4(V g[4]) {
    const __m256d d0 = _mm256_castps_pd(_mm256_unpacklo_ps(g[0], g[1]));
    const __m256d d1 = _mm256_castps_pd(_mm256_unpackhi_ps(g[0], g[1]));
    const __m256d d2 = _mm256_castps_pd(_mm256_unpacklo_ps(g[2], g[3]));
    const __m256d d3 = _mm256_castps_pd(_mm256_unpackhi_ps(g[2], g[3]));
    const __m256 u0 = _mm256_castpd_ps(_mm256_unpacklo_pd(d0, d2)), u1 = _mm256_castpd_ps(_mm256_unpackhi_pd(d0, d2));
    const __m256 u2 = _mm256_castpd_ps(_mm256_unpacklo_pd(d1, d3)), u3 = _mm256_castpd_ps(_mm256_unpackhi_pd(d1, d3));
    g[0] = _mm256_permute2f128_ps(u0, u1, 0x20);
    g[1] = _mm256_permute2f128_ps(u2, u3, 0x20);
    g[2] = _mm256_permute2f128_ps(u0, u1, 0x31);
    g[3] = _mm256_permute2f128_ps(u2, u3, 0x31);
  }
};

#undef WK_OP

#define WK_KERNEL WK_TARGET_AVX2
#include "span_kernels.inc"
#undef WK_KERNEL

}  // namespace wk::avx2
#endif
