// The per-position statistics kernel of token_stats: one streaming pass over the vocabulary.
//
// A row is cut into pieces, each fed to the row's accumulators (RowAcc, stats_state.h):
//  - generic chunks of up to kChunk entries, loaded once (bf16/fp16/fp32 -> fp32 with CFG, NaN ->
//    -inf, suppression and the row's prior bias applied on the fly) into a small fp32 buffer that every
//    accumulator then reads: the chunk maximum, the softmax sum and entropy accumulator (online softmax:
//    rescaled once per chunk, not per element; score_suppress_ids left out), the argmax over the
//    candidates (mask and pick_suppress_ids left out; or the Gumbel-max with Philox noise keyed by the
//    row's seed and the position g, one Philox call per 4 entries) and the top-2 for the margin score.
//    Every case of the spec goes this way;
//  - in the AVX2 / AVX-512 variants, fast spans of up to kSpan entries read straight from the input
//    in registers (span_kernels.inc) wherever no Gumbel draw, CFG or softmax scale is involved; they
//    stop before the mask column, each suppressed / pick- / score-suppressed id and the row's prior
//    token (one compare per span, not per entry), which the generic chunks then take.
// A +inf entry of the score softmax sends the row's scores to exact_nonfinite_row (uniform over the
// +inf entries). Rows under top_k / top_p go through truncated_row: the row's combined logits are
// materialised once in per-thread fp32 scratch, the cutoff found (truncation.h), and the truncated
// fp32 row read by the same kernel. Only O(chunk) temporary memory per thread (O(V) when truncating);
// the logits are never copied or converted as a whole.
#pragma once

#include <cmath>
#include <vector>

#include "common.h"
#include "gumbel_base.h"
#include "simd_avx2.h"
#include "simd_avx512.h"
#include "stats_exact.h"
#include "stats_state.h"
#include "truncation.h"

