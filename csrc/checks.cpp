// Argument checks of the C++ entry points (see checks.h).
#include "checks.h"

#include <ATen/MemoryOverlap.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace wk {

void check_tensor(const at::Tensor& t, const char* name, int64_t dim, std::initializer_list<at::ScalarType> dtypes) {
  WK_CHECK_ARG(t.defined(), name, "a tensor, got None");
  WK_CHECK_ARG(t.device().is_cpu(), name, "a CPU tensor, got device ", t.device());
  WK_CHECK_ARG(t.dim() == dim, name, dim, " dimensions, got shape ", t.sizes());
  const bool ok = std::find(dtypes.begin(), dtypes.end(), t.scalar_type()) != dtypes.end();
  WK_CHECK_ARG(ok, name, "dtype ", at::ArrayRef<at::ScalarType>(dtypes), ", got ", t.scalar_type());
}

void check_shape(const at::Tensor& t, const char* name, at::IntArrayRef shape) {
  WK_CHECK_ARG(t.sizes() == shape, name, "shape ", shape, ", got ", t.sizes());
}

void check_unit_last_stride(const at::Tensor& t, const char* name) {
  const bool ok = t.dim() == 0 || t.size(-1) <= 1 || t.stride(-1) == 1;
  WK_CHECK_ARG(ok, name, "a contiguous last dimension (stride 1), got strides ", t.strides());
}

namespace {

// Memory offset (in elements) of every element: the exact test for layouts the stride rule cannot
// settle (rare, and only ever run on [B, G] state tensors).
std::vector<int64_t> element_offsets(const at::Tensor& t) {
  std::vector<int64_t> off{0};
  for (int64_t d = 0; d < t.dim(); ++d) {
    std::vector<int64_t> next;
    next.reserve(off.size() * static_cast<size_t>(t.size(d)));
    for (const int64_t o : off)
      for (int64_t i = 0; i < t.size(d); ++i) next.push_back(o + i * t.stride(d));
    off = std::move(next);
  }
  return off;
}

bool has_internal_overlap(const at::Tensor& t) {
  if (t.numel() <= 1) return false;
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size) of the dimensions with size > 1
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.size(d) > 1) dims.emplace_back(t.stride(d), t.size(d));
  std::sort(dims.begin(), dims.end());
  int64_t extent = 1;  // elements spanned by the dimensions of smaller stride
  bool nested = true;
  for (const auto& [stride, size] : dims) {
    if (stride == 0) return true;
    if (stride < extent) nested = false;
    extent += stride * (size - 1);
  }
  if (nested) return false;  // each stride steps over everything the smaller ones reach
  std::vector<int64_t> off = element_offsets(t);
  std::sort(off.begin(), off.end());
  return std::adjacent_find(off.begin(), off.end()) != off.end();
}

}  // namespace

void check_writable(const at::Tensor& t, const char* name) {
  WK_CHECK_ARG(!has_internal_overlap(t), name,
               "a tensor whose elements do not overlap (unsupported operation: more than one element of the "
               "written-to tensor refers to a single memory location; clone() it first), got sizes ",
               t.sizes(), " and strides ", t.strides());
  WK_CHECK_ARG(!t.is_inference() || c10::InferenceMode::is_enabled(), name,
               "a tensor it may update in place, got an inference tensor outside InferenceMode (inplace update "
               "to an inference tensor outside InferenceMode is not allowed; clone() it first)");
}

void check_disjoint(const at::Tensor& a, const char* name_a, const at::Tensor& b, const char* name_b) {
  const at::MemOverlapStatus s = at::get_overlap_status(a, b);
  WK_CHECK_ARG(s != at::MemOverlapStatus::Full && s != at::MemOverlapStatus::Partial, name_b,
               "a tensor that does not share memory with ", name_a, ", got one that does");
}

at::Tensor per_row_int64(const at::Tensor& t, const char* name, int64_t B, int64_t lo, int64_t hi) {
  WK_CHECK_ARG(t.defined() && t.device().is_cpu(), name, "a CPU tensor");
  WK_CHECK_ARG(t.scalar_type() == at::kLong, name, "dtype Long (int64), got ", t.scalar_type());
  WK_CHECK_ARG(t.dim() <= 1 && (t.numel() == B || t.numel() == 1), name, B, " values (one per row) or one, got shape ",
               t.sizes());
  const at::Tensor r = t.reshape({-1}).expand({B}).contiguous();
  const int64_t* p = r.const_data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    WK_CHECK_ARG(p[b] >= lo && p[b] <= hi, name, "values in [", lo, ", ", hi, "], got ", p[b], " at row ", b);
  return r;
}

void check_values_in(const at::Tensor& t, const char* name, int64_t low, int64_t high) {
  if (t.numel() == 0) return;
  const auto [mn, mx] = at::aminmax(t);
  const int64_t lo = mn.item<int64_t>(), hi = mx.item<int64_t>();
  WK_CHECK_ARG(lo >= low && hi < high, name, "ids in [", low, ", ", high, "), got ", lo < low ? lo : hi,
               " (an id outside the vocabulary)");
}

std::vector<uint64_t> row_seeds_of(int64_t seed, const std::optional<at::Tensor>& row_seeds, int64_t B) {
  if (!row_seeds.has_value()) {
    WK_CHECK_ARG(seed >= 0, "seed", "an int in [0, 2**63 - 1], got ", seed);
    return std::vector<uint64_t>(static_cast<size_t>(B), static_cast<uint64_t>(seed));
  }
  const at::Tensor& t = *row_seeds;
  WK_CHECK_ARG(t.defined() && t.device().is_cpu(), "row_seeds", "a CPU tensor");
  WK_CHECK_ARG(t.scalar_type() == at::kLong, "row_seeds", "dtype Long (int64), got ", t.scalar_type());
  WK_CHECK_ARG(t.dim() <= 1 && (t.numel() == B || t.numel() == 1), "row_seeds", B,
               " values (one per row) or one, got shape ", t.sizes());
  const at::Tensor r = t.reshape({-1}).expand({B}).contiguous();
  const int64_t* p = r.const_data_ptr<int64_t>();
  std::vector<uint64_t> out(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) out[b] = static_cast<uint64_t>(p[b]);  // rng.seed_key: the 64 bits
  return out;
}

uint32_t step_of(int64_t step, const std::optional<at::Tensor>& step_tensor) {
  if (step_tensor.has_value()) {
    const at::Tensor& t = *step_tensor;
    WK_CHECK_ARG(t.defined() && t.device().is_cpu(), "step_tensor", "a CPU tensor");
    WK_CHECK_ARG(t.scalar_type() == at::kLong, "step_tensor", "dtype Long (int64), got ", t.scalar_type());
    WK_CHECK_ARG(t.numel() == 1 && t.dim() <= 1, "step_tensor", "one value (a 0-d tensor), got shape ", t.sizes());
    step = t.item<int64_t>();
    WK_CHECK_ARG(step >= 0 && step <= int64_t{0xFFFFFFFF}, "step_tensor", "a value in [0, 2**32 - 1], got ", step);
  }
  WK_CHECK_ARG(step >= 0 && step <= int64_t{0xFFFFFFFF}, "step", "an int in [0, 2**32 - 1], got ", step);
  return static_cast<uint32_t>(step);
}

}  // namespace wk
