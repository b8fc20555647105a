// The state stats_row works with: the per-call and per-row configuration, the result, and the
// running accumulators of one row (online softmax, argmax, dead-row test, top-2) that its generic
// chunks and fast spans both feed through the same helpers.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "common.h"
#include "kernels.h"

namespace wk {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kPosInf = std::numeric_limits<float>::infinity();

// Storage type of the unconditional (CFG) logits, which may differ from the conditional ones'.
enum class Storage : uint8_t { kF32, kBf16, kF16 };

// What is the same for every position of a call.
struct StatsCfg {
  int64_t vocab;
  int64_t mask_id;
  float inv_t;          // reference.inverse_temperature: fp32(1/T), 1 at T = 0
  bool gumbel;          // T > 0: x0 by Gumbel-max
  bool sampling;        // score_temperature == "sampling": softmax of z * inv_t
  ScoreMode score;
  bool cfg;             // uncond rows given
  Storage uncond_type;  // their storage type
  float cfg_s1;         // fp32(cfg_scale + 1)
  const int64_t* suppress;
  int64_t n_suppress;
  const int64_t* demote;
  int64_t n_demote;
  uint32_t step;
  uint64_t groups;  // ceil(V / 4): Philox counters per row
};

// What is particular to one position: the per-row part of the configuration (a per-row seed,
// sampling rule or logit prior belongs here, read by the chunk and span steps).
struct RowJob {
  bool full;      // x0 and score wanted (else p_cur only)
  int64_t xcur;   // current token at this position
  uint64_t row;   // b * G + g, the Philox row
  uint64_t seed;  // Philox key
  WK_MEMBER_INLINE uint32_t key0() const { return static_cast<uint32_t>(seed); }
  WK_MEMBER_INLINE uint32_t key1() const { return static_cast<uint32_t>(seed >> 32); }
};

struct RowResult {
  int64_t x0;
  float score;
  float p_cur;
};

// Which accumulators a position needs.
struct Needs {
  bool soft;     // the softmax sum (every score but random, and p_cur)
  bool entropy;  // its entropy sum
  bool top2;     // margin
  bool x0;       // the argmax / Gumbel-max
};

WK_INLINE Needs needs_of(const StatsCfg& c, const RowJob& w) {
  return Needs{c.score != kScoreRandom || w.xcur != c.mask_id || !w.full, w.full && c.score == kScoreEntropy,
               w.full && c.score == kScoreMargin, w.full};
}

WK_INLINE bool in_sorted(const int64_t* ids, int64_t n, int64_t v) { return std::binary_search(ids, ids + n, v); }

WK_INLINE float zt_of(const StatsCfg& c, float z) { return c.sampling ? z * c.inv_t : z; }

WK_INLINE float uncond_at(const StatsCfg& c, const void* urow, int64_t v) {
  switch (c.uncond_type) {
    case Storage::kF32:
      return static_cast<const float*>(urow)[v];
    case Storage::kBf16:
      return to_f32(static_cast<const Bf16*>(urow)[v]);
    default:
      return to_f32(static_cast<const F16*>(urow)[v]);
  }
}

// fp32 logit of one entry after CFG, the NaN policy and suppression (the spec's combined_logits).
template <class T>
WK_INLINE float z_at(const StatsCfg& c, const T* row, const void* urow, int64_t v) {
  float z = to_f32(row[v]);
  if (c.cfg) {
    const float u = uncond_at(c, urow, v);
    z = u + c.cfg_s1 * (z - u);
  }
  if (z != z || in_sorted(c.suppress, c.n_suppress, v)) z = kNegInf;
  return z;
}

// Lane-wise merge of top-2 pairs: (t1, t2) <- the two largest of {t1, t2, a1, a2}, for a1 >= a2 and
// no NaN. With a2 = -inf it inserts one value.
WK_INLINE void merge_top2(float& t1, float& t2, float a1, float a2) {
  t2 = max_of(max_of(t2, a2), min_of(t1, a1));
  t1 = max_of(t1, a1);
}

struct RowAcc {
  double S = 0.0, H = 0.0;          // sum of exp(zt - Mt) and of exp(zt - Mt) * (zt - Mt)
  float M = kNegInf, Mt = kNegInf;  // running max of z and of zt (z * inv_t when sampling)
  bool nonfinite = false;           // a +inf entry: the spec's non-finite softmax (exact_nonfinite_row)
  float A = kNegInf;                // max allowed z: the dead-row test
  float best = kNegInf;             // best x0 pick so far (z, or z * inv_t + Gumbel) and its index
  int64_t arg = -1;
  float t1[kLanes], t2[kLanes];     // per-lane top-2 of the allowed z (margin)

  WK_MEMBER_INLINE RowAcc() {
    for (int l = 0; l < kLanes; ++l) t1[l] = t2[l] = kNegInf;
  }

  // Online softmax: a larger max m (mt on the softmax's scale) rescales the sums once per chunk
  // or span, not per element.
  WK_MEMBER_INLINE void raise_max(float m, float mt) {
    if (!(m > M)) return;
    if (S > 0.0) {
      const double d = static_cast<double>(mt) - static_cast<double>(Mt);
      const double r = std::exp(-d);
      H = r * (H - d * S);
      S = r * S;
    }
    M = m;
    Mt = mt;
  }

  WK_MEMBER_INLINE void add_sums(float s, float h) {
    S += s;
    H += h;
  }

  // Greedy argmax: the first index of a new best value (index() is only called then).
  template <class Index>
  WK_MEMBER_INLINE void offer(float v, Index index) {
    if (v > best) {
      best = v;
      arg = index();
    }
  }

  // The top-2 pairs of kLanes lanes (a chunk's or a span's) merged into this row's.
  WK_MEMBER_INLINE void merge_lanes(const float* a1, const float* a2) {
    for (int l = 0; l < kLanes; ++l) merge_top2(t1[l], t2[l], a1[l], a2[l]);
  }

  // The two largest allowed z of the row (z1 >= z2).
  WK_MEMBER_INLINE void top2(float& z1, float& z2) const {
    z1 = z2 = kNegInf;
    for (int l = 0; l < kLanes; ++l) merge_top2(z1, z2, t1[l], t2[l]);
  }
};

}  // namespace wk