namespace wk {

constexpr int64_t kChunk = 1024;  // multiple of kBlock; 4 KiB of fp32 per buffer
constexpr int64_t kBlock = 128;   // Gumbel skip-test block
static_assert(kChunk % kBlock == 0 && kBlock % kSpanStep == 0, "chunk buffers feed the span kernels' sum_exp");

// The span kernels of an x86 variant (none in the base variant).
template <int ISA>
struct IsaKernels;
#if WK_X86
template <>
struct IsaKernels<kIsaAvx512> {
  using K = avx512::Kernels;
};
template <>
struct IsaKernels<kIsaAvx2> {
  using K = avx2::Kernels;
};
static_assert(kBlock % avx512::Kernels::kGumbelEntries == 0 && kBlock % avx2::Kernels::kGumbelEntries == 0,
              "a Gumbel skip-test block is whole gumbel_blocks");
#endif

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

// z[0, n) = the chunk's logits after CFG and the NaN policy; returns their max.
template <class T, class U>
WK_INLINE float load_cfg_chunk(const T* src, const U* usrc, int64_t n, float s1, float* z) {
  float cm = kNegInf;  // fused into the load pass
#pragma omp simd reduction(max : cm)
  for (int64_t i = 0; i < n; ++i) {
    const float u = to_f32(usrc[i]);
    const float v = u + s1 * (to_f32(src[i]) - u);
    const float zv = v != v ? kNegInf : v;
    z[i] = zv;
    cm = zv > cm ? zv : cm;
  }
  return cm;
}

template <class T>
WK_INLINE float load_chunk(const StatsCfg& c, const T* row, const void* urow, int64_t c0, int64_t n, float* z) {
  if (c.cfg) {
    switch (c.uncond_type) {
      case Storage::kF32:
        return load_cfg_chunk(row + c0, static_cast<const float*>(urow) + c0, n, c.cfg_s1, z);
      case Storage::kBf16:
        return load_cfg_chunk(row + c0, static_cast<const Bf16*>(urow) + c0, n, c.cfg_s1, z);
      default:
        return load_cfg_chunk(row + c0, static_cast<const F16*>(urow) + c0, n, c.cfg_s1, z);
    }
  }
  const T* src = row + c0;
  float cm = kNegInf;
#pragma omp simd reduction(max : cm)
  for (int64_t i = 0; i < n; ++i) {
    const float v = to_f32(src[i]);
    const float zv = v != v ? kNegInf : v;
    z[i] = zv;
    cm = zv > cm ? zv : cm;
  }
  return cm;
}

// (sum(exp(z * sc - Mt)), sum(exp(z * sc - Mt) * (z * sc - Mt))) over a chunk buffer.
template <int ISA, bool ENTROPY>
WK_INLINE void softmax_chunk(const float* z, int64_t npad, float sc, float Mt, float& s, float& h) {
  s = h = 0.0f;
  if constexpr (ISA != kIsaBase) {
    // The span kernels' exp-sum over the buffer (npad is a multiple of kBlock, so of kSpanStep):
    // cheaper than the loop below (on AVX2, T = 0 CFG rows, which take only generic chunks, ran
    // 1.2-1.6x faster with it on an AMD EPYC).
    IsaKernels<ISA>::K::template sum_exp<float, ENTROPY, true>(z, npad, sc, Mt, nullptr, s, h);
  } else {
    float ls = 0.0f, lh = 0.0f;
    // omp simd: lets GCC reassociate the fp32 sums into vector lanes (it will not on its own).
#pragma omp simd reduction(+ : ls, lh)
    for (int64_t i = 0; i < npad; ++i) {
      const float d = z[i] * sc - Mt;  // * 1 is exact: same d as the spec's zt - m
      const float dc = d < kExpFloor ? kExpFloor : d;
      const float ex = fast_exp<ISA>(dc);  // unconditional: a select, not a branch, so it vectorises
      const float e = d < kExpFloor ? 0.0f : ex;
      ls += e;
      if constexpr (ENTROPY) lh += e * dc;
    }
    s = ls;
    h = lh;
  }
}

// The softmax accumulators over one chunk buffer whose max is cm.
template <int ISA>
WK_INLINE void softmax_update(const StatsCfg& c, const Needs& need, const float* z, int64_t npad, float cm,
                              RowAcc& acc) {
  const float mt = zt_of(c, cm);  // z * (1/T) may overflow to +inf: a +inf entry of the softmax
  if (mt == kPosInf) {
    acc.nonfinite = true;
    return;
  }
  acc.raise_max(cm, mt);
  if (acc.Mt == kNegInf) return;
  const float sc = c.sampling ? c.inv_t : 1.0f;
  float s, h;
  if (need.entropy) {
    softmax_chunk<ISA, true>(z, npad, sc, acc.Mt, s, h);
  } else {
    softmax_chunk<ISA, false>(z, npad, sc, acc.Mt, s, h);
  }
  acc.add_sums(s, h);
}

// Entries per Gumbel call: AVX-512 runs two Philox chains (128 entries) so the 10 dependent rounds
// overlap; AVX2 one chain of 8 calls (32); the portable block 16 calls (64).
template <int ISA>
constexpr int64_t gumbel_sub_size() {
  if constexpr (ISA != kIsaBase) {
    return IsaKernels<ISA>::K::kGumbelEntries;
  } else {
    return kGumbelBaseEntries;
  }
}

// Gumbel-max over a chunk buffer (T > 0): picks z * inv_t + noise, argmax into acc.
template <int ISA>
WK_INLINE void gumbel_chunk(const StatsCfg& c, const RowJob& w, const float* z, int64_t npad, int64_t c0,
                            RowAcc& acc, float* pick) {
  const float it = c.inv_t;
  const uint64_t gbase = w.g * c.groups + c.ctr0 + static_cast<uint64_t>(c0 / 4);  // rng.vocab_words' counter
  constexpr int64_t sub = gumbel_sub_size<ISA>();
  for (int64_t ib = 0; ib < npad; ib += kBlock) {
    // Counter-based noise: blocks that cannot beat the best pick (z/T + max Gumbel < best) are
    // skipped without drawing; the numbers of the others do not depend on the skip.
    const float bm_it = block_max(z + ib, kBlock) * it;
    if (bm_it + kGumbelMax < acc.best) continue;
    for (int64_t h = 0; h < kBlock; h += sub) {
      const uint64_t ctr = gbase + static_cast<uint64_t>((ib + h) / 4);
      float* pk = pick + ib + h;
      float pm;
      if constexpr (ISA != kIsaBase) {
        pm = IsaKernels<ISA>::K::gumbel_block(z + ib + h, it, acc.best, ctr, c.step, w.key0(), w.key1(), pk);
      } else {
        pm = gumbel_block_base<ISA>(z + ib + h, it, bm_it, acc.best, ctr, c.step, w.key0(), w.key1(), pk);
      }
      acc.offer(pm, [&] { return c0 + ib + h + first_equal(pk, sub, pm); });
    }
  }
}

// One chunk of at most kChunk entries through the fp32 buffer z: every case of the spec. `pick` (kChunk
// floats) first holds the chunk without its score_suppress_ids when it has any (the score softmax and
// margin's top-2 read that), then the Gumbel picks.
template <class T, int ISA>
WK_INLINE void generic_chunk(const StatsCfg& c, const Needs& need, const RowJob& w, const T* row, const void* urow,
                             int64_t c0, int64_t n, RowAcc& acc, float* z, float* pick) {
  const int64_t npad = (n + kBlock - 1) / kBlock * kBlock;
  float cm = load_chunk(c, row, urow, c0, n, z);
  for (int64_t i = n; i < npad; ++i) z[i] = kNegInf;
  bool changed = c.suppress.fill(c0, n, z, kNegInf);
  if (w.prior >= c0 && w.prior < c0 + n) {
    z[w.prior - c0] = z[w.prior - c0] + w.bias;  // after suppression: a suppressed prior stays -inf
    changed = true;
  }
  if (changed) cm = block_max(z, npad);  // the fused max saw the values before

  const bool has_ss = c.score_sup.any_in(c0, n);
  float* sz = z;  // the score softmax's view of the chunk
  float sm = cm;
  if (has_ss && (need.soft || need.top2)) {
    for (int64_t i = 0; i < npad; ++i) pick[i] = z[i];
    c.score_sup.fill(c0, n, pick, kNegInf);
    sz = pick;
    sm = block_max(pick, npad);
  }
  if (need.soft && !acc.nonfinite) softmax_update<ISA>(c, need, sz, npad, sm, acc);

  const bool has_mask = c.mask_id >= c0 && c.mask_id < c0 + n;
  if (has_mask) z[c.mask_id - c0] = kNegInf;
  const bool has_pick = c.pick.fill(c0, n, z, kNegInf);
  if (need.top2) {
    if (sz != z) {  // the candidates minus score_suppress_ids
      if (has_mask) sz[c.mask_id - c0] = kNegInf;
      c.pick.fill(c0, n, sz, kNegInf);
    }
    alignas(64) float a1[kLanes], a2[kLanes];
    for (int l = 0; l < kLanes; ++l) a1[l] = a2[l] = kNegInf;
    for (int64_t i = 0; i < npad; i += kLanes)
      for (int l = 0; l < kLanes; ++l) merge_top2(a1[l], a2[l], sz[i + l], kNegInf);
    acc.merge_lanes(a1, a2);
  }
  const float am = has_mask || has_pick ? block_max(z, npad) : cm;
  acc.A = max_of(acc.A, am);

  if (need.x0 && !c.gumbel) {
    acc.offer(am, [&] { return c0 + first_equal(z, n, am); });
  } else if (need.x0) {
    gumbel_chunk<ISA>(c, w, z, npad, c0, acc, pick);
  }
}

// Fast spans: T = 0 rows without CFG (or p_cur-only rows at any T), at the unscaled softmax.
template <int ISA>
WK_INLINE bool fast_row(const StatsCfg& c, const Needs& need) {
  return ISA != kIsaBase && !c.cfg && !(need.x0 && c.gumbel) && (!c.sampling || c.inv_t == 1.0f);
}

// Length of the fast span at c0: up to kSpan whole steps, stopping before the mask column, the next
// suppressed / pick- / score-suppressed id and the row's prior token (0: none here).
WK_INLINE int64_t fast_span_length(const StatsCfg& c, const RowJob& w, int64_t c0) {
  int64_t stop = c.mask_id >= c0 ? c.mask_id : c.vocab;
  if (w.prior >= c0) stop = min_of(stop, w.prior);
  const int64_t sp = c.special.n > 0 ? c.special.from(c0) : 0;
  if (sp < c.special.n) stop = min_of(stop, c.special.ids[sp]);
  return min_of(kSpan, stop - c0) / kSpanStep * kSpanStep;
}

// One fast span [c0, c0 + n) read from the input; false (nothing done) at a +inf entry, which the
// generic chunks handle (the spec's non-finite softmax).
template <class T, int ISA>
WK_INLINE bool fast_span(const Needs& need, const T* row, int64_t c0, int64_t n, RowAcc& acc) {
  using K = typename IsaKernels<ISA>::K;
  const T* src = row + c0;
  alignas(64) float s1[kLanes], s2[kLanes];
  const float cm =
      need.top2 ? K::template span_max<T, true>(src, n, s1, s2) : K::template span_max<T, false>(src, n, s1, s2);
  if (cm == kPosInf) return false;
  if (need.soft) {
    acc.raise_max(cm, cm);  // fast rows: zt = z
    if (acc.Mt > kNegInf) {
      float s = 0.0f, h = 0.0f;
      if (need.entropy) {
        K::template sum_exp<T, true, false>(src, n, 1.0f, acc.Mt, src + n, s, h);
      } else {
        K::template sum_exp<T, false, false>(src, n, 1.0f, acc.Mt, src + n, s, h);
      }
      acc.add_sums(s, h);
    }
  }
  acc.A = max_of(acc.A, cm);
  if (need.x0) acc.offer(cm, [&] { return c0 + K::first_equal(src, n, cm); });
  if (need.top2) acc.merge_lanes(s1, s2);
  return true;
}

// x0, score and p_cur from the accumulators.
template <class T>
WK_INLINE RowResult finish_row(const StatsCfg& c, const T* row, const void* urow, const RowJob& w, const RowAcc& acc) {
  RowResult res{c.mask_id, kNegInf, 0.0f};
  if (acc.A == kNegInf) return res;  // dead: no candidate logit > -inf
  // Every candidate's pick underflowed to -inf (z * (1/T) below -FLT_MAX): the spec's argmax of an
  // all -inf row is index 0.
  const int64_t x0 = acc.arg < 0 ? 0 : acc.arg;
  if (acc.nonfinite) return exact_nonfinite_row(c, row, urow, w, x0);
  const bool empty = acc.Mt == kNegInf;  // no score softmax entry > -inf: p = 0 everywhere
  const float fs = static_cast<float>(acc.S);
  // e / s, one correctly rounded division as the spec's p = e / s (e = 1 exactly at the max).
  auto prob_of_z = [&](float zv) { return empty ? 0.0f : std::exp(zt_of(c, zv) - acc.Mt) / fs; };
  if (w.full) {
    res.x0 = x0;
    switch (c.score) {
      case kScoreProb:
        res.score = c.score_sup.has(x0) ? 0.0f : prob_of_z(c.gumbel || acc.arg < 0 ? z_at(c, row, urow, w, x0) : acc.best);
        break;
      case kScoreMargin: {
        float z1, z2;
        acc.top2(z1, z2);
        const float p1 = prob_of_z(z1), p2 = prob_of_z(z2);
        res.score = p1 - (p2 < 0.0f ? 0.0f : p2);
        break;
      }
      case kScoreEntropy:
        res.score = empty ? 0.0f : static_cast<float>(acc.H / acc.S - std::log(acc.S));
        break;
      case kScoreRandom:
        res.score = position_uniform(w.seed, c.step, kStreamRandomScore, w.g);
        break;
    }
  }
  const bool cur = w.xcur != c.mask_id && w.xcur >= 0 && w.xcur < c.vocab && !c.score_sup.has(w.xcur);
  if (cur) res.p_cur = prob_of_z(z_at(c, row, urow, w, w.xcur));
  return res;
}

// The one pass over a row: its accumulators for the given needs (stats_row finishes them into
// x0/score/p_cur, the shard pass of token_stats_partial.cpp into a partial state).
template <class T, int ISA>
WK_INLINE RowAcc accumulate_row(const StatsCfg& c, const Needs& need, const T* row, const void* urow,
                                const RowJob& w, float* z, float* pick) {
  const bool fast = fast_row<ISA>(c, need);
  RowAcc acc;
  int64_t c0 = 0;
  while (c0 < c.vocab) {
    if constexpr (ISA != kIsaBase) {
      if (fast && !acc.nonfinite) {
        const int64_t n = fast_span_length(c, w, c0);
        if (n > 0 && fast_span<T, ISA>(need, row, c0, n, acc)) {
          c0 += n;
          continue;
        }
      }
    }
    const int64_t n = min_of(kChunk, c.vocab - c0);
    generic_chunk<T, ISA>(c, need, w, row, urow, c0, n, acc, z, pick);
    c0 += n;
  }
  return acc;
}

// One position. z and pick are per-thread scratch buffers of kChunk floats.
template <class T, int ISA>
WK_INLINE RowResult stats_row(const StatsCfg& c, const T* row, const void* urow, const RowJob& w, float* z,
                              float* pick) {
  return finish_row(c, row, urow, w, accumulate_row<T, ISA>(c, needs_of(c, w), row, urow, w, z, pick));
}

// Per-thread buffers of the truncated rows: the row's combined logits z and zs = z * (1/T), [V] each.
struct TruncBufs {
  std::vector<float> z, zs;
  TruncationScratch scratch;
};

// zb[0, V) = the row's combined logits (CFG, NaN, suppression, prior: combined_logits) and zsb = zb * (1/T),
// in one read of the input (tempered chunk by chunk while it is in L1).
template <class T>
WK_INLINE void materialise_row(const StatsCfg& c, const T* row, const void* urow, const RowJob& w, float* zb,
                               float* zsb) {
  const int64_t V = c.vocab;
  const float it = c.inv_t;
  for (int64_t c0 = 0; c0 < V; c0 += kChunk) {
    const int64_t n = min_of(kChunk, V - c0);
    float* zc = zb + c0;
    float* zsc = zsb + c0;
    load_chunk(c, row, urow, c0, n, zc);
    c.suppress.fill(c0, n, zc, kNegInf);
    if (w.prior >= c0 && w.prior < c0 + n) zc[w.prior - c0] = zc[w.prior - c0] + w.bias;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) zsc[i] = zc[i] * it;  // tempered while the chunk is in L1
  }
}

