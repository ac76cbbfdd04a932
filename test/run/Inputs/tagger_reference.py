"""Weights, input and the numpy reference of examples/early-exit/tagger.mlir
(token-level exit, docs/early-exit.md): writes w.safetensors and x.npy into
argv[1]; for the threshold argv[2] writes want_logits.npy and
want_layers.npy and prints the exit layers. With argv[3] = B (default 1)
the input is B sentences (test/run/Inputs/tagger_b3.mlir), the first one
the batch-1 input."""
import json
import struct
import sys

import numpy as np

d, tau = sys.argv[1], np.float32(float(sys.argv[2]))
B = int(sys.argv[3]) if len(sys.argv) > 3 else 1
rng = np.random.default_rng(3)
w = {}
for l in (1, 2, 3):
    w[f"w{l}"] = (rng.standard_normal((8, 8)) * 0.6).astype(np.float32)
    w[f"c{l}"] = (rng.standard_normal((8, 3)) * (0.8 * l)).astype(np.float32)
x = rng.standard_normal((1, 6, 8)).astype(np.float32)
if B > 1:
    x = np.concatenate([x, rng.standard_normal((B - 1, 6, 8)).astype(np.float32)])

header, blobs, off = {}, [], 0
for k, v in w.items():
    b = v.tobytes() + b"\0" * ((-v.nbytes) % 64)
    header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + v.nbytes]}
    blobs.append(b)
    off += len(b)
h = json.dumps(header).encode()
h += b" " * ((-(8 + len(h))) % 64)
open(f"{d}/w.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
np.save(f"{d}/x.npy", x)


def layer(hh, ww):
    hh = hh.astype(np.float64)
    mix = hh @ ww + hh.sum(1, keepdims=True) * 0.1666667   # each sentence's own mean
    return np.tanh(mix)


def tagger(hh, c):
    return hh.astype(np.float64) @ c


def confident(z):
    z = z.astype(np.float32)
    e = np.exp(z - z.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    return (p.max(-1) > tau) & ~np.isnan(z).any(-1)


# The eager loop of token-level exit: frozen tokens keep their state.
state = x.astype(np.float64)
done = np.zeros((B, 6), bool)
out = np.zeros((B, 6, 3))
layers = np.full((B, 6), 3, np.int32)
for l in (1, 2, 3):
    hl = layer(state, w[f"w{l}"])
    state = np.where(done[..., None], state, hl)
    z = tagger(state, w[f"c{l}"])
    exit_now = ~done & (confident(z) if l < 3 else True)
    out = np.where(exit_now[..., None], z, out)
    layers = np.where(exit_now, l, layers).astype(np.int32)
    done |= exit_now
    if done.all():
        break
np.save(f"{d}/want_logits.npy", out.astype(np.float32))
np.save(f"{d}/want_layers.npy", layers)
print("layers", " ".join(str(v) for v in layers.ravel()))
