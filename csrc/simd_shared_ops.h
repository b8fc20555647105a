// The traits ops of simd_avx512.h and simd_avx2.h whose intrinsics differ between the two ISAs only
// in the width prefix P (_mm512 / _mm256) and the integer-vector suffix SI (si512 / si256): written
// once here and expanded first inside each traits struct, which also defines cmp<OP> / mask_bits (M:
// a comparison's result) and load_half (kW 16-bit entries). WK_OP is the ISA's op declaration: its
// target attribute, always_inline.
#pragma once

#include "common.h"

#define WK_OP_AVX512 WK_TARGET_AVX512 static inline __attribute__((always_inline))
#define WK_OP_AVX2 WK_TARGET_AVX2 static inline __attribute__((always_inline))

// clang-format off
#define WK_SIMD_SHARED_OPS(WK_OP, P, SI, MASK)                                                                \
  using V = decltype(P##_setzero_ps());     /* kW fp32 lanes */                                            \
  using I = decltype(P##_setzero_##SI());   /* kW 32-bit or kW / 2 64-bit integer lanes */                 \
  using M = MASK;                           /* a comparison's result */                                    \
  static constexpr int kW = sizeof(V) / sizeof(float);                                                     \
  WK_OP V set1(float x) { return P##_set1_ps(x); }                                                         \
  WK_OP I set32(int32_t x) { return P##_set1_epi32(x); }                                                   \
  WK_OP I bits(V v) { return P##_castps_##SI(v); }                                                         \
  WK_OP V from_bits(I i) { return P##_cast##SI##_ps(i); }                                                  \
  /* 2 kW consecutive entries as two vectors, in any order of the entries (sums and maxima). */           \
  WK_OP void load2(const float* p, V& a, V& b) {                                                           \
    a = P##_loadu_ps(p);                                                                                   \
    b = P##_loadu_ps(p + kW);                                                                              \
  }                                                                                                        \
  /* bf16: lane i = entries 2i (low half) | 2i+1 (high half), widened by one shift and one and. */        \
  WK_OP void load2(const Bf16* p, V& a, V& b) {                                                            \
    const I w = P##_loadu_##SI(reinterpret_cast<const I*>(p));                                             \
    a = P##_cast##SI##_ps(P##_slli_epi32(w, 16));                                                          \
    b = P##_cast##SI##_ps(P##_and_##SI(w, P##_set1_epi32(static_cast<int>(0xFFFF0000u))));                 \
  }                                                                                                        \
  WK_OP void load2(const F16* p, V& a, V& b) {                                                             \
    a = P##_cvtph_ps(load_half(p));                                                                        \
    b = P##_cvtph_ps(load_half(p + kW));                                                                   \
  }                                                                                                        \
  /* kW consecutive entries in order (locating the argmax). */                                             \
  WK_OP V load(const float* p) { return P##_loadu_ps(p); }                                                 \
  WK_OP V load(const Bf16* p) { return P##_cast##SI##_ps(P##_slli_epi32(P##_cvtepu16_epi32(load_half(p)), 16)); } \
  WK_OP V load(const F16* p) { return P##_cvtph_ps(load_half(p)); }                                        \
  WK_OP void store(float* p, V v) { P##_storeu_ps(p, v); }                                                 \
  WK_OP V fmadd(V a, V b, V c) { return P##_fmadd_ps(a, b, c); }                                           \
  WK_OP V fnmadd(V a, V b, V c) { return P##_fnmadd_ps(a, b, c); }                                         \
  WK_OP V max(V a, V b) { return P##_max_ps(a, b); } /* b where either is NaN */                          \
  WK_OP V min(V a, V b) { return P##_min_ps(a, b); }                                                       \
  WK_OP M lt(V a, V b) { return cmp<_CMP_LT_OQ>(a, b); }                                                   \
  WK_OP M ge(V a, V b) { return cmp<_CMP_GE_OQ>(a, b); }                                                   \
  WK_OP unsigned eq_bits(V a, V b) { return mask_bits(cmp<_CMP_EQ_OQ>(a, b)); } /* bit l: lane l equal */ \
  template <int N> WK_OP I srl32(I a) { return P##_srli_epi32(a, N); }                                     \
  WK_OP I sub32(I a, I b) { return P##_sub_epi32(a, b); }                                                  \
  WK_OP V i32_to_f32(I a) { return P##_cvtepi32_ps(a); }                                                   \
  template <int N> WK_OP I srl64(I a) { return P##_srli_epi64(a, N); }                                     \
  WK_OP I mul32(I a, I b) { return P##_mul_epu32(a, b); } /* low 32 bits of each 64-bit lane */           \
  WK_OP I minu32(I a, I b) { return P##_min_epu32(a, b); }                                                 \
  /* First two steps of the 4 x kW transpose of transpose4: g[0..3] -> u[0..3]. */                         \
  WK_OP void unpack4(const V g[4], V u[4]) {                                                               \
    const auto d0 = P##_castps_pd(P##_unpacklo_ps(g[0], g[1]));                                           \
    const auto d1 = P##_castps_pd(P##_unpackhi_ps(g[0], g[1]));                                           \
    const auto d2 = P##_castps_pd(P##_unpacklo_ps(g[2], g[3]));                                           \
    const auto d3 = P##_castps_pd(P##_unpackhi_ps(g[2], g[3]));                                           \
    u[0] = P##_castpd_ps(P##_unpacklo_pd(d0, d2));                                                         \
    u[1] = P##_castpd_ps(P##_unpackhi_pd(d0, d2));                                                         \
    u[2] = P##_castpd_ps(P##_unpacklo_pd(d1, d3));                                                         \
    u[3] = P##_castpd_ps(P##_unpackhi_pd(d1, d3));                                                         \
  }
// clang-format on
