#!/usr/bin/env python3
"""Differential test of expert parallelism (dyncc compile --expert-parallel,
docs/moe.md "Expert parallelism"): an MoE model built with dyncc.nn.MoE
(examples/moe/model.py) is exported once and compiled twice, for one process
and split over R ranks; both run the same cases through the C API
(test/mpi/ep_driver.cpp under mpirun, each rank its own cases), and for
every case the sharded run must give what the single-process library gives:

  - the route report exactly: every token's experts (kept, dropped, none),
    tokens per expert and dropped pairs;
  - the outputs to 1e-6 (|a - b| / max(1, |b|); they are the same kernels
    on the same rows, so they agree to the bit in practice), outputs
    poisoned with NaN before every run;
  - dynrt_model_route_stats: each rank's sums are the sums of its cases;
  - the exchange statistics: no bytes leave a single rank, some do for
    R > 1.

  check_ep.py DYNCC DRIVER WORKDIR VARIANT [--ranks 1,2,4] [--shard-files]

--shard-files also runs R = 2 with a weights file per rank that holds only
that rank's experts. Skips (exit 77) when mpirun is missing.
  check_ep.py DYNCC DRIVER WORKDIR errors
checks the errors: an expert count the ranks cannot split (a located compile
error), a library split over 2 ranks created on 1, ranks that load
different models, and a rank that stops answering (the others fail with
UNAVAILABLE after the timeout instead of hanging).
"""
import os
import shutil
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "examples", "moe", "model.py")
SKIP = 77

VARIANTS = {
    "switch": ["--strategy", "switch", "--capacity-factor", "1.25", "--skew", "3"],
    "top_k2": ["--strategy", "top_k", "--k", "2", "--capacity-factor", "1.25",
               "--priority", "score", "--gate-input"],
    "gshard-groups": ["--strategy", "gshard", "--capacity-factor", "2.0", "--groups", "2",
                      "--seed", "42"],
    "base": ["--strategy", "base", "--gate-input"],
    "dense_to_sparse": ["--strategy", "dense_to_sparse", "--temperature", "2.0",
                        "--threshold", "0.0625", "--capacity-factor", "0.75",
                        "--renormalize", "--gate-input"],
    "hash": ["--strategy", "hash", "--hash-table", "1000", "--capacity-factor", "1.25"],
    # W1's block (pre-LN, attention, top-2 of 8 experts at W1's width) on 128
    # tokens: the shape the W1-by-ranks bench runs with 512.
    "w1-block": ["--strategy", "top_k", "--k", "2", "--capacity-factor", "1.25",
                 "--block", "--attention", "--tokens", "128", "--dim", "256",
                 "--ffn", "1024", "--heads", "4"],
}
CASES = 8  # a multiple of every rank count


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def mpirun():
    exe = os.environ.get("MPIEXEC") or shutil.which("mpirun")
    if not exe:
        print("SKIP: mpirun not found (install openmpi-bin)")
        sys.exit(SKIP)
    if not os.path.exists(sys.argv[2]):
        print("SKIP: no expert-parallel driver: dyncc was built without MPI "
              "(install libopenmpi-dev and reconfigure)")
        sys.exit(SKIP)
    return exe


def mpi_cmd(n):
    # Root in containers, more ranks than cores, shared memory only.
    return [mpirun(), "-np", str(n), "--oversubscribe", "--allow-run-as-root",
            "--mca", "btl", "self,vader", "--mca", "btl_vader_single_copy_mechanism", "none",
            "--bind-to", "none"]


