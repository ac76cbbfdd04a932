#!/usr/bin/env bash
# The main job of the README: builds dyncc (installing what is missing),
# imports a real model, all-MiniLM-L6-v2 (sentence-transformers), from
# PyTorch with dyncc.export, compiles it and prints its sentence embeddings
# next to sentence-transformers' own (24 sentences, batch 1 and 8).
#
# Then it
# generates the encoder example (2 layers of W2's shape) from PyTorch,
# compiles it and runs it with `dyncc run`, printing its logits next to
# PyTorch's.
#
# Then the early-exit example: the same kind of encoder with an exit point
# after every layer, run at three thresholds, printing logits and the exit
# layer next to the eager PyTorch loop's.
#
# Then the MoE example: a transformer block with a GShard top-2 layer,
# printing tokens per expert, dropped tokens and every assignment next to
# the PyTorch reference; and a Skim-RNN, printing its step trace (read or
# skim at each position) next to the eager PyTorch loop's.
#
# Last, batched early exit: the 6-layer encoder written per sample and
# compiled with --batch-buckets, a batch of 8 samples, printing each
# sample's exit layer next to the eager loop's on that sample alone, and the
# active samples and bucket of every stage.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

scripts/install-deps.sh >/dev/null
cmake -G Ninja -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target dyncc >/dev/null
dyncc="$build/tools/dyncc/dyncc"
export DYNCC="$dyncc"
# The project's Python environment (scripts/install-deps.sh made it).
py=.venv/bin/python

echo "== examples/minilm: all-MiniLM-L6-v2 from PyTorch (dyncc.export), embeddings vs sentence-transformers"
"$py" examples/minilm/embed.py --work "$work/minilm"
echo

echo "== examples/encoder: 2 post-LN layers (d=256, 4 heads, d_ff=1024, seq 128), from PyTorch"
"$py" examples/encoder/make_encoder.py --layers 2 --out-dir "$work" --name encoder >/dev/null
"$dyncc" compile "$work/encoder.mlir" -o "$work/lib/encoder" --stats
echo "== dyncc run"
"$dyncc" run "$work/encoder.mlir" --weights "$work/encoder.safetensors" "$work/encoder.x.npy" -o "$work/out"
"$py" - "$work/out/output0.npy" "$work/encoder.expected.npy" <<'PY'
import sys
import numpy as np
got, want = np.load(sys.argv[1]), np.load(sys.argv[2])
print("PyTorch: " + " ".join("%.6g" % v for v in want.ravel()))
print("max abs difference: %.3g" % np.abs(got - want).max())
PY

echo
echo "== examples/early-exit: a 6-layer encoder with an entropy exit (DeeBERT) after every layer"
"$py" examples/early-exit/make_early_exit.py --criterion entropy --layers 6 \
  --d-model 64 --heads 2 --d-ff 128 --seq 16 --cases 1 --out-dir "$work" --name ee >/dev/null
"$py" -c "import numpy as np, sys; np.save(sys.argv[2], np.load(sys.argv[1])[0])" \
  "$work/ee.x.npy" "$work/ee.x0.npy"
for theta in 0.05 0.3 0.6; do
  echo "-- theta = $theta (a runtime parameter of the library, dynrt_model_set_param)"
  "$dyncc" run "$work/ee.mlir" --weights "$work/ee.safetensors" "$work/ee.x0.npy" --param=theta=$theta
  "$py" examples/early-exit/reference.py --weights "$work/ee.safetensors" \
    --x "$work/ee.x.npy" --threshold "$theta" | sed 's/^case 0:/PyTorch eager loop:/'
done

echo
echo "== examples/moe: a pre-LN transformer block with a GShard top-2 MoE layer (E=8, capacity factor 1.0)"
"$py" examples/moe/make_moe.py --strategy gshard --capacity-factor 1.0 --seed 7 \
  --block --tokens 64 --dim 64 --ffn 128 --experts 8 --gate-input --cases 1 \
  --out-dir "$work" --name moe >/dev/null
