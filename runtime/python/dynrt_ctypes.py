"""ctypes binding of runtime/dynrt.h, shared by the Python tests and benchmarks.

The structures mirror the header field for field; ABI_VERSION is read from
the header. Library loads a model library made by `dyncc compile --shared`
(lib<name>.so exporting <name>_desc) and runs its model on numpy arrays:

    L = Library("work/lib/libm.so", "m")
    L.create("work/m.safetensors", num_threads=2)
    L.run([x], [y])        # raises RuntimeError with dynrt_status_message
    L.run_batch([x3], [y3], 3)   # bucketed models: 3 of max_batch samples
    L.destroy()

numpy is imported only when a function needs it (callers may have to set
up the environment before numpy or torch loads).
"""
import ctypes
import os
import re

MAX_RANK = 8                # DYNRT_MAX_RANK
MAX_EXIT_LAYERS = 64        # DYNRT_MAX_EXIT_LAYERS
DEVICE_AUTO, DEVICE_CPU, DEVICE_CUDA = -1, 0, 1  # dynrt_device_t

HEADER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dynrt.h")


def header_abi_version(path=HEADER):
    """DYNRT_MODEL_ABI_VERSION of the header at `path`, None if unreadable."""
    try:
        with open(path) as f:
            m = re.search(r"#define\s+DYNRT_MODEL_ABI_VERSION\s+(\d+)", f.read())
    except OSError:
        return None
    return int(m.group(1)) if m else None


ABI_VERSION = header_abi_version()


class ParamSpec(ctypes.Structure):  # dynrt_param_spec_t
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int32), ("rank", ctypes.c_int32),
                ("shape", ctypes.c_int64 * MAX_RANK)]


class RouteDesc(ctypes.Structure):  # dynrt_route_desc_t
    _fields_ = [("name", ctypes.c_char_p), ("num_tokens", ctypes.c_int32),
                ("num_experts", ctypes.c_int32), ("experts_per_token", ctypes.c_int32)]


class SkipDesc(ctypes.Structure):  # dynrt_skip_desc_t
    _fields_ = [("name", ctypes.c_char_p), ("sequence_length", ctypes.c_int32),
                ("budget", ctypes.c_int32), ("num_actions", ctypes.c_int32)]


class ModelDesc(ctypes.Structure):  # dynrt_model_desc_t
    _fields_ = [("abi_version", ctypes.c_uint32), ("name", ctypes.c_char_p),
                ("num_inputs", ctypes.c_int32), ("inputs", ctypes.POINTER(ParamSpec)),
                ("num_outputs", ctypes.c_int32), ("outputs", ctypes.POINTER(ParamSpec)),
                ("num_weights", ctypes.c_int32), ("weights", ctypes.POINTER(ParamSpec)),
                ("num_kernels", ctypes.c_int32), ("kernels", ctypes.c_void_p),
                ("arena_bytes", ctypes.c_uint64), ("entry", ctypes.c_void_p),
                ("num_params", ctypes.c_int32), ("params", ctypes.c_void_p),
                ("exit_layer_output", ctypes.c_int32),
                ("embedded_weights", ctypes.c_void_p), ("embedded_weights_size", ctypes.c_uint64),
                ("num_routes", ctypes.c_int32), ("routes", ctypes.POINTER(RouteDesc)),
                ("num_skips", ctypes.c_int32), ("skips", ctypes.POINTER(SkipDesc)),
                ("device", ctypes.c_int32),
                # ABI >= 5: batch buckets (read them only from such descriptors)
                ("max_batch", ctypes.c_int32), ("num_buckets", ctypes.c_int32),
                ("buckets", ctypes.POINTER(ctypes.c_int32)), ("num_stages", ctypes.c_int32),
                # ABI >= 6: expert parallelism
                ("num_ranks", ctypes.c_int32), ("weight_sharded", ctypes.POINTER(ctypes.c_uint8)),
                # ABI >= 7: weights kept as bf16 (--precision=bf16)
                ("weight_storage", ctypes.POINTER(ctypes.c_uint8))]


