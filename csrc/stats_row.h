// The per-position statistics kernel of token_stats: one streaming pass over the vocabulary.
//
// The row is processed in L1-sized chunks. Each chunk is loaded once (bf16/fp16/fp32 -> fp32 with
// CFG, NaN -> -inf and suppression applied on the fly) into a small fp32 buffer, then every
// accumulator reads that buffer: the chunk maximum, the softmax sum and entropy accumulator
// (online softmax: rescaled once per chunk, not per element), the argmax (or the Gumbel-max with
// Philox noise, one Philox call per 4 entries) and the top-2 for the margin score. Only O(chunk)
// temporary memory per thread; logits are never copied or converted as a whole. The AVX-512 and
// AVX2 variants read the plain stretches of T = 0 rows without the buffer (stats_avx512.h,
// stats_avx2.h).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common.h"
#include "gumbel_avx2.h"
#include "gumbel_avx512.h"
#include "stats_avx2.h"
#include "stats_avx512.h"

namespace wk {

constexpr int kLanes = 16;
constexpr int64_t kChunk = 1024;  // multiple of kBlock; 4 KiB of fp32 per buffer
constexpr int64_t kBlock = 128;   // Gumbel skip-test block: 32 Philox calls
#if WK_X86
static_assert(kChunk % kBlock == 0 && kBlock % kSpanStep == 0, "chunk buffers feed sum_exp_avx512/avx2");
static_assert(kLanes == 16, "span_max_avx512/avx2 write 16 top-2 lanes (AVX2: 8 lanes, then -inf)");
#endif
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kPosInf = std::numeric_limits<float>::infinity();

struct RowCfg {
  int64_t vocab;
  int64_t mask_id;
  float inv_t;      // reference.inverse_temperature: fp32(1/T), 1 at T = 0
  bool gumbel;      // T > 0: x0 by Gumbel-max
  bool sampling;    // score_temperature == "sampling": softmax of z * inv_t
  int score_mode;   // ScoreMode
  bool cfg;         // uncond row given
  float cfg_s1;     // fp32(cfg_scale + 1)
  const int64_t* suppress;
  int64_t n_suppress;
  const int64_t* demote;
  int64_t n_demote;
  uint32_t key0, key1, step;
  uint64_t groups;  // ceil(V / 4): Philox counters per row
  uint64_t seed;
};

struct RowWork {
  bool full;      // x0 and score wanted (else p_cur only)
  int64_t xcur;   // current token at this position
  uint64_t row;   // b * G + g, the Philox row
};

struct RowResult {
  int64_t x0;
  float score;
  float p_cur;
};

WK_INLINE bool in_sorted(const int64_t* ids, int64_t n, int64_t v) { return std::binary_search(ids, ids + n, v); }

// fp32 logit of one entry after CFG, the NaN policy and suppression (the spec's combined_logits).
template <class T>
WK_INLINE float z_at(const RowCfg& c, const T* row, const T* urow, int64_t v) {
  float z = to_f32(row[v]);
  if (c.cfg) {
    const float u = to_f32(urow[v]);
    z = u + c.cfg_s1 * (z - u);
  }
  if (z != z || in_sorted(c.suppress, c.n_suppress, v)) z = kNegInf;
  return z;
}

WK_INLINE float zt_of(const RowCfg& c, float z) { return c.sampling ? z * c.inv_t : z; }

template <int ISA>
WK_INLINE float block_max(const float* z, int64_t n) {
  float m = kNegInf;
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; ++i) m = z[i] > m ? z[i] : m;
  return m;
}

WK_INLINE int64_t first_equal(const float* z, int64_t n, float v) {
  for (int64_t i = 0; i < n; ++i)
    if (z[i] == v) return i;
  return -1;
}

#if WK_X86
// The fast-span kernels of an x86 variant (stats_avx512.h / stats_avx2.h). Only fast_span and
// softmax_chunk call these, and only in the AVX-512 and AVX2 variants, so each variant holds its
// own ISA's kernels and nothing of the other (nor any of them the base variant).
template <class T, int ISA, bool TOP2>
WK_INLINE float span_max_isa(const T* src, int64_t n, float* t1, float* t2) {
  static_assert(ISA == kIsaAvx512 || ISA == kIsaAvx2, "no fast spans in the base variant");
  if constexpr (ISA == kIsaAvx512) {
    return span_max_avx512<T, TOP2>(src, n, t1, t2);
  } else {
    return span_max_avx2<T, TOP2>(src, n, t1, t2);
  }
}

