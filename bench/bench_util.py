"""Helpers shared by the Python benchmarks (w1, w3, w4): timing, the
machine's load, relative errors."""
import os
import time

import numpy as np


def cpu_busy():
    """(busy seconds of the whole machine, this process's CPU seconds)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]
    t = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), t.user + t.system


def timed(fn, count):
    """Seconds of each of `count` calls of fn."""
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def close(got, want):
    """max |got - want| / max(1, |want|) (inf where got is NaN)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    err[np.isnan(err)] = np.inf
    return float(err.max())
