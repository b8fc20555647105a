// AVX-512 fast path of stats_row for the plain stretches of a row (no CFG, no Gumbel draw, no mask
// column or suppressed id inside): the softmax sum, argmax and top-2 straight from the input in
// registers, without the fp32 chunk buffer of the generic path.
//
// A span of up to kSpan entries (L1-resident) is read twice: span_max (load, widen, max / top-2),
// then sum_exp (reload, widen, exp, sum) once the running max is known; the argmax is located
// (span_first_equal) only when the span's max beats the best so far. The order of the entries
// inside a span does not matter to either, so bf16 is widened 32 at a time by one shift (even
// entries) and one and (odd entries) of the 32-bit lanes. NaN entries count as -inf as the spec
// says, for free: max_ps(v, acc) keeps acc when v is NaN, and exp's d >= floor test is false for
// NaN, so the lane adds exactly 0 (as for -inf entries).
#pragma once

#include <limits>
#include <type_traits>

#include "common.h"

#if WK_X86
#include <immintrin.h>

namespace wk {

// 32 consecutive entries as two registers of 16 fp32 lanes, in any order of the entries.
template <class T>
WK_TARGET_AVX512 static inline void load32_avx512(const T* p, __m512& a, __m512& b) {
  if constexpr (sizeof(T) == 4) {
    a = _mm512_loadu_ps(reinterpret_cast<const float*>(p));
    b = _mm512_loadu_ps(reinterpret_cast<const float*>(p) + 16);
  } else if constexpr (std::is_same_v<T, Bf16>) {
    const __m512i w = _mm512_loadu_si512(p);  // lane i = entry 2i (low half) | entry 2i+1 (high half)
    a = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
    b = _mm512_castsi512_ps(_mm512_and_si512(w, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
  } else {
    a = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    b = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p) + 1));
  }
}

// 16 consecutive entries in order (for locating the argmax).
template <class T>
WK_TARGET_AVX512 static inline __m512 load16_avx512(const T* p) {
  if constexpr (sizeof(T) == 4) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(p));
  } else if constexpr (std::is_same_v<T, Bf16>) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  } else {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
}

// Max of the span (NaN ignored); with TOP2 also the per-lane top-2 of the span into t1/t2 (16
// floats each, -inf where fewer). n is a multiple of kSpanStep.
template <class T, bool TOP2>
WK_TARGET_AVX512 static inline float span_max_avx512(const T* src, int64_t n, float* t1, float* t2) {
  // 4 independent chains: max_ps has 4 cycles of latency and 2 issue ports.
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 m[4] = {ninf, ninf, ninf, ninf};
  __m512 s[4] = {ninf, ninf, ninf, ninf};
  for (int64_t i = 0; i < n; i += kSpanStep) {
    __m512 v[4];
    load32_avx512(src + i, v[0], v[1]);
    load32_avx512(src + i + 32, v[2], v[3]);
    for (int k = 0; k < 4; ++k) {
      if constexpr (TOP2) {
        // Operand order keeps NaN out: min_ps(m, v) is NaN for NaN v, and max_ps(NaN, s) is s.
        s[k] = _mm512_max_ps(_mm512_min_ps(m[k], v[k]), s[k]);
      }
      m[k] = _mm512_max_ps(v[k], m[k]);
    }
  }
  if constexpr (TOP2) {  // merge the four (top1, top2) pairs lane-wise
    for (int k = 1; k < 4; ++k) {
      s[0] = _mm512_max_ps(_mm512_max_ps(s[0], s[k]), _mm512_min_ps(m[0], m[k]));
      m[0] = _mm512_max_ps(m[0], m[k]);
    }
    _mm512_storeu_ps(t1, m[0]);
    _mm512_storeu_ps(t2, s[0]);
    return _mm512_reduce_max_ps(m[0]);
  }
  return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m[0], m[1]), _mm512_max_ps(m[2], m[3])));
}

