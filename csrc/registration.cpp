// Registers the warmkern_cpu operator library and gives warmkern._C a module init, so that
// `import warmkern._C` loads this shared object and runs the TORCH_LIBRARY registrations.
// The schemas come from warmkern/schema.py through the generated op_schemas.h (the warmkern:: ops
// minus the backend argument); mutated arguments are annotated so torch.compile /
// functionalization know about the in-place writes.
#include <Python.h>
#include <torch/library.h>

#include "kernels.h"
#include "op_schemas.h"

extern "C" PyObject* PyInit__C(void) {
  static PyModuleDef def = {PyModuleDef_HEAD_INIT, "_C", "warmkern C++ CPU kernels", -1, nullptr};
  return PyModule_Create(&def);
}

namespace warmkern {
int64_t abi_version() { return 3; }
}  // namespace warmkern

TORCH_LIBRARY(warmkern_cpu, m) {
  m.def("abi_version() -> int", &warmkern::abi_version);
  m.def(WK_SCHEMA_WARM_EMBED);
  m.def(WK_SCHEMA_TOKEN_STATS);
  m.def(WK_SCHEMA_SELECT);
  m.def(WK_SCHEMA_DENOISE_STEP);
  m.def(WK_SCHEMA_TOKEN_STATS_PARTIAL);
}

TORCH_LIBRARY_IMPL(warmkern_cpu, CPU, m) {
  m.impl("warm_embed", &wk::warm_embed);
  m.impl("token_stats", &wk::token_stats);
  m.impl("select", &wk::select);
  m.impl("denoise_step", &wk::denoise_step);
  m.impl("token_stats_partial", &wk::token_stats_partial);
}
