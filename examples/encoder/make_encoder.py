#!/usr/bin/env python3
"""Generates a post-LN transformer encoder classifier for dyncc.

    .venv/bin/python make_encoder.py --out-dir DIR --name NAME [sizes...]

writes into DIR:

  NAME.mlir            the model in dyncc's input op set (docs/ops.md), every
                       shape static; the public entry @NAME takes the input
                       {dyn.name = "x"} and the weights {dyn.weight = "..."}
  NAME.safetensors     the weights of the PyTorch module (torch_eager.Encoder),
                       linear weights stored [in, out], every tensor's data at
                       a 64-byte aligned offset
  NAME.x.npy           a random input, [S, D] (batch 1) or [B, S, D], float32
  NAME.expected.npy    the module's logits on it, [B, C], computed in float64
                       from the float32 weights and input (stored float32)
  NAME.x{i}.npy, NAME.expected{i}.npy   for i < --cases K

The defaults are W2's layer sizes (WORKLOADS.md): D=256, 4 heads, d_ff=1024,
seq 128, 2 classes, batch 1, here with 2 layers. For B > 1 the batch is folded
into the rows: [B*S, D] for the linear layers and layer norms, [B*H, S, dh]
for attention.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402  (after torch_eager sets OPENBLAS_CORETYPE)
from torch_eager import Encoder, save_safetensors  # noqa: E402


# ---------------------------------------------------------------------------
# MLIR text helpers


def T(*dims, ty="f32"):
    """tensor<AxBx...xf32>"""
    return "tensor<" + "x".join(str(d) for d in dims) + f"x{ty}>"


def f32(v):
    """A float32 constant as an MLIR float literal (shortest round trip,
    always with a '.')."""
    v = np.float32(v)
    if v != 0 and abs(v) < 1e-3:
        return np.format_float_scientific(v, trim="0")
    return np.format_float_positional(v, trim="0")


def ri(reassoc):
    """[[0], [1, 2]]"""
    return "[" + ", ".join("[" + ", ".join(map(str, g)) + "]" for g in reassoc) + "]"


def lst(xs):
    return "[" + ", ".join(map(str, xs)) + "]"


class Gen:
    """Writes the MLIR module for one configuration."""

    def __init__(self, name, layers, d_model, heads, d_ff, seq, classes, batch):
        assert d_model % heads == 0, "--d-model must be a multiple of --heads"
        self.name = name
        self.L, self.D, self.H, self.F = layers, d_model, heads, d_ff
        self.S, self.C, self.B = seq, classes, batch
        self.dh = d_model // heads
        self.R = batch * seq      # rows of the linear layers
        self.G = batch * heads    # batch of the attention matmuls
        self.lines = []
        self.linears = []         # (rows, in, out) of the @linear helpers

    def emit(self, text=""):
        self.lines.extend(text.split("\n") if text else [""])

    # -- helpers --------------------------------------------------------------

    def lin_name(self, rows, k, n):
        return f"@linear_{rows}x{k}x{n}"

    def lin_call(self, res, x, w, b, rows, k, n, indent="    "):
        return (f"{indent}{res} = func.call {self.lin_name(rows, k, n)}({x}, {w}, {b}) "
                f": ({T(rows, k)}, {T(k, n)}, {T(n)}) -> {T(rows, n)}")

    def linear(self, rows, k, n, what):
        x, w, b, y = T(rows, k), T(k, n), T(n), T(rows, n)
        self.emit(f"""\
  // x W + b, [{rows}, {k}] x [{k}, {n}] -> [{rows}, {n}]: {what}.
  func.func private {self.lin_name(rows, k, n)}(%x: {x}, %w: {w}, %b: {T(n)}) -> {y} {{
    %zero = arith.constant 0.0 : f32
    %e = tensor.empty() : {y}
    %acc = linalg.fill ins(%zero : f32) outs(%e : {y}) -> {y}
    %mm = linalg.matmul ins(%x, %w : {x}, {w}) outs(%acc : {y}) -> {y}
    %bias = linalg.broadcast ins(%b : {T(n)}) outs(%e : {y}) dimensions = [0]
    %out = linalg.add ins(%mm, %bias : {y}, {y}) outs(%e : {y}) -> {y}
    return %out : {y}
  }}
