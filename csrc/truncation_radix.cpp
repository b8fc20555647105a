// Radix selects of the truncation cutoff (truncation_radix.h). Each level histograms one digit of
// the current candidates, picks the bucket that holds the answer and compacts its candidates to the
// front (branch-free), so a level costs O(candidates left) and 3 levels pin a key exactly.
#include "truncation_radix.h"

#include <algorithm>

namespace wk {
namespace {

constexpr int kLevels = 3;
constexpr int kShift[kLevels] = {21, 10, 0};
constexpr uint32_t kMask[kLevels] = {0x7FFu, 0x7FFu, 0x3FFu};

// Keeps the candidates (keys, and e when given) whose digit is d, in order; returns their count.
int64_t keep_digit(uint32_t* keys, float* e, int64_t n, int shift, uint32_t mask, uint32_t d) {
  int64_t m = 0;
  if (e == nullptr) {
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t k = keys[i];
      keys[m] = k;  // m <= i: never overwrites an unread entry
      m += ((k >> shift) & mask) == d;
    }
    return m;
  }
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t k = keys[i];
    const float ei = e[i];
    keys[m] = k;
    e[m] = ei;
    m += ((k >> shift) & mask) == d;
  }
  return m;
}

}  // namespace

uint32_t radix_kth_largest(uint32_t* keys, int64_t n, int64_t k, uint32_t* counts) {
  for (int l = 0; l < kLevels && n > 1; ++l) {
    const int shift = kShift[l];
    const uint32_t mask = kMask[l];
    std::fill(counts, counts + mask + 1, 0u);
    for (int64_t i = 0; i < n; ++i) ++counts[(keys[i] >> shift) & mask];
    uint32_t d = mask;
    while (k > static_cast<int64_t>(counts[d])) k -= counts[d--];  // the k-th from the top is in d
    if (counts[d] != n) n = keep_digit(keys, nullptr, n, shift, mask, d);
  }
  return keys[0];  // after the last level every candidate left has the same key
}

uint32_t radix_top_p(uint32_t* keys, float* e, int64_t n, double s, float top_p, uint32_t* counts, double* bucket,
                     bool* all_in) {
  double above = 0.0;  // mass of the entries above the current candidates
  *all_in = false;
  for (int l = 0; l < kLevels; ++l) {
    const int shift = kShift[l];
    const uint32_t mask = kMask[l];
    std::fill(counts, counts + mask + 1, 0u);
    std::fill(bucket, bucket + mask + 1, 0.0);
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t d = (keys[i] >> shift) & mask;
      ++counts[d];
      bucket[d] += e[i];
    }
    // The answer's bucket: the lowest non-empty one whose largest entry still has mass-above <= top_p
    // (mass-above only grows downwards). The first non-empty one always qualifies: its mass-above is
    // the current `above`, <= top_p by the previous level's choice (0 at the first).
    int64_t best = -1;
    double best_above = above;
    for (int64_t d = mask; d >= 0; --d) {
      if (counts[d] == 0) continue;
      if (best >= 0 && !(static_cast<float>(above / s) <= top_p)) break;
      best = d;
      best_above = above;
      above += bucket[d];
    }
    if (l == 0) *all_in = static_cast<float>(above / s) <= top_p;  // the scan ran past every bucket
    if (n == 1) break;
    above = best_above;
    const uint32_t bd = static_cast<uint32_t>(best);
    if (counts[bd] != n) n = keep_digit(keys, e, n, shift, mask, bd);
  }
  return keys[0];
}

}  // namespace wk
