#!/usr/bin/python3
"""K1 baseline: fp32 torch.matmul (OpenBLAS), optionally against dyncc.

Alone, prints one line per shape like dyncc-bench-k1: M K N median_ms
median_GFLOP/s best_GFLOP/s, for C[M,N] = A[M,K] x B[K,N].

With --dyncc-lib (build/bench/libdyncc_k1_kernels.so: dyncc's GEMM compiled
ahead of time), times both in this process, interleaved: rounds of one block
of calls per side, the side that goes first alternating. This machine is
shared, and other tenants' load comes and goes over seconds: interleaving
exposes both sides to it alike. dyncc's calls are timed in C, back to back
(dyncc_k1_gemm_timed), torch's in Python. Before each block, a pause (--pause, 0.25 s)
outlasts OpenBLAS's spin-wait: its worker keeps a core busy for ~0.12 s after
each call (measured), which would slow whichever side runs next. Then the
side runs untimed for --block-warmup (20 ms) before its block is timed: on a
VM a vCPU left idle by the pause can take milliseconds to come back (the
first calls of a 0.7 ms GEMM after a pause ran at half speed), which would
measure the VM's wake-up rather than the kernels.
Prints: M K N dyncc_median_ms dyncc_GFLOP/s torch_median_ms torch_GFLOP/s
ratio_median ratio_min ratio_max (over rounds, of dyncc's GFLOP/s over
torch's, each the median of its block) others_cores (the
CPU time other processes used meanwhile, in cores: 0 on an idle machine).

Run with Debian's interpreter (/usr/bin/python3: python3-torch) and
OPENBLAS_CORETYPE=SkylakeX, or Debian's OpenBLAS picks a generic kernel on
this CPU (see WORKLOADS.md). With --transpose-b, B is given as [N,K] (the
weights of a linear layer), i.e. torch.matmul(a, w.t()) (torch only).

usage: k1_torch.py [--runs R] [--warmup W] [--threads T] [--transpose-b]
                   [--dyncc-lib SO] [--rounds N] [--pause S] [--wait-idle S]
                   [MxKxN ...]
"""
import argparse
import ctypes
import os
import statistics
import time

import torch

SHAPES = [(128, 768, 768), (128, 768, 3072), (512, 512, 2048),
          (1024, 1024, 1024)]


def blas_libraries():
    """The BLAS shared objects mapped into this process (which one
    torch.matmul really calls: Debian's libblas.so.3 is an alternative)."""
    libs = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if "blas" in os.path.basename(path):
                libs.add(os.path.realpath(path))
    return sorted(libs)


