#!/usr/bin/env python3
"""Differential test of dyn.route: builds a mixture-of-experts model as a
PyTorch module with dyncc.nn.MoE (examples/moe/model.py), exports it with
dyncc.export, compiles it with dyncc into a shared object, runs every case
through the C API (ctypes, dynrt_model_run_ex with a dynrt_run_report_t)
and compares with the eager module (dyncc.nn.routing, docs/moe.md):

  - the route report exactly: the assignment array (every token's experts,
    which choices were dropped over capacity, which do not exist),
    tokens_per_expert and dropped, and the report's sizes;
  - the outputs to 1e-4 (|got - want| / max(1, |want|)); outputs are
    poisoned with NaN (and the report's arrays with junk) before each run;
  - dynrt_model_route_stats: the sums over all runs;
  - hash with a table: an id outside the table fails the run with a status
    that names the token position and the id (and the eager module raises).

When the gate layer is inside the model, the model also returns its logits:
they are compared to the eager module's to 1e-4, and the eager module is
routed on the compiled logits (model.route_on: float32 GEMMs round
differently, which could flip a near-tie), so the decisions still compare
exactly; cases whose eager decisions on its own logits differ are counted.

  check_route.py DYNCC WORKDIR VARIANT [model.py options...]
  check_route.py --list

VARIANT is one of VARIANTS below (its model.py options, then any extra
options), or any name followed by model.py options.
"""
import ctypes
import faulthandler
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples", "moe"))
sys.path.insert(0, os.path.join(ROOT, "runtime", "python"))

import model as moe_model  # noqa: E402  (puts this tree's python/ first)
import dyncc  # noqa: E402
from dyncc.nn.routing import RouteError  # noqa: E402
from dynrt_ctypes import ABI_VERSION, Library, RouteReport, RunReport  # noqa: E402

# The variants registered as ctests (test/CMakeLists.txt: moe.<name>).
# Small layers (T=64, d=32, d_ff=64, E=8) with the gate logits as a model
# input, 24 cases each (every 4th skewed so that experts overflow, every 5th
# with tied logits, see model.make_cases); then gate layers inside the model,
# a transformer block with attention, and W1's shape.
SMALL = ["--gate-input", "--cases", "24"]
VARIANTS = {
    "top_k1": ["--strategy", "top_k", "--k", "1", "--capacity-factor", "1.25"] + SMALL,
    "top_k2": ["--strategy", "top_k", "--k", "2", "--capacity-factor", "1.25",
               "--priority", "score"] + SMALL,
    "top_k3-renormalize": ["--strategy", "top_k", "--k", "3", "--capacity-factor", "1.5",
                           "--renormalize"] + SMALL,
    "top_k2-nocapacity": ["--strategy", "top_k", "--k", "2"] + SMALL,
    "top_k2-dropless": ["--strategy", "top_k", "--k", "2", "--dropless-block", "8"] + SMALL,
    "switch": ["--strategy", "switch", "--capacity-factor", "1.25",
               "--priority", "token_order"] + SMALL,
    # C = ceil(1.1 * 100 / 10) = 11 (the float64 product is 11.000000000000002)
    "switch-cf1.1": ["--strategy", "switch", "--capacity-factor", "1.1", "--tokens", "100",
                     "--experts", "10"] + SMALL,
    "switch-score": ["--strategy", "switch", "--capacity-factor", "1.0", "--priority", "score",
                     "--skew", "3"] + SMALL,
    "gshard": ["--strategy", "gshard", "--capacity-factor", "2.0", "--groups", "2",
               "--seed", "42"] + SMALL,
    "base": ["--strategy", "base"] + SMALL,
    "k_top1": ["--strategy", "k_top1", "--k", "2", "--capacity-factor", "1.25"] + SMALL,
    "dense_to_sparse": ["--strategy", "dense_to_sparse", "--temperature", "0.5",
                        "--threshold", "0.125"] + SMALL,
    "dense_to_sparse-capacity": ["--strategy", "dense_to_sparse", "--temperature", "2.0",
                                 "--threshold", "0.0625", "--capacity-factor", "0.75",
                                 "--renormalize"] + SMALL,
    "hash": ["--strategy", "hash"] + SMALL,
    "hash-table": ["--strategy", "hash", "--hash-table", "1000", "--capacity-factor", "1.25"] + SMALL,
    "random": ["--strategy", "random", "--seed", "-3", "--capacity-factor", "1.25"] + SMALL,
    # the gate as a linear layer inside the model (logits returned too)
    "switch-gate": ["--strategy", "switch", "--capacity-factor", "1.25", "--skew", "0.5",
                    "--cases", "24"],
    "top_k2-block-attention": ["--strategy", "top_k", "--k", "2", "--capacity-factor", "1.0",
                               "--block", "--attention", "--heads", "4", "--skew", "1.0",
                               "--cases", "20"],
    # W1's shape (WORKLOADS.md): the pre-LN block y = x + MoE(LN(x)), gate inside
    "w1-switch-block": ["--strategy", "switch", "--capacity-factor", "1.25", "--block",
                        "--tokens", "512", "--dim", "512", "--ffn", "2048", "--experts", "8",
                        "--skew", "0.5", "--cases", "3"],
}

