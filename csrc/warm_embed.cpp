// warm_embed: gather + interpolate + select in one pass, parallel over positions. Each output row
// is written once from at most two weight rows; no [B, G, D] fp32 intermediate.
#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

#include "checks.h"
#include "common.h"
#include "isa_dispatch.h"
#include "kernels.h"

namespace wk {

namespace {

template <class T>
struct EmbedJob {
  const T* weight;
  int64_t ws0;  // weight row stride
  int64_t D, G;
  const int64_t* x;
  const int64_t* draft;
  const bool* keep;
  int64_t xs0, xs1, ds0, ds1, ks0, ks1;
  const float* alpha;  // [B]
  float scale;         // fp32(scale): the spec multiplies an fp32 tensor by the Python float
  int64_t mask_id;
  int64_t vocab;
  T* out;
  bool* bad;  // [B * G]: the position's x or draft was outside the table (zero row)

  template <int ISA>
  WK_MEMBER_INLINE void rows(int64_t begin, int64_t end) const {
    const T* wm = weight + mask_id * ws0;
    const float sc = scale;
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / G, g = i % G;
      const int64_t xv = x[b * xs0 + g * xs1];
      const int64_t dv = draft[b * ds0 + g * ds1];
      const bool kv = keep[b * ks0 + g * ks1];
      T* o = out + i * D;
      bad[i] = xv < 0 || xv >= vocab || dv < -1 || dv >= vocab;
      if (bad[i]) {  // never read: a zero row, and the status flag tells the caller
        for (int64_t d = 0; d < D; ++d) o[d] = from_f32(0.0f * sc, static_cast<T*>(nullptr));
      } else if (xv == mask_id && kv && dv >= 0) {
        const float a = alpha[b];
        const float one_minus_a = 1.0f - a;
        const T* wd = weight + dv * ws0;
        for (int64_t d = 0; d < D; ++d) {
          const float mixed = one_minus_a * to_f32(wm[d]) + a * to_f32(wd[d]);  // fp-contract off: 3 roundings
          o[d] = from_f32(mixed * sc, static_cast<T*>(nullptr));
        }
      } else {
        const T* w = xv != mask_id ? weight + xv * ws0 : wm;
        for (int64_t d = 0; d < D; ++d) o[d] = from_f32(to_f32(w[d]) * sc, static_cast<T*>(nullptr));
      }
    }
  }
};

template <class T>
bool run(const at::Tensor& weight, const at::Tensor& x, const at::Tensor& draft, const at::Tensor& keep,
         const at::Tensor& out, int64_t mask_id, const at::Tensor& alpha, double scale) {
  const at::Tensor al = alpha.to(at::kFloat).reshape({-1}).expand({x.size(0)}).contiguous();
  EmbedJob<T> j{};
  j.weight = reinterpret_cast<const T*>(weight.const_data_ptr());
  j.ws0 = weight.stride(0);
  j.D = weight.size(1);
  j.G = x.size(1);
  j.x = x.const_data_ptr<int64_t>();
  j.draft = draft.const_data_ptr<int64_t>();
  j.keep = keep.const_data_ptr<bool>();
  j.xs0 = x.stride(0);
  j.xs1 = x.stride(1);
  j.ds0 = draft.stride(0);
  j.ds1 = draft.stride(1);
  j.ks0 = keep.stride(0);
  j.ks1 = keep.stride(1);
  j.alpha = al.const_data_ptr<float>();
  j.scale = static_cast<float>(scale);
  j.mask_id = mask_id;
  j.vocab = weight.size(0);
  j.out = reinterpret_cast<T*>(out.data_ptr());
  const int64_t n = x.size(0) * x.size(1);
  std::vector<uint8_t> bad(static_cast<size_t>(n), 0);
  j.bad = reinterpret_cast<bool*>(bad.data());
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(j.D, 1));
  run_rows(j, n, grain);
  return std::any_of(bad.begin(), bad.end(), [](uint8_t v) { return v != 0; });
}

}  // namespace

void warm_embed(const at::Tensor& weight, const at::Tensor& x, const at::Tensor& draft, const at::Tensor& keep,
                const at::Tensor& out, int64_t mask_id, const at::Tensor& alpha, double scale,
                const std::optional<at::Tensor>& status) {
  (void)cpu_isa();  // a bad WARMKERN_CPU_ISA fails before any work
  check_tensor(weight, "weight", 2, {at::kFloat, at::kBFloat16, at::kHalf});
  check_unit_last_stride(weight, "weight");
  check_tensor(x, "x", 2, {at::kLong});
  const int64_t B = x.size(0), G = x.size(1), vocab = weight.size(0), D = weight.size(1);
  check_tensor(draft, "draft", 2, {at::kLong});
  check_shape(draft, "draft", {B, G});
  check_tensor(keep, "keep", 2, {at::kBool});
  check_shape(keep, "keep", {B, G});
  check_tensor(out, "out", 3, {weight.scalar_type()});
  check_shape(out, "out", {B, G, D});
  WK_CHECK_ARG(out.is_contiguous(), "out", "a contiguous tensor, got strides ", out.strides());
  check_writable(out, "out");
  WK_CHECK_ARG(alpha.defined() && alpha.device().is_cpu() && at::isFloatingType(alpha.scalar_type()), "alpha",
               "a floating-point CPU tensor");
  WK_CHECK_ARG(alpha.dim() <= 1 && (alpha.numel() == B || alpha.numel() == 1), "alpha", B,
               " values (one per row) or one, got shape ", alpha.sizes());
  WK_CHECK_ARG(mask_id >= 0 && mask_id < vocab, "mask_id", "an id in [0, ", vocab, "), got ", mask_id);
  if (status.has_value()) {
    check_tensor(*status, "status", 1, {at::kInt});
    check_shape(*status, "status", {1});
    check_writable(*status, "status");
  }
  // x / draft: any values. An id outside the table is never read (a zero row, reference.warm_embed)
  // and sets status.
  bool any_bad = false;
  switch (weight.scalar_type()) {
    case at::kFloat:
      any_bad = run<float>(weight, x, draft, keep, out, mask_id, alpha, scale);
      break;
    case at::kBFloat16:
      any_bad = run<Bf16>(weight, x, draft, keep, out, mask_id, alpha, scale);
      break;
    default:
      any_bad = run<F16>(weight, x, draft, keep, out, mask_id, alpha, scale);
      break;
  }
  if (any_bad && status.has_value()) status->clamp_min_(1);  // max(status, 1), as the spec
}

}  // namespace wk
