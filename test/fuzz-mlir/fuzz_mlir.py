#!/usr/bin/env python3
"""Mutation fuzzing of dyncc's front door (the MLIR parser, the verifiers
and the dyn-level passes), black box: every run of `dyncc compile` must end
with exit code 0 or 1 within the time limit (60 s), never a signal or a hang.

  fuzz_mlir.py DYNCC [--seconds N] [--seed S] [--save DIR] [--replay DIR]

Seeds: the repository's .mlir files (split at `// -----`). Each case takes a
seed and applies 1-4 mutations (delete, duplicate or move a span, insert a
token from a dictionary of MLIR syntax and boundary numbers, replace a
number). A case that ends with a signal, an exit code other than 0 or 1, or
a timeout is a failure: it is written to --save and the script exits 1.
Crashes that dyncc contained (exit 1 with "internal error": upstream MLIR
bugs that the crash-recovery turns into an error) are counted and saved
too, but are not failures. --replay runs the files of a directory once each
(the checked-in crashers, test/fuzz-mlir/corpus) with the same rule.
"""
import argparse
import glob
import os
import random
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TOKENS = [
    "[", "]", "{", "}", "(", ")", "<", ">", ",", ":", "=", "->", "%", "^bb0", "?",
    "x", "0", "-1", "1", "7", "4294967296", "9223372036854775807", "-9223372036854775808",
    "1e309", "nan", "0x7FC00000", "\"", "\\", "tensor<", "tensor<?x", "tensor<0x",
    "dimensions = [", "permutation = [", "dimensions = [7]", "permutation = [1, 0, 5]",
    "affine_map<(d0) -> (d0)>", "#dyn.param<\"t\" = ", "dyn.yield", "dyn.decide",
    "linalg.yield", "func.call @", "scf.if", "ins(", "outs(", "iterator_types = [",
    "\"parallel\"", "\"reduction\"", "budget ", "layer ", "k = ", "dense<", "dense_resource<",
]


def seeds():
    files = []
    for pattern in ("test/**/*.mlir", "examples/**/*.mlir"):
        files += glob.glob(os.path.join(ROOT, pattern), recursive=True)
    out = []
    for f in sorted(files):
        with open(f, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        for part in text.split("// -----"):
            lines = [l for l in part.splitlines() if not l.lstrip().startswith("// RUN")]
            part = "\n".join(lines)
            if "func.func" in part and len(part) < 20000:
                out.append(part)
    return out


def mutate(rng, text):
    for _ in range(rng.randint(1, 4)):
        n = len(text)
        if n < 2:
            break
        a = rng.randrange(n)
        b = min(n, a + rng.choice([1, 1, 2, 5, 20, 100]))
        kind = rng.randrange(6)
        if kind == 0:
            text = text[:a] + text[b:]
        elif kind == 1:
            text = text[:b] + text[a:b] + text[b:]
        elif kind == 2:
            text = text[:a] + rng.choice(TOKENS) + text[a:]
        elif kind == 3:
            c = rng.randrange(n)
            span = text[a:b]
            rest = text[:a] + text[b:]
            c = min(c, len(rest))
            text = rest[:c] + span + rest[c:]
        elif kind == 4:
            digits = [i for i in range(a, min(n, a + 200)) if text[i].isdigit()]
            if digits:
                i = digits[0]
                j = i
                while j < n and text[j].isdigit():
                    j += 1
                text = text[:i] + rng.choice(["0", "-1", "65536", "2147483648",
                                              "4294967297", "9223372036854775807"]) + text[j:]
        else:
            text = text[:a] + chr(rng.randrange(32, 127)) + text[a + 1:]
    return text


def run(dyncc, path, timeout):
    """'ok', 'contained' or a failure description."""
    try:
        p = subprocess.run([dyncc, "compile", path, "--emit=mlir", "-o", "-"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"timeout ({timeout} s)"
    err = p.stderr.decode(errors="replace")
    if p.returncode == 0:
        return "ok"
    if p.returncode == 1:
        return "contained" if "internal error" in err else "ok"
    return f"exit code {p.returncode}: {err[-300:]}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dyncc")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", default=None)
    ap.add_argument("--replay", default=None)
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()

    failures, contained, runs = 0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        if a.replay:
            for f in sorted(glob.glob(os.path.join(a.replay, "*.mlir"))):
                r = run(a.dyncc, f, a.timeout)
                runs += 1
                if r == "contained":
                    contained += 1
                elif r != "ok":
                    failures += 1
                    print(f"FAIL {os.path.basename(f)}: {r}")
            print(f"replayed {runs} files: {failures} failures, {contained} contained crashes")
            return 1 if failures else 0

        rng = random.Random(a.seed)
        pool = seeds()
        path = os.path.join(tmp, "case.mlir")
        end = time.monotonic() + a.seconds
        while time.monotonic() < end:
            text = mutate(rng, rng.choice(pool))
            with open(path, "w") as f:
                f.write(text)
            r = run(a.dyncc, path, a.timeout)
            runs += 1
            if r == "ok":
                continue
            if r == "contained":
                contained += 1
            else:
                failures += 1
                print(f"FAIL case {runs}: {r}")
            if a.save:
                os.makedirs(a.save, exist_ok=True)
                name = ("contained" if r == "contained" else "fail") + f"-{a.seed}-{runs}.mlir"
                with open(os.path.join(a.save, name), "w") as f:
                    f.write(text)
    print(f"{runs} runs in {a.seconds:.0f} s (seed {a.seed}): {failures} failures, "
          f"{contained} contained crashes")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
