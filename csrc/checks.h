// Argument checks of the C++ entry points. warmkern.ops validates before it calls them, but
// torch.ops.warmkern_cpu.* can be called directly (and ops.py passes ids unchecked under
// check_values=False), so every tensor a kernel reads or writes and every value it indexes with is
// checked again here, before any kernel runs. Messages have the house shape
// "warmkern_cpu: <argument>: expected ..., got ...".
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <vector>

#define WK_CHECK_ARG(cond, name, ...) TORCH_CHECK((cond), "warmkern_cpu: ", (name), ": expected ", __VA_ARGS__)

namespace wk {

// A CPU tensor of one of `dtypes` with `dim` dimensions.
void check_tensor(const at::Tensor& t, const char* name, int64_t dim, std::initializer_list<at::ScalarType> dtypes);

// ... and of exactly this shape.
void check_shape(const at::Tensor& t, const char* name, at::IntArrayRef shape);

// Unit stride along the last dimension (when it has more than one entry): the kernels stream rows.
void check_unit_last_stride(const at::Tensor& t, const char* name);

// A tensor the op writes in place: no two of its elements share memory (an expanded / stride-0
// tensor, or strides that interleave), and not an inference tensor outside InferenceMode.
void check_writable(const at::Tensor& t, const char* name);

// Two tensors the op writes: no element of one shares memory with the other.
void check_disjoint(const at::Tensor& a, const char* name_a, const at::Tensor& b, const char* name_b);

// A per-row int64 tensor of B values (or one, broadcast) in [lo, hi], as a contiguous [B] tensor.
at::Tensor per_row_int64(const at::Tensor& t, const char* name, int64_t B, int64_t lo, int64_t hi);

// Every value of an int64 tensor in [low, high).
void check_values_in(const at::Tensor& t, const char* name, int64_t low, int64_t high);

// The [B] Philox keys of a call: row_seeds ([B] or one int64 value, any bits) when given, else `seed`
// (an int >= 0) for every row.
std::vector<uint64_t> row_seeds_of(int64_t seed, const std::optional<at::Tensor>& row_seeds, int64_t B);

// The Philox step: step_tensor (0-d or one int64 value) when given, else `step`; in [0, 2**32 - 1].
uint32_t step_of(int64_t step, const std::optional<at::Tensor>& step_tensor);

}  // namespace wk