def cpu_busy():
    """(busy jiffies of the whole machine, this process's CPU seconds)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    t = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), t.user + t.system


def wait_idle(limit_s, window_s=1.0, max_cores=0.1):
    """Waits (at most limit_s) for a window in which other processes used
    less than max_cores; returns whether one came."""
    deadline = time.perf_counter() + limit_s
    while True:
        busy0, ours0 = cpu_busy()
        time.sleep(window_s)
        busy1, ours1 = cpu_busy()
        if (busy1 - busy0) - (ours1 - ours0) < max_cores * window_s:
            return True
        if time.perf_counter() > deadline:
            return False


def timed(fn, count):
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def torch_only(args, shapes):
    print("# M K N median_ms median_GFLOP/s best_GFLOP/s")
    gen = torch.Generator().manual_seed(42)
    for m, k, n in shapes:
        a = torch.rand(m, k, generator=gen) * 2 - 1
        if args.transpose_b:
            b = (torch.rand(n, k, generator=gen) * 2 - 1).t()
        else:
            b = torch.rand(k, n, generator=gen) * 2 - 1
        c = torch.empty(m, n)
        # out= keeps allocation out of the timing, as the dyncc side writes
        # into a preallocated buffer.
        timed(lambda: torch.matmul(a, b, out=c), args.warmup)
        times = sorted(timed(lambda: torch.matmul(a, b, out=c), args.runs))
        median = times[len(times) // 2]
        flop = 2.0 * m * n * k
        print("%d %d %d %.4f %.1f %.1f" % (m, k, n, median * 1e3,
                                            flop / median / 1e9,
                                            flop / times[0] / 1e9),
              flush=True)


def interleaved(args, shapes):
    lib = ctypes.CDLL(os.path.abspath(args.dyncc_lib))
    lib.dyncc_k1_gemm.argtypes = [ctypes.c_int] * 3 + [ctypes.c_void_p] * 3
    lib.dyncc_k1_gemm.restype = ctypes.c_int
    lib.dyncc_k1_gemm_timed.argtypes = (
        [ctypes.c_int] * 3 + [ctypes.c_void_p] * 3 + [ctypes.c_int,
                                                      ctypes.c_void_p])
    lib.dyncc_k1_gemm_timed.restype = ctypes.c_int
    lib.dyncc_k1_set_num_threads(args.threads)
    if not args.halide_pool:
        lib.dyncc_k1_use_runtime_pool(args.threads)
    print("# dyncc's parallel loops on %s" % ("Halide's thread pool" if args.halide_pool
                                             else "the runtime's thread pool (libdynrt's, as "
                                             "in a compiled library)"))
    per_block = max(1, -(-args.runs // args.rounds))
    print("# interleaved in one process: %d rounds x %d timed calls per side"
          " (after %.0f ms of untimed calls per block), %.2f s pause before "
          "each block" % (args.rounds, per_block, args.block_warmup * 1e3,
                           args.pause))
    print("# M K N dyncc_median_ms dyncc_GFLOP/s torch_median_ms "
          "torch_GFLOP/s ratio_median ratio_min ratio_max others_cores")
    gen = torch.Generator().manual_seed(42)
    for m, k, n in shapes:
        a = torch.rand(m, k, generator=gen) * 2 - 1
        b = torch.rand(k, n, generator=gen) * 2 - 1
        c_torch, c_dyncc = torch.empty(m, n), torch.empty(m, n)

        def run_torch():
            torch.matmul(a, b, out=c_torch)

        def run_dyncc():
            status = lib.dyncc_k1_gemm(m, k, n, a.data_ptr(), b.data_ptr(),
                                       c_dyncc.data_ptr())
            if status != 0:
                raise RuntimeError("dyncc_k1_gemm(%d, %d, %d) returned %d"
                                   % (m, k, n, status))

        def block_torch(count):
            return timed(run_torch, count)

        def block_dyncc(count):
            # Timed in C, call after call, as dyncc's compiled host code
            # calls kernels (torch's side is eager Python, as users run it).
            seconds = (ctypes.c_double * count)()
            status = lib.dyncc_k1_gemm_timed(m, k, n, a.data_ptr(),
                                             b.data_ptr(), c_dyncc.data_ptr(),
                                             count, seconds)
            if status != 0:
                raise RuntimeError("dyncc_k1_gemm_timed returned %d" % status)
            return list(seconds)

        timed(run_torch, args.warmup)
        timed(run_dyncc, args.warmup)
        # Same answer (fp32 sums in different orders): relative to the
        # magnitude of the terms, as test/codegen/GemmKernelTest.cpp checks.
        scale = torch.matmul(a.abs(), b.abs())
        err = ((c_dyncc - c_torch).abs() / scale).max().item()
        if err > 1e-4:
            raise RuntimeError("dyncc and torch disagree on %dx%dx%d: %g"
                               % (m, k, n, err))

        sides = {"torch": (block_torch, run_torch, []),
                 "dyncc": (block_dyncc, run_dyncc, [])}
        if args.wait_idle > 0 and not wait_idle(args.wait_idle):
            print("# %dx%dx%d: the machine did not go idle within %g s"
                  % (m, k, n, args.wait_idle), flush=True)
        busy0, ours0 = cpu_busy()
        wall0 = time.perf_counter()
        ratios = []
        for r in range(args.rounds):
            order = ["torch", "dyncc"] if r % 2 == 0 else ["dyncc", "torch"]
            medians = {}
            for side in order:
                block_of, run, times = sides[side]
                if args.pause > 0:
                    time.sleep(args.pause)
                # Untimed calls wake this side's thread pool and the vCPUs.
                warm_until = time.perf_counter() + args.block_warmup
                run()
                while time.perf_counter() < warm_until:
                    run()
                block = block_of(per_block)
                times.extend(block)
                medians[side] = statistics.median(block)
            ratios.append(medians["torch"] / medians["dyncc"])
        busy1, ours1 = cpu_busy()
        others = max(0.0, (busy1 - busy0) - (ours1 - ours0)) / (
            time.perf_counter() - wall0)
        flop = 2.0 * m * n * k
        dyncc_s = statistics.median(sides["dyncc"][2])
        torch_s = statistics.median(sides["torch"][2])
        print("%d %d %d %.4f %.1f %.4f %.1f %.2f %.2f %.2f %.2f" % (
            m, k, n, dyncc_s * 1e3, flop / dyncc_s / 1e9, torch_s * 1e3,
            flop / torch_s / 1e9, statistics.median(ratios), min(ratios),
            max(ratios), others), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30,
                        help="timed calls per side and shape (>= 10)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--transpose-b", action="store_true")
    parser.add_argument("--halide-pool", action="store_true",
                        help="run dyncc's kernels on Halide's thread pool instead of the "
                        "runtime's (runtime/ThreadPool.h)")
    parser.add_argument("--dyncc-lib", help="libdyncc_k1_kernels.so")
    parser.add_argument("--rounds", type=int, default=10,
                        help="interleaved rounds (with --dyncc-lib)")
    parser.add_argument("--pause", type=float, default=0.25, metavar="S",
                        help="sleep before each block (lets the other "
                        "side's thread pool go idle first)")
    parser.add_argument("--block-warmup", type=float, default=0.02,
                        metavar="S", help="untimed calls for S seconds "
                        "before each timed block (with --dyncc-lib)")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="S",
                        help="before each shape, wait up to S seconds for "
                        "other processes to leave the CPUs idle")
    parser.add_argument("shapes", nargs="*", help="MxKxN")
    args = parser.parse_args()
    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes]
    shapes = shapes or SHAPES
    args.runs = max(args.runs, 10)
    if args.dyncc_lib and args.transpose_b:
        parser.error("--transpose-b is for torch alone")

    # Same thread count as the dyncc side (HL_NUM_THREADS=2).
    torch.set_num_threads(args.threads)
    torch.matmul(torch.ones(64, 64), torch.ones(64, 64))
    print("# torch %s matmul, C[M,N] = A[M,K] x %s, fp32; threads %d; "
          "OPENBLAS_CORETYPE=%s; median of >= %d runs after %d warm-up"
          % (torch.__version__,
             "B[N,K]^T" if args.transpose_b else "B[K,N]",
             torch.get_num_threads(),
             os.environ.get("OPENBLAS_CORETYPE", "(unset)"), args.runs,
             args.warmup))
    print("# BLAS loaded: %s" % (", ".join(blas_libraries()) or "(none found)"))
    with torch.no_grad():
        if args.dyncc_lib:
            interleaved(args, shapes)
        else:
            torch_only(args, shapes)


if __name__ == "__main__":
    main()
