#!/usr/bin/env python3
"""dyncc.tune (ctest nn.tune): the GEMMs on weights kept in panels timed in
the model.

- linear_panels.mlir (two GEMMs read a weight in panels, three a plain
  one): tuned under the automatic tiling and 8 x 2; each panel shape gets a
  result and an entry "<shape> panels" in the cache, and a later
  `dyncc compile --tune` with that cache reports them cached "in the model"
  with the schedule dyncc.tune chose.
- With gain=-1 (any candidate wins), 8 x 2 wins each shape; the winners
  together are timed against the automatic tilings and kept or dropped,
  and the result and the cache say the same.
- A library built with `--panel-tiling=8x2` gives the same bits as the
  automatic one (the same products summed in the same order).
- Candidates that do not start with the automatic choice are refused.

    check_tune.py WORK_DIR
"""
import os
import shutil
import subprocess
import sys

import numpy as np
from safetensors.numpy import save_file

import dyncc

work = sys.argv[1]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
here = os.path.dirname(os.path.abspath(__file__))
mlir = os.path.join(here, "..", "run", "Inputs", "linear_panels.mlir")
r = np.random.default_rng(3)
x = r.standard_normal((32, 64)).astype(np.float32)
v = r.standard_normal((4, 64)).astype(np.float32)
weights = os.path.join(work, "w.safetensors")
save_file({n: r.standard_normal(s).astype(np.float32) for n, s in
           (("w1", (128, 64)), ("b1", (128,)), ("w2", (64, 128)), ("w3", (48, 64)),
            ("w4", (64, 64)), ("w5", (64, 64)))}, weights)
failures = []


def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)


cache = os.path.join(work, "cache.tsv")
if os.path.exists(cache):
    os.remove(cache)
lines = []
result = dyncc.tune(mlir, weights, [x, v], cache=cache, candidates=("", "8x2"), rounds=2,
                    runs=3, work=os.path.join(work, "tune"), log=lines.append)
print("\n".join(lines))
shapes = ["b0 m32 n128 k64 t0 panels", "b0 m32 n64 k128 t0 panels"]
check(sorted(result) == shapes, f"a result per panel shape: {sorted(result)}")
check(all(r["candidate"] in ("", "8x2") and r["us"] > 0 and r["default_us"] > 0
          for r in result.values()), "each names a candidate and its time")
per_shape = [l for l in lines if l.startswith("dyncc.tune: b0 ")]
check(len(per_shape) == 2 and all("automatic" in l and "8x2" in l for l in per_shape),
      "a line per shape with both candidates' times")
text = open(cache).read()
check(all(f"\t{s}\ttiled " in text for s in shapes), "the cache holds both panel shapes")
out = subprocess.run([dyncc.dyncc_binary(), "compile", mlir, "--tune", "--tune-cache", cache,
                      "--stats", "-o", os.path.join(work, "again", "lin")],
                     capture_output=True, text=True)
check(out.returncode == 0, "a later --tune compile with that cache")
for s in shapes:
    line = next((l for l in out.stderr.splitlines() if f"cached {s}:" in l), "")
    check(line.endswith("in the model"), f"it reports {s} cached in the model: {line!r}")
    check(result[s]["schedule"] in line, f"with the schedule dyncc.tune chose ({result[s]['schedule']})")

# With no gain asked for, 8 x 2 wins each shape; then the winners together
# are timed against the automatic tilings, and kept only if 1% faster.
lines = []
os.remove(cache)
result = dyncc.tune(mlir, weights, [x, v], cache=cache, candidates=("", "8x2"), rounds=2,
                    runs=3, work=os.path.join(work, "tune2"), gain=-1.0, log=lines.append)
print("\n".join(lines))
check(len(lines) == 3 and lines[2].startswith("dyncc.tune: all kernels, the winners"),
      "the winners are checked together")
kept = lines[2].endswith("kept the automatic tilings")
check(all(r["candidate"] == ("" if kept else "8x2") for r in result.values()),
      "the result follows that check")
text = open(cache).read()
check(all(f"\t{s}\ttiled {'0 0 0 0' if kept else '0 2 8 0'} -1\t" in text for s in shapes),
      "so does the cache")

auto = dyncc.build(mlir, os.path.join(work, "auto", "lin"))
forced = dyncc.build(mlir, os.path.join(work, "forced", "lin"), "--panel-tiling=8x2")
ya = dyncc.load(auto, weights)(x, v)
yf = dyncc.load(forced, weights)(x, v)
check(all(np.array_equal(a.view(np.uint32), b.view(np.uint32)) for a, b in zip(ya, yf)),
      "--panel-tiling=8x2 gives the automatic tiling's bits")
try:
    dyncc.tune(mlir, weights, [x, v], candidates=("8x2",), work=os.path.join(work, "bad"))
    check(False, "candidates without the automatic choice first are refused")
except ValueError as e:
    check("automatic" in str(e), f"candidates without the automatic choice first are refused ({e})")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all checks passed")
