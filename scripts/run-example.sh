#!/usr/bin/env bash
# The main job of the README: builds dyncc (installing what is missing),
# generates the encoder example (2 layers of W2's shape) from PyTorch,
# compiles it and runs it with `dyncc run`, printing its logits next to
# PyTorch's.
#
# Then the early-exit example: the same kind of encoder with an exit point
# after every layer, run at three thresholds, printing logits and the exit
# layer next to the eager PyTorch loop's.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

scripts/install-deps.sh >/dev/null
cmake -G Ninja -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target dyncc >/dev/null
dyncc="$build/tools/dyncc/dyncc"

echo "== examples/encoder: 2 post-LN layers (d=256, 4 heads, d_ff=1024, seq 128), from PyTorch"
/usr/bin/python3 examples/encoder/make_encoder.py --layers 2 --out-dir "$work" --name encoder >/dev/null
"$dyncc" compile "$work/encoder.mlir" -o "$work/lib/encoder" --stats
echo "== dyncc run"
"$dyncc" run "$work/encoder.mlir" --weights "$work/encoder.safetensors" "$work/encoder.x.npy" -o "$work/out"
/usr/bin/python3 - "$work/out/output0.npy" "$work/encoder.expected.npy" <<'PY'
import sys
import numpy as np
got, want = np.load(sys.argv[1]), np.load(sys.argv[2])
print("PyTorch: " + " ".join("%.6g" % v for v in want.ravel()))
print("max abs difference: %.3g" % np.abs(got - want).max())
PY

echo
echo "== examples/early-exit: a 6-layer encoder with an entropy exit (DeeBERT) after every layer"
/usr/bin/python3 examples/early-exit/make_early_exit.py --criterion entropy --layers 6 \
  --d-model 64 --heads 2 --d-ff 128 --seq 16 --cases 1 --out-dir "$work" --name ee >/dev/null
/usr/bin/python3 -c "import numpy as np, sys; np.save(sys.argv[2], np.load(sys.argv[1])[0])" \
  "$work/ee.x.npy" "$work/ee.x0.npy"
for theta in 0.05 0.3 0.6; do
  echo "-- theta = $theta (a runtime parameter of the library, dynrt_model_set_param)"
  "$dyncc" run "$work/ee.mlir" --weights "$work/ee.safetensors" "$work/ee.x0.npy" --param=theta=$theta
  /usr/bin/python3 examples/early-exit/reference.py --weights "$work/ee.safetensors" \
    --x "$work/ee.x.npy" --threshold "$theta" | sed 's/^case 0:/PyTorch eager loop:/'
done
