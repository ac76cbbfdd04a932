#!/usr/bin/env python3
"""Generates a skimming RNN (dyn.skip) for dyncc, with test cases.

    .venv/bin/python make_skim.py --method lstm_jump --out-dir DIR --name NAME [--self-check]

writes into DIR:

  NAME.mlir          the model: one `dyn.skip` over the sequence whose decide
                     region and action regions are the method's cells and
                     decision heads (examples/skim/reference.py describes
                     every method), in the dyncc input op set (docs/ops.md)
  NAME.safetensors   the weights ([out, in] matrices, 64-byte aligned);
                     metadata: the configuration (JSON)
  NAME.x.npy         the cases' step inputs, [N, S, D] float32
  NAME.classes.npy   the token classes, [N, S] int32 (jumper,
                     structural_jump: reference.CLASS_NAMES)
  NAME.query.npy     the queries, [N, D] float32 (fhrnn)
  NAME.expected.npz  the reference's (reference.run_skim) results, see below

The entry function:

    func.func @NAME(%seq: tensor<SxDxf32> {dyn.name = "x"},
                    [%classes: tensor<Sxi32> {dyn.name = "classes"},]
                    [%query: tensor<Dxf32> {dyn.name = "query"},]
                    weights... {dyn.weight = "..."}) -> (the final state)

The initial state is zeros (tensor.empty + linalg.fill). Decisions are made
in linalg ops: an argmax is a generic reduction with two outputs (the
maximum and its first index) into tensor<1xi32>, a threshold a generic
sigmoid(z) > 0.5 -> tensor<1xi32>, the method's rule (read while n < R, the
jump amount, ...) an elementwise generic on those; the host only extracts
the result (tensor.extract, arith.index_cast, arith.extsi). Jumper reads the
class of the step on the host (tensor.extract %classes[%pos], integer
compare and select). Cells are private functions (@lstm_I_H, @gru_I_H,
@rnn_I_H) of linalg.matvec (--gemv generic: the same as linalg.generic) and
elementwise generics, called with func.call; sigmoid is 1 / (1 + exp(-v)).

NAME.expected.npz: config (JSON), method, inputs (names), outputs (the state
names), actions (JSON [[kind, targets]]), budget; per case: steps [N],
trace [N, B, 3] int32 (pos, action, amount; rows past `steps` are -1),
termination [N] (reference.TERMINATIONS), final_pos [N], error_step [N] (-1
or the failing step, bad_action), margin [N] (the smallest decision margin),
and state_<name> [N, ...] float32, the final state.

Cases: x = o + N(0, 1) with a per-case offset o ~ N(0, 0.7^2) (so that
cases differ in how they read); classes: words with p = 0.7, `,` 0.08, `:`
0.04, `.` 0.1, `!` 0.04, `?` 0.04; queries N(0, 1). A case whose decisions
come within --min-margin of a tie (two logits, a threshold, VCRNN's m(t) H
at an integer) is drawn again, so that float32 kernels that sum in another
order take the same decisions.

--self-check runs every case again with an independent float64 numpy
implementation of each method and of the loop (np_run below), which must
give the same traces and the final states to 1e-5; checks that every action
of the method and the method's required endings (early stops, jumps past
the end, backward shuttles, budget exhaustion, ...) occur in the cases; and,
with --dyncc-opt (default: build-lead's), that the MLIR parses and
verifies.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "encoder"))

from reference import (CLASS_NAMES, METHODS, SENTENCE_ENDS, SEPARATORS, TITLES,  # noqa: E402
                       SkimConfig, make_method, run_skim)
from torch_eager import save_safetensors  # noqa: E402

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))


# ---------------------------------------------------------------------------
# MLIR text


def T(*dims, ty="f32"):
    return "tensor<" + "".join(f"{d}x" for d in dims) + ty + ">"


def f32(v):
    """A float32 literal that round-trips."""
    v = np.float32(v)
    if not np.isfinite(v):
        return "0x" + np.array([v], np.float32).view(np.uint32)[0].tobytes()[::-1].hex().upper()
    r = np.format_float_scientific(v, unique=True, trim="0") if v != 0 and (
        abs(v) < 1e-3 or abs(v) >= 1e7) else np.format_float_positional(v, unique=True, trim="0")
    if "." not in r and "e" not in r:
        r += ".0"
    if r.endswith("."):
        r += "0"
    return r


class Module:
    """The private helper functions of the module (each emitted once)."""

    def __init__(self, gemv="matvec"):
        self.gemv = gemv
        self.funcs = {}

    def need(self, name, make):
        if name not in self.funcs:
            self.funcs[name] = None      # reserve the slot (order of first use)
            self.funcs[name] = make()
        return "@" + name

    # y = W v
    def lin(self, O, I):
        def make():
            if self.gemv == "matvec":
                mv = (f"  %r = linalg.matvec ins(%w, %v : {T(O, I)}, {T(I)}) outs(%f : {T(O)}) "
                      f"-> {T(O)}")
            else:
                mv = f"""\
  %r = linalg.generic {{indexing_maps = [#mv_a, #mv_x, #mv_y], iterator_types = ["parallel", "reduction"]}}
      ins(%w, %v : {T(O, I)}, {T(I)}) outs(%f : {T(O)}) {{
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }} -> {T(O)}"""
            return f"""\
// y = W v, W [{O}, {I}]
func.func private @lin_{O}x{I}(%w: {T(O, I)}, %v: {T(I)}) -> {T(O)} {{
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : {T(O)}
  %f = linalg.fill ins(%zero : f32) outs(%e : {T(O)}) -> {T(O)}
{mv}
  return %r : {T(O)}
}}"""
        return self.need(f"lin_{O}x{I}", make)

    # a1 + a2 + ... (left to right)
    def add(self, k, N):
        def make():
            args = ", ".join(f"%a{i}: {T(N)}" for i in range(k))
            bargs = ", ".join(f"%v{i}: f32" for i in range(k))
            body, acc = [], "%v0"
            for i in range(1, k):
                body.append(f"    %s{i} = arith.addf {acc}, %v{i} : f32")
                acc = f"%s{i}"
            maps = ", ".join(["#id1"] * (k + 1))
            return f"""\
func.func private @add{k}_{N}({args}) -> {T(N)} {{
  %e = tensor.empty() : {T(N)}
  %r = linalg.generic {{indexing_maps = [{maps}], iterator_types = ["parallel"]}}
      ins({", ".join(f"%a{i}" for i in range(k))} : {", ".join([T(N)] * k)}) outs(%e : {T(N)}) {{
  ^bb0({bargs}, %o: f32):
{chr(10).join(body)}
    linalg.yield {acc} : f32
  }} -> {T(N)}
  return %r : {T(N)}
}}"""
        return self.need(f"add{k}_{N}", make)

    # the first index of the maximum, tensor<1xi32>
    def argmax(self, N):
        def make():
            return f"""\
// argmax: a reduction with two outputs (the maximum, its first index)
func.func private @argmax_{N}(%l: {T(N)}) -> {T(1, ty="i32")} {{
  %ninf = arith.constant 0xFF800000 : f32
  %z = arith.constant 0 : i32
  %em = tensor.empty() : {T(1)}
  %m0 = linalg.fill ins(%ninf : f32) outs(%em : {T(1)}) -> {T(1)}
  %ei = tensor.empty() : {T(1, ty="i32")}
  %i0 = linalg.fill ins(%z : i32) outs(%ei : {T(1, ty="i32")}) -> {T(1, ty="i32")}
  %r:2 = linalg.generic {{indexing_maps = [#red_in, #red_out, #red_out], iterator_types = ["parallel", "reduction"]}}
      ins(%l : {T(N)}) outs(%m0, %i0 : {T(1)}, {T(1, ty="i32")}) {{
  ^bb0(%v: f32, %m: f32, %i: i32):
    %j = linalg.index 1 : index
    %ji = arith.index_cast %j : index to i32
    %gt = arith.cmpf ogt, %v, %m : f32
    %nm = arith.select %gt, %v, %m : f32
    %ni = arith.select %gt, %ji, %i : i32
    linalg.yield %nm, %ni : f32, i32
  }} -> ({T(1)}, {T(1, ty="i32")})
  return %r#1 : {T(1, ty="i32")}
}}"""
        return self.need(f"argmax_{N}", make)

    # sigmoid(z) > 0.5, tensor<1xi32>
    def gate(self):
        def make():
            return f"""\
// sigmoid(z) > 0.5 as 0 / 1
func.func private @gate(%z: {T(1)}) -> {T(1, ty="i32")} {{
  %e = tensor.empty() : {T(1, ty="i32")}
  %r = linalg.generic {{indexing_maps = [#id1, #id1], iterator_types = ["parallel"]}}
      ins(%z : {T(1)}) outs(%e : {T(1, ty="i32")}) {{
  ^bb0(%v: f32, %o: i32):
    %one = arith.constant 1.0 : f32
    %half = arith.constant 0.5 : f32
    %nv = arith.negf %v : f32
    %ex = math.exp %nv : f32
    %d = arith.addf %one, %ex : f32
    %s = arith.divf %one, %d : f32
    %gt = arith.cmpf ogt, %s, %half : f32
    %i1 = arith.constant 1 : i32
    %i0 = arith.constant 0 : i32
    %r = arith.select %gt, %i1, %i0 : i32
    linalg.yield %r : i32
  }} -> {T(1, ty="i32")}
  return %r : {T(1, ty="i32")}
}}"""
        return self.need("gate", make)

    def lstm(self, I, H):
        def make():
            lx, lh, add = self.lin(4 * H, I), self.lin(4 * H, H), self.add(3, 4 * H)
            sl = "\n".join(f"  %g{k} = tensor.extract_slice %g[{k * H}] [{H}] [1] : {T(4 * H)} to {T(H)}"
                           for k in range(4))
            return f"""\
// LSTM cell (PyTorch gate order i, f, g, o): gates = W_ih x + W_hh h + b,
// c' = sigmoid(f) c + sigmoid(i) tanh(g), h' = sigmoid(o) tanh(c')
func.func private @lstm_{I}_{H}(%x: {T(I)}, %h: {T(H)}, %c: {T(H)}, %wih: {T(4 * H, I)}, %whh: {T(4 * H, H)}, %b: {T(4 * H)}) -> ({T(H)}, {T(H)}) {{
  %gx = func.call {lx}(%wih, %x) : ({T(4 * H, I)}, {T(I)}) -> {T(4 * H)}
  %gh = func.call {lh}(%whh, %h) : ({T(4 * H, H)}, {T(H)}) -> {T(4 * H)}
  %g = func.call {add}(%gx, %gh, %b) : ({T(4 * H)}, {T(4 * H)}, {T(4 * H)}) -> {T(4 * H)}
{sl}
  %eh = tensor.empty() : {T(H)}
  %ec = tensor.empty() : {T(H)}
  %r:2 = linalg.generic {{indexing_maps = [#id1, #id1, #id1, #id1, #id1, #id1, #id1], iterator_types = ["parallel"]}}
      ins(%g0, %g1, %g2, %g3, %c : {T(H)}, {T(H)}, {T(H)}, {T(H)}, {T(H)}) outs(%eh, %ec : {T(H)}, {T(H)}) {{
  ^bb0(%i: f32, %f: f32, %gg: f32, %o: f32, %cc: f32, %oh: f32, %oc: f32):
    %one = arith.constant 1.0 : f32
    %ni = arith.negf %i : f32
    %xi = math.exp %ni : f32
    %di = arith.addf %one, %xi : f32
    %si = arith.divf %one, %di : f32
    %nf = arith.negf %f : f32
    %xf = math.exp %nf : f32
    %df = arith.addf %one, %xf : f32
    %sf = arith.divf %one, %df : f32
    %no = arith.negf %o : f32
    %xo = math.exp %no : f32
    %do = arith.addf %one, %xo : f32
    %so = arith.divf %one, %do : f32
    %tg = math.tanh %gg : f32
    %fc = arith.mulf %sf, %cc : f32
    %ig = arith.mulf %si, %tg : f32
    %c2 = arith.addf %fc, %ig : f32
    %tc = math.tanh %c2 : f32
    %h2 = arith.mulf %so, %tc : f32
    linalg.yield %h2, %c2 : f32, f32
  }} -> ({T(H)}, {T(H)})
  return %r#0, %r#1 : {T(H)}, {T(H)}
}}"""
        return self.need(f"lstm_{I}_{H}", make)

    def gru(self, I, H):
        def make():
            lx, lh, add = self.lin(3 * H, I), self.lin(3 * H, H), self.add(2, 3 * H)
            sl = "\n".join(
                f"  %{v}{k} = tensor.extract_slice %{v}b[{k * H}] [{H}] [1] : {T(3 * H)} to {T(H)}"
                for v in ("gx", "gh") for k in range(3))
            return f"""\
// GRU cell (torch.nn.GRUCell): r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),
// z likewise, n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h' = (1 - z) n + z h
func.func private @gru_{I}_{H}(%x: {T(I)}, %h: {T(H)}, %wih: {T(3 * H, I)}, %whh: {T(3 * H, H)}, %bih: {T(3 * H)}, %bhh: {T(3 * H)}) -> {T(H)} {{
  %gx = func.call {lx}(%wih, %x) : ({T(3 * H, I)}, {T(I)}) -> {T(3 * H)}
  %gh = func.call {lh}(%whh, %h) : ({T(3 * H, H)}, {T(H)}) -> {T(3 * H)}
  %gxb = func.call {add}(%gx, %bih) : ({T(3 * H)}, {T(3 * H)}) -> {T(3 * H)}
  %ghb = func.call {add}(%gh, %bhh) : ({T(3 * H)}, {T(3 * H)}) -> {T(3 * H)}
{sl}
  %e = tensor.empty() : {T(H)}
  %r = linalg.generic {{indexing_maps = [#id1, #id1, #id1, #id1, #id1, #id1, #id1, #id1], iterator_types = ["parallel"]}}
      ins(%gx0, %gx1, %gx2, %gh0, %gh1, %gh2, %h : {", ".join([T(H)] * 7)}) outs(%e : {T(H)}) {{
  ^bb0(%xr: f32, %xz: f32, %xn: f32, %hr: f32, %hz: f32, %hn: f32, %hh: f32, %o: f32):
    %one = arith.constant 1.0 : f32
    %ar = arith.addf %xr, %hr : f32
    %nr = arith.negf %ar : f32
    %er = math.exp %nr : f32
    %dr = arith.addf %one, %er : f32
    %r = arith.divf %one, %dr : f32
    %az = arith.addf %xz, %hz : f32
    %nz = arith.negf %az : f32
    %ez = math.exp %nz : f32
    %dz = arith.addf %one, %ez : f32
    %z = arith.divf %one, %dz : f32
    %rh = arith.mulf %r, %hn : f32
    %an = arith.addf %xn, %rh : f32
    %n = math.tanh %an : f32
    %omz = arith.subf %one, %z : f32
    %p = arith.mulf %omz, %n : f32
    %q = arith.mulf %z, %hh : f32
    %h2 = arith.addf %p, %q : f32
    linalg.yield %h2 : f32
  }} -> {T(H)}
  return %r : {T(H)}
}}"""
        return self.need(f"gru_{I}_{H}", make)

    def rnn(self, I, H):
        def make():
            lx, lh = self.lin(H, I), self.lin(H, H)
            return f"""\
// vanilla RNN cell: h' = tanh(W_ih x + W_hh h + b)
func.func private @rnn_{I}_{H}(%x: {T(I)}, %h: {T(H)}, %wih: {T(H, I)}, %whh: {T(H, H)}, %b: {T(H)}) -> {T(H)} {{
  %gx = func.call {lx}(%wih, %x) : ({T(H, I)}, {T(I)}) -> {T(H)}
  %gh = func.call {lh}(%whh, %h) : ({T(H, H)}, {T(H)}) -> {T(H)}
  %e = tensor.empty() : {T(H)}
  %r = linalg.generic {{indexing_maps = [#id1, #id1, #id1, #id1], iterator_types = ["parallel"]}}
      ins(%gx, %gh, %b : {T(H)}, {T(H)}, {T(H)}) outs(%e : {T(H)}) {{
  ^bb0(%a: f32, %bb: f32, %cb: f32, %o: f32):
    %s = arith.addf %a, %bb : f32
    %t = arith.addf %s, %cb : f32
    %y = math.tanh %t : f32
    linalg.yield %y : f32
  }} -> {T(H)}
  return %r : {T(H)}
}}"""
        return self.need(f"rnn_{I}_{H}", make)


class Namer:
    def __init__(self):
        self.k = 0

    def __call__(self, base="v"):
        self.k += 1
        return f"%{base}{self.k}"


def wname(n):
    return "%" + n.replace(".", "_")


class Body:
    """The ops of one region of the entry function, with fresh SSA names."""

    def __init__(self, mod, namer, shapes, indent="      "):
        self.mod, self.v, self.shapes, self.ind = mod, namer, shapes, indent
        self.lines = []

    def emit(self, text):
        self.lines += [self.ind + ln for ln in text.split("\n")]

    def call(self, fn, args, results, base="v"):
        """args, results: [(value, type)] / [type]; returns the result names."""
        names = [self.v(base) for _ in results]
        lhs = names[0] if len(names) == 1 else f"{names[0]}:{len(names)}"
        a = ", ".join(n for n, _ in args)
        at = ", ".join(t for _, t in args)
        rt = results[0] if len(results) == 1 else "(" + ", ".join(results) + ")"
        self.emit(f"{lhs} = func.call {fn}({a}) : ({at}) -> {rt}")
        if len(names) == 1:
            return names
        return [f"{names[0]}#{i}" for i in range(len(names))]

    def wt(self, name):
        return T(*self.shapes[name])

    def lin(self, w, v):
        O, I = self.shapes[w]
        return self.call(self.mod.lin(O, I), [(wname(w), T(O, I)), (v, T(I))], [T(O)], "mv")[0]

    def add(self, vals, N):
        if len(vals) == 1:
            return vals[0]
        return self.call(self.mod.add(len(vals), N), [(v, T(N)) for v in vals], [T(N)], "sum")[0]

    def affine(self, terms, bias):
        """sum of W_i v_i + b: terms [(weight name, vector)], bias weight name."""
        O = self.shapes[bias][0]
        return self.add([self.lin(w, v) for w, v in terms] + [wname(bias)], O)

    def argmax(self, v, N):
        return self.call(self.mod.argmax(N), [(v, T(N))], [T(1, ty="i32")], "am")[0]

    def gate(self, z):
        return self.call(self.mod.gate(), [(z, T(1))], [T(1, ty="i32")], "gt")[0]

    def scalar(self, t, to):
        """tensor<1xi32> -> index or i64 on the host."""
        c0, e, r = self.v("c0_"), self.v("e"), self.v("s")
        self.emit(f"{c0} = arith.constant 0 : index\n"
                  f"{e} = tensor.extract {t}[{c0}] : {T(1, ty='i32')}")
        if to == "index":
            self.emit(f"{r} = arith.index_cast {e} : i32 to index")
        else:
            self.emit(f"{r} = arith.extsi {e} : i32 to i64")
        return r

    def zeros(self, N):
        z, e, f = self.v("zero"), self.v("empty"), self.v("zeros")
        self.emit(f"{z} = arith.constant 0.0 : f32\n{e} = tensor.empty() : {T(N)}\n"
                  f"{f} = linalg.fill ins({z} : f32) outs({e} : {T(N)}) -> {T(N)}")
        return f

    def lstm(self, p, x, h, c, I, H):
        args = [(x, T(I)), (h, T(H)), (c, T(H))] + [(wname(f"{p}.{n}"), self.wt(f"{p}.{n}"))
                                                    for n in ("w_ih", "w_hh", "b")]
        return self.call(self.mod.lstm(I, H), args, [T(H), T(H)], p.replace(".", "_"))

    def gru(self, p, x, h, I, H):
        args = [(x, T(I)), (h, T(H))] + [(wname(f"{p}.{n}"), self.wt(f"{p}.{n}"))
                                         for n in ("w_ih", "w_hh", "b_ih", "b_hh")]
        return self.call(self.mod.gru(I, H), args, [T(H)], p.replace(".", "_"))[0]

    def rnn(self, p, x, h, I, H):
        args = [(x, T(I)), (h, T(H))] + [(wname(f"{p}.{n}"), self.wt(f"{p}.{n}"))
                                         for n in ("w_ih", "w_hh", "b")]
        return self.call(self.mod.rnn(I, H), args, [T(H)], p.replace(".", "_"))[0]

    def ew(self, ins, outs, body, N=1, maps=None):
        """An elementwise linalg.generic over [N]: ins [(value, type)], outs
        [type]; body: lines where $0, $1, ... are the block arguments (the
        ins, then the outs) and $name a fresh temporary. Returns the
        results."""
        k = self.v("g")[1:]
        nargs = len(ins) + len(outs)
        import re

        def sub(text):
            text = re.sub(r"\$(\d+)", lambda m: f"%{k}_a{m.group(1)}", text)
            return re.sub(r"\$([A-Za-z_]\w*)", lambda m: f"%{k}_{m.group(1)}", text)

        empties = []
        for t in outs:
            e = self.v("empty")
            self.emit(f"{e} = tensor.empty() : {t}")
            empties.append(e)
        res = self.v("r")
        lhs = res if len(outs) == 1 else f"{res}:{len(outs)}"
        bargs = ", ".join(f"%{k}_a{i}: {self.elem(t)}" for i, (_, t) in enumerate(ins)) + ", " + \
            ", ".join(f"%{k}_a{len(ins) + i}: {self.elem(t)}" for i, t in enumerate(outs))
        maps = maps or ", ".join(["#id1"] * nargs)
        rt = outs[0] if len(outs) == 1 else "(" + ", ".join(outs) + ")"
        self.emit(f"""\
{lhs} = linalg.generic {{indexing_maps = [{maps}], iterator_types = ["parallel"]}}
    ins({", ".join(v for v, _ in ins)} : {", ".join(t for _, t in ins)}) outs({", ".join(empties)} : {", ".join(outs)}) {{
^bb0({bargs}):
{chr(10).join("  " + sub(b) for b in body)}
}} -> {rt}""")
        return [res] if len(outs) == 1 else [f"{res}#{i}" for i in range(len(outs))]

    @staticmethod
    def elem(t):
        return t.rsplit("x", 1)[1].rstrip(">")


# ---------------------------------------------------------------------------
# The methods as MLIR: the decide region and the action regions


I32_1, F32_1 = T(1, ty="i32"), T(1)


def counter_rule(b, j, n, R, nonzero_is):
    """n < R: read (0, amount 0); else the jump/shuttle rule on j."""
    return b.ew([(j, I32_1), (n, F32_1)], [I32_1, I32_1], nonzero_is(f32(R)))


def mlir_method(m, mod, namer, shapes):
    """(pre lines, decide lines, decide terminator args, [region lines | None])
    of method m. The regions' block arguments are %pos, %x and the state
    names."""
    cfg, D, H = m.cfg, m.D, m.H
    st = ["%" + n for n in m.state_names]
    pre = Body(mod, namer, shapes, "    ")
    dec = Body(mod, namer, shapes)
    regions = []

    def region():
        return Body(mod, namer, shapes)

    def increment(b, n):
        return b.ew([(n, F32_1)], [F32_1], ["$one = arith.constant 1.0 : f32",
                                            "$s = arith.addf $0, $one : f32",
                                            "linalg.yield $s : f32"])[0]

    name = cfg.method
    amount = None
    if name == "lstm_jump":
        h, c, n = st
        j = dec.argmax(dec.affine([("jump.w", h)], "jump.b"), cfg.max_jump + 1)
        a, amt = dec.ew([(j, I32_1), (n, F32_1)], [I32_1, I32_1], [
            f"$R = arith.constant {f32(cfg.read)} : f32",
            "$rd = arith.cmpf olt, $1, $R : f32",
            "$z = arith.constant 0 : i32", "$one = arith.constant 1 : i32",
            "$two = arith.constant 2 : i32",
            "$isz = arith.cmpi eq, $0, $z : i32",
            "$aj = arith.select $isz, $two, $one : i32",
            "$a = arith.select $rd, $z, $aj : i32",
            "$still = arith.ori $rd, $isz : i1",
            "$amt = arith.select $still, $z, $0 : i32",
            "linalg.yield $a, $amt : i32, i32"])
        action, amount = dec.scalar(a, "index"), dec.scalar(amt, "i64")
        r = region()
        h2, c2 = r.lstm("cell", "%x", h, c, D, H)
        regions.append((r, [h2, c2, increment(r, n)]))
        r = region()
        regions.append((r, [h, c, r.zeros(1)]))
        regions.append(None)
    elif name == "skip_rnn":
        (h,) = st
        g = dec.gate(dec.affine([("gate.w_h", h), ("gate.w_x", "%x")], "gate.b"))
        a = dec.ew([(g, I32_1)], [I32_1], ["$one = arith.constant 1 : i32",
                                           "$a = arith.subi $one, $0 : i32",
                                           "linalg.yield $a : i32"])[0]
        action = dec.scalar(a, "index")
        r = region()
        regions.append((r, [r.gru("cell", "%x", h, D, H)]))
        regions.append(None)
    elif name == "reasonet":
        (h,) = st
        action = dec.scalar(dec.gate(dec.affine([("term.w", h)], "term.b")), "index")
        r = region()
        regions.append((r, [r.gru("cell", "%x", h, D, H)]))
        regions.append(None)
    elif name == "jumper":
        (h,) = st
        g = dec.gate(dec.affine([("stop.w", h)], "stop.b"))
        gv = dec.scalar(g, "i64")
        cls, lo, end, zero, sel, act = (namer("cls"), namer("c"), namer("end"), namer("z"),
                                        namer("sel"), namer("a"))
        dec.emit(f"// the class of the step, on the host: stop only at a sentence end\n"
                 f"{cls} = tensor.extract %classes[%pos] : {T(m.S, ty='i32')}\n"
                 f"{lo} = arith.constant {min(SENTENCE_ENDS)} : i32\n"
                 f"{end} = arith.cmpi sge, {cls}, {lo} : i32\n"
                 f"{zero} = arith.constant 0 : i64\n"
                 f"{sel} = arith.select {end}, {gv}, {zero} : i64\n"
                 f"{act} = arith.index_cast {sel} : i64 to index")
        assert list(SENTENCE_ENDS) == list(range(min(SENTENCE_ENDS), max(SENTENCE_ENDS) + 1))
        assert max(SENTENCE_ENDS) == len(CLASS_NAMES) - 1
        action = act
        for _ in range(2):
            r = region()
            regions.append((r, [r.gru("cell", "%x", h, D, H)]))
    elif name == "rim":
        (h,) = st
        L = 4 if cfg.bad_action else 3
        j = dec.argmax(dec.affine([("act.w_h", h), ("act.w_x", "%x")], "act.b"), L)
        action = dec.scalar(j, "index")
        r = region()
        regions.append((r, [r.rnn("cell", "%x", h, D, H)]))
        regions += [None, None]
    elif name == "yu2018":
        h, c = st
        K = cfg.max_jump
        j = dec.argmax(dec.affine([("act.w_h", h), ("act.w_x", "%x")], "act.b"), 3 + K)
        # logits: read, reread, stop, jump 0..K-1; actions: read, reread, jump, stop
        a, amt = dec.ew([(j, I32_1)], [I32_1, I32_1], [
            "$z = arith.constant 0 : i32", "$two = arith.constant 2 : i32",
            "$three = arith.constant 3 : i32",
            "$low = arith.cmpi slt, $0, $two : i32",
            "$isstop = arith.cmpi eq, $0, $two : i32",
            "$hi = arith.select $isstop, $three, $two : i32",
            "$a = arith.select $low, $0, $hi : i32",
            "$isjump = arith.cmpi sge, $0, $three : i32",
            "$k = arith.subi $0, $three : i32",
            "$amt = arith.select $isjump, $k, $z : i32",
            "linalg.yield $a, $amt : i32, i32"])
        action, amount = dec.scalar(a, "index"), dec.scalar(amt, "i64")
        for _ in range(2):
            r = region()
            regions.append((r, r.lstm("cell", "%x", h, c, D, H)))
        regions += [None, None]
    elif name == "lstm_shuttle":
        h, c, n = st
        K = cfg.max_jump
        j = dec.argmax(dec.affine([("shuttle.w", h)], "shuttle.b"), 2 * K + 1)
        a, amt = dec.ew([(j, I32_1), (n, F32_1)], [I32_1, I32_1], [
            f"$R = arith.constant {f32(cfg.read)} : f32",
            "$rd = arith.cmpf olt, $1, $R : f32",
            "$z = arith.constant 0 : i32", "$one = arith.constant 1 : i32",
            f"$K = arith.constant {K} : i32",
            "$a = arith.select $rd, $z, $one : i32",
            "$off = arith.subi $0, $K : i32",
            "$amt = arith.select $rd, $z, $off : i32",
            "linalg.yield $a, $amt : i32, i32"])
        action, amount = dec.scalar(a, "index"), dec.scalar(amt, "i64")
        r = region()
        h2, c2 = r.lstm("cell", "%x", h, c, D, H)
        regions.append((r, [h2, c2, increment(r, n)]))
        r = region()
        h2, c2 = r.lstm("cell", "%x", h, c, D, H)
        regions.append((r, [h2, c2, r.zeros(1)]))
    elif name == "structural_jump":
        h, c = st
        j = dec.argmax(dec.affine([("act.w_h", h), ("act.w_x", "%x")], "act.b"), 4)
        action = dec.scalar(j, "index")
        r = region()
        regions.append((r, r.lstm("cell", "%x", h, c, D, H)))
        regions += [None, None, None]
    elif name == "vcrnn":
        (h,) = st
        c0 = namer("c")
        dec.emit(f"{c0} = arith.constant 0 : index")
        action = c0
        r = region()
        z = r.affine([("sched.w_h", h), ("sched.w_x", "%x")], "sched.b")
        # e_i = i < sigmoid(z) H, over [1, H] (z broadcast along the units)
        e2 = r.v("empty")
        mask = r.v("mask")
        r.emit(f"""\
{e2} = tensor.empty() : {T(1, H)}
{mask}_2d = linalg.generic {{indexing_maps = [#red_out, #id2], iterator_types = ["parallel", "parallel"]}}
    ins({z} : {T(1)}) outs({e2} : {T(1, H)}) {{
^bb0({mask}_z: f32, {mask}_o: f32):
  {mask}_one = arith.constant 1.0 : f32
  {mask}_zero = arith.constant 0.0 : f32
  {mask}_H = arith.constant {f32(H)} : f32
  {mask}_nz = arith.negf {mask}_z : f32
  {mask}_ex = math.exp {mask}_nz : f32
  {mask}_d = arith.addf {mask}_one, {mask}_ex : f32
  {mask}_m = arith.divf {mask}_one, {mask}_d : f32
  {mask}_mh = arith.mulf {mask}_m, {mask}_H : f32
  {mask}_i = linalg.index 1 : index
  {mask}_ii = arith.index_cast {mask}_i : index to i32
  {mask}_if = arith.sitofp {mask}_ii : i32 to f32
  {mask}_lt = arith.cmpf olt, {mask}_if, {mask}_mh : f32
  {mask}_e = arith.select {mask}_lt, {mask}_one, {mask}_zero : f32
  linalg.yield {mask}_e : f32
}} -> {T(1, H)}
{mask} = tensor.collapse_shape {mask}_2d [[0, 1]] : {T(1, H)} into {T(H)}""")
        eh = r.ew([(mask, T(H)), (h, T(H))], [T(H)], ["$p = arith.mulf $0, $1 : f32",
                                                       "linalg.yield $p : f32"])[0]
        pre_act = r.add([r.lin("cell.w_ih", "%x"), r.lin("cell.w_hh", eh), wname("cell.b")], H)
        h2 = r.ew([(mask, T(H)), (pre_act, T(H)), (h, T(H))], [T(H)], [
            "$one = arith.constant 1.0 : f32",
            "$t = math.tanh $1 : f32",
            "$u = arith.mulf $0, $t : f32",
            "$ne = arith.subf $one, $0 : f32",
            "$k = arith.mulf $ne, $2 : f32",
            "$y = arith.addf $u, $k : f32",
            "linalg.yield $y : f32"])[0]
        regions.append((r, [h2]))
    elif name == "skim_rnn":
        h, c = st
        j = dec.argmax(dec.affine([("act.w_x", "%x"), ("act.w_h", h)], "act.b"), 2)
        action = dec.scalar(j, "index")
        r = region()
        regions.append((r, r.lstm("big", "%x", h, c, D, H)))
        r = region()
        s = cfg.small
        hs, cs = r.v("hs"), r.v("cs")
        r.emit(f"{hs} = tensor.extract_slice {h}[0] [{s}] [1] : {T(H)} to {T(s)}\n"
               f"{cs} = tensor.extract_slice {c}[0] [{s}] [1] : {T(H)} to {T(s)}")
        hs2, cs2 = r.lstm("small", "%x", hs, cs, D, s)
        h2, c2 = r.v("h"), r.v("c")
        r.emit(f"{h2} = tensor.insert_slice {hs2} into {h}[0] [{s}] [1] : {T(s)} into {T(H)}\n"
               f"{c2} = tensor.insert_slice {cs2} into {c}[0] [{s}] [1] : {T(s)} into {T(H)}")
        regions.append((r, [h2, c2]))
    elif name == "hm_rnn":
        h1, h2 = st
        j = dec.argmax(dec.affine([("act.w_h", h1), ("act.w_u", h2), ("act.w_x", "%x")],
                                  "act.b"), 3)
        action = dec.scalar(j, "index")
        r = region()
        regions.append((r, [r.rnn("lower", "%x", h1, D, H), h2]))
        regions.append(None)
        r = region()
        low = r.rnn("lower", "%x", r.zeros(H), D, H)
        up = r.rnn("upper", h1, h2, H, H)
        regions.append((r, [low, up]))
    elif name == "fhrnn":
        h1, c1, h2 = st
        qp = pre.lin("gate.wq", "%query")
        q2 = namer("q")
        pre.emit(f"{q2} = tensor.expand_shape {qp} [[0, 1]] output_shape [1, {H}] : {T(H)} into {T(1, H)}")
        qd = dec.call(mod.lin(1, H), [(q2, T(1, H)), (h1, T(H))], [T(1)], "mv")[0]
        z = dec.add([qd, dec.lin("gate.w_x", "%x"), wname("gate.b")], 1)
        action = dec.scalar(dec.gate(z), "index")
        r = region()
        n1, m1 = r.lstm("lower", "%x", h1, c1, D, H)
        regions.append((r, [n1, m1, h2]))
        r = region()
        n1, m1 = r.lstm("lower", "%x", h1, c1, D, H)
        regions.append((r, [n1, m1, r.gru("upper", n1, h2, H, H)]))
    else:
        raise ValueError(name)
    return pre, dec, action, amount, regions


class SkimGen:
    def __init__(self, name, method, gemv="matvec"):
        self.name, self.m, self.cfg = name, method, method.cfg
        self.mod = Module(gemv)

    def inputs(self):
        S, D = self.m.S, self.m.D
        ins = [("x", T(S, D))]
        if self.m.uses_classes:
            ins.append(("classes", T(S, ty="i32")))
        if self.m.uses_query:
            ins.append(("query", T(D)))
        return ins

    def text(self):
        m, cfg = self.m, self.cfg
        S, D, B = m.S, m.D, m.B
        shapes = {n: s for n, s in m.weight_shapes()}
        namer = Namer()
        pre, dec, action, amount, regions = mlir_method(m, self.mod, namer, shapes)
        stt = [T(*s) for _, s in m.state_shapes()]
        stnames = ["%" + n for n in m.state_names]
        argnames = {"x": "%seq", "classes": "%classes", "query": "%query"}
        args = [f'{argnames[n]}: {t} {{dyn.name = "{n}"}}' for n, t in self.inputs()]
        args += [f'{wname(n)}: {T(*s)} {{dyn.weight = "{n}"}}' for n, s in m.weight_shapes()]
        rtys = ", ".join(stt)
        acts = m.actions()
        lines = []
        E = lines.append
        E(f"  func.func @{self.name}({(',' + chr(10) + '      ').join(args)})")
        E(f"      -> ({rtys}) {{")
        E("    // the initial state: zeros")
        inits = []
        for (n, s), t in zip(m.state_shapes(), stt):
            z = f"%init_{n}"
            E(f"    {z}_e = tensor.empty() : {t}")
            E(f"    {z}_0 = arith.constant 0.0 : f32")
            E(f"    {z} = linalg.fill ins({z}_0 : f32) outs({z}_e : {t}) -> {t}")
            inits.append(z)
        lines += pre.lines
        res = "%final" if len(stt) == 1 else f"%final:{len(stt)}"
        cls = f" classes %classes : {T(S, ty='i32')}" if m.uses_classes else ""
        E(f"    {res} = dyn.skip %seq{cls} init({', '.join(inits)} : {rtys}) budget {B}")
        E(f"        actions [{', '.join(a.mlir() for a in acts)}]")
        E(f"        : {T(S, D)} -> {rtys}")
        bb = f"^bb0(%pos: index, %x: {T(D)}, " + ", ".join(
            f"{n}: {t}" for n, t in zip(stnames, stt)) + "):"
        E("    decide {")
        E("    " + bb)
        lines += dec.lines
        E(f"      dyn.decide {action}" + (f" jump {amount}" if amount else ""))
        E("    }")
        for k, (a, r) in enumerate(zip(acts, regions)):
            sep = "," if k + 1 < len(acts) else ""
            if r is None:
                E(f"    {{  // {a}: the state is kept")
                E(f"    }}{sep}")
                continue
            body, ys = r
            E(f"    {{  // {a}")
            E("    " + bb)
            lines += body.lines
            E(f"      dyn.yield {', '.join(ys)} : {rtys}")
            E(f"    }}{sep}")
        fin = ["%final"] if len(stt) == 1 else [f"%final#{i}" for i in range(len(stt))]
        E(f"    return {', '.join(fin)} : {rtys}")
        E("  }")
        entry = "\n".join(lines)

        helpers = "\n\n".join("  " + f.replace("\n", "\n  ") for f in self.mod.funcs.values())
        head = f"""\
// Generated by examples/skim/make_skim.py: {TITLES[cfg.method]} as one dyn.skip,
// the same math as examples/skim/reference.py ({type(m).__name__}).
//
//   S = {S} steps of D = {D}, hidden {m.H}, budget {B}, actions {acts}
//   config {cfg.to_json()}

#id1 = affine_map<(d0) -> (d0)>
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#red_in = affine_map<(d0, d1) -> (d1)>
#red_out = affine_map<(d0, d1) -> (d0)>
#mv_a = affine_map<(d0, d1) -> (d0, d1)>
#mv_x = affine_map<(d0, d1) -> (d1)>
#mv_y = affine_map<(d0, d1) -> (d0)>

module {{
"""
        return head + helpers + "\n\n" + entry + "\n}\n"


# ---------------------------------------------------------------------------
# Weights and cases


def make_weights(m, seed):
    rng = np.random.default_rng(seed)
    dw, db = m.decision_weights(), m.decision_biases()
    t = {}
    for n, shape in m.weight_shapes():
        if n in db:
            t[n] = np.asarray(db[n], np.float32).reshape(shape)
        elif n in dw:
            t[n] = (rng.standard_normal(shape) * dw[n] / math.sqrt(shape[-1])).astype(np.float32)
        elif len(shape) == 1 and n.split(".")[0] in ("gate", "term", "stop", "act", "jump",
                                                     "shuttle", "sched"):
            t[n] = np.zeros(shape, np.float32)
        else:
            # a cell: uniform(-1/sqrt(hidden), 1/sqrt(hidden)) like PyTorch
            hidden = m.cfg.small if n.startswith("small.") else m.H
            k = 1.0 / math.sqrt(hidden)
            t[n] = rng.uniform(-k, k, shape).astype(np.float32)
    return t


CLASS_P = [0.7, 0.08, 0.04, 0.1, 0.04, 0.04]


def draw_case(m, rng):
    S, D = m.S, m.D
    o = rng.standard_normal(D) * 0.7
    x = (rng.standard_normal((S, D)) + o).astype(np.float32)
    cls = rng.choice(len(CLASS_P), size=S, p=CLASS_P).astype(np.int32) if m.uses_classes else None
    q = rng.standard_normal(D).astype(np.float32) if m.uses_query else None
    return x, cls, q


# Endings and events every method's cases must show (besides every action).
REQUIRED = {
    "lstm_jump": ["stop", "end", "budget", "past_end"],
    "skip_rnn": ["end"],
    "reasonet": ["stop", "budget"],
    "jumper": ["stop", "end"],
    "rim": ["stop", "end"],
    "yu2018": ["stop", "end", "budget", "past_end", "jump_0"],
    "lstm_shuttle": ["start", "end", "budget", "past_end", "backward", "shuttle_0"],
    "structural_jump": ["end", "jump_to_none"],
    "vcrnn": ["end", "partial_some", "partial_all"],
    "skim_rnn": ["end"],
    "hm_rnn": ["end"],
    "fhrnn": ["end"],
}


def events(m, r, classes):
    """The notable things case r did (for the histogram / coverage)."""
    ev = Counter()
    acts = m.actions()
    ev[r.termination] += 1
    if r.final_pos > m.S:
        ev["past_end"] += 1
    if r.termination == "stop" and r.steps < m.S:
        ev["early_stop"] += 1
    for units in r.info:
        if units is not None:
            ev["partial_all" if units == m.H else "partial_some"] += 1
    for pos, a, amount in r.trace:
        if not 0 <= a < len(acts):
            continue
        k = acts[a].kind
        if k == "shuttle":
            ev["backward" if amount < 0 else "shuttle_0" if amount == 0 else "forward"] += 1
        if k == "jump" and amount == 0:
            ev["jump_0"] += 1
        if k == "jump_to" and acts[a].targets:
            if not any(int(classes[p]) in acts[a].targets for p in range(pos + 1, m.S)):
                ev["jump_to_none"] += 1
    return ev


def generate(a, quiet=False):
    t0 = time.time()
    cfg = SkimConfig(a.method, seq=a.seq, dim=a.dim, hidden=a.hidden, small=a.small,
                     budget=a.budget, read=a.read, max_jump=a.max_jump,
                     bad_action=a.bad_action)
    m0 = make_method(cfg)
    tensors = make_weights(m0, a.data_seed)
    m = make_method(cfg, tensors)
    os.makedirs(a.out_dir, exist_ok=True)
    base = os.path.join(a.out_dir, a.name)
    gen = SkimGen(a.name, m, a.gemv)
    with open(base + ".mlir", "w") as f:
        f.write(gen.text())
    save_safetensors(base + ".safetensors", tensors,
                     dict(format="pt", generator="examples/skim/make_skim.py",
                          config=cfg.to_json(), data_seed=a.data_seed))

    rng = np.random.default_rng(a.data_seed + 1_000_003)
    N, S, B = a.cases, m.S, m.B
    xs, clss, qs, results = [], [], [], []
    rejected = 0
    while len(results) < N:
        x, cls, q = draw_case(m, rng)
        r = run_skim(m, x, cls, q)
        if r.margin < a.min_margin:
            rejected += 1
            if rejected > 50 * N + 100:
                raise SystemExit(f"{a.method}: too many cases within --min-margin "
                                 f"{a.min_margin} of a tie")
            continue
        xs.append(x)
        clss.append(cls)
        qs.append(q)
        results.append(r)
    np.save(base + ".x.npy", np.stack(xs))
    if m.uses_classes:
        np.save(base + ".classes.npy", np.stack(clss))
    if m.uses_query:
        np.save(base + ".query.npy", np.stack(qs))
    trace = np.full((N, B, 3), -1, np.int32)
    for i, r in enumerate(results):
        if r.trace:
            trace[i, :r.steps] = np.array(r.trace, np.int32)
    exp = dict(config=np.array(cfg.to_json()), method=np.array(cfg.method),
               inputs=np.array([n for n, _ in gen.inputs()]),
               outputs=np.array(list(m.state_names)),
               actions=np.array(json.dumps([[x.kind, list(x.targets)] for x in m.actions()])),
               budget=np.int64(B), steps=np.array([r.steps for r in results], np.int32),
               trace=trace, termination=np.array([r.termination for r in results]),
               final_pos=np.array([r.final_pos for r in results], np.int64),
               error_step=np.array([r.error.step if r.error else -1 for r in results], np.int32),
               margin=np.array([r.margin for r in results], np.float64))
    for k, n in enumerate(m.state_names):
        exp["state_" + n] = np.stack([r.state[k] for r in results])
    np.savez(base + ".expected.npz", **exp)

    ev = Counter()
    hist = Counter()
    for i, r in enumerate(results):
        ev.update(events(m, r, clss[i]))
        hist.update(a_ for _, a_, _ in r.trace)
    if not quiet:
        acts = m.actions()
        names = [f"{k}:{acts[k] if k < len(acts) else 'OUT OF RANGE'}" for k in sorted(hist)]
        print(f"wrote {base}.mlir, .safetensors ({len(tensors)} tensors, "
              f"{sum(v.size for v in tensors.values())} values), .x.npy [{N}, {S}, {m.D}]"
              + (", .classes.npy" if m.uses_classes else "")
              + (", .query.npy" if m.uses_query else "")
              + f", .expected.npz in {time.time() - t0:.1f} s")
        print(f"{cfg.method}: {TITLES[cfg.method]}; S={S} D={m.D} H={m.H} B={B}; "
              f"{rejected} case(s) redrawn (a decision within {a.min_margin} of a tie)")
        print("  actions: " + ", ".join(f"{nm} {hist[k]}" for nm, k in zip(names, sorted(hist))))
        print("  endings: " + ", ".join(f"{k} {ev[k]}" for k in ("stop", "end", "start", "budget",
                                                                    "error") if ev[k]))
        other = [k for k in ev if k not in ("stop", "end", "start", "budget", "error")]
        if other:
            print("  events: " + ", ".join(f"{k} {ev[k]}" for k in sorted(other)))
        st = np.array([r.steps for r in results])
        print(f"  steps per case: min {st.min()}, mean {st.mean():.1f}, max {st.max()}; "
              f"smallest margin {min(r.margin for r in results):.3g}")
    return cfg, tensors, m, exp, results, (xs, clss, qs), hist, ev


# ---------------------------------------------------------------------------
# The independent float64 implementation (for --self-check)


def np_sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def np_lstm(w, p, x, h, c):
    g = w[p + ".w_ih"] @ x + w[p + ".w_hh"] @ h + w[p + ".b"]
    H = h.shape[0]
    i, f, gg, o = g[:H], g[H:2 * H], g[2 * H:3 * H], g[3 * H:]
    c2 = np_sig(f) * c + np_sig(i) * np.tanh(gg)
    return np_sig(o) * np.tanh(c2), c2


def np_gru(w, p, x, h):
    H = h.shape[0]
    a = w[p + ".w_ih"] @ x + w[p + ".b_ih"]
    b = w[p + ".w_hh"] @ h + w[p + ".b_hh"]
    r = np_sig(a[:H] + b[:H])
    z = np_sig(a[H:2 * H] + b[H:2 * H])
    n = np.tanh(a[2 * H:] + r * b[2 * H:])
    return (1 - z) * n + z * h


def np_rnn(w, p, x, h):
    return np.tanh(w[p + ".w_ih"] @ x + w[p + ".w_hh"] @ h + w[p + ".b"])


def np_first_max(v):
    best = 0
    for i in range(1, len(v)):
        if v[i] > v[best]:
            best = i
    return best


def np_run(cfg, w, x, classes=None, query=None):
    """(trace, state tuple, termination) by plain loops in float64, one branch
    per method (written from the method descriptions, not from
    reference.py's classes)."""
    w = {k: np.asarray(v, np.float64) for k, v in w.items()}
    x = np.asarray(x, np.float64)
    S, H, B, R, K = cfg.seq, cfg.hidden, cfg.budget, cfg.read, cfg.max_jump
    meth = cfg.method
    zeros = np.zeros(H)
    if meth in ("lstm_jump", "lstm_shuttle"):
        state = [zeros, zeros, 0.0]
    elif meth in ("yu2018", "structural_jump", "skim_rnn"):
        state = [zeros, zeros]
    elif meth == "hm_rnn":
        state = [zeros, zeros]
    elif meth == "fhrnn":
        state = [zeros, zeros, zeros]
    else:
        state = [zeros]
    n_actions = {"lstm_jump": 3, "skip_rnn": 2, "reasonet": 2, "jumper": 2, "rim": 3,
                 "yu2018": 4, "lstm_shuttle": 2, "structural_jump": 4, "vcrnn": 1,
                 "skim_rnn": 2, "hm_rnn": 3, "fhrnn": 2}[meth]
    qp = w["gate.wq"] @ np.asarray(query, np.float64) if meth == "fhrnn" else None
    pos, steps, trace = 0, 0, []
    ending = None
    while True:
        if pos < 0:
            ending = "start"
            break
        if pos >= S:
            ending = "end"
            break
        if steps == B:
            ending = "budget"
            break
        xt = x[pos]
        amount, nxt, stop = 0, pos + 1, False
        if meth == "lstm_jump":
            h, c, n = state
            if n < R:
                a = 0
                h, c = np_lstm(w, "cell", xt, h, c)
                state = [h, c, n + 1]
            else:
                j = np_first_max(w["jump.w"] @ h + w["jump.b"])
                if j == 0:
                    a, stop = 2, True
                else:
                    a, amount, nxt = 1, j, pos + j
                    state = [h, c, 0.0]
        elif meth == "skip_rnn":
            (h,) = state
            if np_sig(w["gate.w_h"] @ h + w["gate.w_x"] @ xt + w["gate.b"])[0] > 0.5:
                a = 0
                state = [np_gru(w, "cell", xt, h)]
            else:
                a = 1
        elif meth == "reasonet":
            (h,) = state
            if np_sig(w["term.w"] @ h + w["term.b"])[0] > 0.5:
                a, stop = 1, True
            else:
                a = 0
                state = [np_gru(w, "cell", xt, h)]
        elif meth == "jumper":
            (h,) = state
            a = 0
            if int(classes[pos]) in SENTENCE_ENDS and np_sig(w["stop.w"] @ h + w["stop.b"])[0] > 0.5:
                a, stop = 1, True
            state = [np_gru(w, "cell", xt, h)]
        elif meth == "rim":
            (h,) = state
            a = np_first_max(w["act.w_h"] @ h + w["act.w_x"] @ xt + w["act.b"])
            if a == 0:
                state = [np_rnn(w, "cell", xt, h)]
            elif a == 2:
                stop = True
        elif meth == "yu2018":
            h, c = state
            j = np_first_max(w["act.w_h"] @ h + w["act.w_x"] @ xt + w["act.b"])
            if j == 0:
                a = 0
                state = list(np_lstm(w, "cell", xt, h, c))
            elif j == 1:
                a, nxt = 1, pos
                state = list(np_lstm(w, "cell", xt, h, c))
            elif j == 2:
                a, stop = 3, True
            else:
                a, amount = 2, j - 3
                nxt = pos + max(amount, 1)
        elif meth == "lstm_shuttle":
            h, c, n = state
            h2, c2 = np_lstm(w, "cell", xt, h, c)
            if n < R:
                a = 0
                state = [h2, c2, n + 1]
            else:
                a = 1
                amount = np_first_max(w["shuttle.w"] @ h + w["shuttle.b"]) - K
                nxt = pos + amount
                state = [h2, c2, 0.0]
        elif meth == "structural_jump":
            h, c = state
            a = np_first_max(w["act.w_h"] @ h + w["act.w_x"] @ xt + w["act.b"])
            if a == 0:
                state = list(np_lstm(w, "cell", xt, h, c))
            else:
                targets = {1: SEPARATORS, 2: SENTENCE_ENDS, 3: ()}[a]
                nxt = S
                for p in range(pos + 1, S):
                    if int(classes[p]) in targets:
                        nxt = p
                        break
        elif meth == "vcrnn":
            (h,) = state
            a = 0
            m = np_sig(w["sched.w_h"] @ h + w["sched.w_x"] @ xt + w["sched.b"])[0]
            e = np.array([1.0 if i < m * H else 0.0 for i in range(H)])
            u = np.tanh(w["cell.w_ih"] @ xt + w["cell.w_hh"] @ (e * h) + w["cell.b"])
            state = [e * u + (1 - e) * h]
        elif meth == "skim_rnn":
            h, c = state
            a = np_first_max(w["act.w_x"] @ xt + w["act.w_h"] @ h + w["act.b"])
            if a == 0:
                state = list(np_lstm(w, "big", xt, h, c))
            else:
                s = cfg.small
                hs, cs = np_lstm(w, "small", xt, h[:s], c[:s])
                state = [np.concatenate([hs, h[s:]]), np.concatenate([cs, c[s:]])]
        elif meth == "hm_rnn":
            h1, h2 = state
            a = np_first_max(w["act.w_h"] @ h1 + w["act.w_u"] @ h2 + w["act.w_x"] @ xt
                             + w["act.b"])
            if a == 0:
                state = [np_rnn(w, "lower", xt, h1), h2]
            elif a == 2:
                state = [np_rnn(w, "lower", xt, zeros), np_rnn(w, "upper", h1, h2)]
        elif meth == "fhrnn":
            h1, c1, h2 = state
            up = np_sig(qp @ h1 + w["gate.w_x"] @ xt + w["gate.b"])[0] > 0.5
            n1, m1 = np_lstm(w, "lower", xt, h1, c1)
            a = 1 if up else 0
            state = [n1, m1, np_gru(w, "upper", n1, h2) if up else h2]
        else:
            raise ValueError(meth)
        trace.append((pos, a, amount))
        steps += 1
        if not 0 <= a < n_actions:
            ending = "error"
            break
        if stop:
            ending = "stop"
            break
        pos = nxt
    st = tuple(np.atleast_1d(np.asarray(s, np.float64)) for s in state)
    return trace, st, ending


def np_run_bad_rim(cfg, w, x):
    """rim with bad_action: the 4th logit is action 3, which does not exist."""
    w = {k: np.asarray(v, np.float64) for k, v in w.items()}
    h = np.zeros(cfg.hidden)
    pos, trace = 0, []
    while 0 <= pos < cfg.seq and len(trace) < cfg.budget:
        a = np_first_max(w["act.w_h"] @ h + w["act.w_x"] @ x[pos] + w["act.b"])
        trace.append((pos, a, 0))
        if a == 3:
            return trace, (h,), "error"
        if a == 2:
            return trace, (h,), "stop"
        if a == 0:
            h = np_rnn(w, "cell", x[pos], h)
        pos += 1
    return trace, (h,), "end" if pos >= cfg.seq else "budget"


def find_dyncc_opt():
    for p in ("build-lead/tools/dyncc-opt/dyncc-opt", "build/tools/dyncc-opt/dyncc-opt"):
        q = os.path.join(ROOT, p)
        if os.path.exists(q):
            return q
    return None


def self_check(a, cfg, tensors, m, exp, results, cases, hist, ev):
    t0 = time.time()
    ok = True
    xs, clss, qs = cases
    bad, worst = 0, 0.0
    for i, r in enumerate(results):
        if cfg.bad_action:
            tr, st, ending = np_run_bad_rim(cfg, tensors, xs[i])
        else:
            tr, st, ending = np_run(cfg, tensors, xs[i], clss[i], qs[i])
        if ending == "error":
            same_state = True
        else:
            err = max(float(np.abs(s - r.state[k]).max()) for k, s in enumerate(st))
            worst = max(worst, err)
            same_state = err <= 1e-5
        if tr != r.trace or ending != r.termination or not same_state:
            bad += 1
            if bad <= 3:
                print(f"  case {i}: numpy {ending} {tr}\n  torch {r.termination} {r.trace}")
    print(f"self-check: {cfg.method}: torch reference vs independent float64 numpy loop, "
          f"{len(results)} cases: traces and endings " + ("identical" if not bad else
                                                          f"{bad} DIFFER")
          + f", final states within {worst:.2g}")
    ok &= bad == 0 and worst <= 1e-5

    acts = m.actions()
    missing = [f"action {k} ({acts[k]})" for k in range(len(acts)) if not hist[k]]
    need = REQUIRED[cfg.method] + (["error"] if cfg.bad_action else [])
    missing += [e for e in need if not ev[e]]
    print(f"self-check: every action and the required endings/events {need} occur: "
          + ("OK" if not missing else f"MISSING {missing}"))
    ok &= not missing

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


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--method", choices=METHODS, default="lstm_jump")
    ap.add_argument("--seq", type=int, default=12, help="S, steps of the sequence")
    ap.add_argument("--dim", type=int, default=8, help="D, the step input size")
    ap.add_argument("--hidden", type=int, default=16, help="H, the state size")
    ap.add_argument("--small", type=int, default=4, help="skim_rnn: the small cell's size")
    ap.add_argument("--budget", type=int, default=None,
                    help="B (default per method: reference.default_budget)")
    ap.add_argument("--read", type=int, default=2,
                    help="lstm_jump / lstm_shuttle: tokens read before each decision (R)")
    ap.add_argument("--max-jump", type=int, default=4,
                    help="lstm_jump: jumps 1..K; yu2018: amounts 0..K-1; lstm_shuttle: [-K, K]")
    ap.add_argument("--bad-action", action="store_true",
                    help="rim: a 4th logit chooses action 3, which does not exist (the run fails)")
    ap.add_argument("--gemv", choices=("matvec", "generic"), default="matvec",
                    help="write W v as linalg.matvec or as the equivalent linalg.generic")
    ap.add_argument("--cases", type=int, default=64)
    ap.add_argument("--min-margin", type=float, default=1e-3)
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--out-dir", default=".")
    ap.add_argument("--name", default=None, help="default: the method")
    ap.add_argument("--self-check", action="store_true")
    ap.add_argument("--dyncc-opt", default=None)
    a = ap.parse_args(argv)
    a.name = a.name or a.method
    if not a.name.isidentifier():
        ap.error("--name must be an identifier")
    return ap, a


def main(argv=None):
    ap, a = parse_args(argv)
    try:
        out = generate(a)
    except ValueError as e:
        ap.error(str(e))
    if a.self_check:
        sys.exit(0 if self_check(a, *out) else 1)


if __name__ == "__main__":
    main()
