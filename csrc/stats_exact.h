// Exact, unvectorised replica of the spec for the rare rows whose softmax max is +inf (mask entry
// +inf with finite allowed logits): the spec then shifts by 0 and yields 0/NaN probabilities.
#pragma once

#include <cmath>
#include <vector>

#include "stats_state.h"

namespace wk {

template <class T>
static RowResult exact_nonfinite_row(const StatsCfg& c, const T* row, const void* urow, const RowJob& w, int64_t x0) {
  std::vector<float> zt(c.vocab), p(c.vocab);
  float s = 0.0f;
  for (int64_t v = 0; v < c.vocab; ++v) {
    zt[v] = zt_of(c, z_at(c, row, urow, v));
    s += std::exp(zt[v]);
  }
  for (int64_t v = 0; v < c.vocab; ++v) p[v] = std::exp(zt[v]) / s;
  RowResult res{x0, 0.0f, 0.0f};
  if (!w.full) {  // p_cur only (x0 was not computed)
  } else if (c.score == kScoreProb) {
    res.score = p[x0];
  } else if (c.score == kScoreMargin) {
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
  } else if (c.score == kScoreEntropy) {
    const float ls = std::log(s);
    float acc = 0.0f;
    for (int64_t v = 0; v < c.vocab; ++v)
      if (std::exp(zt[v]) > 0.0f) acc += p[v] * (zt[v] - ls);
    res.score = acc;
  } else {
    res.score = position_uniform(w.seed, c.step, kStreamRandomScore, w.row);
  }
  if (w.full && in_sorted(c.demote, c.n_demote, x0)) res.score = kNegInf;
  if (w.xcur != c.mask_id) res.p_cur = p[w.xcur];
  return res;
}

}  // namespace wk
