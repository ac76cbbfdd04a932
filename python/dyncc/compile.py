"""dyncc.compile: a PyTorch module in, a callable running its compiled
library out, the way torch.compile is tried.

    fast = dyncc.compile(model, (x,), batch_buckets=[1, 4, 8], threads=2)
    y = fast(x)                       # torch tensors in, torch tensors out
    fast.report.exit_layer            # what the run decided (see Report)
    fast.set_param("theta", 0.4)      # a runtime parameter, no recompiling

The model is exported with dyncc.export (dyncc.nn modules become dyn ops)
and compiled with `dyncc compile --shared`. Libraries are cached on disk
by content ($DYNCC_CACHE, default ~/.cache/dyncc): the key is the exported
MLIR, the options and the dyncc binary, so a second compile of the same
architecture reuses the library and only writes the weights.
"""
import ctypes
import hashlib
import os
import shutil
import tempfile

from .errors import ExportError
from .library import Model, _dynrt, build, dyncc_binary, input_array


def cache_dir():
    d = os.environ.get("DYNCC_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "dyncc")
    os.makedirs(d, exist_ok=True)
    return d


def _digest(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def _file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:24]


class Report:
    """What the last run decided.

    exit_layer: [B] int32 per exit chain (`exit_layers` when there are
        several), 1-based; L = the sample ran every layer;
    routes: per dyn.route, a dict of `assignment` ([T * K] int32: the
        expert of choice j of token t, -2 - e dropped, -1 no choice),
        `tokens_per_expert` ([E] uint64) and `dropped`;
    skips: per dyn.skip, a dict of `steps` and `trace` ([steps, 3] int32
        rows of (position, action, amount)).
    """

    def __init__(self):
        self.exit_layers, self.routes, self.skips = [], [], []

    @property
    def exit_layer(self):
        return self.exit_layers[0] if self.exit_layers else None

    def __repr__(self):
        parts = []
        if self.exit_layers:
            parts.append(f"exit_layer={self.exit_layer.tolist()}")
        for i, r in enumerate(self.routes):
            parts.append(f"route{i}: tokens_per_expert={r['tokens_per_expert'].tolist()} "
                         f"dropped={r['dropped']}")
        for i, s in enumerate(self.skips):
            parts.append(f"skip{i}: steps={s['steps']}")
        return "Report(" + ", ".join(parts) + ")"


class Compiled(Model):
    """A compiled model: call it like the module (same inputs); outputs come
    back as torch tensors when any input is one, else as numpy arrays."""

    def __init__(self, lib_path, weights_path, threads=None):
        super().__init__(lib_path, weights_path, threads)
        self.lib_path, self.weights_path = lib_path, weights_path
        outs = self.lib.outputs
        self._exit_outputs = [i for i, o in enumerate(outs) if o[0].startswith("exit_layer")]
        self.outputs = [o for i, o in enumerate(outs) if i not in self._exit_outputs]
        d = self.lib.desc
        self._routes = [(d.routes[i].num_tokens, d.routes[i].num_experts,
                         d.routes[i].experts_per_token) for i in range(d.num_routes)]
        self._skips = [d.skips[i].budget for i in range(d.num_skips)]
        self.max_batch = self.lib.max_batch
        # Bucketed libraries take [batch, *sample] where the sample is the
        # example input; when that holds a batch dimension of 1 (a module
        # written for batches), the callable takes [batch, ...] like the module.
        self.unit_batch = bool(self.max_batch) and all(
            len(s[2]) >= 2 and s[2][1] == 1 for s in self.inputs)
        self.report = Report()

    def _array(self, x, spec, batch=None):
        shape = spec[2]
        if self.unit_batch and getattr(x, "ndim", None) == len(shape) - 1:
            x = x.reshape((x.shape[0], 1) + tuple(x.shape[1:]))
        want = shape if batch is None else (batch,) + tuple(shape[1:])
        return input_array(x, spec, want,
                           f" (batch 1 .. {self.max_batch})" if self.max_batch else "")

    def __call__(self, *xs):
        np = self._np
        rt = _dynrt()
        if len(xs) != len(self.inputs):
            raise ValueError(f"{len(xs)} inputs given, the model takes {len(self.inputs)}")
        as_torch = any(hasattr(x, "detach") for x in xs)
        batch = None
        if self.max_batch:
            batch = int(xs[0].shape[0])
            if not 1 <= batch <= self.max_batch:
                raise ValueError(f"batch {batch} outside the compiled buckets 1 .. {self.max_batch}")
        ins = [self._array(x, s, batch) for x, s in zip(xs, self.inputs)]
        outs = []
        for _, dt, shape in self.lib.outputs:
            if batch is not None:
                shape = (batch,) + tuple(shape[1:])
            fill = np.nan if np.issubdtype(dt, np.floating) else -1
            outs.append(np.full(shape, fill, dt))
        # the report's arrays, poisoned: (assignment, tokens per expert) per
        # route, a trace per skip loop
        route_arrays = [(np.full(T * K, 0x7EADBEEF, np.int32), np.zeros(E, np.uint64))
                        for T, E, K in self._routes]
        routes = (rt.RouteReport * max(1, len(self._routes)))()
        for rep_i, (asg, tpe) in zip(routes, route_arrays):
            rep_i.tokens_per_expert = tpe.ctypes.data_as(ctypes.POINTER(ctypes.c_uint64))
            rep_i.assignment = asg.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))
        # At most 2^20 steps per sample: a budget (up to 2^31 - 1) must not
        # size an allocation up front; the report keeps the first steps.
        traces = [np.full(min(budget, 1 << 20) * max(1, self.max_batch) * 3, -1, np.int32)
                  for budget in self._skips]
        skips = (rt.SkipReport * max(1, len(self._skips)))()
        for rep_i, tr in zip(skips, traces):
            rep_i.capacity = tr.size // 3
            rep_i.trace = tr.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))
        rep = rt.RunReport(len(self._routes), routes, len(self._skips), skips)
        if batch is None:
            self.lib.run(ins, outs, rep)
        else:
            self.lib.run_batch(ins, outs, batch, rep)
        r = Report()
        r.routes = [{"assignment": asg, "tokens_per_expert": tpe, "dropped": int(rep_i.dropped)}
                    for rep_i, (asg, tpe) in zip(routes, route_arrays)]
        r.skips = [{"steps": rep_i.steps, "trace": tr.reshape(-1, 3)[:rep_i.steps].copy()}
                   for rep_i, tr in zip(skips, traces)]
        self.report = r
        if self.unit_batch:
            outs = [o.reshape((o.shape[0],) + o.shape[2:]) if o.ndim >= 2 and o.shape[1] == 1 else o
                    for o in outs]
        r.exit_layers = [outs[i] for i in self._exit_outputs]
        res = [o for i, o in enumerate(outs) if i not in self._exit_outputs]
        if as_torch:
            import torch
            res = [torch.from_numpy(o) for o in res]
        return res[0] if len(res) == 1 else tuple(res)

    def stats(self):
        """Counters since the model was created: runs, kernel calls, seconds
        and the exit histogram ({layer: samples (or tokens)}, exit chains)."""
        rt = _dynrt()
        st = rt.ModelStats()
        self.lib.check(self.lib.lib.dynrt_model_stats(self.lib.model, ctypes.byref(st)),
                       "dynrt_model_stats")
        hist = {l: int(st.exit_histogram[l]) for l in range(rt.MAX_EXIT_LAYERS)
                if st.exit_histogram[l]}
        return {"runs": int(st.runs), "kernel_calls": int(st.kernel_calls),
                "seconds": float(st.total_seconds), "exit_histogram": hist}

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def compile(module, example_inputs, *, batch_buckets=None, threads=None, target=None,
            precision=None, extra_args=(), cache=True):
    """Exports `module` on `example_inputs` and compiles it; returns a
    Compiled callable. batch_buckets: e.g. [1, 4, 8] (`--batch-buckets`; the
    example inputs hold one sample, then the callable takes 1 .. 8); threads:
    the library's thread count, and the cores its kernels are scheduled for
    (`--cores`; default: this machine's); target: dyncc's `--target` (default host);
    precision: "fp32" (default) or "bf16" (`--precision`: the GEMMs round
    their operands to bfloat16, those of a few rows only the weights, and
    accumulate in fp32; on AMX tiles where this CPU has them, AVX512-BF16
    elsewhere: extra_args=["--amx=off"] compares).
    Raises ExportError when the module cannot be exported and RuntimeError
    with dyncc's diagnostics when it does not compile."""
    import torch
    from .export import export
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    args = list(extra_args)
    if batch_buckets:
        args.append("--batch-buckets=" + ",".join(str(int(b)) for b in batch_buckets))
    if target:
        args.append(f"--target={target}")
    if threads:
        args.append(f"--cores={int(threads)}")
    if precision:
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        args.append(f"--precision={precision}")
    root = cache_dir()
    tmp = tempfile.mkdtemp(dir=root, prefix=".export-")
    try:
        mlir_path, weights_path = export(module, example_inputs, os.path.join(tmp, "model"))
        with open(mlir_path) as f:
            text = f.read()
        exe = dyncc_binary()
        st = os.stat(exe)
        key = _digest(text, args, exe, st.st_size, st.st_mtime_ns)
        d = os.path.join(root, key)
        lib = os.path.join(d, "libmodel.so")
        if not (cache and os.path.exists(lib)):
            work = tempfile.mkdtemp(dir=root, prefix=".build-")
            try:
                build(mlir_path, os.path.join(work, "model"), *args)
            except RuntimeError as e:
                shutil.rmtree(work, ignore_errors=True)
                # keep the model that failed: the diagnostics point into it
                kept = os.path.join(root, f"failed-{key}")
                shutil.rmtree(kept, ignore_errors=True)
                os.replace(tmp, kept)
                raise RuntimeError(str(e).replace(tmp, kept)) from None
            os.makedirs(d, exist_ok=True)
            shutil.copyfile(mlir_path, os.path.join(d, "model.mlir"))
            for f in os.listdir(work):   # the library last: it marks the entry complete
                if not f.endswith(".so"):
                    os.replace(os.path.join(work, f), os.path.join(d, f))
            for f in os.listdir(work):
                os.replace(os.path.join(work, f), os.path.join(d, f))
            shutil.rmtree(work, ignore_errors=True)
        wdst = os.path.join(d, f"weights-{_file_digest(weights_path)}.safetensors")
        if not os.path.exists(wdst):
            os.replace(weights_path, wdst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not os.path.exists(lib):
        raise ExportError(f"dyncc produced no library in {d}")
    return Compiled(lib, wdst, threads=threads)
