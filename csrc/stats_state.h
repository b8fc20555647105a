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

// A sorted list of token ids.
struct IdList {
  const int64_t* ids = nullptr;
  int64_t n = 0;
  WK_MEMBER_INLINE bool has(int64_t v) const { return n > 0 && std::binary_search(ids, ids + n, v); }
  // Index of the first id >= v.
  WK_MEMBER_INLINE int64_t from(int64_t v) const { return std::lower_bound(ids, ids + n, v) - ids; }
  // Sets z[id - c0] = val for the ids in [c0, c0 + len); true if any.
  WK_MEMBER_INLINE bool fill(int64_t c0, int64_t len, float* z, float val) const {
    bool any = false;
    for (int64_t i = n > 0 ? from(c0) : 0; i < n && ids[i] < c0 + len; ++i) {
      z[ids[i] - c0] = val;
      any = true;
    }
    return any;
  }
  WK_MEMBER_INLINE bool any_in(int64_t c0, int64_t len) const {
    if (n == 0) return false;
    const int64_t i = from(c0);
    return i < n && ids[i] < c0 + len;
  }
};

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
  IdList suppress;      // -inf everywhere (combined_logits)
  IdList pick;          // pick_suppress_ids: never x0
  IdList score_sup;     // score_suppress_ids: out of the score / p_cur softmax
  IdList special;       // the union of the three: the fast spans stop before each
  uint32_t step;
  uint64_t groups;      // ceil(V / 4): Philox counters per position (ceil(vocab_total / 4) on a shard)
  uint64_t ctr0;        // counter of the row's entry 0 within its position (vocab_start / 4 on a shard)
  bool truncate;        // top_k > 0 or top_p < 1: the row goes through truncated_row
  int64_t top_k;
  double top_p;
};

// The configuration of a call (token_stats.cpp): ids, list views into `a`, Philox layout of one device.
StatsCfg make_cfg(const StatsArgs& a);
Storage storage_of(at::ScalarType t);

// What is particular to one position: its Philox key and position, its logit prior.
struct RowJob {
  bool full;      // x0 and score wanted (else p_cur only)
  int64_t xcur;   // current token at this position (any value: p_cur is 0 outside [0, V))
  uint64_t g;     // position in the generation region: the Philox counter (never the batch index)
  uint64_t seed;  // the row's seed: the Philox key
  int64_t prior;  // prior token (-1 or outside [0, V): none)
  float bias;     // its logit bias
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

// fp32 logit of one entry after CFG, the NaN policy, suppression and the prior (combined_logits).
template <class T>
WK_INLINE float z_at(const StatsCfg& c, const T* row, const void* urow, const RowJob& w, int64_t v) {
  float z = to_f32(row[v]);
  if (c.cfg) {
    const float u = uncond_at(c, urow, v);
    z = u + c.cfg_s1 * (z - u);
  }
  if (z != z || c.suppress.has(v)) z = kNegInf;
  if (v == w.prior) z = z + w.bias;
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
