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
#include "simd_shared_ops.h"

#if WK_X86
#include <immintrin.h>

namespace wk::avx512 {

struct Simd {
  WK_SIMD_SHARED_OPS(WK_OP_AVX512, _mm512, si512, __mmask16)

  // Loads: kW consecutive 16-bit entries (bf16 / fp16), widened by the shared ops.
  WK_OP_AVX512 __m256i load_half(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

  // Comparisons give k-register masks: one bit a lane, used as is by blends, exp and FMAs.
  template <int OP>
  WK_OP_AVX512 M cmp(V a, V b) {
    return _mm512_cmp_ps_mask(a, b, OP);
  }
  WK_OP_AVX512 unsigned mask_bits(M m) { return m; }
  WK_OP_AVX512 V blend(M m, V a, V b) { return _mm512_mask_blend_ps(m, a, b); }  // b where m
  // p * 2^n (n integral, t = n + 1.5 * 2^23 unused here), 0 off `keep`.
  WK_OP_AVX512 V pow2_keep(V p, V n, V t, M keep) {
    (void)t;
    return _mm512_maskz_scalef_ps(keep, p, n);
  }
  WK_OP_AVX512 V fmadd_keep(V a, V b, V c, M keep) { return _mm512_mask3_fmadd_ps(a, b, c, keep); }  // c off keep
  WK_OP_AVX512 float hsum(V v) { return _mm512_reduce_add_ps(v); }
  WK_OP_AVX512 float hmax(V v) { return _mm512_reduce_max_ps(v); }

  WK_OP_AVX512 I dec32_where(I a, M m) { return _mm512_mask_sub_epi32(a, m, a, _mm512_set1_epi32(1)); }
  WK_OP_AVX512 V u32_to_f32(I a) { return _mm512_cvtepu32_ps(a); }

  // Philox state in 64-bit lanes: vpmuludq reads only the low 32 bits of each lane and XOR is
  // lane-local, so the high halves may hold garbage; a round is 2 multiplies + 2 shifts + 2
  // three-way XORs per kW / 2 counters, with no blends.
  WK_OP_AVX512 I counters(uint64_t c0) {
    return _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(c0)), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
  }
  // Two 64-entry Philox chains per Gumbel block, so their 10 dependent rounds overlap.
  static constexpr int kGumbelGroups = 2;
  WK_OP_AVX512 I set64(uint64_t x) { return _mm512_set1_epi64(static_cast<long long>(x)); }
  WK_OP_AVX512 I xor3(I a, I b, I c) { return _mm512_ternarylogic_epi64(a, b, c, 0x96); }
  WK_OP_AVX512 uint32_t hmin_lo32(I a) { return _mm512_mask_reduce_min_epu32(0x5555, a); }  // low halves only
  // The low 32 bits of the 64-bit lanes of lo, then of hi, as kW 32-bit lanes.
  WK_OP_AVX512 I pack_lo32(I lo, I hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(lo)), _mm512_cvtepi64_epi32(hi), 1);
  }
  // g[w] lane l = word w of counter l  ->  g[i] lane l = entry 16 i + l (entry 4 c + w = word w of counter c).
  WK_OP_AVX512 void transpose4(V g[4]) {
    V u[4];
    unpack4(g, u);
    const __m512 v0 = _mm512_shuffle_f32x4(u[0], u[1], 0x44), v1 = _mm512_shuffle_f32x4(u[0], u[1], 0xEE);
    const __m512 v2 = _mm512_shuffle_f32x4(u[2], u[3], 0x44), v3 = _mm512_shuffle_f32x4(u[2], u[3], 0xEE);
    g[0] = _mm512_shuffle_f32x4(v0, v2, 0x88);
    g[1] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
    g[2] = _mm512_shuffle_f32x4(v1, v3, 0x88);
    g[3] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
  }
};

#define WK_KERNEL WK_TARGET_AVX512
#include "span_kernels.inc"
#undef WK_KERNEL

}  // namespace wk::avx512
#endif
