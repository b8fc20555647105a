// Private ops exposing wk::truncation_cutoff row by row, so tests and benchmarks can check the cutoff
// search against the spec (reference.truncation_keep) on its own: warmkern_cpu::_truncation_cutoff,
// and warmkern_cpu::_truncation_cutoff_sort (the sort-based baseline, truncation_sort.cpp).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "truncation.h"

namespace wk {
namespace {

using CutoffFn = float (*)(const float*, int64_t, int64_t, double, TruncationScratch&);

// zs [R, V] fp32 contiguous CPU -> [R] fp32 cutoffs (keep iff zs >= cutoff), rows in parallel.
at::Tensor cutoff_rows(const at::Tensor& zs, int64_t top_k, double top_p, CutoffFn fn) {
  TORCH_CHECK(zs.device().is_cpu() && zs.scalar_type() == at::kFloat && zs.dim() == 2 && zs.is_contiguous(),
              "zs: expected a contiguous [R, V] float32 CPU tensor, got ", zs.scalar_type(), " ", zs.sizes(),
              zs.is_contiguous() ? "" : " (non-contiguous)");
  TORCH_CHECK(zs.size(1) >= 1, "zs: expected V >= 1, got V = ", zs.size(1));
  TORCH_CHECK(top_k >= 0, "top_k: expected an int >= 0, got ", top_k);
  TORCH_CHECK(top_p >= 0.0 && top_p <= 1.0, "top_p: expected a float in [0, 1], got ", top_p);
  const int64_t R = zs.size(0), V = zs.size(1);
  at::Tensor out = at::empty({R}, zs.options());
  const float* z = zs.data_ptr<float>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, R, 1, [&](int64_t begin, int64_t end) {
    TruncationScratch scratch;  // one per thread's range, reused row to row
    for (int64_t r = begin; r < end; ++r) o[r] = fn(z + r * V, V, top_k, top_p, scratch);
  });
  // A NaN cutoff: the row held NaN (the spec maps NaN to -inf before truncating); with both
  // truncations off no row is read (nothing is removed). The sort baseline checks its input instead.
  TORCH_CHECK(!at::isnan(out).any().item<bool>(), "zs: expected no NaN (the spec maps NaN to -inf before)");
  return out;
}

at::Tensor truncation_cutoff_op(const at::Tensor& zs, int64_t top_k, double top_p) {
  return cutoff_rows(zs, top_k, top_p, &truncation_cutoff);
}

at::Tensor truncation_cutoff_sort_op(const at::Tensor& zs, int64_t top_k, double top_p) {
  TORCH_CHECK(!(zs.is_floating_point() && at::isnan(zs).any().item<bool>()),
              "zs: expected no NaN (the spec maps NaN to -inf before)");  // NaN would break std::sort's order
  return cutoff_rows(zs, top_k, top_p, &truncation_cutoff_sort);
}

}  // namespace
}  // namespace wk

TORCH_LIBRARY_FRAGMENT(warmkern_cpu, m) {
  m.def("_truncation_cutoff(Tensor zs, int top_k, float top_p) -> Tensor");
  m.def("_truncation_cutoff_sort(Tensor zs, int top_k, float top_p) -> Tensor");
}

TORCH_LIBRARY_IMPL(warmkern_cpu, CPU, m) {
  m.impl("_truncation_cutoff", &wk::truncation_cutoff_op);
  m.impl("_truncation_cutoff_sort", &wk::truncation_cutoff_sort_op);
}
