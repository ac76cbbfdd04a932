"""ONNX backend node conformance tests through dyncc's ONNX import path.

Runs ONNX's own node tests (onnx/backend/test/data/node/<test>/model.onnx +
test_data_set_0/{input,output}_*.pb) whose ops are all in CLAIMED: each is
imported (dyncc.import_onnx), compiled (dyncc.build) and run (dyncc.load) on
the test inputs in its own subprocess (with a timeout), and its outputs are
compared with the expected ones (float: np.allclose rtol=1e-4 atol=1e-5,
NaNs equal; ints and bools: exact; dtypes and shapes must match).

    onnx_nodes.py WORKDIR [--ops Add,MatMul] [--limit N] [--jobs 2]
                          [--timeout 60] [--markdown] [--min-pass N] [--no-fold]

Each test is
  passed       outputs match,
  failed       wrong outputs, or an error / crash / timeout in import,
               compile or run (with a one-line reason), or
  unsupported  it uses an op outside CLAIMED (or a non-default domain), a
               dtype other than float32/int64/int32/bool, non-tensor values
               or dynamic shapes.
A test counts for the op it tests: the op of its one-node model, or for
an "_expanded" test (the op's function body) the op of its base test.

Shape operands: node tests feed operands such as Reshape's shape or Slice's
starts as graph inputs, where real models carry constants. dyncc compiles
static shapes, so these operands (SHAPE_OPERANDS) are made initializers
with the test's values before the import (--no-fold keeps them inputs).

Wheels of onnx that do not ship data/node (onnx >= 1.2x) get the same data
generated from onnx.backend.test.case.node into WORKDIR/node-data (cached).

Prints "op: passed/failed/total" per op, the totals, the most common
failure reasons, and with --markdown a table for the docs. Results are
written to WORKDIR/results.json. Exit status 0 when the run completes; 1
with --min-pass N when fewer than N tests pass.
"""
import argparse
import collections
import concurrent.futures
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# The ONNX ops of common transformer / RNN / convolutional text models that
# the import path (torch-mlir's ONNX importer + dyncc) claims.
CLAIMED = """
Add Sub Mul Div Pow Sqrt Reciprocal Neg Abs Exp Log Tanh Erf Relu Sigmoid Gelu
LeakyRelu Softplus HardSigmoid Clip Max Min
Softmax LogSoftmax MatMul Gemm Einsum
Transpose Reshape Flatten Squeeze Unsqueeze Concat Slice Split Gather Expand Tile Pad
Shape ConstantOfShape Range CumSum Trilu
Where Equal Less LessOrEqual Greater GreaterOrEqual Not And Or Cast CastLike
ReduceMean ReduceSum ReduceMax ReduceMin ArgMax
LayerNormalization BatchNormalization
Conv MaxPool AveragePool GlobalAveragePool
LSTM GRU RNN
Identity Constant Dropout
""".split()

# op -> indices of operands that determine shapes (folded to constants).
SHAPE_OPERANDS = {
    "Reshape": [1], "Expand": [1], "Tile": [1], "Slice": [1, 2, 3, 4],
    "Squeeze": [1], "Unsqueeze": [1], "Split": [1], "Pad": [1, 2, 3],
    "ReduceMean": [1], "ReduceSum": [1], "ReduceMax": [1], "ReduceMin": [1],
    "ConstantOfShape": [0], "Range": [0, 1, 2], "CumSum": [1], "Trilu": [1],
}

RTOL, ATOL = 1e-4, 1e-5


# --------------------------------------------------------------- test data

def shipped_node_dir():
    import onnx
    d = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")
    return d if os.path.isdir(d) and os.listdir(d) else None


class Test:
    def __init__(self, name, model, write=None, directory=None):
        self.name, self.model, self._write, self.dir = name, model, write, directory

    def materialize(self):
        if self.dir is None:
            self.dir = self._write()
        return self.dir


def _write_case(root, case):
    """Writes a generated TestCase in the layout of data/node (as
    onnx.backend.test.cmd_tools generate-data does for tensors)."""
    from onnx import TensorProto, numpy_helper
    d = os.path.join(root, case.name)
    ds = os.path.join(d, "test_data_set_0")
    marker = os.path.join(d, ".complete")
    if os.path.exists(marker):
        return d
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(ds)
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(case.model.SerializeToString())
    inputs, outputs = case.data_sets[0]
    g = case.model.graph
    for kind, values, infos in (("input", inputs, g.input), ("output", outputs, g.output)):
        for j, v in enumerate(values):
            t = v if isinstance(v, TensorProto) else numpy_helper.from_array(v, infos[j].name)
            with open(os.path.join(ds, f"{kind}_{j}.pb"), "wb") as f:
                f.write(t.SerializeToString())
    open(marker, "w").close()
    return d


