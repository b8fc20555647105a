"""Build the C++ CPU kernels (csrc/) into warmkern._C. WARMKERN_NO_EXT=1 skips the build.

torch is imported here, so install with `pip install --no-build-isolation -e .`.
"""

import glob
import os

from setuptools import setup

ext_modules = []
cmdclass = {}
if os.environ.get("WARMKERN_NO_EXT", "0") in ("", "0"):
    from torch.utils.cpp_extension import BuildExtension, CppExtension

    ext_modules.append(
        CppExtension(
            name="warmkern._C",
            sources=sorted(glob.glob("csrc/*.cpp")),
            depends=sorted(glob.glob("csrc/*.h") + glob.glob("csrc/*.inc")),  # a header change rebuilds
            extra_compile_args={"cxx": ["-O3", "-fopenmp", "-std=c++17"]},
            extra_link_args=["-fopenmp"],
        )
    )
    cmdclass["build_ext"] = BuildExtension.with_options(use_ninja=False)

setup(ext_modules=ext_modules, cmdclass=cmdclass)
