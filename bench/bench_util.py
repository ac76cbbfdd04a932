"""Helpers shared by the Python benchmarks (m1, w1, w2, w3, w4): timing, the
machine's load, relative errors, the probed peak, the peers' setup (ONNX
Runtime sessions, what dynamo makes of a module)."""
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np


def add_peer_arguments(ap, rounds, runs, onnx=True):
    """The options every peer bench shares: --dyncc, --work, --rounds,
    --runs, --warmup, --pause, --no-compile and (where ONNX Runtime is a
    peer) --no-onnx."""
    ap.add_argument("--dyncc", required=True, help="the dyncc binary")
    ap.add_argument("--work", default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument("--runs", type=int, default=runs, help="timed runs per side and round")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--pause", type=float, default=0.25)
    ap.add_argument("--no-compile", dest="compile", action="store_false",
                    help="leave torch.compile out (its warm-up compiles C++)")
    if onnx:
        ap.add_argument("--no-onnx", dest="onnx", action="store_false",
                        help="leave ONNX Runtime out")


def cpu_busy():
    """(busy seconds of the whole machine, this process's CPU seconds)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]
    t = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), t.user + t.system


class OtherLoad:
    """`with OtherLoad() as load:` ... `load.others`: the cores other
    processes kept busy while the block ran (busy seconds outside this
    process per wall second)."""

    def __enter__(self):
        self.busy0, self.ours0 = cpu_busy()
        self.wall0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        busy1, ours1 = cpu_busy()
        self.others = max(0.0, (busy1 - self.busy0) - (ours1 - self.ours0)) / (
            time.perf_counter() - self.wall0)


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


def cpu_name():
    """The CPU's model name from /proc/cpuinfo ("" if none)."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return ""


# The project's Python package (dyncc), for the helpers that load or find
# what dyncc built.
_PYTHON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python")
if _PYTHON not in sys.path:
    sys.path.insert(0, _PYTHON)


def find_dyncc():
    """The dyncc binary the dyncc package would run ($DYNCC, else build/);
    None where there is none."""
    from dyncc.library import dyncc_binary
    try:
        return dyncc_binary()
    except (OSError, RuntimeError):
        return None


def dyncc_bf16_path():
    """How dyncc multiplies bf16 on this CPU, as `dyncc --version` says
    ("AMX tiles", "AVX512-BF16 (no AMX)", ...); "unknown" without a dyncc."""
    dyncc = find_dyncc()
    if dyncc is None:
        return "unknown"
    out = subprocess.run([dyncc, "--version"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.strip().startswith("bf16 on this CPU:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def bf16_target_note():
    """The note of the targets "x torch.compile bf16" (meant for a CPU with
    AMX, where dyncc multiplies on AMX tiles)."""
    path = dyncc_bf16_path()
    if path == "AMX tiles":
        return "AMX: dyncc on AMX tiles"
    if cpu_has("amx_bf16"):
        return f"AMX, but dyncc: {path}"
    return "no AMX: the target is for a CPU with AMX"


def cpu_has(flag):
    """Whether /proc/cpuinfo lists `flag` (e.g. "amx_bf16") for this CPU."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return flag in line.split(":", 1)[1].split()
    return False


def record_target(workload, measured, target, higher=True, note="", needs=None):
    """Appends one of WORKLOADS.md's targets as measured here to the file named
    by $DYNCC_BENCH_SUMMARY (JSON lines; bench/run-all.sh sets it and
    bench/targets.py tabulates it), if set: `workload` names the row (e.g.
    "W2 backbone fp32 vs ONNX Runtime"), `measured` and `target` are numbers,
    `higher` says which way is better; `needs`, for a speed-up over a peer,
    the share of the FMA issue rate that meeting it takes (fma_needed)."""
    path = os.environ.get("DYNCC_BENCH_SUMMARY")
    if not path or measured is None:
        return
    import json
    with open(path, "a") as f:
        f.write(json.dumps({"cpu": cpu_name(), "workload": workload,
                            "measured": float(measured), "target": float(target),
                            "higher": bool(higher), "note": note,
                            "needs": None if needs is None else float(needs)}) + "\n")


def fma_needed(flop, peer_seconds, speedup, fma):
    """The % of the FMA issue rate `fma` (GFLOP/s) at which `flop` FLOPs
    (what dyncc computes) must run to be `speedup` times faster than a peer
    that took `peer_seconds`: above 100, no fp32 schedule meets that target
    on this CPU. None where a number is missing."""
    if not flop or not peer_seconds or not speedup or not fma:
        return None
    return flop * speedup / peer_seconds / 1e9 / fma * 100


def probe_peak(threads, runs=5):
    """The probed peak of WORKLOADS.md ("Peers"): the best GFLOP/s of
    torch.matmul in this process at `threads` threads, fp32 on 1024^3 and
    2048^3, bf16 on 2048^3 (2 FLOP per multiply-add; best of `runs` runs
    after one untimed run, into a preallocated output). Returns {"fp32":
    best of both sizes, "bf16": GFLOP/s or None where torch cannot multiply
    bf16 here, "fp32_1024", "fp32_2048"}. bf16 is only timed: on a CPU
    without a bf16 GEMM it is a slow path, and the number says so."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)

    def best(n, dtype):
        a = torch.randn(n, n, generator=gen).to(dtype)
        b = torch.randn(n, n, generator=gen).to(dtype)
        c = torch.empty(n, n, dtype=dtype)
        with torch.no_grad():
            torch.matmul(a, b, out=c)
            return 2.0 * n ** 3 / min(timed(lambda: torch.matmul(a, b, out=c), runs)) / 1e9

    try:
        peak = {"fp32_1024": best(1024, torch.float32), "fp32_2048": best(2048, torch.float32)}
        peak["fp32"] = max(peak["fp32_1024"], peak["fp32_2048"])
        try:
            peak["bf16"] = best(2048, torch.bfloat16)
        except (RuntimeError, TypeError, NotImplementedError):
            peak["bf16"] = None
    finally:
        torch.set_num_threads(before)
    return peak


def best_peak(first, again):
    """The best of two probe_peak results, key by key (the machine is shared:
    a probe at the start and one at the end of a bench); a key None in one
    takes the other's value."""
    return {k: (max(v, again[k]) if v is not None and again.get(k) is not None
                else v if v is not None else again.get(k))
            for k, v in first.items()}


def fma_peak(threads, dyncc=None):
    """This CPU's fp32 FMA issue rate at `threads` threads, GFLOP/s: the
    machine's own ceiling, which even the probed peak's matmul stays below
    (bench/fma_peak.c: <build>/bench/dyncc-fma-peak, in the build of
    `dyncc`, else of $DYNCC or build/); None where it is not built."""
    try:
        dyncc = dyncc or find_dyncc()
        if dyncc is None:
            return None
        exe = os.path.join(os.path.dirname(os.path.abspath(dyncc)), "..", "..", "bench",
                           "dyncc-fma-peak")
        out = subprocess.run([exe, str(threads)], capture_output=True, text=True).stdout
        return float(out.split()[0])
    except (OSError, IndexError, ValueError):
        return None


def fma_note(fma, probed):
    """The line that puts the probed peak next to the FMA issue rate."""
    if fma is None:
        return "FMA issue rate: not measured (build the dyncc-fma-peak target)"
    return (f"FMA issue rate {fma:.0f} GFLOP/s fp32 (bench/fma_peak.c: 12 independent "
            f"chains a thread; the probed peak is {probed / fma * 100:.0f}% of it)")


def kernel_profile(lib, weights, inputs, threads, runs, wall=False, warmup=3):
    """dyncc.Model.profile() of the library `lib` over `runs` runs on
    `inputs`, after `warmup` runs left out (a new model's first run also
    faults in its arena's pages: W2's took 1.15x a later one), in a model
    of its own, created with DYNRT_PROFILE=1, so that the timed models are
    not profiled. With `wall`: (the profile, the runs' own time, seconds a
    run), whose difference to the kernels' sum is what runs between the
    kernels."""
    import dyncc
    before = os.environ.get("DYNRT_PROFILE")
    os.environ["DYNRT_PROFILE"] = "1"
    try:
        m = dyncc.load(lib, weights, num_threads=threads)
    finally:
        if before is None:
            del os.environ["DYNRT_PROFILE"]
        else:
            os.environ["DYNRT_PROFILE"] = before
    try:
        run = m.runner(*inputs)
        for _ in range(warmup):
            run()
        before = {r["kernel"]: r for r in m.profile()}
        t0 = time.perf_counter()
        for _ in range(runs):
            run()
        seconds = (time.perf_counter() - t0) / max(runs, 1)
        prof = []
        for r in m.profile():
            b = before.get(r["kernel"], {"calls": 0, "seconds": 0.0})
            d = dict(r, calls=r["calls"] - b["calls"], seconds=r["seconds"] - b["seconds"])
            d["gflops"] = (d["calls"] * d["flops"] / d["seconds"] / 1e9
                           if d["flops"] > 0 and d["seconds"] > 0 else None)
            prof.append(d)
        prof.sort(key=lambda r: -r["seconds"])
        return (prof, seconds) if wall else prof
    finally:
        m.close()


def gemm_labels(stats):
    """{kernel: its GEMMs' shapes ("m128 n1024 k256 + ...")} from the
    "gemm <kernel>: <shape>: <schedule>" lines of dyncc compile --stats."""
    labels = {}
    for line in stats.splitlines():
        m = re.match(r"gemm (\S+): ([^:]+):", line)
        if m:
            labels[m.group(1)] = (labels[m.group(1)] + " + " if m.group(1) in labels
                                  else "") + m.group(2).strip()
    return labels


def kernel_table(profile, labels, runs, fma, top=8):
    """Markdown rows of dyncc's kernels against the FMA issue rate: the
    kernels of `profile` (kernel_profile) grouped by their GEMMs' shapes
    (`labels`, gemm_labels: one row for the layers' identical kernels), by
    time; kernels without GEMMs (softmax, norms, builtins) in one row. Time
    per run and its share, µs a call, MFLOP a call, GFLOP/s and % of `fma`
    (GFLOP/s; None: not measured)."""
    total = sum(r["seconds"] for r in profile) or 1.0
    groups = {}
    for r in profile:
        if r["calls"] == 0:
            continue
        key = labels.get(r["kernel"]) if r["flops"] > 0 else None
        g = groups.setdefault(key or "other kernels (no GEMM)",
                              {"calls": 0, "seconds": 0.0, "flop": 0.0})
        g["calls"] += r["calls"]
        g["seconds"] += r["seconds"]
        g["flop"] += r["calls"] * r["flops"]
    rows = ["| kernels (GEMM shapes, from `--stats`) | calls a run | ms a run | share | µs a call "
            "| MFLOP a call | GFLOP/s | % of the FMA rate |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    ordered = sorted(groups.items(), key=lambda kv: -kv[1]["seconds"])
    for name, g in ordered[:top]:
        rate = g["flop"] / g["seconds"] / 1e9 if g["flop"] and g["seconds"] else None
        rows.append(
            f"| {name} | {g['calls'] / runs:g} | {g['seconds'] / runs * 1e3:.3f} "
            f"| {g['seconds'] / total * 100:.1f}% | {g['seconds'] / g['calls'] * 1e6:.1f} "
            + (f"| {g['flop'] / g['calls'] / 1e6:.1f} | {rate:.0f} "
               + (f"| {rate / fma * 100:.0f}% |" if fma else "| n/a |")
               if rate else "| - | - | - |"))
    if len(ordered) > top:
        rest = sum(g["seconds"] for _, g in ordered[top:])
        rows.append(f"| {len(ordered) - top} more groups | | {rest / runs * 1e3:.3f} "
                    f"| {rest / total * 100:.1f}% | | | | |")
    flop = sum(g["flop"] for g in groups.values())
    rows.append(f"| all | {sum(g['calls'] for g in groups.values()) / runs:g} "
                f"| {total / runs * 1e3:.3f} "
                f"| 100% | | | {flop / total / 1e9:.0f} "
                + (f"| {flop / total / 1e9 / fma * 100:.0f}% |" if fma else "| n/a |"))
    return rows


def print_kernel_table(what, profile, stats, runs, fma):
    """Prints the paragraph that introduces a kernel_table and the table:
    `what` names the model ("of the fp32 backbone"), `profile` is
    kernel_profile's after `runs` runs, `stats` the library's
    `dyncc compile --stats` text, `fma` the FMA issue rate (None: not
    measured)."""
    print()
    print(f"dyncc's kernels {what} against the FMA issue rate "
          f"({f'{fma:.0f} GFLOP/s' if fma else 'not measured'}): {runs} runs of a model "
          "created with DYNRT_PROFILE=1 (dyncc.Model.profile), the runtime's time of each "
          "kernel call; FLOPs as `dyncc compile` counts them (GEMMs and attention products, "
          "2 per multiply-add); a row sums the calls of the kernels with those GEMM shapes "
          "(the layers').")
    print()
    for line in kernel_table(profile, gemm_labels(stats), runs, fma):
        print(line)


def encoder_flops(layers, seq, d_model, d_ff, batch=1):
    """GEMM FLOPs of a transformer encoder's forward pass (2 per
    multiply-add): per layer the Q, K, V and O projections (4 S d^2), the
    FFN (2 S d d_ff), QK^T and PV (2 S^2 d); softmax, GELU, layer norms and
    a classifier head are left out."""
    S, d = seq, d_model
    per_layer = 2 * S * d * 4 * d + 2 * 2 * S * d * d_ff + 2 * 2 * S * S * d
    return float(batch * layers * per_layer)


def ort_session(path, threads, spinning=True):
    """An ONNX Runtime CPU session as WORKLOADS.md's peers run it:
    ORT_ENABLE_ALL, `threads` intra-op threads, inter-op 1, sequential;
    spinning=False sets session.intra_op.allow_spinning to 0 (for loops of
    many sessions, whose spinning pools would fight over the cores)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if not spinning:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def onnx_export(module, args, path, input_names, output_names):
    """torch.onnx.export (the dynamo exporter, as bench/m1_bench.py) of
    module(*args) to path, its progress messages swallowed."""
    import contextlib
    import io
    import torch
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        torch.onnx.export(module, tuple(args), path, dynamo=True, verbose=False,
                          input_names=input_names, output_names=output_names)


def module_version(name):
    """The __version__ of module `name`, "?" when it cannot be imported."""
    try:
        return __import__(name).__version__
    except Exception:  # noqa: BLE001 (any failure: the version is unknown)
        return "?"


def first_line(e):
    """An exception as one short line: its type and the first line of its message."""
    s = str(e).strip()
    return f"{type(e).__name__}: {s.splitlines()[0] if s else ''}"[:200]


def fullgraph_failure(fn, *args):
    """Why dynamo cannot capture fn(*args) as one graph (the first line of
    torch.compile(fullgraph=True)'s error that names the user's code, else
    its first line), or None when it can. Traces only (backend "eager"):
    nothing is compiled; the compile caches are reset before and after."""
    import torch
    torch._dynamo.reset()
    try:
        with torch.no_grad():
            torch.compile(fn, fullgraph=True, backend="eager")(*args)
        return None
    except Exception as e:  # noqa: BLE001 (whatever dynamo raises is the answer)
        lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
        where = [ln for ln in lines if ln.startswith("Caused by:") or " in forward" in ln]
        return (where[0] if where else first_line(e))[:240]
    finally:
        torch._dynamo.reset()


def smoke_test(script, *args):
    """Runs `script` (Python source) with `args` in a child process, so that
    a compiled model that crashes does not take the benchmark with it;
    RuntimeError saying why when it fails."""
    p = subprocess.run([sys.executable, "-c", script] + [str(a) for a in args],
                       capture_output=True, text=True)
    if p.returncode:
        err = (p.stderr or p.stdout).strip().splitlines()
        why = (err[-1] if err else f"killed by signal {-p.returncode}" if p.returncode < 0
               else f"exit status {p.returncode}")
        raise RuntimeError(f"the compiled model fails to run ({why})")


def interleaved(names, block, rounds, runs, pause=0.0):
    """Times the sides `names` round after round, each round in a rotated
    order (no side always runs first): block(name, count) returns the
    seconds of `count` calls; the first call of each block is dropped.
    Returns (times {name: all seconds}, [per round {name: median}])."""
    times = {n: [] for n in names}
    per_round = []
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        med = {}
        for n in order:
            if pause > 0:
                time.sleep(pause)
            b = block(n, runs + 1)[1:]
            times[n] += b
            med[n] = statistics.median(b)
        per_round.append(med)
    return times, per_round
