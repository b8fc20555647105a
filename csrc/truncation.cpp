// The truncation cutoff (truncation.h): three vectorised passes over the row narrow the search to
// the entries >= a threshold t, then exact radix selects (truncation_radix.cpp) run on those only.
// Compiled per ISA like the other kernels (`omp simd` and GCC vector loops inlined into AVX2 /
// AVX-512 wrappers, plus two AVX-512 intrinsic kernels: the threshold sweep and the compaction);
// the radix part is scalar.
#include "truncation.h"

#include <cstring>
#include <limits>

#include "common.h"
#if WK_X86
#include <immintrin.h>
#endif
#include "truncation_radix.h"

namespace wk {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int kThresholds = 16;
// t_j = M - kDelta[j] when top_p is on: unit steps where the top_p cutoff of LLM-like logits usually
// falls (the candidates then exceed the nucleus by ~1.5x at most; each one costs a radix step),
// geometric beyond (at M - 20 the mass below is < V e^-20, 2.6e-4 at V = 126464).
constexpr float kDelta[kThresholds] = {0.5f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f,
                                       8.0f, 10.0f, 12.0f, 14.0f, 16.0f, 20.0f, 32.0f, 64.0f};
// top_k alone: 8 geometric steps, so some t_j lands near the cutoff whatever the logits' scale (a
// top_k candidate is cheap; a threshold costs a sweep over the row).
constexpr int kThresholdsK = 8;
constexpr float kDeltaK[kThresholdsK] = {0.5f, 1.0f, 2.0f, 4.0f, 8.0f, 16.0f, 32.0f, 64.0f};
constexpr int64_t kStatBlock = 2048;  // entries per block: its zs and exps (2 x 8 KiB) stay in L1 (4096: slower)
constexpr int64_t kSkipBlock = 64;    // compaction skips blocks with nothing >= t after one test

// What pass 2 measures: entries >= t_j, their mass, and the whole exp-sum.
struct Bracket {
  int nt = kThresholds;  // thresholds in use
  float t[kThresholds];
  int64_t count[kThresholds] = {};
  double mass[kThresholds] = {};
  double s = 0.0;
};

// exp(d) for d <= 0, 0 below kExpFloor (and for d = -inf).
template <int ISA>
WK_INLINE float exp_le0(float d) {
  const float dc = d < kExpFloor ? kExpFloor : d;
  const float ex = fast_exp<ISA>(dc);  // unconditional: a select, not a branch, so it vectorises
  return d < kExpFloor ? 0.0f : ex;
}

// GCC vector types for the passes' reductions, as wide as the ISA variant's registers (a wider type
// would be split into scalar code). `omp simd` reductions keep their accumulators on the stack (a
// store-to-load chain per vector); these stay in registers, and four of them break the add latency chain.
template <int ISA>
struct Vec {
  static constexpr int kBytes = ISA == kIsaBase ? 16 : 32;
  typedef float F __attribute__((vector_size(kBytes)));
  typedef int32_t I __attribute__((vector_size(kBytes)));
  static constexpr int64_t kLanes = kBytes / 4;
  static constexpr int64_t kStep = 4 * kLanes;  // one unrolled step: four vectors, four chains
};

#define WK_LOADV(dst, src) __builtin_memcpy(&(dst), (src), sizeof(dst))

// Pass 1: the row max (NaN ignored); nan: whether the row holds a NaN (outside the contract), for free.
template <int ISA>
WK_INLINE float row_max(const float* zs, int64_t V, bool& nan) {
  using F = typename Vec<ISA>::F;
  using I = typename Vec<ISA>::I;
  constexpr int64_t L = Vec<ISA>::kLanes;
  F m[4];
  I bad = {};
  for (int k = 0; k < 4; ++k) m[k] = F{} - kInf;
  int64_t i = 0;
  for (; i + 4 * L <= V; i += 4 * L) {
    for (int k = 0; k < 4; ++k) {
      F v;
      WK_LOADV(v, zs + i + k * L);
      m[k] = v > m[k] ? v : m[k];
      bad |= v != v;
    }
  }
  float mx = -kInf;
  int any = 0;
  for (int l = 0; l < L; ++l) {
    for (int k = 0; k < 4; ++k) mx = m[k][l] > mx ? m[k][l] : mx;
    any |= bad[l];
  }
  for (; i < V; ++i) {
    mx = zs[i] > mx ? zs[i] : mx;
    any |= zs[i] != zs[i] ? 1 : 0;
  }
  nan = any != 0;
  return mx;
}

// Sum of the lanes of four accumulators (tree order, once per block).
template <int ISA>
WK_INLINE double lanes_sum(const typename Vec<ISA>::F (&a)[4]) {
  const typename Vec<ISA>::F s = (a[0] + a[1]) + (a[2] + a[3]);
  float t = 0.0f;
  for (int l = 0; l < Vec<ISA>::kLanes; ++l) t += s[l];
  return t;
}

// One sweep of kGroup thresholds t[0, kGroup) over z / e [0, nv), two chains each: every loaded
// vector feeds kGroup compares (sweeps are load bound otherwise), the accumulators stay in registers.
constexpr int kGroup = 4;
static_assert(kThresholds % kGroup == 0 && kThresholdsK % kGroup == 0, "whole sweeps");

template <int ISA, bool COUNT, bool MASS>
WK_INLINE void sweep(const float* z, const float* e, int64_t nv, const float* t, int64_t* cnt, float* ms) {
  using F = typename Vec<ISA>::F;
  using I = typename Vec<ISA>::I;
  constexpr int64_t L = Vec<ISA>::kLanes;
  F tv[kGroup];
  for (int g = 0; g < kGroup; ++g) tv[g] = F{} + t[g];
  F m[kGroup][2] = {};
  I c[kGroup][2] = {};
  for (int64_t i = 0; i < nv; i += 2 * L) {
    F v[2], ev[2];
    for (int k = 0; k < 2; ++k) {
      WK_LOADV(v[k], z + i + k * L);
      if constexpr (MASS) WK_LOADV(ev[k], e + i + k * L);
    }
    for (int g = 0; g < kGroup; ++g) {
      for (int k = 0; k < 2; ++k) {
        const I in = v[k] >= tv[g];  // -1 where true
        if constexpr (COUNT) c[g][k] -= in;
        if constexpr (MASS) m[g][k] += reinterpret_cast<F>(reinterpret_cast<I>(ev[k]) & in);
      }
    }
  }
  for (int g = 0; g < kGroup; ++g) {
    const I ct = c[g][0] + c[g][1];
    const F mt = m[g][0] + m[g][1];
    cnt[g] = 0;
    ms[g] = 0.0f;
    for (int l = 0; l < L; ++l) {
      cnt[g] += ct[l];
      ms[g] += mt[l];
    }
  }
}

#if WK_X86
// The sweep on AVX-512 (nv a multiple of 32): compares into mask registers and masked adds, two
// instructions per 16 entries and threshold (the vector version takes three per 8).
template <bool COUNT, bool MASS>
WK_TARGET_AVX512 WK_NOINLINE void sweep_avx512(const float* z, const float* e, int64_t nv, const float* t,
                                               int64_t* cnt, float* ms) {
  __m512 tv[kGroup], m[kGroup][2];
  __m512i c[kGroup][2];
  const __m512i one = _mm512_set1_epi32(1);
  for (int g = 0; g < kGroup; ++g) {
    tv[g] = _mm512_set1_ps(t[g]);
    m[g][0] = m[g][1] = _mm512_setzero_ps();
    c[g][0] = c[g][1] = _mm512_setzero_si512();
  }
  for (int64_t i = 0; i < nv; i += 32) {
    const __m512 v[2] = {_mm512_loadu_ps(z + i), _mm512_loadu_ps(z + i + 16)};
    __m512 ev[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    if constexpr (MASS) {
      ev[0] = _mm512_loadu_ps(e + i);
      ev[1] = _mm512_loadu_ps(e + i + 16);
    }
    for (int g = 0; g < kGroup; ++g) {
      for (int k = 0; k < 2; ++k) {
        const __mmask16 in = _mm512_cmp_ps_mask(v[k], tv[g], _CMP_GE_OQ);
        if constexpr (COUNT) c[g][k] = _mm512_mask_add_epi32(c[g][k], in, c[g][k], one);
        if constexpr (MASS) m[g][k] = _mm512_mask_add_ps(m[g][k], in, m[g][k], ev[k]);
      }
    }
  }
  for (int g = 0; g < kGroup; ++g) {  // lane sums by hand: GCC 12's _mm512_reduce_add_* warn (-Wuninitialized)
    alignas(64) int32_t ci[16];
    alignas(64) float mf[16];
    _mm512_store_si512(ci, _mm512_add_epi32(c[g][0], c[g][1]));
    _mm512_store_ps(mf, _mm512_add_ps(m[g][0], m[g][1]));
    cnt[g] = 0;
    ms[g] = 0.0f;
    for (int l = 0; l < 16; ++l) {
      cnt[g] += ci[l];
      ms[g] += mf[l];
    }
  }
}
#endif

// Pass 2 over one block: counts (COUNT) and masses (MASS) of the entries >= each threshold.
template <int ISA, bool COUNT, bool MASS>
WK_INLINE void bracket_block(const float* z, int64_t n, float M, Bracket& b) {
  using F = typename Vec<ISA>::F;
  constexpr int64_t L = Vec<ISA>::kLanes;
  static_assert((4 * L) % 32 == 0 || ISA != kIsaAvx512, "sweep_avx512 takes 32 entries a step");
  float e[kStatBlock];
  const int64_t nv = n - n % (4 * L);  // the vector part; the rest runs scalar
  if constexpr (MASS) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) e[i] = exp_le0<ISA>(z[i] - M);
    F acc[4] = {};
    for (int64_t i = 0; i < nv; i += 4 * L) {
      for (int k = 0; k < 4; ++k) {
        F v;
        WK_LOADV(v, e + i + k * L);
        acc[k] += v;
      }
    }
    double s = lanes_sum<ISA>(acc);
    for (int64_t i = nv; i < n; ++i) s += e[i];
    b.s += s;
  }
  for (int j0 = 0; j0 < b.nt; j0 += kGroup) {
    int64_t cnt[kGroup];
    float ms[kGroup];
#if WK_X86
    if constexpr (ISA == kIsaAvx512) {
      sweep_avx512<COUNT, MASS>(z, e, nv, b.t + j0, cnt, ms);
    } else {
      sweep<ISA, COUNT, MASS>(z, e, nv, b.t + j0, cnt, ms);
    }
#else
    sweep<ISA, COUNT, MASS>(z, e, nv, b.t + j0, cnt, ms);
#endif
    for (int g = 0; g < kGroup; ++g) {
      const float t = b.t[j0 + g];
      double msd = ms[g];
      for (int64_t i = nv; i < n; ++i) {  // the block's last n % (4 L) entries
        cnt[g] += z[i] >= t ? 1 : 0;
        if constexpr (MASS) msd += z[i] >= t ? e[i] : 0.0f;
      }
      b.count[j0 + g] += cnt[g];
      b.mass[j0 + g] += msd;
    }
  }
}

