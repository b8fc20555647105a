// Registers the warmkern_cpu operator library and gives warmkern._C a module init, so that
// `import warmkern._C` loads this shared object and runs the TORCH_LIBRARY registrations.
// Schemas mirror the warmkern:: ops of warmkern/ops.py (minus the backend argument); mutated
// arguments are annotated so torch.compile / functionalization know about the in-place writes.
#include <Python.h>
#include <torch/library.h>

#include "kernels.h"

extern "C" PyObject* PyInit__C(void) {
  static PyModuleDef def = {PyModuleDef_HEAD_INIT, "_C", "warmkern C++ CPU kernels", -1, nullptr};
  return PyModule_Create(&def);
}

namespace warmkern {
int64_t abi_version() { return 2; }
}  // namespace warmkern

TORCH_LIBRARY(warmkern_cpu, m) {
  m.def("abi_version() -> int", &warmkern::abi_version);
  m.def(
      "warm_embed(Tensor weight, Tensor x, Tensor draft, Tensor keep, Tensor(a!) out, int mask_id, Tensor alpha, "
      "float scale) -> ()");
  m.def(
      "token_stats(Tensor logits, Tensor x, Tensor? uncond_logits, int mask_id, float temperature, str score, "
      "str score_temperature, int[] suppress_ids, int[] demote_ids, float cfg_scale, int seed, int step) "
      "-> (Tensor, Tensor, Tensor)");
  m.def(
      "select(Tensor score, Tensor x0, Tensor p_cur, Tensor(a!) x, Tensor(b!) provisional, int mask_id, "
      "Tensor lo, Tensor hi, Tensor? k, float? threshold, float? factor, float? remask_threshold, "
      "int? remask_max) -> (Tensor, Tensor)");
  m.def(
      "denoise_step(Tensor logits, Tensor(a!) x, Tensor(b!) provisional, Tensor? uncond_logits, int mask_id, "
      "Tensor lo, Tensor hi, Tensor? k, float? threshold, float? factor, float? remask_threshold, "
      "int? remask_max, float temperature, str score, str score_temperature, int[] suppress_ids, "
      "int[] demote_ids, float cfg_scale, int seed, int step) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(warmkern_cpu, CPU, m) {
  m.impl("warm_embed", &wk::warm_embed);
  m.impl("token_stats", &wk::token_stats);
  m.impl("select", &wk::select);
  m.impl("denoise_step", &wk::denoise_step);
}
