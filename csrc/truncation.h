// Dream's top_p then top_k truncation of one row (the spec: warmkern/reference.py truncation_keep),
// as a cutoff value: the row kernel keeps entry v iff zs[v] >= cutoff, so no [V] keep mask is stored.
#pragma once

#include <cstdint>
#include <vector>

namespace wk {

// Per-thread buffers the cutoff search reuses from row to row (no allocation per row once grown).
struct TruncationScratch {
  std::vector<float> values;
  std::vector<uint32_t> keys;
  std::vector<uint32_t> counts;
  std::vector<double> mass;
};

// zs: the tempered combined logits of one row (fp32; -inf = already removed; +inf allowed).
// top_k: 0 = off, else keep zs >= the k-th largest value (ties stay). top_p: 1 = off, else keep v
// iff the softmax(zs) mass of entries strictly greater than zs[v] is <= top_p (ties stay together).
// Returns a c with keep == {v : zs[v] >= c} (-inf is a valid answer when nothing is removed).
float truncation_cutoff(const float* zs, int64_t V, int64_t top_k, double top_p, TruncationScratch& scratch);

}  // namespace wk