template <int ISA, bool COUNT, bool MASS>
WK_INLINE void bracket_row(const float* zs, int64_t V, float M, Bracket& b) {
  b.nt = MASS ? kThresholds : kThresholdsK;
  for (int j = 0; j < b.nt; ++j) b.t[j] = M - (MASS ? kDelta[j] : kDeltaK[j]);
  for (int64_t c0 = 0; c0 < V; c0 += kStatBlock) {
    bracket_block<ISA, COUNT, MASS>(zs + c0, V - c0 < kStatBlock ? V - c0 : kStatBlock, M, b);
  }
}

// Pass 3: out[0, n) = the entries >= t in row order; returns n. out holds V floats.
template <int ISA>
WK_INLINE int64_t compact_ge(const float* zs, int64_t V, float t, float* out) {
  if (t == -kInf) {  // every (non-NaN) entry
    std::memcpy(out, zs, static_cast<size_t>(V) * sizeof(float));
    return V;
  }
  int64_t n = 0, i = 0;
  for (; i + kSkipBlock <= V; i += kSkipBlock) {
    int any = 0;
#pragma omp simd reduction(| : any)
    for (int64_t l = 0; l < kSkipBlock; ++l) any |= zs[i + l] >= t ? 1 : 0;
    if (!any) continue;
    for (int64_t l = 0; l < kSkipBlock; ++l) {
      out[n] = zs[i + l];  // n <= i + l: inside out
      n += zs[i + l] >= t ? 1 : 0;
    }
  }
  for (; i < V; ++i) {
    out[n] = zs[i];
    n += zs[i] >= t ? 1 : 0;
  }
  return n;
}

