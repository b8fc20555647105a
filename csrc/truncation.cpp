// The truncation cutoff (truncation.h): three vectorised passes over the row narrow the search to
// the entries >= a threshold t, then exact radix selects (truncation_radix.cpp) run on those only.
// Compiled per ISA like the other kernels (the loops are `omp simd`, inlined into AVX2 / AVX-512
// wrappers), the radix part is scalar.
#include "truncation.h"

#include <cstring>
#include <limits>

#include "common.h"
#include "truncation_radix.h"

namespace wk {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int kThresholds = 8;
// t_j = M - kDelta[j]: geometric steps, so some t_j lands near any cutoff whatever the logits' scale
// (at M - 16 the mass below is < V e^-16, 1.4% of the softmax at V = 126464).
constexpr float kDelta[kThresholds] = {0.5f, 1.0f, 2.0f, 4.0f, 8.0f, 16.0f, 32.0f, 64.0f};
constexpr int64_t kStatBlock = 1024;  // entries per fp32 partial sum (4 KiB of exps on the stack)
constexpr int64_t kSkipBlock = 64;    // compaction skips blocks with nothing >= t after one test

// What pass 2 measures: entries >= t_j, their mass, and the whole exp-sum.
struct Bracket {
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

template <int ISA>
WK_INLINE float row_max(const float* zs, int64_t V) {
  float m = -kInf;
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < V; ++i) m = zs[i] > m ? zs[i] : m;
  return m;
}

// Pass 2 over one block: counts (and masses, with MASS) of the entries >= each threshold.
template <int ISA, bool MASS>
WK_INLINE void bracket_block(const float* z, int64_t n, float M, Bracket& b) {
  float e[kStatBlock];
  if constexpr (MASS) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) {
      e[i] = exp_le0<ISA>(z[i] - M);
      s += e[i];
    }
    b.s += s;
  }
  for (int j = 0; j < kThresholds; ++j) {
    const float t = b.t[j];
    int32_t c = 0;
    float ms = 0.0f;
#pragma omp simd reduction(+ : c, ms)
    for (int64_t i = 0; i < n; ++i) {
      const bool in = z[i] >= t;
      c += in ? 1 : 0;
      if constexpr (MASS) ms += in ? e[i] : 0.0f;
    }
    b.count[j] += c;
    b.mass[j] += ms;
  }
}

template <int ISA, bool MASS>
WK_INLINE void bracket_row(const float* zs, int64_t V, float M, Bracket& b) {
  for (int j = 0; j < kThresholds; ++j) b.t[j] = M - kDelta[j];
  for (int64_t c0 = 0; c0 < V; c0 += kStatBlock) {
    bracket_block<ISA, MASS>(zs + c0, V - c0 < kStatBlock ? V - c0 : kStatBlock, M, b);
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

// The highest threshold that holds the top_k (count >= k) and top_p (mass > top_p s) cutoffs.
WK_INLINE float pick_threshold(const Bracket& b, bool use_k, int64_t k, bool use_p, double top_p) {
  float tk = -kInf, tp = -kInf;
  for (int j = kThresholds - 1; j >= 0; --j) {
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
  const float M = row_max<ISA>(zs, V);  // pass 1
  if (M == -kInf) return -kInf;         // nothing > -inf: top_p keeps all, the k-th largest is -inf
  if (use_p && M == kInf) return kInf;  // uniform over the +inf entries: top_p keeps exactly them
  Bracket b;                            // pass 2
  if (use_p) {
    bracket_row<ISA, true>(zs, V, M, b);
  } else {
    bracket_row<ISA, false>(zs, V, M, b);
  }
  float t = pick_threshold(b, use_k, top_k, use_p, top_p);
  const float top_p32 = static_cast<float>(top_p);  // the spec compares in fp32
  float* vals = grow(sc.values, V);
  for (;;) {
    const int64_t n = compact_ge<ISA>(zs, V, t, vals);  // pass 3 (4: the rare retry)
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