def collect_tests(work):
    """All node tests as Test objects (name order)."""
    import onnx
    shipped = shipped_node_dir()
    if shipped:
        tests = []
        for name in sorted(os.listdir(shipped)):
            path = os.path.join(shipped, name, "model.onnx")
            if os.path.isfile(path):
                tests.append(Test(name, onnx.load(path), directory=os.path.join(shipped, name)))
        return tests
    import warnings
    import numpy as np
    from onnx.backend.test.case import node
    root = os.path.join(work, "node-data", onnx.__version__)
    os.makedirs(root, exist_ok=True)
    np.random.seed(0)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = node.collect_testcases()
    return [Test(c.name, c.model, write=(lambda c=c: _write_case(root, c)))
            for c in sorted(cases, key=lambda c: c.name)]


# ---------------------------------------------------------- classification

def graph_ops(g):
    ops = set()
    for n in g.node:
        ops.add(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}")
        for a in n.attribute:
            if a.HasField("g"):
                ops |= graph_ops(a.g)
            for sub in a.graphs:
                ops |= graph_ops(sub)
    return ops


def tested_op(test, by_name):
    """The op a test is about: its one node's op, the base test's for
    _expanded tests, else the test's name."""
    base = re.sub(r"_expanded(_ver\d+)?$", "", test.name)
    for t in (by_name.get(base), test):
        if t is not None:
            nodes = t.model.graph.node
            if len({n.op_type for n in nodes}) == 1:
                n = nodes[0]
                return n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
    return base[len("test_"):] if base.startswith("test_") else base


def unsupported_reason(test, claimed):
    """None if the test can run, else why not."""
    import onnx
    from onnx import TensorProto
    g = test.model.graph
    outside = sorted(graph_ops(g) - claimed)
    if outside:
        return "op " + ",".join(outside)
    ok = {TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32, TensorProto.BOOL}
    for vi in list(g.input) + list(g.output):
        if not vi.type.HasField("tensor_type"):
            return f"{vi.type.WhichOneof('value')} value '{vi.name}'"
        tt = vi.type.tensor_type
        if tt.elem_type not in ok:
            return "dtype " + TensorProto.DataType.Name(tt.elem_type)
        if not tt.HasField("shape") or any(not d.HasField("dim_value") for d in tt.shape.dim):
            return f"dynamic shape of '{vi.name}'"
    try:
        inferred = onnx.shape_inference.infer_shapes(test.model).graph.value_info
    except Exception:
        inferred = []
    for vi in inferred:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type not in ok:
            return "dtype " + TensorProto.DataType.Name(vi.type.tensor_type.elem_type)
    for n in g.node:
        for a in n.attribute:
            if n.op_type == "Cast" and a.name == "to" and a.i not in ok:
                return "dtype " + TensorProto.DataType.Name(a.i)
            if a.HasField("t") and a.t.data_type not in ok:
                return "dtype " + TensorProto.DataType.Name(a.t.data_type)
    return None


# ----------------------------------------------------------------- worker

def _one_line(text):
    """The most telling line of an error message."""
    lines = [l.strip() for l in str(text).strip().splitlines() if l.strip()]
    if not lines:
        return ""
    for l in lines:
        if "error:" in l:
            return l
    return lines[0]


def fold_shape_operands(model, inputs):
    """Makes the graph inputs that are shape operands (SHAPE_OPERANDS)
    initializers with their test values; returns the remaining inputs."""
    from onnx import numpy_helper
    g = model.graph
    names = [i.name for i in g.input]
    fold = set()
    for n in g.node:
        for k in SHAPE_OPERANDS.get(n.op_type, []):
            if k < len(n.input) and n.input[k] in names:
                fold.add(n.input[k])
    if not fold:
        return inputs
    keep_vi, keep = [], []
    for vi, x in zip(list(g.input), inputs):
        if vi.name in fold:
            g.initializer.append(numpy_helper.from_array(x, vi.name))
        else:
            keep_vi.append(vi)
            keep.append(x)
    del g.input[:]
    g.input.extend(keep_vi)
    return keep


def _load_pbs(d, kind):
    import onnx
    from onnx import numpy_helper
    out, j = [], 0
    while os.path.exists(os.path.join(d, f"{kind}_{j}.pb")):
        out.append(numpy_helper.to_array(onnx.load_tensor(os.path.join(d, f"{kind}_{j}.pb"))))
        j += 1
    return out


def compare(got, want):
    """None if got matches want, else the reason."""
    import numpy as np
    if got.dtype != want.dtype:
        return f"output dtype {got.dtype}, expected {want.dtype}"
    if got.shape != want.shape:
        return f"output shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    if want.dtype.kind == "f":
        if np.allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True):
            return None
        with np.errstate(all="ignore"):
            err = np.abs(got.astype(np.float64) - want.astype(np.float64))
        err = np.where(np.isnan(err), np.inf, err)
        return f"wrong values: max abs error {float(err.max()):.3g} (|expected| <= " \
               f"{float(np.nanmax(np.abs(want))) if want.size else 0:.3g})"
    if np.array_equal(got, want):
        return None
    return f"wrong values: {int((got != want).sum())} of {want.size} elements differ"