// A row under top_k / top_p (Dream's truncation): its combined logits are materialised once into
// tb.z (CFG, NaN, suppression, prior) and tempered into tb.zs in the same pass, the cutoff c found on zs
// (truncation_cutoff: keep == {zs >= c}), the removed entries set to -inf in tb.z, and the result
// is an fp32 row without CFG, suppression or prior that stats_row reads as any other (fast spans
// included). Passes over the logits: 1 read of the input (tempered chunk by chunk in the same pass),
// then the cutoff's passes and 2 over the L2-resident fp32 row (apply the cutoff, statistics).
template <class T, int ISA>
WK_INLINE RowResult truncated_row(const StatsCfg& c, const T* row, const void* urow, const RowJob& w, float* z,
                                  float* pick, TruncBufs& tb) {
  const int64_t V = c.vocab;
  tb.z.resize(static_cast<size_t>(V));
  tb.zs.resize(static_cast<size_t>(V));
  float* zb = tb.z.data();
  float* zsb = tb.zs.data();
  materialise_row(c, row, urow, w, zb, zsb);
  const float cut = truncation_cutoff(zsb, V, c.top_k, c.top_p, tb.scratch);
#pragma omp simd
  for (int64_t v = 0; v < V; ++v) zb[v] = zsb[v] >= cut ? zb[v] : kNegInf;
  StatsCfg tc = c;
  tc.cfg = false;
  tc.suppress = IdList{};
  tc.truncate = false;
  RowJob tw = w;
  tw.prior = -1;
  return stats_row<float, ISA>(tc, zb, nullptr, tw, z, pick);
}

}  // namespace wk
