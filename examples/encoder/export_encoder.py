#!/usr/bin/env python3
"""Exports the encoder classifier (torch_eager.Encoder) with dyncc.export.

    .venv/bin/python export_encoder.py --out-dir DIR --name NAME [sizes...]

writes into DIR:

  NAME.mlir            the model (dyncc.export: torch.export + torch-mlir),
                       input x [S, D] (batch 1) or [B, S, D], output logits [B, C]
  NAME.safetensors     the weights under their state_dict names
  NAME.x.npy           a random input N(0, 1), float32
  NAME.expected.npy    the eager module's logits on it, [B, C], float32
  NAME.x{i}.npy, NAME.expected{i}.npy   for i < --cases K

The defaults are W2's layer sizes (WORKLOADS.md): D=256, 4 heads, d_ff=1024,
seq 128, 2 classes, batch 1, here with 2 layers. Needs the project's Python
environment (torch, torch-mlir).
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))

from torch_eager import Encoder, add_shape_arguments  # noqa: E402  (sets OPENBLAS_CORETYPE before torch loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402


def build_encoder(layers=2, d_model=256, heads=4, d_ff=1024, classes=2, seed=0):
    """torch_eager.Encoder with init_scaled weights after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    return Encoder(layers=layers, d_model=d_model, heads=heads, d_ff=d_ff,
                   classes=classes).init_scaled().eval()


def input_shape(seq, d_model, batch):
    return (seq, d_model) if batch == 1 else (batch, seq, d_model)


def make_input(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_shape_arguments(ap, layers=2)
    ap.add_argument("--cases", type=int, default=0,
                    help="also write NAME.x{i}.npy / NAME.expected{i}.npy for i < K")
    ap.add_argument("--out-dir", default=".")
    ap.add_argument("--name", default="encoder")
    a = ap.parse_args()
    if a.d_model % a.heads:
        ap.error("--d-model must be a multiple of --heads")
    if not a.name.isidentifier():
        ap.error("--name must be an identifier (it names the library)")

    import dyncc

    os.makedirs(a.out_dir, exist_ok=True)
    base = os.path.join(a.out_dir, a.name)
    model = build_encoder(a.layers, a.d_model, a.heads, a.d_ff, a.classes, a.seed)
    shape = input_shape(a.seq, a.d_model, a.batch)
    dyncc.export(model, (torch.zeros(shape),), base)

    def case(suffix, seed):
        x = make_input(shape, seed)
        with torch.no_grad():
            y = model(x)
        np.save(f"{base}.x{suffix}.npy", x.numpy())
        np.save(f"{base}.expected{suffix}.npy", y.numpy().astype(np.float32))
        return y

    y = case("", a.seed + 1_000_003)
    for i in range(a.cases):
        case(str(i), a.seed + 1_000_003 + 7919 * (i + 1))
    print(f"wrote {base}.mlir, .safetensors, .x.npy {list(shape)}, .expected.npy "
          f"{list(y.shape)}" + (f", {a.cases} more cases" if a.cases else ""))


if __name__ == "__main__":
    main()
