// AVX2 twin of stats_avx512.h: the fast spans of stats_row (T = 0 rows, no CFG, no Gumbel draw, no
// mask column or suppressed id inside) with 8 fp32 lanes. Same algorithm, same span geometry
// (kSpan, kSpanStep in common.h), same exp: only the places where AVX2 lacks an AVX-512 instruction
// differ, and each is exact:
//  - no masks: comparisons give all-ones lanes, and-ed into the result (e = 0 off the mask);
//  - no scalef: 2^n is added to p's exponent field as an integer (p * 2^n exactly, the result is
//    normal for every kept lane), so exp_avx2 returns the same bits as exp_avx512;
//  - no 512-bit reductions: 8-lane horizontal max / sum at the end of a span.
// NaN entries count as -inf as in the AVX-512 code: max_ps(v, acc) keeps acc when v is NaN, and
// the d >= floor test is false for NaN, so the lane adds exactly 0.
#pragma once

#include <limits>
#include <type_traits>

#include "common.h"
#include "gumbel_avx2.h"  // hmax_avx2

#if WK_X86
#include <immintrin.h>

namespace wk {

static_assert(kSpanStep % 16 == 0, "the AVX2 span loops take 16 entries per load16_avx2");

// 16 consecutive entries as two registers of 8 fp32 lanes, in any order of the entries.
template <class T>
WK_TARGET_AVX2 static inline void load16_avx2(const T* p, __m256& a, __m256& b) {
  if constexpr (sizeof(T) == 4) {
    a = _mm256_loadu_ps(reinterpret_cast<const float*>(p));
    b = _mm256_loadu_ps(reinterpret_cast<const float*>(p) + 8);
  } else if constexpr (std::is_same_v<T, Bf16>) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));  // lane i = entries 2i | 2i+1
    a = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
    b = _mm256_castsi256_ps(_mm256_and_si256(w, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
  } else {  // F16C (part of WK_TARGET_AVX2, required by cpu_isa for the AVX2 variant)
    a = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    b = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p) + 1));
  }
}

// 8 consecutive entries in order (for locating the argmax).
template <class T>
WK_TARGET_AVX2 static inline __m256 load8_avx2(const T* p) {
  if constexpr (sizeof(T) == 4) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  } else if constexpr (std::is_same_v<T, Bf16>) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  } else {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
}

WK_TARGET_AVX2 static inline float hsum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// Max of the span (NaN ignored); with TOP2 also the per-lane top-2 of the span into t1/t2 (16
// floats each as stats_row's kLanes: the 8 lanes here, then -inf). The top-2 of the row is the
// top-2 of the union of the lanes' pairs whatever the lane count, so margin scores are the same
// values as with 16 lanes. n is a multiple of kSpanStep.
template <class T, bool TOP2>
WK_TARGET_AVX2 static inline float span_max_avx2(const T* src, int64_t n, float* t1, float* t2) {
  // 4 independent chains, each fed twice per step: enough to cover max_ps latency on Zen and Intel.
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 m[4] = {ninf, ninf, ninf, ninf};
  __m256 s[4] = {ninf, ninf, ninf, ninf};
  for (int64_t i = 0; i < n; i += kSpanStep) {
    __m256 v[kSpanStep / 8];
    for (int q = 0; q < kSpanStep / 16; ++q) load16_avx2(src + i + 16 * q, v[2 * q], v[2 * q + 1]);
    for (int j = 0; j < kSpanStep / 8; ++j) {
      const int k = j & 3;
      if constexpr (TOP2) {
        // Operand order keeps NaN out: min_ps(m, v) is NaN for NaN v, and max_ps(NaN, s) is s.
        s[k] = _mm256_max_ps(_mm256_min_ps(m[k], v[j]), s[k]);
      }
      m[k] = _mm256_max_ps(v[j], m[k]);
    }
  }
  if constexpr (TOP2) {  // merge the four (top1, top2) pairs lane-wise
    for (int k = 1; k < 4; ++k) {
      s[0] = _mm256_max_ps(_mm256_max_ps(s[0], s[k]), _mm256_min_ps(m[0], m[k]));
      m[0] = _mm256_max_ps(m[0], m[k]);
    }
    _mm256_storeu_ps(t1, m[0]);
    _mm256_storeu_ps(t2, s[0]);
    _mm256_storeu_ps(t1 + 8, ninf);
    _mm256_storeu_ps(t2 + 8, ninf);
    return hmax_avx2(m[0]);
  }
  return hmax_avx2(_mm256_max_ps(_mm256_max_ps(m[0], m[1]), _mm256_max_ps(m[2], m[3])));
}

