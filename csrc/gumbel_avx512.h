// AVX-512 Gumbel-max block: 32 Philox4x32-10 calls -> 128 Gumbel values -> 128 picks z/T + g.
//
// The generic loop in stats_row.h does not auto-vectorise (GCC cannot vectorise the 32x32->64
// high product of Philox), and this block is the whole cost of sampling at T > 0, so it is
// written with intrinsics: even/odd vpmuludq for the products, fp32 Cephes log for the noise and
// a 4x16 transpose from Philox word order back to vocabulary order. Same numbers as
// wk::philox/gumbel<kIsaAvx512> (scalar) bit for bit.
#pragma once

#if WK_X86
#include <immintrin.h>

#include "common.h"

namespace wk {

WK_TARGET_AVX512 static inline __m512 log_avx512(__m512 x) {  // fast_log<kIsaAvx512>, 16 lanes
  const __m512i u = _mm512_castps_si512(x);
  __m512i e = _mm512_sub_epi32(_mm512_srli_epi32(u, 23), _mm512_set1_epi32(126));
  __m512 m = _mm512_castsi512_ps(
      _mm512_or_si512(_mm512_and_si512(u, _mm512_set1_epi32(0x007FFFFF)), _mm512_set1_epi32(0x3F000000)));
  const __mmask16 small = _mm512_cmp_ps_mask(m, _mm512_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
  e = _mm512_mask_sub_epi32(e, small, e, _mm512_set1_epi32(1));
  const __m512 one = _mm512_set1_ps(1.0f);
  m = _mm512_mask_blend_ps(small, _mm512_sub_ps(m, one), _mm512_sub_ps(_mm512_add_ps(m, m), one));
  const __m512 z = _mm512_mul_ps(m, m);
  __m512 y = _mm512_set1_ps(7.0376836292e-2f);
  y = _mm512_fmadd_ps(y, m, _mm512_set1_ps(-1.1514610310e-1f));
  y = _mm512_fmadd_ps(y, m, _mm512_set1_ps(1.1676998740e-1f));
  y = _mm512_fmadd_ps(y, m, _mm512_set1_ps(-1.2420140846e-1f));
  y = _mm512_fmadd_ps(y, m, _mm512_set1_ps(1.4249322787e-1f));
  y = _mm512_fmadd_ps(y, m, _mm512_set1_ps(-1.6668057665e-1f));
  y = _mm512_fmadd_ps(y, m, _mm512_set1_ps(2.0000714765e-1f));
  y = _mm512_fmadd_ps(y, m, _mm512_set1_ps(-2.4999993993e-1f));
  y = _mm512_fmadd_ps(y, m, _mm512_set1_ps(3.3333331174e-1f));
  y = _mm512_mul_ps(_mm512_mul_ps(y, m), z);
  const __m512 ef = _mm512_cvtepi32_ps(e);
  y = _mm512_fmadd_ps(ef, _mm512_set1_ps(-2.12194440e-4f), y);
  y = _mm512_fmadd_ps(z, _mm512_set1_ps(-0.5f), y);
  return _mm512_fmadd_ps(ef, _mm512_set1_ps(0.693359375f), _mm512_add_ps(m, y));
}

WK_TARGET_AVX512 static inline __m512 gumbel_avx512(__m512i word) {  // gumbel(uniform_from_word(w))
  __m512 w = _mm512_mul_ps(_mm512_add_ps(_mm512_cvtepu32_ps(word), _mm512_set1_ps(0.5f)), _mm512_set1_ps(0x1.0p-32f));
  w = _mm512_min_ps(w, _mm512_set1_ps(kOneMinusUlp));
  const __m512 w2 = _mm512_mul_ps(w, w);
  const __m512 series = _mm512_add_ps(_mm512_add_ps(w, _mm512_mul_ps(w2, _mm512_set1_ps(0.5f))),
                                      _mm512_mul_ps(_mm512_mul_ps(w2, w), _mm512_set1_ps(kThird)));
  const __m512 neg = _mm512_set1_ps(-0.0f);
  const __m512 big = _mm512_xor_ps(log_avx512(_mm512_sub_ps(_mm512_set1_ps(1.0f), w)), neg);
  const __mmask16 use_series = _mm512_cmp_ps_mask(w, _mm512_set1_ps(kSeriesCutoff), _CMP_LT_OQ);
  const __m512 e = _mm512_mask_blend_ps(use_series, big, series);
  return _mm512_xor_ps(log_avx512(e), neg);
}

// Low 32 bits of two registers of 8 x 64-bit lanes, as one register of 16 x 32-bit lanes.
WK_TARGET_AVX512 static inline __m512i pack_lo32(__m512i lo8, __m512i hi8) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(lo8)), _mm512_cvtepi64_epi32(hi8), 1);
}

