// Shared building blocks of the CPU kernels: the Philox generator of warmkern/rng.py, input loads,
// fast exp/log, and the ISA dispatch used to get AVX2/AVX-512 code without -march flags.
//
// Everything the kernels call inside their hot loops is `WK_INLINE` (always_inline, internal
// linkage), so it is compiled once per ISA variant of the calling kernel (see WK_DISPATCH) and no
// AVX-512 copy of a helper can leak into baseline code through the linker.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

// Exact fp32 arithmetic where the spec rounds each operation (CFG, z/T + g, warm_embed mixing):
// the compiler must not fuse a*b+c into an FMA behind our back. Where an FMA is wanted (the
// polynomials of fast_exp/fast_log) it is written explicitly with wk::fmadd. no-trapping-math
// changes no value (we never enable FP traps); without it GCC will not if-convert the selects of
// the softmax loop for AVX2/SSE2 and leaves it scalar (6x slower).
#pragma GCC optimize("fp-contract=off", "no-trapping-math")

#define WK_INLINE static inline __attribute__((always_inline))
#define WK_MEMBER_INLINE inline __attribute__((always_inline))  // the same for member functions
#define WK_NOINLINE __attribute__((noinline))

#if defined(__x86_64__) || defined(_M_X64)
#define WK_X86 1
#define WK_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")))
// F16C (fp16 -> fp32 in simd_avx2.h) ships with every AVX2 CPU; cpu_isa checks it all the same.
#define WK_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#else
#define WK_X86 0
#endif

