#!/usr/bin/env python3
"""Differential test of one exit criterion: generates an early-exit encoder
with examples/early-exit/make_early_exit.py (PyTorch reference), compiles it
with dyncc into a shared object, runs every case at every threshold through
the C API (ctypes) and compares the exit layers exactly and the logits to
1e-4 with the reference.

  check_criteria.py DYNCC WORKDIR CRITERION [make_early_exit options...]
"""
import ctypes
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PARAM = {"patience": "patience", "per_class": "class_thresholds"}


def main():
    dyncc, work, criterion = sys.argv[1:4]
    extra = sys.argv[4:]
    os.makedirs(work, exist_ok=True)
    name = "ee_" + criterion
    subprocess.run([sys.executable, os.path.join(ROOT, "examples/early-exit/make_early_exit.py"),
                    "--criterion", criterion, "--out-dir", work, "--name", name] + extra,
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([dyncc, "compile", f"{work}/{name}.mlir", "-o", f"{work}/lib/{name}",
                    "--shared"], check=True)
    lib = ctypes.CDLL(f"{work}/lib/lib{name}.so")
    desc = ctypes.addressof(ctypes.c_char.in_dll(lib, f"{name}_desc"))
    lib.dynrt_status_message.restype = ctypes.c_char_p

    def check(status):
        if status:
            raise RuntimeError(lib.dynrt_status_message(ctypes.c_void_p(status)).decode())

    model = ctypes.c_void_p()
    check(lib.dynrt_model_create_from_file(ctypes.c_void_p(desc), None,
                                           f"{work}/{name}.safetensors".encode(),
                                           ctypes.byref(model)))
    xs = np.load(f"{work}/{name}.x.npy").astype(np.float32)
    want = np.load(f"{work}/{name}.expected.npz")
    thresholds, layers, logits = want["thresholds"], want["exit_layer"], want["logits"]
    param = PARAM.get(criterion, "theta").encode()
    mismatches, worst, hist = 0, 0.0, {}
    for t in range(len(thresholds)):
        values = np.ascontiguousarray(np.atleast_1d(thresholds[t]).astype(np.float32))
        check(lib.dynrt_model_set_param(model, param,
                                        values.ctypes.data_as(ctypes.c_void_p),
                                        ctypes.c_size_t(values.size)))
        for k in range(xs.shape[0]):
            x = np.ascontiguousarray(xs[k])
            out = np.full(logits.shape[2:], np.nan, np.float32)
            lay = np.full(layers.shape[2:], -1, np.int32)
            ins = (ctypes.c_void_p * 1)(x.ctypes.data)
            outs = (ctypes.c_void_p * 2)(out.ctypes.data, lay.ctypes.data)
            check(lib.dynrt_model_run(model, ins, outs))
            if not np.array_equal(lay, layers[t, k]):
                mismatches += 1
                if mismatches <= 5:
                    print(f"threshold {thresholds[t]} case {k}: exit layer {lay} != {layers[t, k]}")
                continue
            err = np.abs(out - logits[t, k]) / np.maximum(1.0, np.abs(logits[t, k]))
            worst = max(worst, float(err.max()))
            for l in lay.ravel():
                hist[int(l)] = hist.get(int(l), 0) + 1
    # The runtime's exit histogram counts every sample of every run.
    class Stats(ctypes.Structure):
        _fields_ = [("runs", ctypes.c_uint64), ("kernel_calls", ctypes.c_uint64),
                    ("total_seconds", ctypes.c_double),
                    ("exit_histogram", ctypes.c_uint64 * 64)]
    stats = Stats()
    check(lib.dynrt_model_stats(model, ctypes.byref(stats)))
    counted = {l: n for l, n in enumerate(stats.exit_histogram) if n}
    expected = {}
    for l in layers.ravel():
        expected[int(l)] = expected.get(int(l), 0) + 1
    if mismatches == 0 and counted != expected:
        print(f"exit histogram {counted} != {expected}")
        mismatches += 1
    lib.dynrt_model_destroy(model)
    total = len(thresholds) * xs.shape[0]
    print(f"{criterion}: {total - mismatches}/{total} runs with the reference's exit "
          f"layers; max logit error {worst:.2g}; exit layers {dict(sorted(hist.items()))}")
    sys.exit(0 if mismatches == 0 and worst <= 1e-4 else 1)


if __name__ == "__main__":
    main()
