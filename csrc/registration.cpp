// Registers the warmkern_cpu operator library and gives warmkern._C a module init, so that
// `import warmkern._C` loads this shared object and runs the TORCH_LIBRARY registrations.
#include <Python.h>
#include <torch/library.h>

extern "C" PyObject* PyInit__C(void) {
  static PyModuleDef def = {PyModuleDef_HEAD_INIT, "_C", "warmkern C++ CPU kernels", -1, nullptr};
  return PyModule_Create(&def);
}

namespace warmkern {
int64_t abi_version() { return 1; }
}  // namespace warmkern

TORCH_LIBRARY(warmkern_cpu, m) {
  m.def("abi_version() -> int", &warmkern::abi_version);
}