// Upper bound of gumbel(uniform_from_word(w)), without a log: gumbel(u) = -log(-log(1 - u)) <=
// -log(u) since -log(1 - u) >= u, and -log(u) <= -ln2 * (bits(u) * 2^-23 - 127) because reading
// the bits of u as exponent + mantissa is the chord interpolation of the concave log2 (looser
// than -log(u) by at most 0.06; the clamp of u below 1 adds at most 6e-8). Checked against
// gumbel<kIsaAvx512> on every 61st word and the 10^5 words at each end: never below it, at most
// 0.11 above where the noise exceeds 2.
static inline float gumbel_upper(uint32_t w) {
  const float u = (static_cast<float>(w) + 0.5f) * 0x1.0p-32f;
  return (127.0f - static_cast<float>(f2u(u)) * 0x1.0p-23f) * 0.693147181f;
}

// picks[0..128) = z[0..128) * it + Gumbel noise of counters ctr0 .. ctr0+31; returns their max.
// A 64-entry half whose entries cannot beat `best_so_far` gets -inf picks instead (see the
// prefilter); the result is then -inf or a value the caller's strict `>` treats the same way.
WK_TARGET_AVX512 static float gumbel_block_avx512(const float* z, float it, float zmax_it, float best_so_far,
                                                  uint64_t ctr0, uint32_t step, uint32_t key0, uint32_t key1,
                                                  float* picks) {
  // Philox state in 64-bit lanes, 8 counters per register: vpmuludq reads only the low 32 bits
  // of each lane and XOR is lane-local, so the high halves may hold garbage. A round is then
  // 2 multiplies + 2 shifts + 2 three-way XORs per 8 counters, with no blends. Four independent
  // groups (32 counters) keep the 10 dependent rounds overlapped.
  constexpr int kChains = 2;   // 16-lane outputs, 64 entries each
  constexpr int kGroups = 4;   // 8 counters each
  const __m512i iota = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
  __m512i q0[kGroups], q1[kGroups], q2[kGroups], q3[kGroups];
  for (int gi = 0; gi < kGroups; ++gi) {
    const __m512i ctr = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(ctr0 + 8u * gi)), iota);
    q0[gi] = ctr;                          // low 32 bits: counter word 0
    q1[gi] = _mm512_srli_epi64(ctr, 32);   // counter word 1
    q2[gi] = _mm512_set1_epi64(step);
    q3[gi] = _mm512_set1_epi64(kStreamGumbel);
  }
  const __m512i m0 = _mm512_set1_epi64(kPhiloxM0), m1 = _mm512_set1_epi64(kPhiloxM1);
  uint32_t k0 = key0, k1 = key1;
  for (int round = 0; round < 10; ++round) {
    const __m512i kv0 = _mm512_set1_epi64(k0), kv1 = _mm512_set1_epi64(k1);
    for (int gi = 0; gi < kGroups; ++gi) {
      const __m512i p0 = _mm512_mul_epu32(q0[gi], m0);
      const __m512i p1 = _mm512_mul_epu32(q2[gi], m1);
      q0[gi] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p1, 32), q1[gi], kv0, 0x96);
      q1[gi] = p1;  // low half = lo1
      q2[gi] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p0, 32), q3[gi], kv1, 0x96);
      q3[gi] = p0;  // low half = lo0
    }
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  // Prefilter, per chain of 64 entries: the Gumbel transform is decreasing in the word, so the
  // smallest word of a chain bounds every noise value in it; a chain whose bound cannot reach the
  // best pick skips both logs of its 64 entries (most chains once the best has grown: it grows
  // like log V, a chain's bound like log 64). The bound is gumbel_upper, scalar and log-free; the
  // 1e-3 margin dwarfs its fp32 rounding and any non-monotonicity of fast_log (ulp level). The
  // minimum is taken over the low halves of the 64-bit lanes (mask 0x5555), before packing.
  float g_hi[kChains];
  for (int ch = 0; ch < kChains; ++ch) {
    __m512i w = _mm512_setzero_si512();
    for (int gi = 2 * ch; gi < 2 * ch + 2; ++gi) {
      const __m512i wg = _mm512_min_epu32(_mm512_min_epu32(q0[gi], q1[gi]), _mm512_min_epu32(q2[gi], q3[gi]));
      w = gi == 2 * ch ? wg : _mm512_min_epu32(w, wg);
    }
    g_hi[ch] = gumbel_upper(static_cast<uint32_t>(_mm512_mask_reduce_min_epu32(0x5555, w)));
  }
  (void)zmax_it;  // the per-chain maxima below are tighter than the caller's block bound

  const __m512 itv = _mm512_set1_ps(it);
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  __m512 best = ninf;
  for (int ch = 0; ch < kChains; ++ch) {
    const float* zc = z + 64 * ch;
    const __m512 zm = _mm512_max_ps(_mm512_max_ps(_mm512_loadu_ps(zc), _mm512_loadu_ps(zc + 16)),
                                    _mm512_max_ps(_mm512_loadu_ps(zc + 32), _mm512_loadu_ps(zc + 48)));
    if (_mm512_reduce_max_ps(zm) * it + (g_hi[ch] + 1e-3f) < best_so_far) {
      for (int i = 0; i < 4; ++i) _mm512_storeu_ps(picks + 64 * ch + 16 * i, ninf);  // the caller scans all picks
      continue;
    }
    // Pack to 16 x 32-bit lanes: chain ch = groups 2ch (counters 0-7) and 2ch+1 (8-15).
    const __m512 g0 = gumbel_avx512(pack_lo32(q0[2 * ch], q0[2 * ch + 1]));
    const __m512 g1 = gumbel_avx512(pack_lo32(q1[2 * ch], q1[2 * ch + 1]));
    const __m512 g2 = gumbel_avx512(pack_lo32(q2[2 * ch], q2[2 * ch + 1]));
    const __m512 g3 = gumbel_avx512(pack_lo32(q3[2 * ch], q3[2 * ch + 1]));
    // Transpose: lane l of word w is vocabulary entry 4l + w of this chain's 64 entries.
    const __m512 t0 = _mm512_unpacklo_ps(g0, g1), t1 = _mm512_unpackhi_ps(g0, g1);
    const __m512 t2 = _mm512_unpacklo_ps(g2, g3), t3 = _mm512_unpackhi_ps(g2, g3);
    const __m512d d0 = _mm512_castps_pd(t0), d1 = _mm512_castps_pd(t1);
    const __m512d d2 = _mm512_castps_pd(t2), d3 = _mm512_castps_pd(t3);
    const __m512 u0 = _mm512_castpd_ps(_mm512_unpacklo_pd(d0, d2)), u1 = _mm512_castpd_ps(_mm512_unpackhi_pd(d0, d2));
    const __m512 u2 = _mm512_castpd_ps(_mm512_unpacklo_pd(d1, d3)), u3 = _mm512_castpd_ps(_mm512_unpackhi_pd(d1, d3));
    const __m512 v0 = _mm512_shuffle_f32x4(u0, u1, 0x44), v1 = _mm512_shuffle_f32x4(u0, u1, 0xEE);
    const __m512 v2 = _mm512_shuffle_f32x4(u2, u3, 0x44), v3 = _mm512_shuffle_f32x4(u2, u3, 0xEE);
    const __m512 e[4] = {_mm512_shuffle_f32x4(v0, v2, 0x88), _mm512_shuffle_f32x4(v0, v2, 0xDD),
                         _mm512_shuffle_f32x4(v1, v3, 0x88), _mm512_shuffle_f32x4(v1, v3, 0xDD)};
    for (int i = 0; i < 4; ++i) {
      const int64_t off = 64 * ch + 16 * i;
      const __m512 p = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(z + off), itv), e[i]);
      _mm512_storeu_ps(picks + off, p);
      best = _mm512_max_ps(best, p);
    }
  }
  return _mm512_reduce_max_ps(best);
}

}  // namespace wk
#endif
