# lit configuration of dyncc. Test sources live under test/; the build's
# test/lit.site.cfg.py (written by CMake) says where the tools are, then
# loads this file.
import os

import lit.formats
import lit.util

config.name = "dyncc"
config.test_format = lit.formats.ShTest(not lit.util.which("bash") is None)
config.suffixes = [".mlir", ".test"]
config.excludes = ["unit", "CMakeLists.txt", "Inputs", "kernels", "runtime", "reference", "codegen",
                   "fuzz", "fuzz-mlir", "install"]

config.test_source_root = os.path.join(config.dyncc_src_root, "test")
config.test_exec_root = os.path.join(config.dyncc_obj_root, "test")

# Tools of this build first, then FileCheck, not, split-file of LLVM 19.
for tools in (config.dyncc_tools_dir + "/dyncc", config.dyncc_tools_dir + "/dyncc-opt",
              config.llvm_tools_dir):
    config.environment["PATH"] = os.path.pathsep.join(
        (tools, config.environment.get("PATH", os.environ["PATH"])))

config.substitutions.append(("%dyncc_src", config.dyncc_src_root))
config.substitutions.append(("%dyncc_obj", config.dyncc_obj_root))
config.substitutions.append(("%python", config.python_executable))

# A compiler built with AddressSanitizer (scripts/sanitize-compiler.sh): the
# libraries it makes embed a sanitized runtime, so C programs link with the
# sanitizer runtimes (%cc_sanitize), and the lines that cap the address
# space (the shadow memory cannot live under a cap) or load such a library
# into Python are skipped (%if !asan).
if "-fsanitize=address" in getattr(config, "cxx_flags", ""):
    config.available_features.add("asan")
    config.substitutions.append(("%cc_sanitize", "-fsanitize=address,undefined"))
else:
    config.substitutions.append(("%cc_sanitize", ""))

# A usable NVIDIA GPU (a CUDA driver and a device) turns on the GPU-only
# lines (%if gpu); elsewhere they are skipped.
if os.path.exists("/dev/nvidia0") and any(
        os.path.exists(os.path.join(d, "libcuda.so.1"))
        for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/local/cuda/lib64/stubs")):
    config.available_features.add("gpu")

# A CPU with AMX (AMX-TILE and AMX-BF16, as /proc/cpuinfo names them):
# --amx=on libraries run here (%if amx); elsewhere they must fail cleanly.
try:
    with open("/proc/cpuinfo") as cpuinfo:
        cpu_flags = set(next((l.split(":", 1)[1].split() for l in cpuinfo
                              if l.startswith("flags")), []))
except OSError:
    cpu_flags = set()
if {"amx_tile", "amx_bf16"} <= cpu_flags:
    config.available_features.add("amx")
# A CPU with AVX2 and FMA: libraries compiled for an AVX2-only target run
# here (%if avx2).
if {"avx2", "fma"} <= cpu_flags:
    config.available_features.add("avx2")

# The Python environment exports PyTorch modules (torch-mlir): tests that
# build their model with dyncc.nn / dyncc.export say REQUIRES: torch-mlir.
if lit.util.which(config.python_executable) and os.system(
        f'"{config.python_executable}" -c "import torch_mlir" >/dev/null 2>&1') == 0:
    config.available_features.add("torch-mlir")