class ModelOptions(ctypes.Structure):  # dynrt_model_options_t
    _fields_ = [("num_threads", ctypes.c_int32), ("device", ctypes.c_int32),
                ("comm", ctypes.c_void_p)]


class RouteReport(ctypes.Structure):  # dynrt_route_report_t
    _fields_ = [("num_tokens", ctypes.c_int32), ("num_experts", ctypes.c_int32),
                ("experts_per_token", ctypes.c_int32), ("dropped", ctypes.c_uint64),
                ("tokens_per_expert", ctypes.POINTER(ctypes.c_uint64)),
                ("assignment", ctypes.POINTER(ctypes.c_int32))]


class SkipReport(ctypes.Structure):  # dynrt_skip_report_t
    # Positional construction SkipReport(steps, capacity, trace) leaves
    # sample_steps NULL.
    _fields_ = [("steps", ctypes.c_int32), ("capacity", ctypes.c_int32),
                ("trace", ctypes.POINTER(ctypes.c_int32)),
                # ABI >= 5: [max_batch] steps of each sample of a bucketed model
                ("sample_steps", ctypes.POINTER(ctypes.c_int32))]


class RunReport(ctypes.Structure):  # dynrt_run_report_t
    _fields_ = [("num_routes", ctypes.c_int32), ("routes", ctypes.POINTER(RouteReport)),
                ("num_skips", ctypes.c_int32), ("skips", ctypes.POINTER(SkipReport)),
                # ABI >= 5: exit stages of bucketed models
                ("num_stages", ctypes.c_int32), ("active", ctypes.POINTER(ctypes.c_int32)),
                ("bucket", ctypes.POINTER(ctypes.c_int32))]


class ModelStats(ctypes.Structure):  # dynrt_model_stats_t
    _fields_ = [("runs", ctypes.c_uint64), ("kernel_calls", ctypes.c_uint64),
                ("total_seconds", ctypes.c_double),
                ("exit_histogram", ctypes.c_uint64 * MAX_EXIT_LAYERS),
                ("exchange_bytes", ctypes.c_uint64), ("exchange_seconds", ctypes.c_double)]


class KernelProfile(ctypes.Structure):  # dynrt_kernel_profile_t
    _fields_ = [("name", ctypes.c_char_p), ("builtin", ctypes.c_int32),
                ("calls", ctypes.c_uint64), ("seconds", ctypes.c_double),
                ("flops", ctypes.c_double)]


def numpy_dtypes():
    """dynrt_dtype_t -> numpy dtype (F16 and BF16 have none)."""
    import numpy as np
    return {0: np.float32, 1: np.float64, 4: np.int8, 5: np.uint8, 6: np.int16, 7: np.int32,
            8: np.int64, 9: np.bool_}


_VP, _U64P = ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64)
# name: (restype, argtypes); a dynrt_status_t is returned as a c_void_p.
_PROTOTYPES = {
    "dynrt_status_message": (ctypes.c_char_p, [_VP]),
    "dynrt_status_free": (None, [_VP]),
    "dynrt_cuda_available": (_VP, []),
    "dynrt_model_options_initialize": (None, [ctypes.POINTER(ModelOptions)]),
    "dynrt_model_create_from_file": (_VP, [_VP, ctypes.POINTER(ModelOptions), ctypes.c_char_p,
                                           ctypes.POINTER(_VP)]),
    "dynrt_model_run": (_VP, [_VP, _VP, _VP]),
    "dynrt_model_run_ex": (_VP, [_VP, _VP, _VP, ctypes.POINTER(RunReport)]),
    "dynrt_model_run_batch": (_VP, [_VP, ctypes.c_int64, _VP, _VP, ctypes.POINTER(RunReport)]),
    "dynrt_model_route_stats": (_VP, [_VP, ctypes.c_int32, _U64P, ctypes.c_size_t, _U64P]),
    "dynrt_model_skip_stats": (_VP, [_VP, ctypes.c_int32, _U64P, _U64P, _U64P, ctypes.c_size_t]),
    "dynrt_model_set_param": (_VP, [_VP, ctypes.c_char_p, ctypes.POINTER(ctypes.c_float),
                                    ctypes.c_size_t]),
    "dynrt_model_stats": (_VP, [_VP, ctypes.POINTER(ModelStats)]),
    "dynrt_model_kernel_profile": (_VP, [_VP, ctypes.c_int32, ctypes.POINTER(KernelProfile)]),
    "dynrt_model_destroy": (None, [_VP]),
}


