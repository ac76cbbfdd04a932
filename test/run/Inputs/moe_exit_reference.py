"""Weights, input and numpy reference of examples/moe/moe_exit.mlir (two
Switch-MoE layers with an early exit between them, batch 2): writes
w.safetensors and x.npy into argv[1], picks theta between the two samples'
confidences after layer 1 (so one exits there and the other runs layer 2),
writes theta, expected.npy (logits), layers.npy (exit layers) and
route{0,1}.npy (every token's expert in each layer), and prints them."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "examples", "encoder"))
from torch_eager import save_safetensors  # noqa: E402

d = sys.argv[1]
rng = np.random.default_rng(11)
w = {}
for layer in (1, 2):
    w[f"l{layer}.gate"] = rng.standard_normal((8, 4)).astype(np.float32)
    w[f"l{layer}.w1"] = (rng.standard_normal((4, 8, 16)) * 0.5).astype(np.float32)
    w[f"l{layer}.w2"] = (rng.standard_normal((4, 16, 8)) * 0.5).astype(np.float32)
    w[f"l{layer}.cls"] = rng.standard_normal((8, 3)).astype(np.float32)
x = rng.standard_normal((2, 4, 8)).astype(np.float32)
save_safetensors(f"{d}/w.safetensors", w)
np.save(f"{d}/x.npy", x)


def moe_layer(hid, layer):
    rows = hid.reshape(8, 8).astype(np.float64)
    gate = rows @ w[f"l{layer}.gate"]
    expert = gate.argmax(1)  # Switch: top-1, ties to the lower index
    p = np.exp(gate - gate.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    out = np.empty_like(rows)
    for t in range(8):
        e = expert[t]
        ffn = np.maximum(rows[t] @ w[f"l{layer}.w1"][e], 0) @ w[f"l{layer}.w2"][e]
        out[t] = rows[t] + p[t, e] * ffn
    return out.reshape(2, 4, 8), expert


def classify(hid, layer):
    return hid.sum(1) @ w[f"l{layer}.cls"]


h1, e1 = moe_layer(x, 1)
l1 = classify(h1, 1)
h2, e2 = moe_layer(h1, 2)
l2 = classify(h2, 2)
conf = np.exp(l1 - l1.max(1, keepdims=True))
conf = (conf / conf.sum(1, keepdims=True)).max(1)
theta = float(conf.mean())
exits = np.where(conf > theta, 1, 2).astype(np.int32)
assert sorted(exits.tolist()) == [1, 2], conf
logits = np.where((exits == 1)[:, None], l1, l2).astype(np.float32)
open(f"{d}/theta", "w").write(f"{theta:.6f}")
np.save(f"{d}/expected.npy", logits)
np.save(f"{d}/layers.npy", exits)
np.save(f"{d}/route0.npy", e1.reshape(8, 1).astype(np.int32))
np.save(f"{d}/route1.npy", e2.reshape(8, 1).astype(np.int32))
print("confidences", " ".join(f"{c:.4f}" for c in conf), "theta", f"{theta:.6f}")
print("exit layers", " ".join(map(str, exits)))