#if WK_X86
// Pass 3 on AVX-512: 16 entries a step, compressed in a register and stored whole (out holds V + 16
// floats: the store may run 16 past n), no branch on the data.
WK_TARGET_AVX512 WK_NOINLINE int64_t compact_ge_avx512(const float* zs, int64_t V, float t, float* out) {
  const __m512 tv = _mm512_set1_ps(t);
  int64_t n = 0, i = 0;
  for (; i + 16 <= V; i += 16) {
    const __m512 v = _mm512_loadu_ps(zs + i);
    const __mmask16 k = _mm512_cmp_ps_mask(v, tv, _CMP_GE_OQ);
    _mm512_storeu_ps(out + n, _mm512_maskz_compress_ps(k, v));
    n += __builtin_popcount(static_cast<unsigned>(k));
  }
  for (; i < V; ++i) {
    out[n] = zs[i];
    n += zs[i] >= t ? 1 : 0;
  }
  return n;
}
#endif

// The highest threshold that holds the top_k (count >= k) and top_p (mass > top_p s) cutoffs.
WK_INLINE float pick_threshold(const Bracket& b, bool use_k, int64_t k, bool use_p, double top_p) {
  float tk = -kInf, tp = -kInf;
  for (int j = b.nt - 1; j >= 0; --j) {
    if (use_k && b.count[j] >= k) tk = b.t[j];
    if (use_p && b.mass[j] > top_p * b.s) tp = b.t[j];
  }
  if (use_k && use_p) return tk < tp ? tk : tp;
  return use_k ? tk : tp;
}