def run(cmd, timeout=300, expect_ok=True):
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    dt = time.time() - t
    if expect_ok and p.returncode != 0:
        fail(f"{' '.join(cmd)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p, dt


def export(work, name, options):
    os.makedirs(work, exist_ok=True)
    run([sys.executable, MODEL, *options, "--cases", str(CASES), "--out-dir", work,
         "--name", name])
    return os.path.join(work, name)


def compile_lib(dyncc, base, out, extra=(), expect_ok=True):
    p, dt = run([dyncc, "compile", base + ".mlir", "--shared", "-o", out, *extra],
                expect_ok=expect_ok)
    return p, os.path.join(os.path.dirname(out), "lib" + os.path.basename(out) + ".so")


def inputs_of(base, lib, name):
    """The .npy files of the model's inputs, in the descriptor's order."""
    sys.path.insert(0, os.path.join(ROOT, "runtime", "python"))
    from dynrt_ctypes import Library
    names = [n for n, _, _ in Library(lib, name).inputs]
    files = {"x": base + ".x.npy", "gate": base + ".gate.npy", "ids": base + ".gate.npy"}
    return [files[n] for n in names]


def drive(driver, ranks, lib, model, weights, inputs, out, extra=(), expect_ok=True,
          timeout=300, launcher=()):
    if out:
        os.makedirs(out, exist_ok=True)
    cmd = mpi_cmd(ranks) + list(launcher) + [driver, "--lib", lib, "--model", model, "--weights", weights,
                            "--cases", str(CASES)]
    for i in inputs:
        cmd += ["--input", i]
    if out:
        cmd += ["--out", out]
    return run(cmd + list(extra), timeout=timeout, expect_ok=expect_ok)


def parse_ranks(stdout):
    """rank -> (runs, exchange bytes, [route sums])."""
    ranks = {}
    for line in stdout.splitlines():
        if not line.startswith("rank "):
            continue
        head, rest = line.split(":", 1)
        r = int(head.split()[1].split("/")[0])
        fields = rest.split(",")
        runs = int(fields[0].split()[1])
        xbytes = int(rest.split("exchange ")[1].split()[0])
        sums = []
        for part in rest.split("route")[1:]:
            inside = part.split("[")[1].split("]")[0]
            sums.append([int(v) for v in inside.split()])
        ranks[r] = (runs, xbytes, sums)
    return ranks


def compare(ref, got, num_outputs, num_routes, label):
    worst = 0.0
    for c in range(CASES):
        for o in range(num_outputs):
            a = np.fromfile(f"{got}/case{c}.out{o}.bin", dtype=np.float32)
            b = np.fromfile(f"{ref}/case{c}.out{o}.bin", dtype=np.float32)
            if a.shape != b.shape or not np.all(np.isfinite(a)):
                fail(f"{label}: case {c} output {o} has non-finite values or the wrong size")
            err = float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))
            worst = max(worst, err)
            if err > 1e-6:
                fail(f"{label}: case {c} output {o} differs by {err:.3g}")
        for r in range(num_routes):
            for what, dt in (("assignment", np.int32), ("tokens", np.uint64),
                             ("dropped", np.uint64)):
                a = np.fromfile(f"{got}/case{c}.route{r}.{what}.bin", dtype=dt)
                b = np.fromfile(f"{ref}/case{c}.route{r}.{what}.bin", dtype=dt)
                if not np.array_equal(a, b):
                    fail(f"{label}: case {c} route {r} {what} differs: "
                         f"{np.flatnonzero(a != b)[:8]} of {a.size}")
    return worst


