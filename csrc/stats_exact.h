// The rare rows whose score softmax holds a +inf entry (an fp16 overflow, a huge prior, z * (1/T)
// overflowing): the spec's softmax is then uniform over the +inf entries (reference.softmax_parts),
// which this scalar second pass over the row computes exactly (counts, no exp).
#pragma once

#include <cmath>

#include "stats_state.h"

namespace wk {

// v is a +inf entry of the score softmax.
template <class T>
WK_INLINE bool score_inf(const StatsCfg& c, const T* row, const void* urow, const RowJob& w, int64_t v) {
  return !c.score_sup.has(v) && zt_of(c, z_at(c, row, urow, w, v)) == kPosInf;
}

// The +inf entries of the score softmax (the spec's s of a +inf row) and the candidates among them.
template <class T>
static void count_score_inf(const StatsCfg& c, const T* row, const void* urow, const RowJob& w, int64_t& n_inf,
                            int64_t& n_inf_cand) {
  n_inf = n_inf_cand = 0;
  for (int64_t v = 0; v < c.vocab; ++v) {
    if (!score_inf(c, row, urow, w, v)) continue;
    ++n_inf;
    if (v != c.mask_id && !c.pick.has(v)) ++n_inf_cand;
  }
}

template <class T>
static RowResult exact_nonfinite_row(const StatsCfg& c, const T* row, const void* urow, const RowJob& w, int64_t x0) {
  auto pinf = [&](int64_t v) { return score_inf(c, row, urow, w, v); };
  int64_t n_inf, n_inf_cand;
  count_score_inf(c, row, urow, w, n_inf, n_inf_cand);
  const float p_inf = 1.0f / static_cast<float>(n_inf);  // the spec's e / s with e = 1, s = n_inf
  auto p_of = [&](int64_t v) { return v >= 0 && v < c.vocab && pinf(v) ? p_inf : 0.0f; };
  RowResult res{x0, 0.0f, 0.0f};
  if (w.full) {
    switch (c.score) {
      case kScoreProb:
        res.score = p_of(x0);
        break;
      case kScoreMargin:  // top-2 of p over the candidates: p_inf or 0 each
        res.score = n_inf_cand == 1 ? p_inf : 0.0f;
        break;
      case kScoreEntropy:
        res.score = -std::log(static_cast<float>(n_inf));
        break;
      case kScoreRandom:
        res.score = position_uniform(w.seed, c.step, kStreamRandomScore, w.g);
        break;
    }
  }
  if (w.xcur != c.mask_id) res.p_cur = p_of(w.xcur);
  return res;
}

}  // namespace wk
