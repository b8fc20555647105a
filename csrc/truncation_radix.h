// The exact end of the truncation cutoff search (truncation.h): radix selects over a candidate set,
// on order-preserving uint32 keys of the floats (3 levels: 11, 11 and 10-bit digits).
#pragma once

#include <cstdint>

namespace wk {

// Key of a non-NaN float whose unsigned order is the float order; -0 and +0 share a key (they are
// equal floats, so a tie).
inline uint32_t truncation_key(float x) {
  uint32_t u = __builtin_bit_cast(uint32_t, x);
  u = u == 0x80000000u ? 0u : u;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// The float of a key (inverse of truncation_key).
inline float truncation_key_value(uint32_t k) {
  return __builtin_bit_cast(float, (k & 0x80000000u) ? (k & 0x7FFFFFFFu) : ~k);
}

constexpr int64_t kRadixBuckets = 2048;  // the widest digit (11 bits)

// The k-th largest of keys[0, n) (1 <= k <= n, counting repeats). Reorders and overwrites keys;
// counts: kRadixBuckets entries of scratch.
uint32_t radix_kth_largest(uint32_t* keys, int64_t n, int64_t k, uint32_t* counts);

// The smallest key of keys[0, n) whose mass-above (the sum of e over entries with a greater key,
// divided by s, rounded to fp32) is <= top_p; e[i] >= 0 is the mass of keys[i]. The candidates
// must be every entry of the row with a key >= the smallest one (so masses above are complete),
// and top_p >= 0 (the largest key always qualifies). *all_in is set when the candidates' whole mass
// is <= top_p, i.e. an entry below the smallest candidate would qualify too (the answer may lie
// below the candidates). Overwrites keys and e; counts / bucket: kRadixBuckets entries each.
uint32_t radix_top_p(uint32_t* keys, float* e, int64_t n, double s, float top_p, uint32_t* counts, double* bucket,
                     bool* all_in);

}  // namespace wk