def check_variant(dyncc, driver, work, variant, ranks_list, shard_files):
    mpirun()
    options = VARIANTS[variant]
    base = export(work, "m", options)
    _, ref_lib = compile_lib(dyncc, base, os.path.join(work, "lib1p", "m"))
    inputs = inputs_of(base, ref_lib, "m")
    weights = base + ".safetensors"
    ref = os.path.join(work, "ref")
    p, _ = drive(driver, 1, ref_lib, "m", weights, inputs, ref)
    ref_ranks = parse_ranks(p.stdout)
    num_routes = len(ref_ranks[0][2])
    num_outputs = len([f for f in os.listdir(ref) if f.startswith("case0.out")])
    ref_sums = np.array(ref_ranks[0][2], dtype=np.int64)
    # the single-process library's sums over the cases a rank runs
    per_case = [[np.fromfile(f"{ref}/case{c}.route{r}.tokens.bin", dtype=np.uint64)
                 for r in range(num_routes)] for c in range(CASES)]
    if not np.array_equal(ref_sums, np.sum(np.array(per_case, dtype=np.int64), axis=0)):
        fail("single process: route stats are not the sum of the run reports")
    runs = [(R, weights) for R in ranks_list]
    if shard_files:
        runs.append((2, write_shards(base, 2)))
    for R, w in runs:
        label = f"{variant} at {R} ranks" + (" (a weights file per rank)" if w != weights else "")
        lib = compile_lib(dyncc, base, os.path.join(work, f"lib{R}", "m"),
                          [f"--expert-parallel={R}"])[1]
        got = os.path.join(work, f"ranks{R}" + ("-shards" if w != weights else ""))
        p, dt = drive(driver, R, lib, "m", w, inputs, got)
        worst = compare(ref, got, num_outputs, num_routes, label)
        ranks = parse_ranks(p.stdout)
        if sorted(ranks) != list(range(R)):
            fail(f"{label}: expected a line from each of {R} ranks:\n{p.stdout}")
        for r, (n, xbytes, sums) in ranks.items():
            want = np.sum(np.array([per_case[c] for c in range(r, CASES, R)],
                                   dtype=np.int64), axis=0)
            if n != CASES // R or not np.array_equal(np.array(sums, dtype=np.int64), want):
                fail(f"{label}: rank {r} ran {n} cases with route sums {sums}, "
                     f"expected {CASES // R} and {want.tolist()}")
            if (R == 1) != (xbytes == 0):
                fail(f"{label}: rank {r} sent {xbytes} exchange bytes")
        print(f"{label}: {CASES} cases equal to one process (max rel. diff {worst:.2g}), "
              f"exchange bytes per rank {[ranks[r][1] for r in range(R)]}, {dt:.1f} s")


def write_shards(base, R):
    """base.rank<r>.safetensors: rank r's rows of every expert weight, the
    other weights whole."""
    from safetensors.numpy import load_file, save_file
    tensors = load_file(base + ".safetensors")
    for r in range(R):
        shard = {}
        for k, v in tensors.items():
            if ".experts." in k:
                n = v.shape[0] // R
                v = np.ascontiguousarray(v[r * n:(r + 1) * n])
            shard[k] = v
        save_file(shard, f"{base}.rank{r}.safetensors")
    return base + ".rank{rank}.safetensors"


def expect(p, code, *needles, label):
    text = p.stdout + p.stderr
    if (code is not None and p.returncode != code) or \
            (code is None and p.returncode == 0) or not all(n in text for n in needles):
        fail(f"{label}: expected exit {code if code is not None else 'non-zero'} with "
             f"{needles}, got {p.returncode}:\n{text}")
    print(f"{label}: ok")