namespace wk {

// ----------------------------------------------------------------------------- ISA dispatch
enum Isa : int { kIsaBase = 0, kIsaAvx2 = 1, kIsaAvx512 = 2 };

// Best ISA of this CPU; WARMKERN_CPU_ISA=base|avx2|avx512 caps it (tests run every variant).
int cpu_isa();

// a*b+c with one rounding when the variant has FMA (fast path), else two roundings. Only used in
// approximation polynomials, whose documented error covers either form.
template <int ISA>
WK_INLINE float fmadd(float a, float b, float c) {
  if constexpr (ISA != kIsaBase) {
    return __builtin_fmaf(a, b, c);
  } else {
#if defined(__FMA__) || defined(__aarch64__)
    return __builtin_fmaf(a, b, c);
#else
    return a * b + c;
#endif
  }
}

// max / min with std::max / std::min's semantics (a when neither is larger), inlined: the std ones
// are defined before this file's optimize pragma (through the torch headers), so GCC will not
// inline them into the kernels (an optimize-attribute mismatch) and calls them instead.
template <class T>
WK_INLINE T max_of(T a, T b) {
  return a < b ? b : a;
}
template <class T>
WK_INLINE T min_of(T a, T b) {
  return b < a ? b : a;
}

// Bit casts without memcpy temporaries (those can stop GCC's vectoriser once a select is involved).
WK_INLINE uint32_t f2u(float f) { return __builtin_bit_cast(uint32_t, f); }
WK_INLINE float u2f(uint32_t u) { return __builtin_bit_cast(float, u); }

// ----------------------------------------------------------------------------- input loads
// Storage types of bf16/fp16 tensors (raw bits), converted exactly and branch-free so loops vectorise.
struct Bf16 {
  uint16_t bits;
};
struct F16 {
  uint16_t bits;
};

WK_INLINE float to_f32(float v) { return v; }
WK_INLINE float to_f32(Bf16 v) { return u2f(static_cast<uint32_t>(v.bits) << 16); }
// IEEE half -> float without F16C, branch-free (normal, subnormal, inf and NaN all exact).
WK_INLINE float to_f32(F16 v) {
  const uint32_t w = static_cast<uint32_t>(v.bits) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const float normalized = u2f((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float denormalized = u2f((two_w >> 17) | (126u << 23)) - 0.5f;
  const uint32_t mag = two_w < (1u << 27) ? f2u(denormalized) : f2u(normalized);
  return u2f(sign | mag);
}

// float -> storage type, round to nearest even (NaN stays NaN), as torch's .to(dtype).
WK_INLINE float from_f32(float v, float*) { return v; }
WK_INLINE Bf16 from_f32(float v, Bf16*) {
  uint32_t u = f2u(v);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return Bf16{0x7FC0u};  // NaN, as c10::BFloat16
  u += 0x7FFFu + ((u >> 16) & 1u);
  return Bf16{static_cast<uint16_t>(u >> 16)};
}
WK_INLINE F16 from_f32(float f, F16*) {
  // Same algorithm as c10's fp16_ieee_from_fp32_value (round to nearest even).
  const float scale_to_inf = 0x1.0p+112f;
  const float scale_to_zero = 0x1.0p-110f;
  float base = (std::fabs(f) * scale_to_inf) * scale_to_zero;
  const uint32_t w = f2u(f);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = u2f((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = f2u(base);
  const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
  const uint32_t mantissa_bits = bits & 0x00000FFFu;
  const uint32_t nonsign = exp_bits + mantissa_bits;
  return F16{static_cast<uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign))};
}

// ----------------------------------------------------------------------------- Philox4x32-10
constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;
constexpr int kStreamGumbel = 0;
constexpr int kStreamRandomScore = 1;
constexpr int kStreamKeep = 2;
constexpr int kStreamAlgTemp = 3;

struct Philox4 {
  uint32_t v[4];
};

// One Philox4x32-10 block, counter (c0, c1, c2, c3), key (k0, k1): identical to rng.philox4x32.
WK_INLINE Philox4 philox(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = static_cast<uint64_t>(c0) * kPhiloxM0;
    const uint64_t p1 = static_cast<uint64_t>(c2) * kPhiloxM1;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// Largest fp32 below 1 (rng.ONE_MINUS_ULP) and the series cut-off of rng.gumbel_from_uniform.
constexpr float kOneMinusUlp = 1.0f - 0x1.0p-24f;
constexpr float kSeriesCutoff = 0x1.0p-10f;
constexpr float kThird = static_cast<float>(1.0 / 3.0);
// Largest Gumbel value a 32-bit uniform can produce (u = 2^-33 -> -log(2^-33) = 22.87..).
constexpr float kGumbelMax = 23.0f;

// rng.uniform_from_word: (fp32(w) + 0.5) * 2^-32, clamped below 1.
WK_INLINE float uniform_from_word(uint32_t w) {
  const float u = (static_cast<float>(w) + 0.5f) * 0x1.0p-32f;
  return u < kOneMinusUlp ? u : kOneMinusUlp;
}

// Upper bound of gumbel(uniform_from_word(w)), without a log: gumbel(u) = -log(-log(1 - u)) <=
// -log(u) since -log(1 - u) >= u, and -log(u) <= -ln2 * (bits(u) * 2^-23 - 127) because reading
// the bits of u as exponent + mantissa is the chord interpolation of the concave log2 (looser
// than -log(u) by at most 0.06; the clamp of u below 1 adds at most 6e-8). Checked against
// gumbel<kIsaAvx512> on every 61st word and the 10^5 words at each end: never below it, at most
// 0.11 above where the noise exceeds 2. The Gumbel blocks' prefilter (span_kernels.inc).
WK_INLINE float gumbel_upper(uint32_t w) {
  const float u = (static_cast<float>(w) + 0.5f) * 0x1.0p-32f;
  return (127.0f - static_cast<float>(f2u(u)) * 0x1.0p-23f) * 0.693147181f;
}

// Per-position uniform of a stream (rng.position_uniforms): key the row's seed, counter n = g, word 0.
WK_INLINE float position_uniform(uint64_t seed, uint32_t step, uint32_t stream, uint64_t g) {
  const Philox4 w = philox(static_cast<uint32_t>(g), static_cast<uint32_t>(g >> 32), step, stream,
                           static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  return uniform_from_word(w.v[0]);
}

// ----------------------------------------------------------------------------- fast spans
// Fast spans of stats_row (span_kernels.inc): every SIMD variant cuts a row the same way.
constexpr int64_t kSpan = 4096;    // entries per fast span: 8 KiB of bf16 (2048 and 8192 time the same)
constexpr int64_t kSpanStep = 64;  // span lengths are multiples of this (the unrolled step)
constexpr int kLanes = 16;         // top-2 lanes of a row: a multiple of every variant's vector width

// ----------------------------------------------------------------------------- fast exp / log
// fast_exp: Cephes-style range reduction x = n ln2 + r, |r| <= ln2/2, degree-7 polynomial, 2^n by
// exponent add. Valid for x in [-87, 88]; callers clamp below (kExpFloor). Max relative error
// 8.0e-8 (~1.3 ulp) against double exp over [-80, 0] (sweep of every 256th float, FMA and non-FMA
// variants alike), i.e. >100x inside the 1e-5 score tolerance; it only feeds the softmax
// denominator and the entropy sum (single probabilities use libm expf).
constexpr float kExpFloor = -80.0f;  // exp(-80) = 1.8e-35: terms below this never move a sum of >= 1

template <int ISA>
WK_INLINE float fast_exp(float x) {
  // Round to nearest (even) by the 1.5 * 2^23 shifter: same n as rintf for |x| < 2^22, but plain
  // adds, so baseline SSE2 (no roundps) vectorises it too.
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = fmadd<ISA>(n, -0.693359375f, x);
  r = fmadd<ISA>(n, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = fmadd<ISA>(p, r, 1.3981999507e-3f);
  p = fmadd<ISA>(p, r, 8.3334519073e-3f);
  p = fmadd<ISA>(p, r, 4.1665795894e-2f);
  p = fmadd<ISA>(p, r, 1.6666665459e-1f);
  p = fmadd<ISA>(p, r, 5.0000001201e-1f);
  p = fmadd<ISA>(p, r * r, r);
  p = p + 1.0f;
  const int32_t e = static_cast<int32_t>(n) << 23;
  return u2f(static_cast<uint32_t>(static_cast<int32_t>(f2u(p)) + e));
}

// fast_log for positive normal x: Cephes logf (frexp, sqrt(1/2) fold, degree-9 polynomial).
// Max relative error 7.9e-8 where |log x| > 1e-3, absolute error < 1e-6 everywhere on [2^-40, 40]
// (same sweep); it only feeds the Gumbel noise, where the parity contract allows near ties of 1e-5.
template <int ISA>
WK_INLINE float fast_log(float x) {
  const uint32_t u = f2u(x);
  int32_t e = static_cast<int32_t>((u >> 23) & 0xFF) - 126;
  float m = u2f((u & 0x007FFFFFu) | 0x3F000000u);  // [0.5, 1)
  const bool small = m < 0.707106781186547524f;
  e = small ? e - 1 : e;
  m = small ? m + m - 1.0f : m - 1.0f;
  const float z = m * m;
  float y = 7.0376836292e-2f;
  y = fmadd<ISA>(y, m, -1.1514610310e-1f);
  y = fmadd<ISA>(y, m, 1.1676998740e-1f);
  y = fmadd<ISA>(y, m, -1.2420140846e-1f);
  y = fmadd<ISA>(y, m, 1.4249322787e-1f);
  y = fmadd<ISA>(y, m, -1.6668057665e-1f);
  y = fmadd<ISA>(y, m, 2.0000714765e-1f);
  y = fmadd<ISA>(y, m, -2.4999993993e-1f);
  y = fmadd<ISA>(y, m, 3.3333331174e-1f);
  y = y * m * z;
  const float ef = static_cast<float>(e);
  y = fmadd<ISA>(ef, -2.12194440e-4f, y);
  y = fmadd<ISA>(z, -0.5f, y);
  return fmadd<ISA>(ef, 0.693359375f, m + y);
}

// rng.gumbel_from_uniform with fast_log: -log(E), E = series (w < 2^-10) or -log(1 - w).
template <int ISA>
WK_INLINE float gumbel(float w) {
  const float w2 = w * w;
  const float series = (w + w2 * 0.5f) + (w2 * w) * kThird;
  const float big = -fast_log<ISA>(1.0f - w);
  const float e = w < kSeriesCutoff ? series : big;
  return -fast_log<ISA>(e);
}

}  // namespace wk
