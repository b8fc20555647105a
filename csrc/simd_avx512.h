// AVX-512 traits of the span kernels: 16 fp32 lanes, k-register masks. What this ISA does
// differently from AVX2 is all here; the kernels themselves (span_kernels.inc) are written once.
//  - loads: bf16 widened 32 at a time by one shift (even entries) and one and (odd entries) of the
//    32-bit lanes, fp16 by vcvtph2ps;
//  - exp's 2^n by scalef, zeroing the lanes off `keep` for free; entropy's masked FMA;
//  - Philox words in 64-bit lanes (8 counters a register) with ternary-logic XORs, packed to 16
//    32-bit lanes by vpmovqd; 512-bit reductions.
#pragma once

#include <cstdint>
#include <limits>

#include "common.h"

#if WK_X86
#include <immintrin.h>

namespace wk::avx512 {

#define WK_OP WK_TARGET_AVX512 static inline __attribute__((always_inline))

struct Simd {
  using V = __m512;     // 16 fp32 lanes
  using I = __m512i;    // 16 32-bit or 8 64-bit integer lanes
  using M = __mmask16;  // lane mask of a comparison
  static constexpr int kW = 16;
  // Two 64-entry Philox chains per Gumbel block, so their 10 dependent rounds overlap.
  static constexpr int kGumbelGroups = 2;

  WK_OP V set1(float x) { return _mm512_set1_ps(x); }
  WK_OP I set32(int32_t x) { return _mm512_set1_epi32(x); }
  WK_OP I set64(uint64_t x) { return _mm512_set1_epi64(static_cast<long long>(x)); }
  WK_OP I bits(V v) { return _mm512_castps_si512(v); }
  WK_OP V from_bits(I i) { return _mm512_castsi512_ps(i); }

  // 2 * kW consecutive entries as two vectors, in any order of the entries (sums and maxima).
  WK_OP void load2(const float* p, V& a, V& b) {
    a = _mm512_loadu_ps(p);
    b = _mm512_loadu_ps(p + 16);
  }
  WK_OP void load2(const Bf16* p, V& a, V& b) {
    const __m512i w = _mm512_loadu_si512(p);  // lane i = entry 2i (low half) | entry 2i+1 (high half)
    a = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
    b = _mm512_castsi512_ps(_mm512_and_si512(w, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
  }
  WK_OP void load2(const F16* p, V& a, V& b) {
    a = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    b = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p) + 1));
  }
  // kW consecutive entries in order (locating the argmax).
  WK_OP V load(const float* p) { return _mm512_loadu_ps(p); }
  WK_OP V load(const Bf16* p) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }
  WK_OP V load(const F16* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  WK_OP void store(float* p, V v) { _mm512_storeu_ps(p, v); }

  WK_OP V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  WK_OP V fnmadd(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }
  WK_OP V max(V a, V b) { return _mm512_max_ps(a, b); }  // b where either is NaN
  WK_OP V min(V a, V b) { return _mm512_min_ps(a, b); }
  WK_OP M lt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  WK_OP M ge(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  WK_OP V blend(M m, V a, V b) { return _mm512_mask_blend_ps(m, a, b); }  // b where m
  // p * 2^n (n integral, t = n + 1.5 * 2^23 unused here), 0 off `keep`.
  WK_OP V pow2_keep(V p, V n, V t, M keep) {
    (void)t;
    return _mm512_maskz_scalef_ps(keep, p, n);
  }
  WK_OP V fmadd_keep(V a, V b, V c, M keep) { return _mm512_mask3_fmadd_ps(a, b, c, keep); }  // c off keep
  WK_OP float hsum(V v) { return _mm512_reduce_add_ps(v); }
  WK_OP float hmax(V v) { return _mm512_reduce_max_ps(v); }
  WK_OP unsigned eq_bits(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }

  template <int N>
  WK_OP I srl32(I a) {
    return _mm512_srli_epi32(a, N);
  }
  WK_OP I sub32(I a, I b) { return _mm512_sub_epi32(a, b); }
  WK_OP I dec32_where(I a, M m) { return _mm512_mask_sub_epi32(a, m, a, _mm512_set1_epi32(1)); }
  WK_OP V i32_to_f32(I a) { return _mm512_cvtepi32_ps(a); }
  WK_OP V u32_to_f32(I a) { return _mm512_cvtepu32_ps(a); }

  // Philox state in 64-bit lanes: vpmuludq reads only the low 32 bits of each lane and XOR is
  // lane-local, so the high halves may hold garbage; a round is 2 multiplies + 2 shifts + 2
  // three-way XORs per kW / 2 counters, with no blends.
  WK_OP I counters(uint64_t c0) {
    return _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(c0)), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
  }
  template <int N>
  WK_OP I srl64(I a) {
    return _mm512_srli_epi64(a, N);
  }
  WK_OP I mul32(I a, I b) { return _mm512_mul_epu32(a, b); }
  WK_OP I xor3(I a, I b, I c) { return _mm512_ternarylogic_epi64(a, b, c, 0x96); }
  WK_OP I minu32(I a, I b) { return _mm512_min_epu32(a, b); }
  WK_OP uint32_t hmin_lo32(I a) { return _mm512_mask_reduce_min_epu32(0x5555, a); }  // low halves only
  // The low 32 bits of the 64-bit lanes of lo, then of hi, as kW 32-bit lanes.
  WK_OP I pack_lo32(I lo, I hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(lo)), _mm512_cvtepi64_epi32(hi), 1);
  }
  // g[w] lane l = word w of counter l  ->  g[i] lane l = entry 16 i + l (entry 4 c + w = word w of counter c).
  WK_OP void transpose4(V g[4]) {
    const __m512d d0 = _mm512_castps_pd(_mm512_unpacklo_ps(g[0], g[1]));
    const __m512d d1 = _mm512_castps_pd(_mm512_unpackhi_ps(g[0], g[1]));
    const __m512d d2 = _mm512_castps_pd(_mm512_unpacklo_ps(g[2], g[3]));
    const __m512d d3 = _mm512_castps_pd(_mm512_unpackhi_ps(g[2], g[3]));
    const __m512 u0 = _mm512_castpd_ps(_mm512_unpacklo_pd(d0, d2)), u1 = _mm512_castpd_ps(_mm512_unpackhi_pd(d0, d2));
    const __m512 u2 = _mm512_castpd_ps(_mm512_unpacklo_pd(d1, d3)), u3 = _mm512_castpd_ps(_mm512_unpackhi_pd(d1, d3));
    const __m512 v0 = _mm512_shuffle_f32x4(u0, u1, 0x44), v1 = _mm512_shuffle_f32x4(u0, u1, 0xEE);
    const __m512 v2 = _mm512_shuffle_f32x4(u2, u3, 0x44), v3 = _mm512_shuffle_f32x4(u2, u3, 0xEE);
    g[0] = _mm512_shuffle_f32x4(v0, v2, 0x88);
    g[1] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
    g[2] = _mm512_shuffle_f32x4(v1, v3, 0x88);
    g[3] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
  }
};

#undef WK_OP

#define WK_KERNEL WK_TARGET_AVX512
#include "span_kernels.inc"
#undef WK_KERNEL

}  // namespace wk::avx512
#endif