template <class T, int ISA, bool ENTROPY, bool SCALED>
WK_INLINE void sum_exp_isa(const T* src, int64_t n, float sc, float Mt, const T* next, float& s, float& h) {
  static_assert(ISA == kIsaAvx512 || ISA == kIsaAvx2, "no fast spans in the base variant");
  if constexpr (ISA == kIsaAvx512) {
    sum_exp_avx512<T, ENTROPY, SCALED>(src, n, sc, Mt, next, s, h);
  } else {
    sum_exp_avx2<T, ENTROPY, SCALED>(src, n, sc, Mt, next, s, h);
  }
}

template <class T, int ISA>
WK_INLINE int64_t span_first_equal_isa(const T* src, int64_t n, float v) {
  static_assert(ISA == kIsaAvx512 || ISA == kIsaAvx2, "no fast spans in the base variant");
  if constexpr (ISA == kIsaAvx512) {
    return span_first_equal_avx512(src, n, v);
  } else {
    return span_first_equal_avx2(src, n, v);
  }
}
#endif

// Adds sum(exp(z*sc - Mt)) (and sum(e * (z*sc - Mt)) for entropy) over one chunk to S (H).
template <int ISA, bool ENTROPY>
WK_INLINE void softmax_chunk(const float* z, int64_t npad, float sc, float Mt, double& S, double& H) {
  float s = 0.0f, h = 0.0f;
#if WK_X86
  if constexpr (ISA != kIsaBase) {
    // The fast spans' kernel over the chunk buffer (npad is a multiple of kBlock, so of kSpanStep):
    // degree-5 exp and no clamp selects, cheaper than the loop below (on AVX2, T = 0 CFG rows, which
    // take only generic chunks, ran 1.2-1.6x faster with it on an AMD EPYC).
    sum_exp_isa<float, ISA, ENTROPY, true>(z, npad, sc, Mt, nullptr, s, h);
    S += s;
    H += h;
    return;
  }
#endif
  // omp simd: lets GCC reassociate the fp32 sums into vector lanes (it will not on its own).
#pragma omp simd reduction(+ : s, h)
  for (int64_t i = 0; i < npad; ++i) {
    const float d = z[i] * sc - Mt;  // * 1 is exact: same d as the spec's zt - m
    const float dc = d < kExpFloor ? kExpFloor : d;
    const float ex = fast_exp<ISA>(dc);  // unconditional: a select, not a branch, so it vectorises
    const float e = d < kExpFloor ? 0.0f : ex;
    s += e;
    if constexpr (ENTROPY) h += e * dc;
  }
  S += s;
  H += h;
}

// Exact, unvectorised replica of the spec for the rare rows whose softmax max is +inf (mask entry
// +inf with finite allowed logits): the spec then shifts by 0 and yields 0/NaN probabilities.
template <class T>
static RowResult exact_nonfinite_row(const RowCfg& c, const T* row, const T* urow, const RowWork& w, int64_t x0) {
  std::vector<float> zt(c.vocab), p(c.vocab);
  float s = 0.0f;
  for (int64_t v = 0; v < c.vocab; ++v) {
    zt[v] = zt_of(c, z_at(c, row, urow, v));
    s += std::exp(zt[v]);
  }
  for (int64_t v = 0; v < c.vocab; ++v) p[v] = std::exp(zt[v]) / s;
  RowResult res{x0, 0.0f, 0.0f};
  if (!w.full) {  // p_cur only (x0 was not computed)
  } else if (c.score_mode == 0) {
    res.score = p[x0];
  } else if (c.score_mode == 1) {
    auto bigger = [](float a, float b) { return (a != a && b == b) || a > b; };  // topk: NaN largest
    float t1 = kNegInf, t2 = kNegInf;
    for (int64_t v = 0; v < c.vocab; ++v) {
      const float pv = v == c.mask_id ? kNegInf : p[v];
      if (bigger(pv, t1)) {
        t2 = t1;
        t1 = pv;
      } else if (bigger(pv, t2)) {
        t2 = pv;
      }
    }
    res.score = t1 - (t2 < 0.0f ? 0.0f : t2);
  } else if (c.score_mode == 2) {
    const float ls = std::log(s);
    float acc = 0.0f;
    for (int64_t v = 0; v < c.vocab; ++v)
      if (std::exp(zt[v]) > 0.0f) acc += p[v] * (zt[v] - ls);
    res.score = acc;
  } else {
    res.score = position_uniform(c.seed, c.step, kStreamRandomScore, w.row);
  }
  if (w.full && in_sorted(c.demote, c.n_demote, x0)) res.score = kNegInf;
  if (w.xcur != c.mask_id) res.p_cur = p[w.xcur];
  return res;
}