template <class T>
WK_INLINE T* grow(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

// The top_p cutoff among the n candidates >= t in scratch.values, or NaN when their whole mass is
// <= top_p and t > -inf (then the cutoff may lie below t: the caller widens the candidates).
template <int ISA>
WK_INLINE float top_p_cut(TruncationScratch& sc, int64_t n, float t, float M, double s, float top_p) {
  const float* vals = sc.values.data();
  uint32_t* keys = grow(sc.keys, n);
  float* e = grow(sc.mass, n);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    keys[i] = truncation_key(vals[i]);
    e[i] = exp_le0<ISA>(vals[i] - M);
  }
  bool all_in = false;
  const uint32_t key = radix_top_p(keys, e, n, s, top_p, grow(sc.counts, kRadixBuckets), grow(sc.bucket, kRadixBuckets),
                                   &all_in);
  if (all_in && t != -kInf) return std::numeric_limits<float>::quiet_NaN();
  return truncation_key_value(key);
}

template <int ISA>
WK_INLINE float top_k_cut(TruncationScratch& sc, int64_t n, int64_t k) {
  const float* vals = sc.values.data();
  uint32_t* keys = grow(sc.keys_k, n);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) keys[i] = truncation_key(vals[i]);
  return truncation_key_value(radix_kth_largest(keys, n, k, grow(sc.counts, kRadixBuckets)));
}

template <int ISA>
WK_INLINE float cutoff_impl(const float* zs, int64_t V, int64_t top_k, double top_p, TruncationScratch& sc) {
  const bool use_k = top_k > 0 && top_k < V;
  const bool use_p = top_p < 1.0;
  if (!use_k && !use_p) return -kInf;
  bool nan = false;
  const float M = row_max<ISA>(zs, V, nan);                 // pass 1
  if (nan) return std::numeric_limits<float>::quiet_NaN();  // keeps nothing; the op reports it
  if (M == -kInf) return -kInf;  // nothing > -inf: top_p keeps all, the k-th largest is -inf
  if (use_p && M == kInf) return kInf;  // uniform over the +inf entries: top_p keeps exactly them
  Bracket b;                            // pass 2
  if (use_p && use_k) {
    bracket_row<ISA, true, true>(zs, V, M, b);
  } else if (use_p) {
    bracket_row<ISA, false, true>(zs, V, M, b);
  } else {
    bracket_row<ISA, true, false>(zs, V, M, b);
  }
  float t = pick_threshold(b, use_k, top_k, use_p, top_p);
  const float top_p32 = static_cast<float>(top_p);  // the spec compares in fp32
  float* vals = grow(sc.values, V + 16);  // + 16: compact_ge_avx512's whole-vector stores
  for (;;) {
    int64_t n;  // pass 3 (4: the rare retry)
#if WK_X86
    if constexpr (ISA == kIsaAvx512) n = t == -kInf ? compact_ge<ISA>(zs, V, t, vals) : compact_ge_avx512(zs, V, t, vals);
    else n = compact_ge<ISA>(zs, V, t, vals);
#else
    n = compact_ge<ISA>(zs, V, t, vals);
#endif
    float cut = -kInf;
    if (use_p) {
      cut = top_p_cut<ISA>(sc, n, t, M, b.s, top_p32);
      if (cut != cut) {
        t = -kInf;
        continue;
      }
    }
    if (use_k) {
      const float ck = top_k_cut<ISA>(sc, n, top_k);
      cut = ck > cut ? ck : cut;  // top_p then top_k: the intersection of zs >= both
    }
    return cut;
  }
}

#if WK_X86
WK_TARGET_AVX2 WK_NOINLINE float cutoff_avx2(const float* zs, int64_t V, int64_t k, double p, TruncationScratch& sc) {
  return cutoff_impl<kIsaAvx2>(zs, V, k, p, sc);
}
WK_TARGET_AVX512 WK_NOINLINE float cutoff_avx512(const float* zs, int64_t V, int64_t k, double p,
                                                 TruncationScratch& sc) {
  return cutoff_impl<kIsaAvx512>(zs, V, k, p, sc);
}
#endif

}  // namespace

float truncation_cutoff(const float* zs, int64_t V, int64_t top_k, double top_p, TruncationScratch& scratch) {
#if WK_X86
  const int isa = cpu_isa();
  if (isa == kIsaAvx512) return cutoff_avx512(zs, V, top_k, top_p, scratch);
  if (isa == kIsaAvx2) return cutoff_avx2(zs, V, top_k, top_p, scratch);
#endif
  return cutoff_impl<kIsaBase>(zs, V, top_k, top_p, scratch);
}

}  // namespace wk