def worker(test_dir, out_dir, fold):
    """Runs one test; prints 'STAGE <stage>' lines and a final JSON line."""
    stage = "setup"

    def say(s):
        nonlocal stage
        stage = s
        print(f"STAGE {s}", flush=True)

    def result(status, reason=""):
        print(json.dumps({"status": status, "stage": stage, "reason": reason}), flush=True)
        return 0

    try:
        import numpy as np
        import onnx
        sys.path.insert(0, os.path.join(REPO, "python"))
        import dyncc
        os.makedirs(out_dir, exist_ok=True)
        ds = os.path.join(test_dir, "test_data_set_0")
        inputs, want = _load_pbs(ds, "input"), _load_pbs(ds, "output")
        model = onnx.load(os.path.join(test_dir, "model.onnx"))
        if fold:
            inputs = fold_shape_operands(model, inputs)
        onnx_path = os.path.join(out_dir, "model.onnx")
        onnx.save(model, onnx_path)
        say("import")
        base = os.path.join(out_dir, "model")
        try:
            mlir, weights = dyncc.import_onnx(onnx_path, base)
        except dyncc.ExportError as e:
            return result("failed", _one_line(str(e).replace(onnx_path + ": ", "")))
        say("compile")
        try:
            lib = dyncc.build(mlir, os.path.join(out_dir, "lib", "model"))
        except RuntimeError as e:
            return result("failed", _one_line(str(e).replace("dyncc compile failed:", "")))
        say("run")
        m = dyncc.load(lib, weights, num_threads=2)
        if len(m.inputs) != len(inputs):
            return result("failed", f"library takes {len(m.inputs)} inputs, the test has {len(inputs)}")
        if len(m.outputs) != len(want):
            return result("failed", f"library has {len(m.outputs)} outputs, the test {len(want)}")
        got = m(*inputs)
        got = [got] if isinstance(got, np.ndarray) else list(got)
        m.close()
        say("compare")
        for k, (g, w) in enumerate(zip(got, want)):
            why = compare(np.asarray(g), w)
            if why:
                return result("failed", why + (f" (output {k})" if len(want) > 1 else ""))
        return result("passed")
    except Exception as e:  # anything else: a failure of this stage
        return result("failed", f"{type(e).__name__}: {_one_line(e)}")


def run_one(test, work, timeout, fold):
    """Runs a test in a subprocess; returns (status, reason, seconds)."""
    out_dir = os.path.join(work, "cases", test.name)
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", test.materialize(), out_dir]
    if not fold:
        cmd.append("--no-fold")
    t0 = time.time()
    stdout, rc, timed_out = "", None, False
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        stdout, rc = p.stdout, p.returncode
        stderr = p.stderr
    except subprocess.TimeoutExpired as e:
        timed_out = True
        stdout = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        stderr = ""
    dt = time.time() - t0
    stages = [l[6:] for l in stdout.splitlines() if l.startswith("STAGE ")]
    stage = stages[-1] if stages else "setup"
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                r = json.loads(line)
            except ValueError:
                continue
            reason = r["reason"]
            if r["status"] == "failed":
                reason = f"{r['stage']}: {reason}"
            return r["status"], reason, dt
    if timed_out:
        return "failed", f"{stage}: timeout after {timeout} s", dt
    if rc is not None and rc < 0:
        try:
            sig = signal.Signals(-rc).name
        except ValueError:
            sig = f"signal {-rc}"
        return "failed", f"{stage}: crashed ({sig})", dt
    return "failed", f"{stage}: exit {rc}: {_one_line(stderr)[-200:]}", dt


# ------------------------------------------------------------------ report