// exp(d) for d <= 0, 0 where d < kExpFloor or d is NaN (lanes off in `keep`). n = round(d / ln2),
// r = d - n ln2 in one FMA (the fp32 rounding of ln2 adds up to |n| * 1.9e-9 to r), a degree-5
// minimax polynomial for exp(r), |r| <= ln2/2 (weighted Lawson fit, approximation error 7.5e-8),
// and 2^n by scalef (9 instructions per 16 entries, no integer exponent arithmetic). Max relative error
// against double exp, every 16th float: 2.1e-7 over [-10, 0], 4.0e-7 over [-80, 0] (near the
// floor, from the one-FMA reduction), i.e. >25x inside the 1e-5 score tolerance.
WK_TARGET_AVX512 static inline __m512 exp_avx512(__m512 d, __mmask16 keep) {
  const __m512 shifter = _mm512_set1_ps(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(d, _mm512_set1_ps(1.44269504088896341f), shifter), shifter);
  const __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693147180559945309f), d);
  __m512 p = _mm512_set1_ps(8.2976194099e-3f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1915629059e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6667576134e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.9998891354e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.9999970198e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0000001192e+0f));
  return _mm512_maskz_scalef_ps(keep, p, n);
}

// sum(exp(z * sc - Mt)) (and sum(exp(z * sc - Mt) * (z * sc - Mt)) for ENTROPY) over n entries
// into s (h); sc is only applied when SCALED (* 1 is exact). Prefetches the n entries after `next`
// when it is not null. Also the generic path's softmax over its fp32 chunk buffer.
template <class T, bool ENTROPY, bool SCALED>
WK_TARGET_AVX512 static inline void sum_exp_avx512(const T* src, int64_t n, float sc, float Mt, const T* next,
                                                   float& s, float& h) {
  const __m512 scale = _mm512_set1_ps(sc);
  const __m512 mt = _mm512_set1_ps(Mt);
  const __m512 floor = _mm512_set1_ps(kExpFloor);
  // 4 accumulators: each lane sums n/64 terms (64 at kSpan), as many as the generic path's chunks.
  __m512 acc[4], hacc[4];
  for (int k = 0; k < 4; ++k) acc[k] = hacc[k] = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += kSpanStep) {
    __m512 v[4];
    load32_avx512(src + i, v[0], v[1]);
    load32_avx512(src + i + 32, v[2], v[3]);
    // The next span (or the next row) into L1 while this one computes: span_max then finds its
    // data there instead of waiting on L2/L3 (measured 14% of the T = 0 step).
    if (next != nullptr) {
      for (int64_t b = 0; b < kSpanStep * static_cast<int64_t>(sizeof(T)); b += 64)
        _mm_prefetch(reinterpret_cast<const char*>(next + i) + b, _MM_HINT_T0);
    }
    for (int k = 0; k < 4; ++k) {
      const __m512 d = _mm512_sub_ps(SCALED ? _mm512_mul_ps(v[k], scale) : v[k], mt);
      const __mmask16 keep = _mm512_cmp_ps_mask(d, floor, _CMP_GE_OQ);
      const __m512 e = exp_avx512(d, keep);
      acc[k] = _mm512_add_ps(acc[k], e);
      if constexpr (ENTROPY) hacc[k] = _mm512_mask3_fmadd_ps(e, d, hacc[k], keep);  // skip 0 * -inf
    }
  }
  s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
  if constexpr (ENTROPY)
    h = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(hacc[0], hacc[1]), _mm512_add_ps(hacc[2], hacc[3])));
}

// Index of the first entry equal to v in the span (v is a value of it, so one is found).
template <class T>
WK_TARGET_AVX512 static inline int64_t span_first_equal_avx512(const T* src, int64_t n, float v) {
  const __m512 vv = _mm512_set1_ps(v);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 eq = _mm512_cmp_ps_mask(load16_avx512(src + i), vv, _CMP_EQ_OQ);
    if (eq != 0) return i + __builtin_ctz(eq);
  }
  return -1;
}

}  // namespace wk
#endif