// exp(d) for d <= 0, exactly 0 where d < kExpFloor or d is NaN (lanes off in `keep`, all-ones
// where kept). Same operations as exp_avx512 (one-FMA reduction r = d - n ln2, the degree-5 minimax
// polynomial for |r| <= ln2/2), except 2^n: the shifter's sum t = d log2e + 1.5 * 2^23 holds n in
// its low mantissa bits and bit 22 is its lowest other set bit, so t's bits << 23 are n << 23 mod
// 2^32 (one shift), added to p's exponent. Exact, since p * 2^n is normal for every kept lane
// (p in [0.7, 1.5], n >= -115 at d >= -80): the same bits as scalef. Lanes off `keep` may hold
// anything (d = -inf makes NaN) and are cleared by the and. Max relative error against double
// exp (standalone sweep): 2.1e-7 over [-10, 0] and 4.0e-7 over [-80, 0] (near the floor, from the
// one-FMA reduction) at every 16th float, 4.03e-7 at every float of [-80, 0], where the result is
// also bit-identical to a scalar model of exp_avx512 (same FMAs, ldexp for scalef).
WK_TARGET_AVX2 static inline __m256 exp_avx2(__m256 d, __m256 keep) {
  const __m256 shifter = _mm256_set1_ps(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const __m256 t = _mm256_fmadd_ps(d, _mm256_set1_ps(1.44269504088896341f), shifter);
  const __m256 n = _mm256_sub_ps(t, shifter);
  const __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693147180559945309f), d);
  __m256 p = _mm256_set1_ps(8.2976194099e-3f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1915629059e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6667576134e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.9998891354e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(9.9999970198e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0000001192e+0f));
  const __m256i e = _mm256_add_epi32(_mm256_castps_si256(p), _mm256_slli_epi32(_mm256_castps_si256(t), 23));
  return _mm256_and_ps(_mm256_castsi256_ps(e), keep);
}

// sum(exp(z * sc - Mt)) (and sum(exp(z * sc - Mt) * (z * sc - Mt)) for ENTROPY) over n entries
// into s (h); sc is only applied when SCALED (* 1 is exact). Prefetches the n entries after `next`
// when it is not null. Also the generic path's softmax over its fp32 chunk buffer.
template <class T, bool ENTROPY, bool SCALED>
WK_TARGET_AVX2 static inline void sum_exp_avx2(const T* src, int64_t n, float sc, float Mt, const T* next, float& s,
                                               float& h) {
  const __m256 scale = _mm256_set1_ps(sc);
  const __m256 mt = _mm256_set1_ps(Mt);
  const __m256 floor = _mm256_set1_ps(kExpFloor);
  // 4 accumulators, each fed twice per step: each lane sums n/32 terms (128 at kSpan).
  __m256 acc[4], hacc[4];
  for (int k = 0; k < 4; ++k) acc[k] = hacc[k] = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += kSpanStep) {
    __m256 v[kSpanStep / 8];
    for (int q = 0; q < kSpanStep / 16; ++q) load16_avx2(src + i + 16 * q, v[2 * q], v[2 * q + 1]);
    // The next span (or the next row) into L1 while this one computes, as in sum_exp_avx512.
    if (next != nullptr) {
      for (int64_t b = 0; b < kSpanStep * static_cast<int64_t>(sizeof(T)); b += 64)
        _mm_prefetch(reinterpret_cast<const char*>(next + i) + b, _MM_HINT_T0);
    }
    for (int j = 0; j < kSpanStep / 8; ++j) {
      const int k = j & 3;
      const __m256 d = _mm256_sub_ps(SCALED ? _mm256_mul_ps(v[j], scale) : v[j], mt);
      const __m256 keep = _mm256_cmp_ps(d, floor, _CMP_GE_OQ);
      const __m256 e = exp_avx2(d, keep);
      acc[k] = _mm256_add_ps(acc[k], e);
      // d cleared off `keep` too: e = 0 there, and 0 * -inf would be NaN.
      if constexpr (ENTROPY) hacc[k] = _mm256_fmadd_ps(e, _mm256_and_ps(d, keep), hacc[k]);
    }
  }
  s = hsum_avx2(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  if constexpr (ENTROPY) h = hsum_avx2(_mm256_add_ps(_mm256_add_ps(hacc[0], hacc[1]), _mm256_add_ps(hacc[2], hacc[3])));
}

// Index of the first entry equal to v in the span (v is a value of it, so one is found).
template <class T>
WK_TARGET_AVX2 static inline int64_t span_first_equal_avx2(const T* src, int64_t n, float v) {
  const __m256 vv = _mm256_set1_ps(v);
  for (int64_t i = 0; i < n; i += 8) {
    const int eq = _mm256_movemask_ps(_mm256_cmp_ps(load8_avx2(src + i), vv, _CMP_EQ_OQ));
    if (eq != 0) return i + __builtin_ctz(static_cast<unsigned>(eq));
  }
  return -1;
}

}  // namespace wk
#endif