// Portable Gumbel block (64 entries, 16 Philox calls) with the prefilter of gumbel_block_avx512;
// GCC cannot vectorise the Philox products, so the x86 variants use the intrinsic blocks instead.
template <int ISA>
WK_INLINE float gumbel_block_generic(const float* z, float it, float zmax_it, float best_so_far, uint64_t ctr0,
                                     uint32_t step, uint32_t key0, uint32_t key1, float* picks) {
  uint32_t a0[kLanes], a1[kLanes], a2[kLanes], a3[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    const uint64_t ctr = ctr0 + static_cast<uint64_t>(l);
    a0[l] = static_cast<uint32_t>(ctr);
    a1[l] = static_cast<uint32_t>(ctr >> 32);
    a2[l] = step;
    a3[l] = static_cast<uint32_t>(kStreamGumbel);
  }
  uint32_t k0 = key0, k1 = key1;
  for (int round = 0; round < 10; ++round) {
    for (int l = 0; l < kLanes; ++l) {
      const uint64_t p0 = static_cast<uint64_t>(a0[l]) * kPhiloxM0;
      const uint64_t p1 = static_cast<uint64_t>(a2[l]) * kPhiloxM1;
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ a1[l] ^ k0;
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ a3[l] ^ k1;
      a1[l] = static_cast<uint32_t>(p1);
      a3[l] = static_cast<uint32_t>(p0);
      a0[l] = n0;
      a2[l] = n2;
    }
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  uint32_t wmin = 0xFFFFFFFFu;  // same prefilter as gumbel_block_avx512
  for (int l = 0; l < kLanes; ++l) {
    const uint32_t m01 = a0[l] < a1[l] ? a0[l] : a1[l];
    const uint32_t m23 = a2[l] < a3[l] ? a2[l] : a3[l];
    const uint32_t m = m01 < m23 ? m01 : m23;
    wmin = m < wmin ? m : wmin;
  }
  if (zmax_it + (gumbel<ISA>(uniform_from_word(wmin)) + 1e-3f) < best_so_far) return kNegInf;
  float g0[kLanes], g1[kLanes], g2[kLanes], g3[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    g0[l] = gumbel<ISA>(uniform_from_word(a0[l]));
    g1[l] = gumbel<ISA>(uniform_from_word(a1[l]));
    g2[l] = gumbel<ISA>(uniform_from_word(a2[l]));
    g3[l] = gumbel<ISA>(uniform_from_word(a3[l]));
  }
  for (int l = 0; l < kLanes; ++l) {
    picks[4 * l + 0] = z[4 * l + 0] * it + g0[l];
    picks[4 * l + 1] = z[4 * l + 1] * it + g1[l];
    picks[4 * l + 2] = z[4 * l + 2] * it + g2[l];
    picks[4 * l + 3] = z[4 * l + 3] * it + g3[l];
  }
  return block_max<ISA>(picks, 64);
}

// Entries per Gumbel call of each variant: AVX-512 runs two independent Philox chains (128
// entries) so the 10 dependent rounds overlap; AVX2 one chain of 8 calls; generic 16 calls.
template <int ISA>
constexpr int64_t gumbel_sub_size() {
  return ISA == kIsaAvx512 ? 128 : ISA == kIsaAvx2 ? 32 : 64;
}

template <int ISA>
WK_INLINE float gumbel_sub(const float* z, float it, float zmax_it, float best, uint64_t ctr0, uint32_t step,
                           uint32_t key0, uint32_t key1, float* picks) {
#if WK_X86
  if constexpr (ISA == kIsaAvx512) return gumbel_block_avx512(z, it, zmax_it, best, ctr0, step, key0, key1, picks);
  if constexpr (ISA == kIsaAvx2) return gumbel_block_avx2(z, it, zmax_it, best, ctr0, step, key0, key1, picks);
#endif
  return gumbel_block_generic<ISA>(z, it, zmax_it, best, ctr0, step, key0, key1, picks);
}


// One position. z and pick are per-thread scratch buffers of kChunk floats.
template <class T, int ISA>
WK_INLINE RowResult stats_row(const RowCfg& c, const T* row, const T* urow, const RowWork& w, float* z, float* pick) {
  const bool need_soft = c.score_mode != 3 || w.xcur != c.mask_id || !w.full;
  const bool need_entropy = w.full && c.score_mode == 2;
  const bool need_top2 = w.full && c.score_mode == 1;
  const bool need_x0 = w.full;
  const float it = c.inv_t;

  double S = 0.0, H = 0.0;  // sum of exp(zt - Mt) and of exp(zt - Mt) * (zt - Mt)
  float M = kNegInf, Mt = kNegInf;
  bool nonfinite = false;
  float A = kNegInf;  // max allowed z: the dead-row test
  float best = kNegInf;
  int64_t arg = -1;
  float t1[kLanes], t2[kLanes];
  for (int l = 0; l < kLanes; ++l) t1[l] = t2[l] = kNegInf;
  int64_t sp = 0;

  // One chunk of at most kChunk entries through the fp32 buffer: every case of the spec.
  auto generic_chunk = [&](int64_t c0, int64_t n) {
    const int64_t npad = (n + kBlock - 1) / kBlock * kBlock;
    const T* src = row + c0;
    float cm = kNegInf;  // chunk max, fused into the load pass
    if (c.cfg) {
      const T* usrc = urow + c0;
      const float s1 = c.cfg_s1;
#pragma omp simd reduction(max : cm)
      for (int64_t i = 0; i < n; ++i) {
        const float u = to_f32(usrc[i]);
        const float v = u + s1 * (to_f32(src[i]) - u);
        const float zv = v != v ? kNegInf : v;
        z[i] = zv;
        cm = zv > cm ? zv : cm;
      }
    } else {
#pragma omp simd reduction(max : cm)
      for (int64_t i = 0; i < n; ++i) {
        const float v = to_f32(src[i]);
        const float zv = v != v ? kNegInf : v;
        z[i] = zv;
        cm = zv > cm ? zv : cm;
      }
    }
    for (int64_t i = n; i < npad; ++i) z[i] = kNegInf;
    bool suppressed_here = false;
    while (sp < c.n_suppress && c.suppress[sp] < c0 + n) {
      z[c.suppress[sp++] - c0] = kNegInf;
      suppressed_here = true;
    }
    if (suppressed_here) cm = block_max<ISA>(z, npad);  // the fused max may have seen a suppressed entry
    if (need_soft && !nonfinite) {
      if (cm == kPosInf) {
        nonfinite = true;
      } else if (cm > M) {
        const float new_mt = zt_of(c, cm);
        if (S > 0.0) {
          const double d = static_cast<double>(new_mt) - static_cast<double>(Mt);
          const double r = std::exp(-d);
          H = r * (H - d * S);
          S = r * S;
        }
        M = cm;
        Mt = new_mt;
      }
      if (!nonfinite && Mt > kNegInf) {
        const float sc = c.sampling ? it : 1.0f;
        if (need_entropy) {
          softmax_chunk<ISA, true>(z, npad, sc, Mt, S, H);
        } else {
          softmax_chunk<ISA, false>(z, npad, sc, Mt, S, H);
        }
      }
    }

    const bool has_mask = c.mask_id >= c0 && c.mask_id < c0 + n;
    if (has_mask) z[c.mask_id - c0] = kNegInf;
    const float am = has_mask ? block_max<ISA>(z, npad) : cm;
    A = am > A ? am : A;

    if (need_x0 && !c.gumbel) {
      if (am > best) {
        best = am;
        arg = c0 + first_equal(z, n, am);
      }
    } else if (need_x0) {
      const uint64_t gbase = w.row * c.groups + static_cast<uint64_t>(c0 / 4);
      for (int64_t ib = 0; ib < npad; ib += kBlock) {
        // Counter-based noise: blocks that cannot beat the best pick (z/T + max Gumbel < best)
        // are skipped without drawing; the numbers of the others do not depend on the skip.
        const float bm_it = block_max<ISA>(z + ib, kBlock) * it;
        if (bm_it + kGumbelMax < best) continue;
        constexpr int64_t sub = gumbel_sub_size<ISA>();
        for (int64_t h = 0; h < kBlock; h += sub) {
          const float pm = gumbel_sub<ISA>(z + ib + h, it, bm_it, best, gbase + static_cast<uint64_t>((ib + h) / 4),
                                           c.step, c.key0, c.key1, pick + ib + h);
          if (pm > best) {
            best = pm;
            arg = c0 + ib + h + first_equal(pick + ib + h, sub, pm);
          }
        }
      }
    }

    if (need_top2) {
      for (int64_t i = 0; i < npad; i += kLanes) {
        for (int l = 0; l < kLanes; ++l) {
          const float v = z[i + l];
          const float lo = v < t1[l] ? v : t1[l];
          t2[l] = lo > t2[l] ? lo : t2[l];
          t1[l] = v > t1[l] ? v : t1[l];
        }
      }
    }
  };

#if WK_X86
  // Fast spans (stats_avx512.h, stats_avx2.h) where no Gumbel draw, CFG or softmax scale is
  // involved; they stop before the mask column and each suppressed id, which the generic chunks
  // then take.
  const bool fast_row = (ISA == kIsaAvx512 || ISA == kIsaAvx2) && !c.cfg && !(need_x0 && c.gumbel) &&
                        (!c.sampling || it == 1.0f);
  auto fast_span = [&](int64_t c0, int64_t n) -> bool {
    if constexpr (ISA == kIsaBase) {
      return false;  // discarded body: no span kernel is instantiated for the base variant
    } else {
      const T* src = row + c0;
      alignas(64) float s1[kLanes], s2[kLanes];
      const float cm =
          need_top2 ? span_max_isa<T, ISA, true>(src, n, s1, s2) : span_max_isa<T, ISA, false>(src, n, s1, s2);
      if (cm == kPosInf) return false;  // the spec's non-finite softmax: the generic chunks handle it
      if (need_soft && cm > M) {
        if (S > 0.0) {
          const double d = static_cast<double>(cm) - static_cast<double>(Mt);
          const double r = std::exp(-d);
          H = r * (H - d * S);
          S = r * S;
        }
        M = Mt = cm;
      }
      if (need_soft && Mt > kNegInf) {
        float s = 0.0f, h = 0.0f;
        if (need_entropy) {
          sum_exp_isa<T, ISA, true, false>(src, n, 1.0f, Mt, src + n, s, h);
        } else {
          sum_exp_isa<T, ISA, false, false>(src, n, 1.0f, Mt, src + n, s, h);
        }
        S += s;
        H += h;
      }
      A = cm > A ? cm : A;
      if (need_x0 && cm > best) {
        best = cm;
        arg = c0 + span_first_equal_isa<T, ISA>(src, n, cm);
      }
      if (need_top2) {
        for (int l = 0; l < kLanes; ++l) {
          t2[l] = std::max(std::max(t2[l], s2[l]), std::min(t1[l], s1[l]));
          t1[l] = std::max(t1[l], s1[l]);
        }
      }
      return true;
    }
  };
#endif

  int64_t c0 = 0;
  while (c0 < c.vocab) {
#if WK_X86
    if (fast_row && !nonfinite) {
      int64_t stop = c.mask_id >= c0 ? c.mask_id : c.vocab;
      if (sp < c.n_suppress) stop = std::min(stop, c.suppress[sp]);
      const int64_t n = std::min(kSpan, stop - c0) / kSpanStep * kSpanStep;
      if (n > 0 && fast_span(c0, n)) {
        c0 += n;
        continue;
      }
    }
#endif
    const int64_t n = std::min(kChunk, c.vocab - c0);
    generic_chunk(c0, n);
    c0 += n;
  }

  RowResult res{c.mask_id, kNegInf, 0.0f};
  const bool dead = !std::isfinite(A);
  if (dead) return res;
  if (nonfinite) return exact_nonfinite_row(c, row, urow, w, arg);
  const float fs = static_cast<float>(S);
  auto prob_of_z = [&](float zv) { return std::exp(zt_of(c, zv) - Mt) / fs; };
  if (w.full) {
    res.x0 = arg;
    if (c.score_mode == 0) {
      res.score = prob_of_z(c.gumbel ? z_at(c, row, urow, arg) : best);
    } else if (c.score_mode == 1) {
      float z1 = kNegInf, z2 = kNegInf;
      for (int l = 0; l < kLanes; ++l) {
        for (const float v : {t1[l], t2[l]}) {
          if (v > z1) {
            z2 = z1;
            z1 = v;
          } else if (v > z2) {
            z2 = v;
          }
        }
      }
      const float p1 = prob_of_z(z1), p2 = prob_of_z(z2);
      res.score = p1 - (p2 < 0.0f ? 0.0f : p2);
    } else if (c.score_mode == 2) {
      res.score = static_cast<float>(H / S - std::log(S));
    } else {
      res.score = position_uniform(c.seed, c.step, kStreamRandomScore, w.row);
    }
    if (in_sorted(c.demote, c.n_demote, arg)) res.score = kNegInf;
  }
  if (w.xcur != c.mask_id) res.p_cur = prob_of_z(z_at(c, row, urow, w.xcur));
  return res;
}

}  // namespace wk