TOL = 1e-4


# ---------------------------------------------------------------------------


def close(got, want):
    """max |got - want| / max(1, |want|) (inf where got is NaN)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    err[np.isnan(err)] = np.inf
    return float(err.max()) if err.size else 0.0


def describe_mismatch(case, got, want, r, logits, K, limit=3):
    lines = []
    bad = np.nonzero(got != want)[0]
    for p in bad[:limit]:
        t, j = divmod(int(p), K)
        lg = "" if logits is None else f", logits {np.array2string(np.asarray(logits[t]), precision=4)}"
        lines.append(f"  case {case} token {t} choice {j}: compiled {int(got[p])}, reference "
                     f"{int(want[p])} (reference: expert {int(r.expert[t, j])}, weight "
                     f"{float(r.weight[t, j])!r}, kept {bool(r.kept[t, j])}{lg})")
    if len(bad) > limit:
        lines.append(f"  ... {len(bad)} entries differ in case {case}")
    return lines


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--list":
        for k, v in VARIANTS.items():
            print(k, " ".join(v))
        return 0
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    dyncc_bin, work, variant = sys.argv[1:4]
    opts = VARIANTS.get(variant, []) + sys.argv[4:]
    if not opts:
        print(f"unknown variant {variant!r} and no model.py options (check_route.py --list)")
        return 2
    name = "moe_" + "".join(c if c.isalnum() else "_" for c in variant)
    os.makedirs(work, exist_ok=True)
    t0 = time.time()
    _, a = moe_model.parse_args(opts + ["--out-dir", work, "--name", name])
    module, example = moe_model.build_model(**moe_model.model_kwargs(a))
    cases = moe_model.make_cases(module, a.cases)
    dyncc.export(module, example, os.path.join(work, name))
    cfg = module.moe.cfg
    spec = module.spec
    T, E, K, N = a.tokens, a.experts, cfg.per_token, a.cases
    want_ins = ["x"] + (["ids"] if spec["hash"] else ["gate"] if spec["gate_input"] else [])
    gate_inside = spec["logits_output"]
    n_outs = 2 if gate_inside else 1
    t_gen = time.time() - t0

    # -- compile
    t0 = time.time()
    p = subprocess.run([dyncc_bin, "compile", f"{work}/{name}.mlir", "-o", f"{work}/lib/{name}",
                        "--shared"], capture_output=True, text=True)
    if p.returncode:
        print(p.stdout + p.stderr)
        print(f"{variant}: FAILED: dyncc compile {work}/{name}.mlir exited with {p.returncode}")
        return 1
    t_compile = time.time() - t0
    try:
        L = Library(f"{work}/lib/lib{name}.so", name)
        if not hasattr(L.lib, "dynrt_model_run_ex"):
            raise RuntimeError(f"{L.path} has no dynrt_model_run_ex (a runtime without "
                               "dyn.route's report)")
    except (OSError, RuntimeError) as e:
        print(f"{variant}: FAILED: {e}")
        return 1
    d = L.desc
    problems = []
    if d.abi_version != ABI_VERSION:
        problems.append(f"descriptor ABI version {d.abi_version}, this test knows {ABI_VERSION}")
    ins, outs = L.inputs, L.outputs
    if [n for n, _, _ in ins] != want_ins:
        problems.append(f"inputs {[n for n, _, _ in ins]} != {want_ins}")
    if len(outs) != n_outs:
        problems.append(f"{len(outs)} outputs, expected {n_outs}")
    if d.abi_version == ABI_VERSION:
        routes = [(d.routes[i].num_tokens, d.routes[i].num_experts, d.routes[i].experts_per_token)
                  for i in range(d.num_routes)]
        if routes != [(T, E, K)]:
            problems.append(f"descriptor routes (T, E, K) {routes} != {[(T, E, K)]}")
    if problems:
        for pr in problems:
            print("  " + pr)
        print(f"{variant}: FAILED: the library's descriptor does not match the model")
        return 1

    m = L.create(f"{work}/{name}.safetensors")

    def run(inputs):
        """(status message or None, outputs, assignment, tokens_per_expert, report)"""
        arrs = [np.ascontiguousarray(v) for v in inputs]
        y = [np.full(shape, np.nan, dt) for _, dt, shape in outs]
        asg = np.full(T * K, 0x7EADBEEF, np.int32)
        tpe = np.full(E, 0xFFFFFFFFFFFF, np.uint64)
        rep = RouteReport(-7, -7, -7, 0xDEADBEEF,
                          tpe.ctypes.data_as(ctypes.POINTER(ctypes.c_uint64)),
                          asg.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)))
        run_report = RunReport(1, ctypes.pointer(rep))
        return L.try_run(arrs, y, run_report), y, asg, tpe, rep

    mismatches, worst_y, worst_logits, reroutes = 0, 0.0, 0.0, 0
    sum_tpe, sum_dropped = np.zeros(E, np.int64), 0
    msgs = []
    t0 = time.time()
    for i, inputs in enumerate(cases):
        err, y, asg, tpe, rep = run([v.numpy() for v in inputs])
        bad = []
        if err is not None:
            bad.append(f"  case {i}: the run failed: {err}")
        else:
            if gate_inside:
                lg = y[1]
                own, r_own = moe_model.run_eager(module, inputs)
                own_asg = r_own.assignment.copy()
                worst_logits = max(worst_logits, close(lg, own[1]))
                with moe_model.route_on(module, lg):
                    want, r = moe_model.run_eager(module, inputs)
                if not np.array_equal(r.assignment, own_asg):
                    reroutes += 1
            else:
                lg = inputs[1].numpy() if cfg.strategy != "hash" else None
                want, r = moe_model.run_eager(module, inputs)
            want_asg, want_y = r.assignment, want[0]
            want_tpe, want_drop = r.tokens_per_expert, r.dropped
            if (rep.num_tokens, rep.num_experts, rep.experts_per_token) != (T, E, K):
                bad.append(f"  case {i}: report sizes (T, E, K) = "
                           f"{(rep.num_tokens, rep.num_experts, rep.experts_per_token)} != {(T, E, K)}")
            if not np.array_equal(asg, want_asg):
                bad += describe_mismatch(i, asg, want_asg, r, lg, K)
            if not np.array_equal(tpe.astype(np.int64), np.asarray(want_tpe, np.int64)):
                bad.append(f"  case {i}: tokens_per_expert {tpe.tolist()} != {list(map(int, want_tpe))}")
            if rep.dropped != want_drop:
                bad.append(f"  case {i}: dropped {rep.dropped} != {want_drop}")
            ey = close(y[0], want_y)
            if ey > TOL:
                t = int(np.nanargmax(np.where(np.isnan(y[0]), np.inf,
                                              np.abs(y[0] - want_y))) // y[0].shape[1])
                bad.append(f"  case {i}: output error {ey:.3g} > {TOL} (worst token {t}, "
                           f"assignment {asg.reshape(T, K)[t].tolist()})")
            worst_y = max(worst_y, ey)
            sum_tpe += np.asarray(want_tpe, np.int64)
            sum_dropped += int(want_drop)
        if bad:
            mismatches += 1
            msgs += bad
    t_run = time.time() - t0

    # statistics since the model was created
    st_tpe = (ctypes.c_uint64 * E)()
    st_drop = ctypes.c_uint64()
    msg = L.status(L.lib.dynrt_model_route_stats(m, 0, st_tpe, E, ctypes.byref(st_drop)))
    stats_ok = True
    stats_text = "OK"
    if mismatches:
        stats_text = "not compared"
    if msg is not None:
        msgs.append(f"  dynrt_model_route_stats failed: {msg}")
        stats_ok = False
    elif mismatches == 0 and (list(st_tpe) != sum_tpe.tolist() or st_drop.value != sum_dropped):
        msgs.append(f"  dynrt_model_route_stats: tokens_per_expert {list(st_tpe)} dropped "
                    f"{st_drop.value}, the runs' sums are {sum_tpe.tolist()} and {sum_dropped}")
        stats_ok = False
    if not stats_ok:
        stats_text = "WRONG"

    # hash with a table: an id outside [0, V) fails the run, naming it
    err_ok = True
    if cfg.strategy == "hash" and cfg.table is not None:
        V = cfg.table.size
        x0, ids0 = cases[0]
        for pos, bad_id in ((T // 3, V), (T - 1, -5)):
            ids = ids0.clone()
            ids[pos] = bad_id
            try:
                moe_model.run_eager(module, (x0, ids))
                msgs.append(f"  hash table: the eager module accepted id {bad_id}")
                err_ok = False
            except RouteError as e:
                if (e.token, e.value) != (pos, bad_id):
                    msgs.append(f"  hash table: the eager error names token {e.token} id "
                                f"{e.value}, not {pos} and {bad_id}")
                    err_ok = False
            status, _, _, _, _ = run([x0.numpy(), ids.numpy()])
            if status is None:
                msgs.append(f"  hash table: id {bad_id} at token {pos} (outside [0, {V})) did not "
                            "fail the run")
                err_ok = False
            elif str(pos) not in status or str(bad_id) not in status:
                msgs.append(f"  hash table: the status for id {bad_id} at token {pos} does not "
                            f"name both: {status!r}")
                err_ok = False
    L.destroy()

    for line in msgs[:40]:
        print(line)
    ok = mismatches == 0 and stats_ok and err_ok and worst_y <= TOL and worst_logits <= TOL
    extra = ""
    if gate_inside:
        extra = (f"; compiled gate logits within {worst_logits:.2g}"
                 + (f", {reroutes} case(s) routed differently on the eager module's own logits "
                    "(near-ties)" if reroutes else ""))
    C = cfg.capacity(T)
    print(f"{variant}: {N - mismatches}/{N} cases with the eager module's assignment, "
          f"tokens_per_expert and dropped; max output error {worst_y:.2g}{extra}; "
          f"K={K} C={C or '-'} dropped {sum_dropped} of {N * T * K} choices; "
          f"route stats {stats_text}"
          + ("" if cfg.table is None else f"; bad ids {'fail' if err_ok else 'WRONG'}")
          + f" [build+export {t_gen:.1f}s, compile {t_compile:.1f}s, run {t_run:.1f}s]"
          + ("" if ok else " -- FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    faulthandler.enable()
    sys.exit(main())
