// warm_embed: gather + interpolate + select in one pass, parallel over positions. Each output row
// is written once from at most two weight rows; no [B, G, D] fp32 intermediate.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "kernels.h"
#include "common.h"

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
  T* out;
};

template <class T, int ISA>
WK_INLINE void embed_impl(const EmbedJob<T>& j, int64_t begin, int64_t end) {
  const T* wm = j.weight + j.mask_id * j.ws0;
  const float sc = j.scale;
  for (int64_t i = begin; i < end; ++i) {
    const int64_t b = i / j.G, g = i % j.G;
    const int64_t xv = j.x[b * j.xs0 + g * j.xs1];
    const int64_t dv = j.draft[b * j.ds0 + g * j.ds1];
    const bool kv = j.keep[b * j.ks0 + g * j.ks1];
    T* o = j.out + i * j.D;
    if (xv == j.mask_id && kv && dv >= 0) {
      const float a = j.alpha[b];
      const float one_minus_a = 1.0f - a;
      const T* wd = j.weight + dv * j.ws0;
      for (int64_t d = 0; d < j.D; ++d) {
        const float mixed = one_minus_a * to_f32(wm[d]) + a * to_f32(wd[d]);  // fp-contract off: 3 roundings
        o[d] = from_f32(mixed * sc, static_cast<T*>(nullptr));
      }
    } else {
      const T* w = xv != j.mask_id ? j.weight + xv * j.ws0 : wm;
      for (int64_t d = 0; d < j.D; ++d) o[d] = from_f32(to_f32(w[d]) * sc, static_cast<T*>(nullptr));
    }
  }
}

template <class T>
void embed_base(const EmbedJob<T>& j, int64_t b, int64_t e) {
  embed_impl<T, kIsaBase>(j, b, e);
}
#if WK_X86
template <class T>
WK_TARGET_AVX2 void embed_avx2(const EmbedJob<T>& j, int64_t b, int64_t e) {
  embed_impl<T, kIsaAvx2>(j, b, e);
}
template <class T>
WK_TARGET_AVX512 void embed_avx512(const EmbedJob<T>& j, int64_t b, int64_t e) {
  embed_impl<T, kIsaAvx512>(j, b, e);
}
#endif

template <class T>
void run(const at::Tensor& weight, const at::Tensor& x, const at::Tensor& draft, const at::Tensor& keep,
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
  j.out = reinterpret_cast<T*>(out.data_ptr());
  void (*fn)(const EmbedJob<T>&, int64_t, int64_t) = embed_base<T>;
#if WK_X86
  const int isa = cpu_isa();
  if (isa == kIsaAvx512) fn = embed_avx512<T>;
  else if (isa == kIsaAvx2) fn = embed_avx2<T>;
#endif
  const int64_t n = x.size(0) * x.size(1);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(j.D, 1));
  at::parallel_for(0, n, grain, [&](int64_t b, int64_t e) { fn(j, b, e); });
}

}  // namespace

void warm_embed(const at::Tensor& weight, const at::Tensor& x, const at::Tensor& draft, const at::Tensor& keep,
                const at::Tensor& out, int64_t mask_id, const at::Tensor& alpha, double scale) {
  TORCH_CHECK(weight.dim() == 2 && weight.device().is_cpu(), "warmkern_cpu: weight must be a [V, D] CPU tensor");
  TORCH_CHECK(weight.size(1) <= 1 || weight.stride(1) == 1, "warmkern_cpu: weight needs a unit last stride");
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kLong, "warmkern_cpu: x must be int64 [B, G]");
  TORCH_CHECK(draft.sizes() == x.sizes() && draft.scalar_type() == at::kLong, "warmkern_cpu: draft must match x");
  TORCH_CHECK(keep.sizes() == x.sizes() && keep.scalar_type() == at::kBool, "warmkern_cpu: keep must be bool like x");
  TORCH_CHECK(out.is_contiguous() && out.scalar_type() == weight.scalar_type() && out.dim() == 3 &&
                  out.size(0) == x.size(0) && out.size(1) == x.size(1) && out.size(2) == weight.size(1),
              "warmkern_cpu: out must be a contiguous [B, G, D] tensor of weight's dtype");
  const int64_t vocab = weight.size(0);
  TORCH_CHECK(mask_id >= 0 && mask_id < vocab, "warmkern_cpu: mask_id out of range");
  const int64_t* xp = x.const_data_ptr<int64_t>();
  const int64_t* dp = draft.const_data_ptr<int64_t>();
  for (int64_t b = 0; b < x.size(0); ++b) {
    for (int64_t g = 0; g < x.size(1); ++g) {  // O(B*G): guards every weight row the kernel reads
      const int64_t xv = xp[b * x.stride(0) + g * x.stride(1)], dv = dp[b * draft.stride(0) + g * draft.stride(1)];
      TORCH_CHECK(xv >= 0 && xv < vocab && dv >= -1 && dv < vocab, "warmkern_cpu: token id outside [0, V)");
    }
  }
  switch (weight.scalar_type()) {
    case at::kFloat:
      run<float>(weight, x, draft, keep, out, mask_id, alpha, scale);
      break;
    case at::kBFloat16:
      run<Bf16>(weight, x, draft, keep, out, mask_id, alpha, scale);
      break;
    case at::kHalf:
      run<F16>(weight, x, draft, keep, out, mask_id, alpha, scale);
      break;
    default:
      TORCH_CHECK(false, "warmkern_cpu: weight must be float32, bfloat16 or float16");
  }
}

}  // namespace wk
