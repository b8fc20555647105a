// The sort-based cutoff (O(V log V); the first version of truncation.cpp), kept as a second oracle for
// the tests and as the benchmarks' baseline: like the spec it sorts the row and sums p = e / s one
// entry at a time in descending order (fp32).
#include "truncation.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace wk {

float truncation_cutoff_sort(const float* zs, int64_t V, int64_t top_k, double top_p, TruncationScratch& scratch) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float>& v = scratch.values;
  v.assign(zs, zs + V);
  std::sort(v.begin(), v.end(), [](float a, float b) { return a > b; });
  float cut = -inf;
  if (top_p < 1.0) {
    const bool inf_row = v[0] == inf;
    const float mf = std::isfinite(v[0]) ? v[0] : 0.0f;
    float s = 0.0f;
    for (int64_t i = 0; i < V; ++i) s += inf_row ? (v[i] == inf ? 1.0f : 0.0f) : std::exp(v[i] - mf);
    float cum = 0.0f;  // the spec's cumulative sum up to the previous entry
    for (int64_t i = 0; i < V && s > 0.0f;) {
      const float above = cum;  // mass of the entries strictly greater than v[i]
      if (above > static_cast<float>(top_p)) break;
      cut = v[i];
      for (const float tie = v[i]; i < V && v[i] == tie; ++i) {
        const float e = inf_row ? (v[i] == inf ? 1.0f : 0.0f) : std::exp(v[i] - mf);
        cum += e / s;
      }
    }
  }
  if (top_k > 0 && top_k < V) cut = std::max(cut, v[top_k - 1]);
  return cut;
}

}  // namespace wk
