#!/usr/bin/env python3
"""The W2 encoder classifier in PyTorch eager, and a safetensors reader/writer.

    from torch_eager import Encoder, EncoderLayer, load_encoder
    model = Encoder(layers=2).init_scaled().eval()     # W2's layer sizes
    model = load_encoder("encoder.safetensors")        # written by export_encoder.py

A post-LN transformer encoder built from plain nn.Linear / nn.LayerNorm /
matmul / softmax / GELU (erf form), then a linear classifier on the first
token (a BERT-style [CLS] head, without a pooler). dyncc.export turns it
into MLIR (export_encoder.py); its weights keep their state_dict names
(layers.{i}.attn.q.weight, ..., head.bias). The early-exit encoder of
examples/early-exit/model.py is built from the same EncoderLayer.

Timing the eager baseline (W2 setup: 2 threads, no_grad, float32):

    .venv/bin/python torch_eager.py --weights W.safetensors --x W.x.npy --runs 20
"""

import os


def _has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            return " avx512f" in f.read()
    except OSError:
        return False


# Without this, Debian's OpenBLAS picks a generic kernel on these machines and
# runs ~6x slower (see WORKLOADS.md). It is read when OpenBLAS loads, so it
# must be set before torch is imported. Only where AVX-512 exists.
if _has_avx512():
    os.environ.setdefault("OPENBLAS_CORETYPE", "SkylakeX")

import json
import math
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

LN_EPS = 1e-5

# ---------------------------------------------------------------------------
# The module


class Attention(nn.Module):
    """Multi-head self-attention: softmax(q k^T / sqrt(dh)) v, then o."""

    def __init__(self, d_model, heads):
        super().__init__()
        assert d_model % heads == 0, "d_model must be a multiple of heads"
        self.heads = heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.o = nn.Linear(d_model, d_model)

    def forward(self, x):  # x: [B, S, D]
        b, s, d = x.shape
        h, dh = self.heads, d // self.heads

        def split(t):  # [B, S, D] -> [B, H, S, dh]
            return t.reshape(b, s, h, dh).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(dh))
        p = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(p, v)  # [B, H, S, dh]
        return self.o(ctx.transpose(1, 2).reshape(b, s, d))


class FFN(nn.Module):
    """fc2(GELU(fc1(h))), GELU in the erf form."""

    def __init__(self, d_model, d_ff):
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)

    def forward(self, h):
        return self.fc2(F.gelu(self.fc1(h)))


class EncoderLayer(nn.Module):
    """Post-LN: h = LN1(x + attn(x)); out = LN2(h + ffn(h))."""

    def __init__(self, d_model, heads, d_ff):
        super().__init__()
        self.attn = Attention(d_model, heads)
        self.ln1 = nn.LayerNorm(d_model, eps=LN_EPS)
        self.ffn = FFN(d_model, d_ff)
        self.ln2 = nn.LayerNorm(d_model, eps=LN_EPS)

    def forward(self, x):
        h = self.ln1(x + self.attn(x))
        return self.ln2(h + self.ffn(h))


class Encoder(nn.Module):
    """L post-LN encoder layers, then a linear classifier on the first token.

    forward(x): x is [S, D] (batch 1) or
    [B, S, D]; the result is the logits, [B, C] ([1, C] for an [S, D] input).
    """

    def __init__(self, layers=2, d_model=256, heads=4, d_ff=1024, classes=2):
        super().__init__()
        self.config = dict(layers=layers, d_model=d_model, heads=heads,
                           d_ff=d_ff, classes=classes)
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, heads, d_ff) for _ in range(layers))
        self.head = nn.Linear(d_model, classes)

    def forward(self, x):
        if x.dim() == 2:
            x = x.unsqueeze(0)
        for layer in self.layers:
            x = layer(x)
        return self.head(x[:, 0, :])

    @torch.no_grad()
    def init_scaled(self, generator=None):
        """O(1) activations: linear weights ~ N(0, 1/fan_in) (std
        1/sqrt(fan_in)), biases ~ 0.1 N(0, 1)/sqrt(fan_in), layer norm
        gamma ~ 1 + 0.1 N, beta ~ 0.1 N."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                std = 1.0 / math.sqrt(m.in_features)
                m.weight.normal_(0.0, std, generator=generator)
                m.bias.normal_(0.0, 0.1 * std, generator=generator)
            elif isinstance(m, nn.LayerNorm):
                m.weight.normal_(1.0, 0.1, generator=generator)
                m.bias.normal_(0.0, 0.1, generator=generator)
        return self


# ---------------------------------------------------------------------------
# safetensors

_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16,
           "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
           "U8": np.uint8, "BOOL": np.bool_}
_NAMES = {np.dtype(v).str: k for k, v in _DTYPES.items()}

ALIGN = 64


def add_shape_arguments(ap, layers=12):
    """Command-line options for the sizes of an encoder (defaults: W2's
    layer) and its seed: --layers --d-model --heads --d-ff --seq --classes
    --batch --seed."""
    ap.add_argument("--layers", type=int, default=layers)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--d-ff", type=int, default=1024)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)


def save_safetensors(path, tensors, metadata=None, align=ALIGN):
    """Writes {name: array} in the order given. Every tensor's data offset
    is a multiple of `align`, and the header is padded with spaces so that
    the data section starts at a multiple of `align` in the file too."""
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, array in tensors.items():
        a = np.ascontiguousarray(array)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        pad = (-offset) % align
        if pad:
            chunks.append(b"\0" * pad)
            offset += pad
        data = a.tobytes()
        header[name] = {"dtype": _NAMES[a.dtype.str], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((-(8 + len(text))) % align)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


def load_safetensors(path):
    """Returns ({name: numpy array}, {metadata key: str})."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {}) or {}
    base = 8 + n
    tensors = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        dt = np.dtype(_DTYPES[e["dtype"]]).newbyteorder("<")
        a = np.frombuffer(blob, dtype=dt, count=(end - begin) // dt.itemsize,
                          offset=base + begin)
        tensors[name] = a.reshape(e["shape"]).copy()
    return tensors, metadata


def load_encoder(path, heads=4):
    """The Encoder of a safetensors file written by export_encoder.py
    (dyncc.export: the state_dict names); the sizes come from the shapes."""
    tensors, _ = load_safetensors(path)
    layers = 0
    while f"layers.{layers}.attn.q.weight" in tensors:
        layers += 1
    d_ff, d_model = tensors["layers.0.ffn.fc1.weight"].shape
    model = Encoder(layers=layers, d_model=d_model, heads=heads, d_ff=d_ff,
                    classes=tensors["head.weight"].shape[0])
    model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()})
    return model


# ---------------------------------------------------------------------------
# Timing


def main():
    import argparse
    import time

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--x", required=True, help="input .npy ([S, D] or [B, S, D])")
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--expected", default=None,
                    help="also report the max abs error against this .npy")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    model = load_encoder(args.weights, args.heads).float().eval()
    x = torch.from_numpy(np.load(args.x).astype(np.float32))
    times = []
    with torch.no_grad():
        for _ in range(args.warmup):
            y = model(x)
        for _ in range(args.runs):
            t0 = time.perf_counter()
            y = model(x)
            times.append((time.perf_counter() - t0) * 1e3)
    if args.expected:
        err = np.abs(y.numpy().astype(np.float64) - np.load(args.expected)).max()
        print(f"max abs error vs {args.expected}: {err:.3g}")
    print(f"torch eager ({torch.get_num_threads()} threads, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')}): "
          f"median {float(np.median(times)):.3f} ms over {args.runs} runs "
          f"(min {min(times):.3f})")


if __name__ == "__main__":
    main()
