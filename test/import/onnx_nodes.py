"""ONNX backend node conformance tests through dyncc's ONNX import path.

Runs ONNX's own node tests (onnx/backend/test/data/node/<test>/model.onnx +
test_data_set_0/{input,output}_*.pb) whose ops are all in CLAIMED: each is
imported (dyncc.import_onnx), compiled (dyncc.build) and run (dyncc.load) on
the test inputs in its own process (forked from this one once the Python
modules are loaded, killed at a timeout), and its outputs are
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
import json
import os
import re
import shutil
import signal
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


# ------------------------------------------------------------ test runs

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


def preload():
    """Imports what a test needs once, before the test processes fork."""
    sys.path.insert(0, os.path.join(REPO, "python"))
    import numpy  # noqa: F401
    import onnx  # noqa: F401
    import dyncc  # noqa: F401
    import safetensors.numpy  # noqa: F401
    from torch_mlir.extras import onnx_importer  # noqa: F401
    from torch_mlir.dialects import torch as torch_d  # noqa: F401
    from torch_mlir.compiler_utils import run_pipeline_with_repro_report  # noqa: F401


def run_test(test_dir, out_dir, fold):
    """Runs one test in this process: writes the stage it is in to
    out_dir/stage and its result (status, stage, reason) to out_dir/result.json."""
    stage = "setup"

    def say(s):
        nonlocal stage
        stage = s
        with open(os.path.join(out_dir, "stage"), "w") as f:
            f.write(s)

    def result(status, reason=""):
        with open(os.path.join(out_dir, "result.json"), "w") as f:
            json.dump({"status": status, "stage": stage, "reason": reason}, f)

    try:
        import numpy as np
        import onnx
        import dyncc
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
        for attempt in range(4):
            try:
                lib = dyncc.build(mlir, os.path.join(out_dir, "lib", "model"))
                break
            except RuntimeError as e:
                return result("failed", _one_line(str(e).replace("dyncc compile failed:", "")
                                                  .replace(out_dir + os.sep, "")))
            except OSError:   # the binary being rebuilt (ETXTBSY, EACCES, ENOENT)
                if attempt == 3:
                    raise
                time.sleep(5)
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


def start_test(test, work, fold):
    """Forks a process (its own process group, output to out_dir/log) that
    runs the test; returns (pid, out_dir)."""
    out_dir = os.path.join(work, "cases", test.name)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    test_dir = test.materialize()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.setpgid(0, 0)
            log = os.open(os.path.join(out_dir, "log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(log, 1)
            os.dup2(log, 2)
            run_test(test_dir, out_dir, fold)
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            code = 3
        os._exit(code)
    return pid, out_dir


def finish_test(out_dir, wait_status, timeout):
    """(status, reason) of a test process that ended (wait_status None: it
    was killed at the timeout)."""
    def read(name):
        try:
            with open(os.path.join(out_dir, name), errors="replace") as f:
                return f.read()
        except OSError:
            return ""
    stage = read("stage").strip() or "setup"
    log = read("log")
    # MLIR prints its diagnostics to stderr, not into the exception.
    diag = next((l.strip() for l in log.splitlines() if "error:" in l), "")
    diag = re.sub(r"^loc\([^)]*\):\s*", "", diag)
    try:
        r = json.loads(read("result.json"))
    except ValueError:
        r = None
    if r is not None:
        reason = r["reason"]
        if r["status"] == "failed":
            if diag and ("diagnostics" in reason or not reason):
                reason = diag
            reason = f"{r['stage']}: {reason}"
        return r["status"], reason
    if wait_status is None:
        return "failed", f"{stage}: timeout after {timeout} s"
    if os.WIFSIGNALED(wait_status):
        try:
            sig = signal.Signals(os.WTERMSIG(wait_status)).name
        except ValueError:
            sig = f"signal {os.WTERMSIG(wait_status)}"
        return "failed", f"{stage}: crashed ({sig})" + (f": {diag}" if diag else "")
    return "failed", f"{stage}: exit {os.waitstatus_to_exitcode(wait_status)}" + \
        (f": {diag or _one_line(log)[-200:]}")


def run_tests(todo, work, jobs, timeout, fold, report):
    """Runs the tests, `jobs` processes at a time; report(test, op,
    status, reason, seconds) for each."""
    queue = list(todo)
    running = {}   # pid -> (test, op, out_dir, start time)
    while queue or running:
        while queue and len(running) < jobs:
            t, op = queue.pop(0)
            pid, out_dir = start_test(t, work, fold)
            running[pid] = (t, op, out_dir, time.time())
        pid, st = os.waitpid(-1, os.WNOHANG)
        if pid in running:
            t, op, out_dir, t0 = running.pop(pid)
            try:
                os.killpg(pid, signal.SIGKILL)   # leftovers of the test (dyncc)
            except OSError:
                pass
            report(t, op, *finish_test(out_dir, st, timeout), time.time() - t0)
            continue
        now = time.time()
        for pid, (t, op, out_dir, t0) in list(running.items()):
            if now - t0 > timeout:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
                os.waitpid(pid, 0)
                del running[pid]
                report(t, op, *finish_test(out_dir, None, timeout), now - t0)
        time.sleep(0.02)


# ------------------------------------------------------------------ report

def normalize(reason):
    """A failure reason with its specifics (numbers, names) taken out, to
    group failures."""
    onnx_op = re.search(r'name = "(onnx\.\w+)"', reason)      # a torch.operator's op
    r = re.sub(r"\s%\S+ = .*", "", reason)                     # the op's dump
    if onnx_op:
        r += " " + onnx_op.group(1)
    r = re.sub(r"(/[\w.\-+]+)+(:\d+)*:?", "", r)               # paths, locations
    r = re.sub(r"'[^']*'|\"[^\"]*\"",                             # quoted names but ops
               lambda m: m.group(0) if re.fullmatch(r"['\"][a-z_]+(\.\w+)+['\"]", m.group(0))
               else "'_'", r)
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
    p.add_argument("--report-only", action="store_true",
                   help="print the report of WORKDIR/results.json; run nothing")
    a = p.parse_args()

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

    if a.report_only:
        with open(os.path.join(work, "results.json")) as f:
            results = json.load(f)
        if only is not None:
            results = {n: r for n, r in results.items() if r["op"] in only}
        return summarize(a, results, claimed, only, None)

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
    preload()
    done = 0

    def report(t, op, status, reason, dt):
        nonlocal done
        results[t.name] = {"op": op, "status": status, "reason": reason, "seconds": round(dt, 2)}
        done += 1
        if status != "passed":
            print(f"[{done}/{len(todo)}] {t.name}: {status}: {reason[:300]}", flush=True)
        elif done % 50 == 0:
            print(f"[{done}/{len(todo)}] ...", flush=True)

    run_tests(todo, work, jobs, a.timeout, not a.no_fold, report)

    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    return summarize(a, results, claimed, only, time.time() - t_start)


def summarize(a, results, claimed, only, elapsed):
    """Prints the report; returns the exit status."""
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
    print(f"\ntotal: {tot['passed']} passed, {tot['failed']} failed "
          f"(of {tot['passed'] + tot['failed']} run); {unsup_claimed} unsupported tests of "
          f"claimed ops; {tot['unsupported'] - unsup_claimed} tests of other ops not run"
          + (f"; {tot['skipped']} skipped (--limit)" if tot["skipped"] else "")
          + (f"; {elapsed:.0f} s" if elapsed is not None else ""))

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
