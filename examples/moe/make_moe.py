#!/usr/bin/env python3
"""Generates a mixture-of-experts model (dyn.route) for dyncc, with test cases.

    .venv/bin/python make_moe.py --strategy switch --capacity-factor 1.25 --out-dir DIR --name NAME

writes into DIR:

  NAME.mlir          the model: one `dyn.route` whose region is one GELU FFN
                     expert, gelu(t W1 + b1) W2 + b2 (written for `?` rows);
                     the layer alone (y = MoE(x)) or, with --block, a pre-LN
                     transformer block y = h + MoE(LN(h)), h = x or, with
                     --attention, h = x + Attention(LN_a(x))
  NAME.safetensors   the weights (64-byte aligned), metadata: the route
                     config (JSON), sizes, block/attention/gate_input flags
  NAME.x.npy         K inputs x, [K, T, D] float32
  NAME.gate.npy      with --gate-input: K gate logits [K, T, E] float32, and
                     always for hash: K token-id vectors [K, T] int32
  NAME.expected.npz  the reference's (reference.MoEModel) decisions and
                     outputs of every case (see below)

The entry function @NAME takes the inputs x ({dyn.name = "x"}), the gate
({dyn.name = "gate"}: logits; hash: {dyn.name = "ids"}, [T] i32) when it is
an input, then the weights ({dyn.weight = "..."}):

    ln_a.{gamma,beta}, attn.{wq,bq,wk,bk,wv,bv,wo,bo}   (--block --attention)
    ln.{gamma,beta}                                      (--block)
    gate.w [D, E], gate.b [E]                            (gate inside)
    hash.table [V] i32                                   (--hash-table V)
    experts.w1 [E, D, F], experts.b1 [E, F], experts.w2 [E, F, D], experts.b2 [E, D]

and returns y [T, D] and, when the gate layer is inside the model (unless
--no-logits-output), its logits [T, E] as a second output: a test then
routes the reference on the logits the compiled gate produced (a float32
GEMM rounds differently from the reference's float64 one, which can flip a
near-tie between two experts), so the decisions compare exactly.

NAME.expected.npz: config (JSON), inputs / outputs (names), capacity,
slots, per_token (K), logits [N, T, E] (the reference's, float32),
assignment [N, T*K] int32 (docs/moe.md: e kept, -2-e dropped, -1 no choice),
tokens_per_expert [N, E], dropped [N], expert / weight / kept [N, T, K], y
[N, T, D] float32 (computed in float64).

Cases (gate inputs): logits N(0, 1) * --logit-scale; every 4th case (i % 4
== 1) skewed by --skew * a ramp over a random permutation of the experts (the
favoured experts overflow their capacity); every 5th (i % 5 == 2) rounded to
integers (ties between experts and between tokens); i % 7 == 3 repeats a few
rows (equal weights: score priority ties by token index). Gate inside:
--skew is a ramp in gate.b.

--self-check derives every case's assignment again with an independent
scalar implementation of docs/moe.md (numpy float32 scalars, loops), checks
the invariants (reference.check_invariants), the layer against the eager
Hugging Face-style layer (reference.EagerMoE) where the strategies agree,
and, with --dyncc-opt (default: build-lead's), that the MLIR parses.
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "encoder"))

from reference import (PRIORITIES, STRATEGIES, EagerMoE, MoEModel, RouteConfig,  # noqa: E402
                       base_auction, check_invariants, exp32_scalar, route, splitmix64)
from make_encoder import Gen, T as TT, f32  # noqa: E402
from torch_eager import save_safetensors  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))


# ---------------------------------------------------------------------------
# MLIR


def route_attrs(cfg):
    """dyncc.nn.routing's attribute text (the same as dyncc.nn.MoE's export)."""
    return cfg.mlir_attrs()


def expert_body(D, Fd, indent="    "):
    """The region of dyn.route: one expert, gelu(t W1 + b1) W2 + b2, for `?`
    rows, with tensor.dim / tensor.empty / linalg.fill / linalg.matmul /
    linalg.generic only."""
    tq, hq = f"tensor<?x{D}xf32>", f"tensor<?x{Fd}xf32>"
    w1, b1, w2, b2 = TT(D, Fd), TT(Fd), TT(Fd, D), TT(D)
    i = indent
    return f"""\
{i}^bb0(%t: {tq}, %w1e: {w1}, %b1e: {b1}, %w2e: {w2}, %b2e: {b2}):
{i}  %c0 = arith.constant 0 : index
{i}  %n = tensor.dim %t, %c0 : {tq}
{i}  %zero = arith.constant 0.0 : f32
{i}  %e1 = tensor.empty(%n) : {hq}
{i}  %f1 = linalg.fill ins(%zero : f32) outs(%e1 : {hq}) -> {hq}
{i}  %mm1 = linalg.matmul ins(%t, %w1e : {tq}, {w1}) outs(%f1 : {hq}) -> {hq}
{i}  // GELU(v + b1) = 0.5 z (1 + erf(z / sqrt(2)))
{i}  %act = linalg.generic {{indexing_maps = [#id2, #col, #id2], iterator_types = ["parallel", "parallel"]}}
{i}      ins(%mm1, %b1e : {hq}, {b1}) outs(%e1 : {hq}) {{
{i}    ^bb0(%v: f32, %bias: f32, %o: f32):
{i}      %half = arith.constant 0.5 : f32
{i}      %one = arith.constant 1.0 : f32
{i}      %rsqrt2 = arith.constant {f32(2 ** -0.5)} : f32
{i}      %z = arith.addf %v, %bias : f32
{i}      %zs = arith.mulf %z, %rsqrt2 : f32
{i}      %erf = math.erf %zs : f32
{i}      %p = arith.addf %erf, %one : f32
{i}      %hz = arith.mulf %z, %half : f32
{i}      %g = arith.mulf %hz, %p : f32
{i}      linalg.yield %g : f32
{i}  }} -> {hq}
{i}  %e2 = tensor.empty(%n) : {tq}
{i}  %f2 = linalg.fill ins(%zero : f32) outs(%e2 : {tq}) -> {tq}
{i}  %mm2 = linalg.matmul ins(%act, %w2e : {hq}, {w2}) outs(%f2 : {tq}) -> {tq}
{i}  %out = linalg.generic {{indexing_maps = [#id2, #col, #id2], iterator_types = ["parallel", "parallel"]}}
{i}      ins(%mm2, %b2e : {tq}, {b2}) outs(%e2 : {tq}) {{
{i}    ^bb0(%v: f32, %bias: f32, %o: f32):
{i}      %r = arith.addf %v, %bias : f32
{i}      linalg.yield %r : f32
{i}  }} -> {tq}
{i}  dyn.yield %out : {tq}"""


class MoEGen(Gen):
    """make_encoder.Gen's helpers (linear layers, layer norm, attention) and
    an entry with one dyn.route."""

    def __init__(self, name, cfg, T, D, Fd, heads, block, attention, gate_input, logits_output,
                 table_size):
        super().__init__(name, 1, D, heads, Fd, T, cfg.num_experts, 1)
        self.cfg, self.T, self.E = cfg, T, cfg.num_experts
        self.block, self.attn = block, attention
        self.hash = cfg.strategy == "hash"
        self.gate_input = gate_input or self.hash
        self.logits_output = logits_output and not self.gate_input
        self.V = table_size

    def inputs(self):
        T, D, E = self.T, self.D, self.E
        ins = [("x", TT(T, D))]
        if self.hash:
            ins.append(("ids", TT(T, ty="i32")))
        elif self.gate_input:
            ins.append(("gate", TT(T, E)))
        return ins

    def weights(self):
        D, E, Fd = self.D, self.E, self.F
        ws = []
        if self.block and self.attn:
            ws += [("ln_a.gamma", TT(D)), ("ln_a.beta", TT(D))]
            for n in "qkvo":
                ws += [(f"attn.w{n}", TT(D, D)), (f"attn.b{n}", TT(D))]
        if self.block:
            ws += [("ln.gamma", TT(D)), ("ln.beta", TT(D))]
        if not self.gate_input:
            ws += [("gate.w", TT(D, E)), ("gate.b", TT(E))]
        if self.V:
            ws.append(("hash.table", TT(self.V, ty="i32")))
        ws += [("experts.w1", TT(E, D, Fd)), ("experts.b1", TT(E, Fd)),
               ("experts.w2", TT(E, Fd, D)), ("experts.b2", TT(E, D))]
        return ws

    def outputs(self):
        outs = [("y", TT(self.T, self.D))]
        if self.logits_output:
            outs.append(("logits", TT(self.T, self.E)))
        return outs

    def entry(self):
        T, D, E, Fd = self.T, self.D, self.E, self.F
        x = TT(T, D)
        v = lambda n: "%" + n.replace(".", "_")  # noqa: E731
        pad = " " * (len(self.name) + 14)
        args = [f'{v(n)}: {t} {{dyn.name = "{n}"}}' for n, t in self.inputs()]
        args += [f'{v(n)}: {t} {{dyn.weight = "{n}"}}' for n, t in self.weights()]
        outs = self.outputs()
        rtypes = ", ".join(t for _, t in outs)
        self.emit(f"""\
  // The model: {self.describe()}.
  func.func @{self.name}({(',' + chr(10) + pad).join(args)}) -> ({rtypes}) {{""")
        h = "%x"
        if self.block:
            self.emit(f"    %e = tensor.empty() : {x}")
        if self.block and self.attn:
            w, b = TT(D, D), TT(D)
            self.emit(f"""\
    // attention sublayer, pre-LN: h = x + Attention(LN_a(x))
    %xa = func.call @layer_norm(%x, %ln_a_gamma, %ln_a_beta) : ({x}, {b}, {b}) -> {x}
    %att = func.call @attention(%xa, %attn_wq, %attn_bq, %attn_wk, %attn_bk, %attn_wv, %attn_bv, %attn_wo, %attn_bo)
        : ({x}, {w}, {b}, {w}, {b}, {w}, {b}, {w}, {b}) -> {x}
    %h = linalg.add ins(%x, %att : {x}, {x}) outs(%e : {x}) -> {x}""")
            h = "%h"
        u = h
        if self.block:
            self.emit(f"    // MoE sublayer, pre-LN: y = h + MoE(LN(h))\n"
                      f"    %u = func.call @layer_norm({h}, %ln_gamma, %ln_beta) : ({x}, {TT(D)}, {TT(D)}) -> {x}")
            u = "%u"
        if self.hash:
            gate, gty = "%ids", TT(T, ty="i32")
        elif self.gate_input:
            gate, gty = "%gate", TT(T, E)
        else:
            self.emit("    // the gate: a linear layer, logits = u gate.w + gate.b")
            self.emit(self.lin_call("%logits", u, "%gate_w", "%gate_b", T, D, E))
            gate, gty = "%logits", TT(T, E)
        table = f" table %hash_table : {TT(self.V, ty='i32')}" if self.V else ""
        ptys = ", ".join(t for n, t in self.weights() if n.startswith("experts."))
        self.emit(f"""\
    %moe = dyn.route {self.cfg.strategy} {u}, {gate}{table} experts(%experts_w1, %experts_b1, %experts_w2, %experts_b2 : {ptys})
        {route_attrs(self.cfg)}
        : {x}, {gty} -> {x} {{
{expert_body(D, Fd)}
    }}""")
        y = "%moe"
        if self.block:
            self.emit(f"    %y = linalg.add ins({h}, %moe : {x}, {x}) outs(%e : {x}) -> {x}")
            y = "%y"
        rets = [y] + (["%logits"] if self.logits_output else [])
        self.emit(f"    return {', '.join(rets)} : {rtypes}\n  }}")

    def describe(self):
        c = self.cfg
        what = f"{c.strategy}"
        if c.k is not None:
            what += f" k = {c.k}"
        what += f" over E = {self.E} GELU FFN experts (d = {self.D}, d_ff = {self.F}), T = {self.T}"
        if self.block:
            return ("pre-LN transformer block: " + ("h = x + Attention(LN_a(x)), " if self.attn else "h = x, ")
                    + f"y = h + MoE(LN(h)), MoE: {what}")
        return f"y = MoE(x), {what}"

    def module(self):
        cfg, T, D, E = self.cfg, self.T, self.D, self.E
        gate = ("the token ids (input `ids`, i32)" if self.hash else
                "logits, a model input (`gate`)" if self.gate_input else
                "logits of a linear layer (gate.w, gate.b) inside the model"
                + (", also returned as the second output" if self.logits_output else ""))
        C = cfg.capacity(T)
        cap = (f"capacity_factor {cfg.capacity_factor}: C = {C} per expert and group, "
               f"{cfg.num_groups} group(s)" if C else
               f"dropless, block {cfg.dropless_block}" if cfg.dropless_block else
               "BASE: exactly T/E per expert" if cfg.strategy == "base" else "no capacity")
        self.emit(f"""\
// Generated by examples/moe/make_moe.py: a mixture-of-experts
// {'transformer block' if self.block else 'layer'} in the dyncc input op set, the same math as
// examples/moe/reference.py (MoEModel; the assignment of docs/moe.md).
//
//   {self.describe()}
//   expert e: gelu(t W1[e] + b1[e]) W2[e] + b2[e] (erf GELU), weights [in, out]
//   gate: {gate}
//   routing: {route_attrs(cfg)}
//   {cap}; K = {cfg.per_token} choice(s) per token, S = {cfg.slots(T)} dispatch slots

#id2 = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
#col = affine_map<(d0, d1) -> (d1)>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>

module {{""")
        if self.block and self.attn:
            self.linear(T, D, D, "the q, k, v and output projections")
        if not self.gate_input and (not (self.block and self.attn) or E != D):
            self.linear(T, D, E, "the gate")
        if self.block and self.attn:
            self.split_merge_heads()
            self.attention()
        if self.block:
            self.layer_norm()
        self.entry()
        self.emit("}")
        return "\n".join(self.lines) + "\n"


def ffn_only_mlir(name, E, C, D, Fd):
    """The experts alone on the dispatch buffer, batched: [E, C, D] ->
    [E, C, D], the same FFN as batch_matmul over E (bench/w1_bench.py times
    it to split the layer's time into expert GEMMs and the rest)."""
    x, h = TT(E, C, D), TT(E, C, Fd)
    bias3 = "affine_map<(d0, d1, d2) -> (d0, d2)>"
    return f"""\
// Generated by examples/moe/make_moe.py: the {E} GELU FFN experts of a MoE
// layer on a dispatch buffer of {C} rows per expert, as batched GEMMs.
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#eb = {bias3}
func.func @{name}(%buf: {x} {{dyn.name = "buf"}},
    %w1: {TT(E, D, Fd)} {{dyn.weight = "experts.w1"}}, %b1: {TT(E, Fd)} {{dyn.weight = "experts.b1"}},
    %w2: {TT(E, Fd, D)} {{dyn.weight = "experts.w2"}}, %b2: {TT(E, D)} {{dyn.weight = "experts.b2"}}) -> {x} {{
  %zero = arith.constant 0.0 : f32
  %e1 = tensor.empty() : {h}
  %f1 = linalg.fill ins(%zero : f32) outs(%e1 : {h}) -> {h}
  %mm1 = linalg.batch_matmul ins(%buf, %w1 : {x}, {TT(E, D, Fd)}) outs(%f1 : {h}) -> {h}
  %act = linalg.generic {{indexing_maps = [#id3, #eb, #id3], iterator_types = ["parallel", "parallel", "parallel"]}}
      ins(%mm1, %b1 : {h}, {TT(E, Fd)}) outs(%e1 : {h}) {{
    ^bb0(%v: f32, %bias: f32, %o: f32):
      %half = arith.constant 0.5 : f32
      %one = arith.constant 1.0 : f32
      %rsqrt2 = arith.constant {f32(2 ** -0.5)} : f32
      %z = arith.addf %v, %bias : f32
      %zs = arith.mulf %z, %rsqrt2 : f32
      %erf = math.erf %zs : f32
      %p = arith.addf %erf, %one : f32
      %hz = arith.mulf %z, %half : f32
      %g = arith.mulf %hz, %p : f32
      linalg.yield %g : f32
  }} -> {h}
  %e2 = tensor.empty() : {x}
  %f2 = linalg.fill ins(%zero : f32) outs(%e2 : {x}) -> {x}
  %mm2 = linalg.batch_matmul ins(%act, %w2 : {h}, {TT(E, Fd, D)}) outs(%f2 : {x}) -> {x}
  %out = linalg.generic {{indexing_maps = [#id3, #eb, #id3], iterator_types = ["parallel", "parallel", "parallel"]}}
      ins(%mm2, %b2 : {x}, {TT(E, D)}) outs(%e2 : {x}) {{
    ^bb0(%v: f32, %bias: f32, %o: f32):
      %r = arith.addf %v, %bias : f32
      linalg.yield %r : f32
  }} -> {x}
  return %out : {x}
}}
"""


# ---------------------------------------------------------------------------
# Weights and cases


def make_weights(a, cfg):
    g = torch.Generator().manual_seed(a.data_seed)
    E, D, Fd = a.experts, a.dim, a.ffn

    def n(*shape, std=1.0, mean=0.0):
        return (torch.randn(*shape, generator=g) * std + mean).numpy().astype(np.float32)

    t = {}
    if a.block and a.attention:
        t["ln_a.gamma"], t["ln_a.beta"] = n(D, std=0.1, mean=1.0), n(D, std=0.1)
        for c in "qkvo":
            t[f"attn.w{c}"] = n(D, D, std=D ** -0.5)
            t[f"attn.b{c}"] = n(D, std=0.1 * D ** -0.5)
    if a.block:
        t["ln.gamma"], t["ln.beta"] = n(D, std=0.1, mean=1.0), n(D, std=0.1)
    if not (a.gate_input or cfg.strategy == "hash"):
        t["gate.w"] = n(D, E, std=a.logit_scale * D ** -0.5)
        perm = torch.randperm(E, generator=g).numpy()
        ramp = np.linspace(1.0, -1.0, E)[perm] if E > 1 else np.zeros(1)
        t["gate.b"] = (a.skew * ramp + n(E, std=0.1)).astype(np.float32)
    if cfg.table is not None:
        t["hash.table"] = cfg.table.astype(np.int32)
    t["experts.w1"] = n(E, D, Fd, std=D ** -0.5)
    t["experts.b1"] = n(E, Fd, std=0.1 * D ** -0.5)
    t["experts.w2"] = n(E, Fd, D, std=Fd ** -0.5)
    t["experts.b2"] = n(E, D, std=0.1 * Fd ** -0.5)
    return t


def make_table(V, E, seed):
    """A balanced hash table: V ids, each expert V/E of them (+-1), shuffled."""
    rng = np.random.default_rng(seed + 4242)
    return rng.permutation(np.arange(V) % E).astype(np.int64)


def make_gate(a, cfg, i, gen):
    """The gate input of case i: logits [T, E] float32, or hash ids [T] int32."""
    T, E = a.tokens, a.experts
    if cfg.strategy == "hash":
        if cfg.table is not None:
            ids = torch.randint(0, cfg.table.size, (T,), generator=gen)
        else:
            ids = torch.randint(-(2 ** 31), 2 ** 31 - 1, (T,), generator=gen)
            if i % 3 == 1:
                ids = torch.randint(-50, 1000, (T,), generator=gen)
            if i == 0:
                ids[:6] = torch.tensor([-(2 ** 31), 2 ** 31 - 1, -1, 0, E, -E])
        return ids.to(torch.int32).numpy()
    l = torch.randn(T, E, generator=gen) * a.logit_scale
    if a.skew and i % 4 == 1:
        perm = torch.randperm(E, generator=gen)
        ramp = torch.linspace(1.0, -1.0, E)[perm] if E > 1 else torch.zeros(1)
        l = l + a.skew * ramp
    if i % 5 == 2:
        l = l.round()
    if i % 7 == 3 and T >= 8:
        src = torch.randint(0, T, (T // 4,), generator=gen)
        dst = torch.randint(0, T, (T // 4,), generator=gen)
        l[dst] = l[src]
    return l.numpy().astype(np.float32)


# ---------------------------------------------------------------------------
# The independent scalar derivation of docs/moe.md (for --self-check)


def s_exp(v):
    return exp32_scalar(v)


def s_softmax(z):
    z = [np.float32(v) for v in z]
    m = z[0]
    for v in z[1:]:
        if v > m:
            m = v
    e = [s_exp(np.float32(v - m)) for v in z]
    s = e[0]
    for v in e[1:]:
        s = np.float32(s + v)
    return [np.float32(v / s) for v in e]


def s_order(z):
    """Indices by descending value, ties to the lower index (selection)."""
    rest = list(range(len(z)))
    out = []
    while rest:
        best = rest[0]
        for e in rest[1:]:
            if z[e] > z[best]:
                best = e
        out.append(best)
        rest.remove(best)
    return out


def s_route(cfg, gate):
    """(expert [T][K], weight [T][K] float32, kept [T][K]) by plain loops."""
    s, E, K = cfg.strategy, cfg.num_experts, cfg.per_token
    T = len(gate)
    ex = [[-1] * K for _ in range(T)]
    w = [[np.float32(0)] * K for _ in range(T)]
    if s == "base":
        be = base_auction(np.asarray(gate, np.float32)).tolist()
    for t in range(T):
        if s == "hash":
            i = int(gate[t])
            e = int(cfg.table[i]) if cfg.table is not None else ((i % E) + E) % E
            ex[t][0], w[t][0] = e, np.float32(1)
            continue
        if s == "random":
            z = splitmix64(cfg.seed, t)
            ex[t][0], w[t][0] = ((z >> 40) * E) >> 24, np.float32(1)
            continue
        l = [np.float32(v) for v in gate[t]]
        if s in ("top_k", "switch"):
            p = s_softmax(l)
            for j, e in enumerate(s_order(l)[:K]):
                ex[t][j], w[t][j] = e, p[e]
        elif s == "gshard":
            p = s_softmax(l)
            e1, e2 = s_order(l)[:2]
            d = np.float32(p[e1] + p[e2])
            g1, g2 = np.float32(p[e1] / d), np.float32(p[e2] / d)
            u = (splitmix64(cfg.seed or 0, t) >> 40) / float(1 << 24)
            ex[t][0], w[t][0] = e1, g1
            if u < 2.0 * float(g2):
                ex[t][1], w[t][1] = e2, g2
        elif s == "base":
            e = be[t]
            ex[t][0] = e
            w[t][0] = np.float32(np.float32(1) / np.float32(np.float32(1) + s_exp(-l[e])))
        elif s == "k_top1":
            n = E // cfg.k
            for j in range(cfg.k):
                blk = l[j * n:(j + 1) * n]
                i = s_order(blk)[0]
                ex[t][j], w[t][j] = j * n + i, s_softmax(blk)[i]
        elif s == "dense_to_sparse":
            tau = np.float32(cfg.temperature)
            q = s_softmax([np.float32(v / tau) for v in l])
            j = 0
            th = np.float32(cfg.threshold)
            for e in range(E):
                if q[e] > th:
                    ex[t][j], w[t][j] = e, q[e]
                    j += 1
        if cfg.renormalize and s != "gshard":
            js = [j for j in range(K) if ex[t][j] >= 0]
            tot = np.float32(0)
            for j in js:
                tot = np.float32(tot + w[t][j])
            if tot > 0:
                for j in js:
                    w[t][j] = np.float32(w[t][j] / tot)
    kept = [[ex[t][j] >= 0 for j in range(K)] for t in range(T)]
    C = cfg.capacity(T)
    if C:
        G = cfg.num_groups
        Tg = T // G
        held = [[0] * E for _ in range(G)]
        for j in range(K):
            for g in range(G):
                toks = [t for t in range(g * Tg, (g + 1) * Tg) if ex[t][j] >= 0]
                if cfg.priority == "score":
                    # insertion sort: descending weight, ties by token index
                    srt = []
                    for t in toks:
                        pos = len(srt)
                        while pos > 0 and w[srt[pos - 1]][j] < w[t][j]:
                            pos -= 1
                        srt.insert(pos, t)
                    toks = srt
                for t in toks:
                    e = ex[t][j]
                    if held[g][e] < C:
                        held[g][e] += 1
                    else:
                        kept[t][j] = False
    return ex, w, kept


# ---------------------------------------------------------------------------


def find_dyncc_opt():
    for p in ("build-lead/tools/dyncc-opt/dyncc-opt", "build/tools/dyncc-opt/dyncc-opt"):
        q = os.path.join(ROOT, p)
        if os.path.exists(q):
            return q
    return None


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_argument_group("routing (the dyn.route attributes)")
    g.add_argument("--strategy", choices=STRATEGIES, default="switch")
    g.add_argument("--k", type=int, default=None, help="top_k: experts per token; k_top1: prototypes")
    g.add_argument("--capacity-factor", type=float, default=None)
    g.add_argument("--priority", choices=PRIORITIES, default=None)
    g.add_argument("--groups", type=int, default=None)
    g.add_argument("--dropless-block", type=int, default=None)
    g.add_argument("--seed", type=int, default=None, help="gshard / random seed (the attribute)")
    g.add_argument("--temperature", type=float, default=None)
    g.add_argument("--threshold", type=float, default=None)
    g.add_argument("--renormalize", action="store_true")
    g.add_argument("--hash-table", type=int, default=0, metavar="V",
                   help="hash: a balanced table of V ids (weight hash.table) instead of id mod E")
    g = ap.add_argument_group("model")
    g.add_argument("--tokens", type=int, default=64)
    g.add_argument("--dim", type=int, default=32)
    g.add_argument("--ffn", type=int, default=64)
    g.add_argument("--experts", type=int, default=8)
    g.add_argument("--gate-input", action="store_true",
                   help="the gate logits are a model input (default: a gate linear layer inside)")
    g.add_argument("--block", action="store_true", help="a pre-LN transformer block y = h + MoE(LN(h))")
    g.add_argument("--attention", action="store_true",
                   help="with --block: an attention sublayer first, h = x + Attention(LN_a(x))")
    g.add_argument("--heads", type=int, default=4)
    g.add_argument("--no-logits-output", dest="logits_output", action="store_false",
                   help="gate inside: do not return the logits as a second output")
    g = ap.add_argument_group("cases")
    g.add_argument("--cases", type=int, default=20)
    g.add_argument("--skew", type=float, default=2.0,
                   help="gate inputs: every 4th case adds skew * a ramp over the experts; "
                        "gate inside: the ramp is in gate.b")
    g.add_argument("--logit-scale", type=float, default=1.0)
    g.add_argument("--data-seed", type=int, default=0, help="weights and inputs")
    ap.add_argument("--out-dir", default=".")
    ap.add_argument("--name", default="moe")
    ap.add_argument("--self-check", action="store_true")
    ap.add_argument("--dyncc-opt", default=None, help="with --self-check: parse the MLIR with it")
    a = ap.parse_args(argv)
    if not a.name.isidentifier():
        ap.error("--name must be an identifier")
    if a.block and a.attention and a.dim % a.heads:
        ap.error("--dim must be a multiple of --heads")
    if a.hash_table and a.strategy != "hash":
        ap.error("--hash-table only applies to --strategy hash")
    return ap, a


def config_of(a):
    table = make_table(a.hash_table, a.experts, a.data_seed) if a.hash_table else None
    return RouteConfig(a.strategy, a.experts, k=a.k, capacity_factor=a.capacity_factor,
                       priority=a.priority, groups=a.groups, seed=a.seed,
                       temperature=a.temperature, threshold=a.threshold,
                       renormalize=a.renormalize, dropless_block=a.dropless_block, table=table)


def generate(a, quiet=False):
    """Writes the files; returns (cfg, tensors, model, expected dict)."""
    t_start = time.time()
    cfg = config_of(a)
    T, D, E = a.tokens, a.dim, a.experts
    if a.groups and T % a.groups:
        raise SystemExit(f"--groups {a.groups} must divide --tokens {T}")
    if cfg.strategy == "base" and T % E:
        raise SystemExit(f"base needs --tokens {T} divisible by --experts {E}")
    os.makedirs(a.out_dir, exist_ok=True)
    base = os.path.join(a.out_dir, a.name)
    gate_input = a.gate_input or cfg.strategy == "hash"

    gen = MoEGen(a.name, cfg, T, D, a.ffn, a.heads, a.block, a.attention, a.gate_input,
                 a.logits_output, a.hash_table)
    with open(base + ".mlir", "w") as f:
        f.write(gen.module())

    tensors = make_weights(a, cfg)
    meta = dict(format="pt", generator="examples/moe/make_moe.py", route=cfg.to_json(),
                tokens=T, dim=D, ffn=a.ffn, experts=E, heads=a.heads,
                block=int(a.block), attention=int(a.block and a.attention),
                gate_input=int(gate_input), logits_output=int(gen.logits_output),
                data_seed=a.data_seed, skew=a.skew, logit_scale=a.logit_scale)
    save_safetensors(base + ".safetensors", tensors, meta)
    model = MoEModel(tensors, cfg, block=a.block, attention=a.block and a.attention,
                     heads=a.heads, gate_input=gate_input)

    K = cfg.per_token
    N = a.cases
    xs, gates, logits = [], [], []
    ys, asg, tpe, drp, exs, ws, kps = [], [], [], [], [], [], []
    gcase = torch.Generator().manual_seed(a.data_seed + 1_000_003)
    with torch.no_grad():
        for i in range(N):
            x = torch.randn(T, D, generator=gcase).numpy().astype(np.float32)
            g = make_gate(a, cfg, i, gcase) if gate_input else None
            y, lg, r = model.forward(x, gate=g)
            xs.append(x)
            if g is not None:
                gates.append(g)
            logits.append(np.asarray(lg if lg is not None else
                                     (g if cfg.strategy != "hash" else np.zeros((T, E))), np.float32))
            ys.append(y.numpy().astype(np.float32))
            asg.append(r.assignment)
            tpe.append(r.tokens_per_expert)
            drp.append(r.dropped)
            exs.append(r.expert.numpy().astype(np.int32))
            ws.append(r.weight.numpy())
            kps.append(r.kept.numpy())
    x_all = np.stack(xs)
    np.save(base + ".x.npy", x_all)
    if gates:
        np.save(base + ".gate.npy", np.stack(gates))
    exp = dict(config=np.array(cfg.to_json()),
               inputs=np.array([n for n, _ in gen.inputs()]),
               outputs=np.array([n for n, _ in gen.outputs()]),
               capacity=np.int64(cfg.capacity(T)), slots=np.int64(cfg.slots(T)),
               per_token=np.int64(K), logits=np.stack(logits),
               assignment=np.stack(asg).astype(np.int32),
               tokens_per_expert=np.stack(tpe).astype(np.int64),
               dropped=np.array(drp, np.int64), expert=np.stack(exs), weight=np.stack(ws),
               kept=np.stack(kps), y=np.stack(ys))
    np.savez(base + ".expected.npz", **exp)
    if not quiet:
        n = sum(np.asarray(t).size for t in tensors.values())
        C = cfg.capacity(T)
        print(f"wrote {base}.mlir, .safetensors ({len(tensors)} tensors, {n} values), .x.npy "
              f"{list(x_all.shape)}" + (", .gate.npy" if gates else "") +
              f", .expected.npz ({N} cases) in {time.time() - t_start:.1f} s")
        print(f"{cfg}: K = {K}, C = {C}, S = {cfg.slots(T)}; per case: dropped "
              f"{[int(d) for d in drp]}")
        tp = np.stack(tpe)
        print(f"tokens per expert: min {tp.min()}, mean {tp.mean():.1f}, max {tp.max()}; "
              f"choices absent: {int((np.stack(exs) < 0).sum())} of {N * T * K}")
    return cfg, tensors, model, exp, gates, x_all


def self_check(a, cfg, tensors, model, exp, gates, x_all):
    t0 = time.time()
    ok = True
    T, N, K = a.tokens, a.cases, cfg.per_token
    gate_input = a.gate_input or cfg.strategy == "hash"
    bad_s, bad_i = 0, []
    for i in range(N):
        g = gates[i] if gate_input else exp["logits"][i]
        ex, w, kept = s_route(cfg, g)
        ex, w, kept = np.array(ex), np.array(w, np.float32), np.array(kept)
        if not (np.array_equal(ex, exp["expert"][i]) and np.array_equal(kept, exp["kept"][i])
                and np.array_equal(w.view(np.int32), exp["weight"][i].view(np.int32))):
            bad_s += 1
            if bad_s <= 3:
                d = np.argwhere((ex != exp["expert"][i]) | (kept != exp["kept"][i])
                                | (w != exp["weight"][i]))
                t, j = d[0]
                print(f"  case {i} token {t} choice {j}: scalar ({ex[t, j]}, {w[t, j]!r}, "
                      f"{kept[t, j]}) vs reference ({exp['expert'][i][t, j]}, "
                      f"{exp['weight'][i][t, j]!r}, {exp['kept'][i][t, j]})")
        r = route(cfg, g if cfg.strategy == "hash" else np.asarray(g, np.float32))
        bad_i += [f"case {i}: {f}" for f in check_invariants(cfg, r, T)]
    print(f"self-check: assignment, torch reference vs scalar derivation (bitwise weights), "
          f"{N} cases: " + ("OK" if not bad_s else f"{bad_s} DIFFER"))
    print("self-check: invariants: " + ("OK" if not bad_i else f"{len(bad_i)} FAILURES"))
    for f in bad_i[:5]:
        print("   ", f)
    ok &= bad_s == 0 and not bad_i

    # the eager Hugging Face-style layer agrees where its routing is the same
    if (cfg.strategy in ("switch", "top_k") and cfg.priority in (None, "token_order")
            and cfg.num_groups == 1):
        eager = EagerMoE(tensors, top_k=K, capacity_factor=cfg.capacity_factor,
                         renormalize=cfg.renormalize).double()
        worst, used = 0.0, 0
        with torch.no_grad():
            for i in range(N):
                srt = np.sort(exp["logits"][i], axis=1)
                if (srt[:, 1:] == srt[:, :-1]).any():
                    continue        # torch.topk breaks ties its own way
                used += 1
                h, u = model.pre_route(x_all[i])
                lg = torch.from_numpy(exp["logits"][i]).double()
                moe = eager(u, logits=lg)
                y = (h + moe) if a.block else moe
                err = (y - torch.from_numpy(exp["y"][i]).double()).abs() / (1 + y.abs())
                worst = max(worst, float(err.max()))
        print(f"self-check: eager HF-style layer (EagerMoE) vs expected y, {used} cases "
              f"without tied logits: "
              f"max error {worst:.2g} " + ("OK" if worst < 1e-5 else "DIFFER"))
        ok &= worst < 1e-5

    opt = a.dyncc_opt or find_dyncc_opt()
    if opt:
        p = subprocess.run([opt, os.path.join(a.out_dir, a.name + ".mlir")],
                           capture_output=True, text=True)
        print(f"self-check: {os.path.relpath(opt, ROOT) if opt.startswith(ROOT) else opt} "
              "parses and verifies the MLIR: " + ("OK" if p.returncode == 0 else "FAILED"))
        if p.returncode:
            print(p.stderr[-3000:])
        ok &= p.returncode == 0
    print(f"self-check: {'PASSED' if ok else 'FAILED'} in {time.time() - t0:.1f} s")
    return ok


def main(argv=None):
    ap, a = parse_args(argv)
    try:
        cfg, tensors, model, exp, gates, x_all = generate(a)
    except ValueError as e:
        ap.error(str(e))
    if a.self_check:
        sys.exit(0 if self_check(a, cfg, tensors, model, exp, gates, x_all) else 1)


if __name__ == "__main__":
    main()