def normalize(reason):
    """A failure reason with its specifics (numbers, names) taken out, to
    group failures."""
    r = re.sub(r"(/[\w.\-+]+)+(:\d+)*:?", "", reason)          # paths, locations
    r = re.sub(r"'[^']*'|\"[^\"]*\"", "'_'", r)                # quoted names
    r = re.sub(r"(?<![a-z_])-?\d+(\.\d+)?(e[-+]?\d+)?", "N", r)  # numbers
    r = re.sub(r"%[\w#]+", "%_", r)
    r = re.sub(r"tensor<[^>]*>", "tensor<_>", r)
    return r[:160]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("work", help="work directory (test data, artifacts, results.json)")
    p.add_argument("--ops", help="comma-separated ops: run only their tests")
    p.add_argument("--limit", type=int, help="run at most N tests")
    p.add_argument("--jobs", type=int, default=2, help="parallel tests (at most 2)")
    p.add_argument("--timeout", type=int, default=60, help="seconds per test")
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    p.add_argument("--min-pass", type=int, help="exit 1 if fewer tests pass")
    p.add_argument("--no-fold", action="store_true",
                   help="keep shape operands graph inputs")
    p.add_argument("--reasons", type=int, default=15, help="failure groups to print")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("out_dir", nargs="?", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return worker(a.work, a.out_dir, not a.no_fold)

    t_start = time.time()
    work = os.path.abspath(a.work)
    os.makedirs(work, exist_ok=True)
    claimed = set(CLAIMED)
    only = None
    if a.ops:
        only = {o.strip() for o in a.ops.split(",") if o.strip()}
        unknown = only - claimed
        if unknown:
            print(f"note: not in CLAIMED: {', '.join(sorted(unknown))} "
                  "(their tests are unsupported unless expanded into claimed ops)")

    tests = collect_tests(work)
    by_name = {t.name: t for t in tests}
    results = {}   # name -> dict(op, status, reason, seconds)
    todo = []
    for t in tests:
        op = tested_op(t, by_name)
        if only is not None and op not in only:
            continue
        why = unsupported_reason(t, claimed)
        if why is not None:
            # tests of unclaimed ops are out of scope, not counted against them
            results[t.name] = {"op": op, "status": "unsupported", "reason": why}
        else:
            todo.append((t, op))
    if a.limit is not None:
        for t, op in todo[a.limit:]:
            results[t.name] = {"op": op, "status": "skipped", "reason": "--limit"}
        todo = todo[:a.limit]

    jobs = max(1, min(a.jobs, 2))
    print(f"{len(todo)} tests to run ({jobs} at a time, {a.timeout} s each at most)", flush=True)
    done = 0
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        futs = {pool.submit(run_one, t, work, a.timeout, not a.no_fold): (t, op) for t, op in todo}
        for f in concurrent.futures.as_completed(futs):
            t, op = futs[f]
            status, reason, dt = f.result()
            results[t.name] = {"op": op, "status": status, "reason": reason, "seconds": round(dt, 2)}
            done += 1
            if status != "passed":
                print(f"[{done}/{len(todo)}] {t.name}: {status}: {reason}", flush=True)
            elif done % 50 == 0:
                print(f"[{done}/{len(todo)}] ...", flush=True)

    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)

    # Per op: tests of claimed ops, and of other ops that ran (expanded).
    per = collections.defaultdict(collections.Counter)
    for r in results.values():
        per[r["op"]][r["status"]] += 1
    rows = [op for op in sorted(per)
            if op in claimed or per[op]["passed"] + per[op]["failed"] > 0]
    if only is not None:
        rows = [op for op in rows if op in only or per[op]["passed"] + per[op]["failed"] > 0]
    print()
    for op in rows:
        c = per[op]
        mark = "" if op in claimed else "  (not claimed; function expansion)"
        print(f"{op}: {c['passed']}/{c['failed']}/{c['passed'] + c['failed']}"
              f"  unsupported {c['unsupported']}{mark}")
    tot = collections.Counter(r["status"] for r in results.values())
    unsup_claimed = sum(per[op]["unsupported"] for op in per if op in claimed)
    elapsed = time.time() - t_start
    print(f"\ntotal: {tot['passed']} passed, {tot['failed']} failed "
          f"(of {tot['passed'] + tot['failed']} run); {unsup_claimed} unsupported tests of "
          f"claimed ops; {tot['unsupported'] - unsup_claimed} tests of other ops not run"
          + (f"; {tot['skipped']} skipped (--limit)" if tot["skipped"] else "")
          + f"; {elapsed:.0f} s")

    fails = [(n, r) for n, r in sorted(results.items()) if r["status"] == "failed"]
    if fails and a.reasons:
        groups = collections.defaultdict(list)
        for n, r in fails:
            groups[normalize(r["reason"])].append((n, r["reason"]))
        print(f"\nmost common failure reasons ({len(groups)} kinds):")
        for key, items in sorted(groups.items(), key=lambda kv: -len(kv[1]))[:a.reasons]:
            print(f"  {len(items):4d}  {items[0][1][:200]}  [e.g. {items[0][0]}]")

    if a.markdown:
        print("\n| op | passed | failed | unsupported tests |")
        print("|---|---:|---:|---:|")
        for op in rows:
            c = per[op]
            name = op if op in claimed else f"{op} (expanded)"
            print(f"| {name} | {c['passed']} | {c['failed']} | {c['unsupported']} |")
        print(f"| **total** | {tot['passed']} | {tot['failed']} | {unsup_claimed} |")

    if a.min_pass is not None and tot["passed"] < a.min_pass:
        print(f"FAIL: {tot['passed']} tests passed, fewer than --min-pass {a.min_pass}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