def check_errors(dyncc, driver, work):
    mpirun()
    base = export(work, "m", VARIANTS["switch"])
    other = export(os.path.join(work, "other"), "m", VARIANTS["switch"] + ["--ffn", "96"])
    weights = base + ".safetensors"
    # 8 experts over 3 ranks: a compile error at the dyn.route.
    p, _ = compile_lib(dyncc, base, os.path.join(work, "lib3", "m"), ["--expert-parallel=3"],
                       expect_ok=False)
    expect(p, 1, "m.mlir:", "error: 'dyn.route' op has 8 experts, which --expert-parallel=3 "
           "cannot split evenly", label="8 experts over 3 ranks")
    if os.path.exists(os.path.join(work, "lib3", "libm.so")):
        fail("a failed compile left a library behind")
    p, _ = compile_lib(dyncc, base, os.path.join(work, "libb", "m"),
                       ["--expert-parallel=2", "--batch-buckets=1,4"], expect_ok=False)
    expect(p, 1, "--expert-parallel cannot be combined with --batch-buckets",
           label="--expert-parallel with --batch-buckets")
    _, lib2 = compile_lib(dyncc, base, os.path.join(work, "lib2", "m"), ["--expert-parallel=2"])
    _, other2 = compile_lib(dyncc, other, os.path.join(work, "other2", "m"),
                            ["--expert-parallel=2"])
    inputs = inputs_of(base, lib2, "m")
    # A library split over 2 ranks, created on 1.
    p, _ = drive(driver, 1, lib2, "m", weights, inputs, None, expect_ok=False)
    expect(p, 3, "create failed: FAILED_PRECONDITION", "split over 2 ranks",
           "the communicator has 1 rank(s)", label="2-rank library on 1 rank")
    # Rank 1 loads another model (d_ff 96) with its weights: both ranks
    # refuse at create.
    per_rank = os.path.join(work, "per-rank")
    os.makedirs(per_rank)
    os.symlink(weights, os.path.join(per_rank, "0.safetensors"))
    os.symlink(other + ".safetensors", os.path.join(per_rank, "1.safetensors"))
    p, _ = drive(driver, 2, lib2, "m", os.path.join(per_rank, "{rank}.safetensors"), inputs,
                 None, expect_ok=False,
                 extra=["--lib-for-rank", "1", other2, "--model-for-rank", "1", "m"])
    expect(p, None, "rank 0: create failed: FAILED_PRECONDITION",
           "loaded a different model", label="ranks that load different models")
    # Weights whose expert tensor has neither the whole nor the shard's shape.
    p, _ = drive(driver, 2, lib2, "m", other + ".safetensors", inputs, None, expect_ok=False)
    expect(p, None, "create failed: INVALID_ARGUMENT", "'moe.experts.w1' has shape [8, 32, 96]",
           "[8, 32, 64] (every expert) or [4, 32, 64] (rank ",
           label="expert weights of the wrong shape")
    # Rank 1 stops answering for 6 s; rank 0 gives up after 1 s.
    t = time.time()
    p, dt = drive(driver, 2, lib2, "m", weights, inputs, None, expect_ok=False, timeout=60,
                  extra=["--timeout-ms", "1000", "--stall-rank", "1", "--stall-ms", "6000"])
    expect(p, None, "rank 0: run of case 0 failed: UNAVAILABLE",
           "did not all take part within 1000 ms", label="a rank that stops answering")
    print(f"  (the job ended after {dt:.1f} s)")
    # Rank 1 dies by SIGKILL before its first run. Open MPI's mpirun kills
    # the others at once unless --enable-recovery lets them live: then
    # rank 0's run fails with UNAVAILABLE after its timeout (mpirun's exit
    # code is then 0 whatever the ranks return, so the message decides).
    version = subprocess.run([mpirun(), "--version"], capture_output=True, text=True)
    if any(n in version.stdout + version.stderr for n in ("Open MPI", "OpenRTE")):
        p, dt = drive(driver, 2, lib2, "m", weights, inputs, None, expect_ok=False, timeout=60,
                      extra=["--timeout-ms", "1000", "--kill-rank", "1"],
                      launcher=["--enable-recovery"])
        text = p.stdout + p.stderr
        if "rank 0: run of case 0 failed: UNAVAILABLE" not in text:
            fail(f"a killed rank: rank 0 did not report UNAVAILABLE:\n{text}")
        print(f"a killed rank: ok (rank 0 failed with UNAVAILABLE; the job ended after {dt:.1f} s)")


def main():
    if len(sys.argv) < 5:
        print(__doc__)
        return 2
    dyncc, driver, work, variant = sys.argv[1:5]
    rest = sys.argv[5:]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    if variant == "errors":
        check_errors(dyncc, driver, work)
        return 0
    ranks = [1, 2, 4]
    if "--ranks" in rest:
        ranks = [int(v) for v in rest[rest.index("--ranks") + 1].split(",")]
    check_variant(dyncc, driver, work, variant, ranks, "--shard-files" in rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