"$py" test/run/Inputs/moe_case.py "$work" moe
"$dyncc" run "$work/moe.mlir" --weights "$work/moe.safetensors" "$work/x.npy" "$work/gate.npy" -o "$work/moe-out"
"$py" - "$work" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
want = np.load(f"{d}/moe.expected.npz")
got_a = np.load(f"{d}/moe-out/route0.assignment.npy").ravel()
print("PyTorch: tokens per expert [%s], dropped %d" % (
    ", ".join(str(int(v)) for v in want["tokens_per_expert"][0]), int(want["dropped"][0])))
print("assignments equal to PyTorch's: %s" % bool(np.array_equal(got_a, want["assignment"][0])))
print("max abs difference of the outputs: %.3g" %
      np.abs(np.load(f"{d}/moe-out/output0.npy") - want["y"][0]).max())
PY

echo
echo "== examples/skim: Skim-RNN (read with the big LSTM or skim with the small one, per step)"
"$py" examples/skim/make_skim.py --method skim_rnn --seq 20 --cases 1 \
  --out-dir "$work" --name skim >/dev/null
"$py" -c "import numpy as np, sys; np.save(sys.argv[2], np.load(sys.argv[1])[0])" \
  "$work/skim.x.npy" "$work/skim.x0.npy"
"$dyncc" run "$work/skim.mlir" --weights "$work/skim.safetensors" "$work/skim.x0.npy" -o "$work/skim-out"
"$py" - "$work" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
want = np.load(f"{d}/skim.expected.npz")
n = int(want["steps"][0])
ref = want["trace"][0][:n]
print("PyTorch eager loop: %d step(s); (position, action, amount): %s" % (
    n, " ".join("(%d, %d, %d)" % tuple(r) for r in ref)))
got = np.load(f"{d}/skim-out/skip0.trace.npy")
print("trace equal to PyTorch's: %s" % bool(np.array_equal(got, ref)))
print("max abs difference of the final state: %.3g" %
      np.abs(np.load(f"{d}/skim-out/output0.npy") - want["state_h"][0]).max())
PY

echo
echo "== batched early exit: the 6-layer encoder per sample, compiled with --batch-buckets=1,2,4,8"
"$py" examples/early-exit/make_early_exit.py --criterion entropy --layers 6 \
  --d-model 64 --heads 2 --d-ff 128 --seq 16 --cases 8 --out-dir "$work" --name eeb >/dev/null
"$dyncc" compile "$work/eeb.mlir" -o "$work/lib/eeb" --shared --batch-buckets=1,2,4,8
"$py" - "$work" <<'PY'
import sys
import numpy as np
sys.path.insert(0, "runtime/python")
sys.path.insert(0, "examples/early-exit")
from dynrt_ctypes import Library
from reference import Criterion, decide, load_early_exit
import torch

d = sys.argv[1]
theta = 0.55
L = Library(f"{d}/lib/libeeb.so", "eeb")
L.create(f"{d}/eeb.safetensors")
L.set_param("theta", [theta])
x = np.load(f"{d}/eeb.x.npy").astype(np.float32)
n = x.shape[0]
logits = np.full((n, 1, 2), np.nan, np.float32)
layers = np.full(n, -1, np.int32)
report, active, bucket = L.stage_report()
L.run_batch([x], [logits, layers], n, report)
print(f"theta = {theta}, a batch of {n} samples")
print("exit layer of each sample:  " + " ".join(str(v) for v in layers))
model, meta = load_early_exit(f"{d}/eeb.safetensors")
crit = Criterion.from_metadata(meta, theta)
with torch.no_grad():
    ref = [int(model.early_exit(torch.from_numpy(x[i]), crit)[1].reshape(-1)[0]) for i in range(n)]
print("PyTorch eager loop, alone: " + " ".join(str(v) for v in ref))
print("per stage, active samples (bucket): " +
      ", ".join(f"{active[s]} ({bucket[s]})" for s in range(L.num_stages)))
PY
