"""Compiling an exported model and running its library from Python.

    lib = build("out/model.mlir", "out/lib/model")   # dyncc compile --shared
    m = load(lib, "out/model.safetensors", num_threads=2)
    y = m(x)                  # numpy arrays or torch tensors in, numpy out
    m.close()

The runtime binding is runtime/python/dynrt_ctypes.py (one binding for the
tests, the benchmarks and this package).
"""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _dynrt():
    path = os.path.join(REPO, "runtime", "python")
    if path not in sys.path:
        sys.path.insert(0, path)
    import dynrt_ctypes
    return dynrt_ctypes


def dyncc_binary():
    """The dyncc driver: $DYNCC, else the repository's build/."""
    exe = os.environ.get("DYNCC") or os.path.join(REPO, "build", "tools", "dyncc", "dyncc")
    if not os.path.exists(exe):
        raise FileNotFoundError(f"dyncc not found at '{exe}': build the project "
                                "(scripts/test.sh) or set DYNCC")
    return exe


def build(mlir_path, out_base, *args, stats=False):
    """`dyncc compile mlir_path -o out_base --shared [args]`; returns the
    path of lib<name>.so, or with stats=True (path, the text of `--stats`:
    each GEMM's shape and schedule, each kernel's FLOPs a call). Raises
    RuntimeError with dyncc's diagnostics."""
    d = os.path.dirname(os.path.abspath(out_base))
    os.makedirs(d, exist_ok=True)
    cmd = [dyncc_binary(), "compile", os.fspath(mlir_path), "-o", os.fspath(out_base),
           "--shared", *args, *(["--stats"] if stats else [])]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"dyncc compile failed:\n{r.stderr}")
    path = os.path.join(d, f"lib{os.path.basename(out_base)}.so")
    return (path, r.stdout) if stats else path


def input_array(x, spec, want=None, note=""):
    """A numpy array or torch tensor as the library's input `spec` (name,
    dtype, shape): C-contiguous, of the spec's dtype, of shape `want`
    (default the spec's); ValueError naming the input otherwise."""
    import numpy as np
    name, dtype, shape = spec
    want = tuple(shape if want is None else want)
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.require(x, requirements="C")  # keeps 0-d arrays 0-d
    if a.dtype != dtype:
        a = a.astype(dtype)
    if tuple(a.shape) != want:
        raise ValueError(f"input '{name}': shape {tuple(a.shape)}, the library takes "
                         f"{tuple(shape)}{note}")
    return a


class Model:
    """A created model of a library: call it with its inputs (numpy arrays or
    torch tensors, in input order); returns the outputs as numpy arrays."""

    def __init__(self, lib_path, weights, num_threads=None):
        import numpy as np
        self._np = np
        name = os.path.basename(lib_path)[3:].rsplit(".so", 1)[0]
        self.lib = _dynrt().Library(lib_path, name)
        self.lib.create(None if weights is None else os.fspath(weights), num_threads=num_threads)
        self.inputs, self.outputs = self.lib.inputs, self.lib.outputs

    def _array(self, x, spec):
        return input_array(x, spec)

    def __call__(self, *xs):
        if len(xs) != len(self.inputs):
            raise ValueError(f"{len(xs)} inputs given, the library takes {len(self.inputs)}")
        ins = [self._array(x, s) for x, s in zip(xs, self.inputs)]
        outs = [self._np.full(shape, self._np.nan if self._np.issubdtype(dt, self._np.floating) else -1,
                              dt) for _, dt, shape in self.outputs]
        self.lib.run(ins, outs)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def runner(self, *xs):
        """A no-argument function that runs on these inputs (for timing)."""
        return self.lib.runner([self._array(x, s) for x, s in zip(xs, self.inputs)])

    def set_param(self, name, values):
        """Sets a runtime parameter (a criterion's threshold) by name."""
        self.lib.set_param(name, values)

    def profile(self):
        """Where the runs so far spent their time, kernel by kernel, slowest
        first: [{"kernel", "builtin", "calls", "seconds", "flops" (of one
        call: its GEMMs' and attention's, every row counted), "gflops"
        (None without FLOPs)}]. Needs DYNRT_PROFILE=1 in the environment when
        the model was created (RuntimeError otherwise)."""
        out = []
        for k in range(self.lib.desc.num_kernels):
            p = self.lib.kernel_profile(k)
            out.append({"kernel": p.name.decode(), "builtin": bool(p.builtin),
                        "calls": int(p.calls), "seconds": float(p.seconds),
                        "flops": float(p.flops),
                        "gflops": (p.calls * p.flops / p.seconds / 1e9
                                   if p.flops > 0 and p.seconds > 0 else None)})
        return sorted(out, key=lambda r: -r["seconds"])

    def close(self):
        self.lib.destroy()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def load(lib_path, weights, num_threads=None):
    return Model(lib_path, weights, num_threads)
