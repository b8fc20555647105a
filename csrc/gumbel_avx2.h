// AVX2 twin of gumbel_avx512.h: 8 Philox calls -> 32 Gumbel values -> 32 picks z/T + g, with the
// same prefilter. AVX2 lacks unsigned->float conversion, so fp32(w) is built from its two 16-bit
// halves (both exact in fp32, one rounding in the add: the correctly rounded value, as the scalar
// static_cast<float>). Same numbers as wk::philox/gumbel<kIsaAvx2> bit for bit.
#pragma once

#if WK_X86
#include <immintrin.h>

#include "common.h"

namespace wk {

WK_TARGET_AVX2 static inline __m256 log_avx2(__m256 x) {  // fast_log<kIsaAvx2>, 8 lanes
  const __m256i u = _mm256_castps_si256(x);
  __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(u, 23), _mm256_set1_epi32(126));
  __m256 m = _mm256_castsi256_ps(
      _mm256_or_si256(_mm256_and_si256(u, _mm256_set1_epi32(0x007FFFFF)), _mm256_set1_epi32(0x3F000000)));
  const __m256 small = _mm256_cmp_ps(m, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
  e = _mm256_add_epi32(e, _mm256_castps_si256(small));  // true lanes are -1
  const __m256 one = _mm256_set1_ps(1.0f);
  m = _mm256_blendv_ps(_mm256_sub_ps(m, one), _mm256_sub_ps(_mm256_add_ps(m, m), one), small);
  const __m256 z = _mm256_mul_ps(m, m);
  __m256 y = _mm256_set1_ps(7.0376836292e-2f);
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-1.1514610310e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(1.1676998740e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-1.2420140846e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(1.4249322787e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-1.6668057665e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(2.0000714765e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-2.4999993993e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(3.3333331174e-1f));
  y = _mm256_mul_ps(_mm256_mul_ps(y, m), z);
  const __m256 ef = _mm256_cvtepi32_ps(e);
  y = _mm256_fmadd_ps(ef, _mm256_set1_ps(-2.12194440e-4f), y);
  y = _mm256_fmadd_ps(z, _mm256_set1_ps(-0.5f), y);
  return _mm256_fmadd_ps(ef, _mm256_set1_ps(0.693359375f), _mm256_add_ps(m, y));
}

WK_TARGET_AVX2 static inline __m256 gumbel_avx2(__m256i word) {  // gumbel(uniform_from_word(w))
  const __m256 hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(word, 16));
  const __m256 lo = _mm256_cvtepi32_ps(_mm256_and_si256(word, _mm256_set1_epi32(0xFFFF)));
  const __m256 wf = _mm256_add_ps(_mm256_mul_ps(hi, _mm256_set1_ps(65536.0f)), lo);
  __m256 w = _mm256_mul_ps(_mm256_add_ps(wf, _mm256_set1_ps(0.5f)), _mm256_set1_ps(0x1.0p-32f));
  w = _mm256_min_ps(w, _mm256_set1_ps(kOneMinusUlp));
  const __m256 w2 = _mm256_mul_ps(w, w);
  const __m256 series = _mm256_add_ps(_mm256_add_ps(w, _mm256_mul_ps(w2, _mm256_set1_ps(0.5f))),
                                      _mm256_mul_ps(_mm256_mul_ps(w2, w), _mm256_set1_ps(kThird)));
  const __m256 neg = _mm256_set1_ps(-0.0f);
  const __m256 big = _mm256_xor_ps(log_avx2(_mm256_sub_ps(_mm256_set1_ps(1.0f), w)), neg);
  const __m256 use_series = _mm256_cmp_ps(w, _mm256_set1_ps(kSeriesCutoff), _CMP_LT_OQ);
  return _mm256_xor_ps(log_avx2(_mm256_blendv_ps(big, series, use_series)), neg);
}

WK_TARGET_AVX2 static inline void mulhilo_avx2(__m256i a, __m256i m, __m256i& hi, __m256i& lo) {
  const __m256i pe = _mm256_mul_epu32(a, m);
  const __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
  lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
}

WK_TARGET_AVX2 static inline float hmax_avx2(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

// picks[0..32) = z[0..32) * it + noise of counters ctr0 .. ctr0+7; returns their max, or -inf
// without writing picks when no entry can beat `best_so_far` (see gumbel_block_avx512).
WK_TARGET_AVX2 static float gumbel_block_avx2(const float* z, float it, float zmax_it, float best_so_far,
                                              uint64_t ctr0, uint32_t step, uint32_t key0, uint32_t key1,
                                              float* picks) {
  alignas(32) uint32_t lo32[8], hi32[8];
  for (int l = 0; l < 8; ++l) {
    lo32[l] = static_cast<uint32_t>(ctr0 + l);
    hi32[l] = static_cast<uint32_t>((ctr0 + l) >> 32);
  }
  __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo32));
  __m256i c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi32));
  __m256i c2 = _mm256_set1_epi32(static_cast<int32_t>(step));
  __m256i c3 = _mm256_set1_epi32(kStreamGumbel);
  const __m256i m0 = _mm256_set1_epi64x(kPhiloxM0), m1 = _mm256_set1_epi64x(kPhiloxM1);
  uint32_t k0 = key0, k1 = key1;
  for (int round = 0; round < 10; ++round) {
    __m256i hi0, lo0, hi1, lo1;
    mulhilo_avx2(c0, m0, hi0, lo0);
    mulhilo_avx2(c2, m1, hi1, lo1);
    c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(static_cast<int32_t>(k0)));
    c1 = lo1;
    c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(static_cast<int32_t>(k1)));
    c3 = lo0;
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  const __m256i wmin = _mm256_min_epu32(_mm256_min_epu32(c0, c1), _mm256_min_epu32(c2, c3));
  const float g_hi = hmax_avx2(gumbel_avx2(wmin));
  if (zmax_it + (g_hi + 1e-3f) < best_so_far) return -INFINITY;
  const __m256 g0 = gumbel_avx2(c0), g1 = gumbel_avx2(c1), g2 = gumbel_avx2(c2), g3 = gumbel_avx2(c3);
  const __m256 t0 = _mm256_unpacklo_ps(g0, g1), t1 = _mm256_unpackhi_ps(g0, g1);
  const __m256 t2 = _mm256_unpacklo_ps(g2, g3), t3 = _mm256_unpackhi_ps(g2, g3);
  const __m256d d0 = _mm256_castps_pd(t0), d1 = _mm256_castps_pd(t1);
  const __m256d d2 = _mm256_castps_pd(t2), d3 = _mm256_castps_pd(t3);
  const __m256 u0 = _mm256_castpd_ps(_mm256_unpacklo_pd(d0, d2)), u1 = _mm256_castpd_ps(_mm256_unpackhi_pd(d0, d2));
  const __m256 u2 = _mm256_castpd_ps(_mm256_unpacklo_pd(d1, d3)), u3 = _mm256_castpd_ps(_mm256_unpackhi_pd(d1, d3));
  const __m256 e[4] = {_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u2, u3, 0x20),
                       _mm256_permute2f128_ps(u0, u1, 0x31), _mm256_permute2f128_ps(u2, u3, 0x31)};
  const __m256 itv = _mm256_set1_ps(it);
  __m256 best = _mm256_set1_ps(-INFINITY);
  for (int i = 0; i < 4; ++i) {
    const __m256 p = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(z + 8 * i), itv), e[i]);
    _mm256_storeu_ps(picks + 8 * i, p);
    best = _mm256_max_ps(best, p);
  }
  return hmax_avx2(best);
}

}  // namespace wk
#endif
