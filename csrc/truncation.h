// Dream's top_p then top_k truncation of one row (the spec: warmkern/reference.py truncation_keep),
// as a cutoff value: the row kernel keeps entry v iff zs[v] >= cutoff, so no [V] keep mask is stored.
//
// Algorithm (truncation.cpp, truncation_radix.cpp): three streaming passes over the row, then an
// exact radix select over the candidates the passes leave:
//   1. the row max M (and whether the row holds NaN);
//   2. threshold statistics: with top_p, the exp-sum s and the softmax mass of the entries >= t_j
//      for 16 thresholds t_j = M - {0.5, 1, 2, 3, ..., 14, 16, 20, 32, 64} (and their counts when top_k
//      is on too); top_k alone: the counts for 8 thresholds M - {0.5, 1, 2, 4, ..., 64}. Vectorised
//      (exp, compares, register accumulators), in L1-sized blocks whose fp32 sums add up in double;
//   3. compaction of the entries >= t into scratch, t = the highest threshold that provably holds
//      both cutoffs (count >= top_k, mass > top_p; -inf = the whole row when none does).
// Then per cutoff a 3-level radix select (11/11/10-bit digits of an order-preserving uint32 key)
// over the candidates: top_k descends by counts, top_p by the softmax mass per bucket (exps
// recomputed for the candidates only). If the candidates' whole mass turns out <= top_p (the
// thresholds' fp32 sums misjudged it), the row is redone with t = -inf (a 4th pass, rare). Equal
// values share a key, so ties stay together; -0 and +0 share one.
// Mass rounding: bucket masses are summed in double and `above / s` is rounded to fp32 before the
// fp32 comparison with top_p, as the spec does; the spec's own sums run in a different order, so
// the two agree except where an entry's mass-above lies within rounding (~1e-6) of top_p.
#pragma once

#include <cstdint>
#include <vector>

namespace wk {

// Per-thread buffers the cutoff search reuses from row to row (no allocation per row once grown).
struct TruncationScratch {
  std::vector<float> values;     // the candidates (entries >= the pass-3 threshold); capacity V
  std::vector<uint32_t> keys;    // their order keys (top_p descent)
  std::vector<uint32_t> keys_k;  // a copy for the top_k descent (both descents compact in place)
  std::vector<float> mass;       // their exp(zs - M)
  std::vector<uint32_t> counts;  // radix histogram: counts per digit
  std::vector<double> bucket;    // radix histogram: mass per digit
};

// zs: the tempered combined logits of one row (fp32, no NaN: -inf = already removed; +inf allowed).
// top_k: 0 = off, else keep zs >= the k-th largest value (ties stay). top_p in [0, 1]: 1 = off, else
// keep v iff the softmax(zs) mass of entries strictly greater than zs[v] is <= top_p (ties stay
// together). Returns a c with keep == {v : zs[v] >= c} (-inf is a valid answer when nothing is removed).
// A row holding NaN (outside the contract) gets NaN (nothing kept) when a truncation is on: pass 1
// notices it for free, so callers that cannot rule NaN out check the result instead of the row.
float truncation_cutoff(const float* zs, int64_t V, int64_t top_k, double top_p, TruncationScratch& scratch);

// The same cutoff by sorting the row (truncation_sort.cpp): the tests' second oracle and the bench's baseline.
float truncation_cutoff_sort(const float* zs, int64_t V, int64_t top_k, double top_p, TruncationScratch& scratch);

}  // namespace wk