def declare(lib):
    """Sets restype and argtypes of the functions above that `lib` exports."""
    for fn, (res, args) in _PROTOTYPES.items():
        if hasattr(lib, fn):
            f = getattr(lib, fn)
            f.restype, f.argtypes = res, args
    return lib


def status_message(lib, st):
    """None for a NULL (OK) status, else its message; frees the status."""
    if not st:
        return None
    msg = lib.dynrt_status_message(st).decode(errors="replace")
    lib.dynrt_status_free(st)
    return msg


def cuda_available(lib):
    """(True, "") or (False, why) from dynrt_cuda_available of a loaded CDLL."""
    if not hasattr(lib, "dynrt_cuda_available"):
        return False, "the runtime has no dynrt_cuda_available (built before --target=cuda)"
    msg = status_message(declare(lib), lib.dynrt_cuda_available())
    return (True, "") if msg is None else (False, msg)


def pointers(arrays):
    """A void*[] of the arrays' data (one NULL entry when there are none)."""
    return (ctypes.c_void_p * max(1, len(arrays)))(*[a.ctypes.data for a in arrays])


class Library:
    """A model library compiled by dyncc --shared (its runtime included), and
    at most one model created from it (self.model)."""

    def __init__(self, path, name):
        self.path, self.name = path, name
        self.lib = declare(ctypes.CDLL(path))
        self.desc_ptr = ctypes.addressof(ctypes.c_char.in_dll(self.lib, f"{name}_desc"))
        self.desc = d = ModelDesc.from_address(self.desc_ptr)
        self.abi = d.abi_version
        self.device = d.device if self.abi >= 4 else DEVICE_CPU
        # Batch buckets (ABI >= 5): max_batch 0 when the model is not bucketed.
        bucketed = self.abi >= 5 and d.max_batch > 0
        self.max_batch = d.max_batch if bucketed else 0
        self.buckets = [d.buckets[i] for i in range(d.num_buckets)] if bucketed else []
        self.num_stages = d.num_stages if bucketed else 0
        dt = numpy_dtypes()
        # [(name, numpy dtype, shape)] in the descriptor's order
        self.inputs = [self._spec(d.inputs[i], dt) for i in range(d.num_inputs)]
        self.outputs = [self._spec(d.outputs[i], dt) for i in range(d.num_outputs)]
        self.model = None

    @staticmethod
    def _spec(s, dt):
        return s.name.decode(), dt.get(s.dtype), tuple(s.shape[:s.rank])

    def status(self, st):
        """None for OK, else the message (the status is freed)."""
        return status_message(self.lib, st)

    def check(self, st, what):
        msg = self.status(st)
        if msg is not None:
            raise RuntimeError(f"{what}: {msg}")

    def create(self, weights, num_threads=None, device=None):
        """Creates the model with weights from the safetensors file `weights`
        (None: the embedded ones). Options are passed only when num_threads or
        device is given (device only to descriptors of ABI >= 4)."""
        opts = None
        if num_threads is not None or device is not None:
            opts = ModelOptions()
            self.lib.dynrt_model_options_initialize(ctypes.byref(opts))
            if num_threads is not None:
                opts.num_threads = num_threads
            if device is not None and self.abi >= 4:
                opts.device = device
        m = ctypes.c_void_p()
        self.check(self.lib.dynrt_model_create_from_file(
            self.desc_ptr, opts, None if weights is None else weights.encode(), ctypes.byref(m)),
            f"dynrt_model_create_from_file ({os.path.basename(self.path)})")
        self.model = m
        return m

    def destroy(self):
        if self.model:
            self.lib.dynrt_model_destroy(self.model)
            self.model = None

    def kernel_profile(self, kernel):
        """dynrt_model_kernel_profile of kernel index `kernel` (a
        KernelProfile); RuntimeError without DYNRT_PROFILE=1 at create."""
        p = KernelProfile()
        self.check(self.lib.dynrt_model_kernel_profile(self.model, kernel, ctypes.byref(p)),
                   "dynrt_model_kernel_profile")
        return p

    def set_param(self, name, values):
        import numpy as np
        v = np.ascontiguousarray(np.asarray(values, np.float32).reshape(-1))
        self.check(self.lib.dynrt_model_set_param(
            self.model, name.encode(), v.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), v.size),
            f"dynrt_model_set_param {name}")

    def try_run(self, inputs, outputs, report=None):
        """Runs on contiguous arrays: dynrt_model_run, or dynrt_model_run_ex
        with `report` (a RunReport). Returns None or the status message."""
        ip, op = pointers(inputs), pointers(outputs)
        if report is None:
            st = self.lib.dynrt_model_run(self.model, ip, op)
        else:
            st = self.lib.dynrt_model_run_ex(self.model, ip, op, ctypes.byref(report))
        return self.status(st)

    def run(self, inputs, outputs, report=None):
        """try_run that raises RuntimeError when the run fails."""
        msg = self.try_run(inputs, outputs, report)
        if msg is not None:
            raise RuntimeError(f"run: {msg}")

    def try_run_batch(self, inputs, outputs, batch, report=None):
        """dynrt_model_run_batch on contiguous arrays whose leading dimension
        is `batch` (1 .. max_batch of a bucketed model), with `report` (a
        RunReport) or none. Returns None or the status message."""
        ip, op = pointers(inputs), pointers(outputs)
        st = self.lib.dynrt_model_run_batch(self.model, batch, ip, op,
                                            None if report is None else ctypes.byref(report))
        return self.status(st)

    def run_batch(self, inputs, outputs, batch, report=None):
        """try_run_batch that raises RuntimeError when the run fails."""
        msg = self.try_run_batch(inputs, outputs, batch, report)
        if msg is not None:
            raise RuntimeError(f"run_batch: {msg}")

    def stage_report(self, report=None):
        """A RunReport (`report`, or a new one) with active and bucket arrays
        for the model's num_stages exit stages; returns (report, active,
        bucket), the arrays as ctypes int32 arrays kept by the caller."""
        rep = RunReport() if report is None else report
        n = max(1, self.num_stages)
        active, bucket = (ctypes.c_int32 * n)(), (ctypes.c_int32 * n)()
        rep.num_stages = self.num_stages
        rep.active = ctypes.cast(active, ctypes.POINTER(ctypes.c_int32))
        rep.bucket = ctypes.cast(bucket, ctypes.POINTER(ctypes.c_int32))
        return rep, active, bucket

    def runner(self, inputs, outputs=None):
        """A function that runs the model on these arrays (no report; raises
        on failure), for timing. Outputs default to fresh arrays."""
        import numpy as np
        if outputs is None:
            outputs = [np.empty(shape, dt) for _, dt, shape in self.outputs]
        ip, op = pointers(inputs), pointers(outputs)
        run, model, check = self.lib.dynrt_model_run, self.model, self.check

        def go(_keep=(inputs, outputs, ip, op)):
            st = run(model, ip, op)
            if st:
                check(st, "run")
        return go