""")

    def linear_gelu(self):
        R, D, F = self.R, self.D, self.F
        x, w, y = T(R, D), T(D, F), T(R, F)
        self.emit(f"""\
  // GELU(x W1 + b1), [{R}, {D}] -> [{R}, {F}], GELU(z) = 0.5 z (1 + erf(z / sqrt(2))).
  func.func private @linear_gelu(%x: {x}, %w: {w}, %b: {T(F)}) -> {y} {{
    %zero = arith.constant 0.0 : f32
    %e = tensor.empty() : {y}
    %acc = linalg.fill ins(%zero : f32) outs(%e : {y}) -> {y}
    %mm = linalg.matmul ins(%x, %w : {x}, {w}) outs(%acc : {y}) -> {y}
    %out = linalg.generic {{indexing_maps = [#id2, #col, #id2], iterator_types = ["parallel", "parallel"]}}
        ins(%mm, %b : {y}, {T(F)}) outs(%e : {y}) {{
      ^bb0(%v: f32, %bb: f32, %o: f32):
        %half = arith.constant 0.5 : f32
        %one = arith.constant 1.0 : f32
        %rsqrt2 = arith.constant {f32(2 ** -0.5)} : f32
        %z = arith.addf %v, %bb : f32
        %zs = arith.mulf %z, %rsqrt2 : f32
        %erf = math.erf %zs : f32
        %p = arith.addf %erf, %one : f32
        %hz = arith.mulf %z, %half : f32
        %g = arith.mulf %hz, %p : f32
        linalg.yield %g : f32
    }} -> {y}
    return %out : {y}
  }}
""")

    def split_merge_heads(self):
        B, S, H, dh, R, D, G = self.B, self.S, self.H, self.dh, self.R, self.D, self.G
        if B == 1:
            self.emit(f"""\
  // [seq, d] -> [heads, seq, head_dim]
  func.func private @split_heads(%x: {T(S, D)}) -> {T(H, S, dh)} {{
    %x3 = tensor.expand_shape %x [[0], [1, 2]] output_shape [{S}, {H}, {dh}] : {T(S, D)} into {T(S, H, dh)}
    %e = tensor.empty() : {T(H, S, dh)}
    %t = linalg.transpose ins(%x3 : {T(S, H, dh)}) outs(%e : {T(H, S, dh)}) permutation = [1, 0, 2]
    return %t : {T(H, S, dh)}
  }}

  // [heads, seq, head_dim] -> [seq, d]
  func.func private @merge_heads(%x: {T(H, S, dh)}) -> {T(S, D)} {{
    %e = tensor.empty() : {T(S, H, dh)}
    %t = linalg.transpose ins(%x : {T(H, S, dh)}) outs(%e : {T(S, H, dh)}) permutation = [1, 0, 2]
    %m = tensor.collapse_shape %t [[0], [1, 2]] : {T(S, H, dh)} into {T(S, D)}
    return %m : {T(S, D)}
  }}
""")
        else:
            self.emit(f"""\
  // [batch * seq, d] -> [batch * heads, seq, head_dim]
  func.func private @split_heads(%x: {T(R, D)}) -> {T(G, S, dh)} {{
    %x4 = tensor.expand_shape %x [[0, 1], [2, 3]] output_shape [{B}, {S}, {H}, {dh}] : {T(R, D)} into {T(B, S, H, dh)}
    %e = tensor.empty() : {T(B, H, S, dh)}
    %t = linalg.transpose ins(%x4 : {T(B, S, H, dh)}) outs(%e : {T(B, H, S, dh)}) permutation = [0, 2, 1, 3]
    %g = tensor.collapse_shape %t [[0, 1], [2], [3]] : {T(B, H, S, dh)} into {T(G, S, dh)}
    return %g : {T(G, S, dh)}
  }}

  // [batch * heads, seq, head_dim] -> [batch * seq, d]
  func.func private @merge_heads(%x: {T(G, S, dh)}) -> {T(R, D)} {{
    %x4 = tensor.expand_shape %x [[0, 1], [2], [3]] output_shape [{B}, {H}, {S}, {dh}] : {T(G, S, dh)} into {T(B, H, S, dh)}
    %e = tensor.empty() : {T(B, S, H, dh)}
    %t = linalg.transpose ins(%x4 : {T(B, H, S, dh)}) outs(%e : {T(B, S, H, dh)}) permutation = [0, 2, 1, 3]
    %m = tensor.collapse_shape %t [[0, 1], [2, 3]] : {T(B, S, H, dh)} into {T(R, D)}
    return %m : {T(R, D)}
  }}
""")

    def attention(self):
        R, D, G, S, dh = self.R, self.D, self.G, self.S, self.dh
        x, w, b, g3, sc = T(R, D), T(D, D), T(D), T(G, S, dh), T(G, S, S)
        gt = T(G, dh, S)
        sig = f"({x}, {w}, {b}) -> {x}"
        lin = self.lin_name(R, D, D)
        self.emit(f"""\
  // Multi-head self-attention: o(softmax(q k^T / sqrt(head_dim)) v), over
  // [{'batch * ' if self.B > 1 else ''}heads, seq, head_dim] = [{G}, {S}, {dh}].
  func.func private @attention(%x: {x},
                               %wq: {w}, %bq: {b},
                               %wk: {w}, %bk: {b},
                               %wv: {w}, %bv: {b},
                               %wo: {w}, %bo: {b}) -> {x} {{
    %zero = arith.constant 0.0 : f32
    // 1 / sqrt(head_dim)
    %scale = arith.constant {f32(dh ** -0.5)} : f32
    %q = func.call {lin}(%x, %wq, %bq) : {sig}
    %k = func.call {lin}(%x, %wk, %bk) : {sig}
    %v = func.call {lin}(%x, %wv, %bv) : {sig}
    %qh = func.call @split_heads(%q) : ({x}) -> {g3}
    %kh = func.call @split_heads(%k) : ({x}) -> {g3}
    %vh = func.call @split_heads(%v) : ({x}) -> {g3}

    // scores[g, i, j] = (q_i . k_j) / sqrt(head_dim)
    %et = tensor.empty() : {gt}
    %kt = linalg.transpose ins(%kh : {g3}) outs(%et : {gt}) permutation = [0, 2, 1]
    %es = tensor.empty() : {sc}
    %accs = linalg.fill ins(%zero : f32) outs(%es : {sc}) -> {sc}
    %qk = linalg.batch_matmul ins(%qh, %kt : {g3}, {gt}) outs(%accs : {sc}) -> {sc}
    %scores = linalg.generic {{indexing_maps = [#id3, #id3], iterator_types = ["parallel", "parallel", "parallel"]}}
        ins(%qk : {sc}) outs(%es : {sc}) {{
      ^bb0(%s: f32, %o: f32):
        %scaled = arith.mulf %s, %scale : f32
        linalg.yield %scaled : f32
    }} -> {sc}
    %p = linalg.softmax dimension(2) ins(%scores : {sc}) outs(%es : {sc}) -> {sc}

    // ctx[g, i, :] = sum_j p[g, i, j] v_j
    %ec = tensor.empty() : {g3}
    %accc = linalg.fill ins(%zero : f32) outs(%ec : {g3}) -> {g3}
    %ctx = linalg.batch_matmul ins(%p, %vh : {sc}, {g3}) outs(%accc : {g3}) -> {g3}
    %merged = func.call @merge_heads(%ctx) : ({g3}) -> {x}
    %out = func.call {lin}(%merged, %wo, %bo) : {sig}
    return %out : {x}
  }}
""")

    def layer_norm(self):
        R, D = self.R, self.D
        x, v, r = T(R, D), T(D), T(R)
        self.emit(f"""\
  // gamma * (x - mean) / sqrt(var + 1e-5) + beta over the last dimension
  // (d = {D}), with var = E[x^2] - mean^2.
  func.func private @layer_norm(%x: {x}, %gamma: {v}, %beta: {v}) -> {x} {{
    %zero = arith.constant 0.0 : f32
    %e1 = tensor.empty() : {r}
    %acc = linalg.fill ins(%zero : f32) outs(%e1 : {r}) -> {r}
    %sum = linalg.reduce ins(%x : {x}) outs(%acc : {r}) dimensions = [1]
      (%in: f32, %a: f32) {{
        %s = arith.addf %in, %a : f32
        linalg.yield %s : f32
      }}
    %sumsq = linalg.reduce ins(%x : {x}) outs(%acc : {r}) dimensions = [1]
      (%in: f32, %a: f32) {{
        %sq = arith.mulf %in, %in : f32
        %s = arith.addf %sq, %a : f32
        linalg.yield %s : f32
      }}
    %e = tensor.empty() : {x}
    %y = linalg.generic {{indexing_maps = [#id2, #row, #row, #col, #col, #id2], iterator_types = ["parallel", "parallel"]}}
        ins(%x, %sum, %sumsq, %gamma, %beta : {x}, {r}, {r}, {v}, {v})
        outs(%e : {x}) {{
      ^bb0(%xv: f32, %s: f32, %ss: f32, %g: f32, %b: f32, %o: f32):
        %n = arith.constant {f32(D)} : f32
        %eps = arith.constant {f32(1e-5)} : f32
        %mean = arith.divf %s, %n : f32
        %meansq = arith.divf %ss, %n : f32
        %sqmean = arith.mulf %mean, %mean : f32
        %var = arith.subf %meansq, %sqmean : f32
        %vareps = arith.addf %var, %eps : f32
        %rstd = math.rsqrt %vareps : f32
        %c = arith.subf %xv, %mean : f32
        %nrm = arith.mulf %c, %rstd : f32
        %scaled = arith.mulf %nrm, %g : f32
        %r = arith.addf %scaled, %b : f32
        linalg.yield %r : f32
    }} -> {x}
    return %y : {x}
  }}
""")

    def ffn(self):
        R, D, F = self.R, self.D, self.F
        x = T(R, D)
        self.emit(f"""\
  // W2 GELU(W1 h + b1) + b2: [{R}, {D}] -> [{R}, {F}] -> [{R}, {D}].
  func.func private @ffn(%h: {x}, %w1: {T(D, F)}, %b1: {T(F)},
                         %w2: {T(F, D)}, %b2: {T(D)}) -> {x} {{
    %a = func.call @linear_gelu(%h, %w1, %b1) : ({x}, {T(D, F)}, {T(F)}) -> {T(R, F)}
{self.lin_call("%y", "%a", "%w2", "%b2", R, F, D)}
    return %y : {x}
  }}
""")

    def layer_params(self):
        """(suffix, type) of one layer's weights, in argument order."""
        D, F = self.D, self.F
        ps = []
        for n in "qkvo":
            ps += [(f"attn.w{n}", T(D, D)), (f"attn.b{n}", T(D))]
        ps += [("ln1.gamma", T(D)), ("ln1.beta", T(D)),
               ("ffn.w1", T(D, F)), ("ffn.b1", T(F)),
               ("ffn.w2", T(F, D)), ("ffn.b2", T(D)),
               ("ln2.gamma", T(D)), ("ln2.beta", T(D))]
        return ps

    def encoder_layer(self):
        R, D, F = self.R, self.D, self.F
        x, w, b = T(R, D), T(D, D), T(D)
        ps = [f"%{s.replace('.', '_')}: {t}" for s, t in self.layer_params()]
        args = ",\n                                   ".join(
            ", ".join(ps[i:i + 2]) for i in range(0, len(ps), 2))
        self.emit(f"""\
  // One post-LN encoder layer:
  //   h   = LayerNorm1(x + Attention(x))
  //   out = LayerNorm2(h + FFN(h))
  func.func private @encoder_layer(%x: {x},
                                   {args}) -> {x} {{
    %e = tensor.empty() : {x}
    %attn = func.call @attention(%x, %attn_wq, %attn_bq, %attn_wk, %attn_bk, %attn_wv, %attn_bv, %attn_wo, %attn_bo)
        : ({x}, {w}, {b}, {w}, {b}, {w}, {b}, {w}, {b}) -> {x}
    %res1 = linalg.add ins(%x, %attn : {x}, {x}) outs(%e : {x}) -> {x}
    %h = func.call @layer_norm(%res1, %ln1_gamma, %ln1_beta) : ({x}, {b}, {b}) -> {x}
    %f = func.call @ffn(%h, %ffn_w1, %ffn_b1, %ffn_w2, %ffn_b2)
        : ({x}, {T(D, F)}, {T(F)}, {T(F, D)}, {b}) -> {x}
    %res2 = linalg.add ins(%h, %f : {x}, {x}) outs(%e : {x}) -> {x}
    %out = func.call @layer_norm(%res2, %ln2_gamma, %ln2_beta) : ({x}, {b}, {b}) -> {x}
    return %out : {x}
  }}
""")

    def first_token(self):
        B, S, D, R = self.B, self.S, self.D, self.R
        if B == 1:
            self.emit(f"""\
  // The first token's row ([CLS]): [seq, d] -> [1, d]. (A rank-reducing
  // slice: dyncc rejects a non-reducing [1, d] slice at offset 0, see
  // examples/encoder/README.md.)
  func.func private @first_token(%h: {T(S, D)}) -> {T(1, D)} {{
    %row = tensor.extract_slice %h[0, 0] [1, {D}] [1, 1] : {T(S, D)} to {T(D)}
    %cls = tensor.expand_shape %row [[0, 1]] output_shape [1, {D}] : {T(D)} into {T(1, D)}
    return %cls : {T(1, D)}
  }}
""")
        else:
            self.emit(f"""\
  // Each sample's first token ([CLS]): [batch * seq, d] -> [batch, d].
  func.func private @first_token(%h: {T(R, D)}) -> {T(B, D)} {{
    %h3 = tensor.expand_shape %h [[0, 1], [2]] output_shape [{B}, {S}, {D}] : {T(R, D)} into {T(B, S, D)}
    %cls = tensor.extract_slice %h3[0, 0, 0] [{B}, 1, {D}] [1, 1, 1] : {T(B, S, D)} to {T(B, D)}
    return %cls : {T(B, D)}
  }}
""")

    def entry(self):
        B, S, D, C, R, L = self.B, self.S, self.D, self.C, self.R, self.L
        xin = T(S, D) if B == 1 else T(B, S, D)
        x = T(R, D)
        pad = " " * (len(self.name) + 14)
        args = [f'%x: {xin} {{dyn.name = "x"}}']
        for i in range(L):
            for s, t in self.layer_params():
                args.append(f'%l{i}_{s.replace(".", "_")}: {t} {{dyn.weight = "layers.{i}.{s}"}}')
        args.append(f'%head_w: {T(D, C)} {{dyn.weight = "head.w"}}')
        args.append(f'%head_b: {T(C)} {{dyn.weight = "head.b"}}')
        self.emit(f"""\
  // The model: {L} encoder layer{'s' if L != 1 else ''}, then the classifier on the first token.
  // Input x: {'[seq, d]' if B == 1 else '[batch, seq, d]'}; output: logits [{B}, {C}].
  func.func @{self.name}({(',' + chr(10) + pad).join(args)}) -> {T(B, C)} {{""")
        if B == 1:
            h = "%x"
        else:
            self.emit(f"    %h = tensor.collapse_shape %x [[0, 1], [2]] : {xin} into {x}")
            h = "%h"
        ltypes = ", ".join([x] + [t for _, t in self.layer_params()])
        for i in range(L):
            names = ", ".join([h] + [f"%l{i}_{s.replace('.', '_')}" for s, _ in self.layer_params()])
            self.emit(f"    // layer {i}")
            self.emit(f"    %h{i} = func.call @encoder_layer({names})\n        : ({ltypes}) -> {x}")
            h = f"%h{i}"
        cls = T(B, D)
        self.emit(f"    %cls = func.call @first_token({h}) : ({x}) -> {cls}")
        self.emit(self.lin_call("%logits", "%cls", "%head_w", "%head_b", B, D, C))
        self.emit(f"    return %logits : {T(B, C)}\n  }}")

    def module(self):
        L, D, H, F, S, C, B = self.L, self.D, self.H, self.F, self.S, self.C, self.B
        batch = ("batch 1" if B == 1 else
                 f"batch {B} folded into the rows ([{B} * {S}, {D}] for the linear layers,\n"
                 f"// [{B} * {H}, {S}, {self.dh}] for attention)")
        self.emit(f"""\
// Generated by examples/encoder/make_encoder.py: a post-LN transformer
// encoder classifier in the dyncc input op set (docs/ops.md), the same math
// as torch_eager.Encoder.
//
//   layers = {L}, d_model = {D}, heads = {H} (head_dim {self.dh}), d_ff = {F},
//   seq = {S}, classes = {C}, {batch}
//
//   per layer:  h   = LayerNorm1(x + MultiHeadAttention(x))
//               out = LayerNorm2(h + W2 GELU(W1 h + b1) + b2)
//   classifier: logits = out[first token] Wc + bc
//
// Linear layers compute x W + b with W stored [in, out]. Attention is
// batch_matmul + softmax + batch_matmul around reshapes and transposes.
// Layer norm is two reductions (sum and sum of squares) and one elementwise
// generic; GELU is the erf form. Weights are arguments of @{self.name} bound
// by name from the safetensors file ({{dyn.weight = "..."}}).

#id2 = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
#col = affine_map<(d0, d1) -> (d1)>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>

module {{""")
        R = self.R
        shapes = [(R, D, D, "the q, k, v and output projections"),
                  (R, F, D, "the second FFN layer"),
                  (B, D, C, "the classifier")]
        seen = set()
        for rows, k, n, what in shapes:
            if (rows, k, n) in seen:
                continue
            seen.add((rows, k, n))
            whats = " and ".join(w for r2, k2, n2, w in shapes if (r2, k2, n2) == (rows, k, n))
            self.linear(rows, k, n, whats)
        self.linear_gelu()
        self.split_merge_heads()
        self.attention()
        self.layer_norm()
        self.ffn()
        self.encoder_layer()
        self.first_token()
        self.entry()
        self.emit("}")
        return "\n".join(self.lines) + "\n"


# ---------------------------------------------------------------------------


def add_shape_arguments(ap, layers):
    """The sizes of an encoder (defaults: W2's layer) and its seed."""
    ap.add_argument("--layers", type=int, default=layers)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--d-ff", type=int, default=1024)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)


def main():
    ap = argparse.ArgumentParser(
        description="Writes a post-LN encoder classifier for dyncc: "
                    "NAME.mlir, NAME.safetensors, NAME.x.npy, NAME.expected.npy.")
    add_shape_arguments(ap, layers=2)
    ap.add_argument("--cases", type=int, default=0,
                    help="also write NAME.x{i}.npy / NAME.expected{i}.npy for i < K")
    ap.add_argument("--out-dir", default=".")
    ap.add_argument("--name", default="encoder")
    a = ap.parse_args()

    if a.d_model % a.heads:
        ap.error("--d-model must be a multiple of --heads")
    if not a.name.isidentifier():
        ap.error("--name must be an identifier (it names the MLIR function and the library)")
    os.makedirs(a.out_dir, exist_ok=True)
    base = os.path.join(a.out_dir, a.name)

    gen = Gen(a.name, a.layers, a.d_model, a.heads, a.d_ff, a.seq, a.classes, a.batch)
    with open(base + ".mlir", "w") as f:
        f.write(gen.module())

    torch.manual_seed(a.seed)
    model = Encoder(layers=a.layers, d_model=a.d_model, heads=a.heads,
                    d_ff=a.d_ff, classes=a.classes).init_scaled().eval()
    metadata = dict(format="pt", generator="examples/encoder/make_encoder.py",
                    layers=a.layers, d_model=a.d_model, heads=a.heads,
                    d_ff=a.d_ff, seq=a.seq, classes=a.classes, batch=a.batch,
                    seed=a.seed)
    tensors = model.tensors()
    save_safetensors(base + ".safetensors", tensors, metadata)

    # The reference: the float32 weights, in float64.
    ref = Encoder.from_tensors(tensors, heads=a.heads).double().eval()
    shape = (a.seq, a.d_model) if a.batch == 1 else (a.batch, a.seq, a.d_model)

    def case(suffix, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(shape, generator=g, dtype=torch.float32)
        with torch.no_grad():
            y = ref(x.double())
        np.save(f"{base}.x{suffix}.npy", x.numpy())
        np.save(f"{base}.expected{suffix}.npy", y.numpy().astype(np.float32))
        return y

    y = case("", a.seed + 1_000_003)
    for i in range(a.cases):
        case(str(i), a.seed + 1_000_003 + 7919 * (i + 1))

    n = sum(t.size for t in tensors.values())
    print(f"wrote {base}.mlir, .safetensors ({len(tensors)} tensors, {n} floats), "
          f".x.npy {list(shape)}, .expected.npy {list(y.shape)}"
          + (f", {a.cases} more cases" if a.cases else ""))


if __name__ == "__main__":
    main()
