#!/usr/bin/env python3
"""Generates an early-exit encoder classifier (W2 / W4) for dyncc.

    .venv/bin/python make_early_exit.py --criterion entropy --out-dir DIR --name NAME [sizes...]

writes into DIR:

  NAME.mlir          the model: the encoder layers of examples/encoder/make_encoder.py,
                     after layer l < L the internal classifier of layer l on the
                     first token and a `dyn.exit_if ... layer l` whose region holds
                     the rest of the network (nested; the innermost region yields
                     the final head's logits); thresholds are `#dyn.param`s
  NAME.safetensors   the weights (reference.EarlyExitEncoder), 64-byte aligned;
                     metadata: sizes, criterion, temperature, default threshold
  NAME.x.npy         K random inputs N(0, 1), float32, [K, S, D] ([K, B, S, D] for B > 1)
  NAME.expected.npz  for every threshold of a list: exit layers and logits of
                     every case (see README.md)

and prints, per threshold, the histogram of exit layers over the K cases.
With --self-check it also runs the reference's eager loops (batch1 and
batched) and an independent numpy derivation of docs/early-exit.md, and
checks that they agree exactly.
"""

import argparse
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "encoder"))

from reference import CRITERIA, Criterion, EarlyExitEncoder, decide  # noqa: E402  (sets OPENBLAS_CORETYPE)
from make_encoder import Gen, T, add_shape_arguments  # noqa: E402
from torch_eager import save_safetensors  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

# The criterion attribute: dyncc.nn.exits (importing reference put python/ on the path).
from dyncc.nn.exits import criterion_attr  # noqa: E402


class EarlyExitGen(Gen):
    """make_encoder.Gen's module (the same helpers and encoder layer) with an
    exit chain in the entry function."""

    def __init__(self, name, layers, d_model, heads, d_ff, seq, classes, batch, crit):
        super().__init__(name, layers, d_model, heads, d_ff, seq, classes, batch)
        self.crit = crit
        self.learned = crit.kind == "learned_score"

    def sigmoid(self):
        y = T(self.B, 1)
        self.emit(f"""\
  // The exit score: sigmoid(x) = 1 / (1 + exp(-x)), [{self.B}, 1].
  func.func private @sigmoid(%x: {y}) -> {y} {{
    %e = tensor.empty() : {y}
    %s = linalg.generic {{indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}}
        ins(%x : {y}) outs(%e : {y}) {{
      ^bb0(%v: f32, %o: f32):
        %one = arith.constant 1.0 : f32
        %n = arith.negf %v : f32
        %ex = math.exp %n : f32
        %d = arith.addf %ex, %one : f32
        %r = arith.divf %one, %d : f32
        linalg.yield %r : f32
    }} -> {y}
    return %s : {y}
  }}
""")

    def entry(self):
        B, S, D, C, R, L = self.B, self.S, self.D, self.C, self.R, self.L
        if self.learned:
            if C != 1:      # otherwise the classifier's helper has this shape
                self.linear(B, D, 1, "the exit score heads")
            self.sigmoid()
        xin = T(S, D) if B == 1 else T(B, S, D)
        x, out = T(R, D), T(B, C)
        pad = " " * (len(self.name) + 14)
        args = [f'%x: {xin} {{dyn.name = "x"}}']
        for i in range(L):
            for s, t in self.layer_params():
                args.append(f'%l{i}_{s.replace(".", "_")}: {t} {{dyn.weight = "layers.{i}.{s}"}}')
        for l in range(1, L):
            args.append(f'%exit{l}_w: {T(D, C)} {{dyn.weight = "exits.{l}.w"}}')
            args.append(f'%exit{l}_b: {T(C)} {{dyn.weight = "exits.{l}.b"}}')
            if self.learned:
                args.append(f'%exit{l}_score_w: {T(D, 1)} {{dyn.weight = "exits.{l}.score_w"}}')
                args.append(f'%exit{l}_score_b: {T(1)} {{dyn.weight = "exits.{l}.score_b"}}')
        args.append(f'%head_w: {T(D, C)} {{dyn.weight = "head.w"}}')
        args.append(f'%head_b: {T(C)} {{dyn.weight = "head.b"}}')
        score = " and a score head (sigmoid) on it" if self.learned else ""
        self.emit(f"""\
  // The model: {L} encoder layers; after layer l = 1 .. {L - 1} the internal
  // classifier of layer l on the first token{score} and an exit point
  // (dyn.exit_if ... layer l) whose region is the rest of the network; the
  // innermost region yields the final classifier's logits (layer {L}).
  // Input x: {'[seq, d]' if B == 1 else '[batch, seq, d]'}; output: logits [{B}, {C}] of each sample's exit layer.
  func.func @{self.name}({(',' + chr(10) + pad).join(args)}) -> {out} {{""")
        if B == 1:
            h = "%x"
        else:
            self.emit(f"    %h = tensor.collapse_shape %x [[0, 1], [2]] : {xin} into {x}")
            h = "%h"
        ltypes = ", ".join([x] + [t for _, t in self.layer_params()])
        crit = criterion_attr(self.crit)
        ind = "    "
        for l in range(1, L + 1):
            i = l - 1
            names = ", ".join([h] + [f"%l{i}_{s.replace('.', '_')}" for s, _ in self.layer_params()])
            self.emit(f"{ind}// layer {l}")
            self.emit(f"{ind}%h{l} = func.call @encoder_layer({names})\n{ind}    : ({ltypes}) -> {x}")
            h = f"%h{l}"
            self.emit(f"{ind}%cls{l} = func.call @first_token({h}) : ({x}) -> {T(B, D)}")
            if l == L:
                self.emit(self.lin_call("%logits", f"%cls{l}", "%head_w", "%head_b", B, D, C, indent=ind))
                self.emit(f"{ind}dyn.yield %logits : {out}")
                break
            self.emit(self.lin_call(f"%z{l}", f"%cls{l}", f"%exit{l}_w", f"%exit{l}_b",
                                    B, D, C, indent=ind))
            sc = ""
            if self.learned:
                self.emit(self.lin_call(f"%sz{l}", f"%cls{l}", f"%exit{l}_score_w",
                                        f"%exit{l}_score_b", B, D, 1, indent=ind))
                self.emit(f"{ind}%s{l} = func.call @sigmoid(%sz{l}) : ({T(B, 1)}) -> {T(B, 1)}")
                sc = f" score %s{l} : {T(B, 1)}"
            self.emit(f"{ind}%r{l} = dyn.exit_if %z{l}{sc} criterion {crit}\n"
                      f"{ind}    layer {l} : {out} {{")
            ind += "  "
        for l in range(L - 1, 0, -1):
            ind = ind[:-2]
            self.emit(f"{ind}}}")
            if l > 1:
                self.emit(f"{ind}dyn.yield %r{l} : {out}")
        self.emit(f"    return %r1 : {out}\n  }}")

    def header(self):
        L, D, H, F, S, C, B = self.L, self.D, self.H, self.F, self.S, self.C, self.B
        batch = ("batch 1" if B == 1 else
                 f"batch {B} folded into the rows ([{B} * {S}, {D}] for the linear layers,\n"
                 f"// [{B} * {H}, {S}, {self.dh}] for attention)")
        score = ("\n//   exit score: s_l = sigmoid(out_l[first token] Ws_l + bs_l), the `score`\n"
                 "//               operand of exit point l" if self.learned else "")
        return f"""\
// Generated by examples/early-exit/make_early_exit.py: an early-exit post-LN
// transformer encoder classifier in the dyncc input op set (docs/ops.md), the
// same math as reference.EarlyExitEncoder; the encoder layers are those of
// examples/encoder/make_encoder.py.
//
//   layers = {L}, d_model = {D}, heads = {H} (head_dim {self.dh}), d_ff = {F},
//   seq = {S}, classes = {C}, {batch}
//   criterion: {criterion_attr(self.crit)}
//
//   per layer:  h   = LayerNorm1(x + MultiHeadAttention(x))
//               out = LayerNorm2(h + W2 GELU(W1 h + b1) + b2)
//   exit point l = 1 .. {L - 1}: logits_l = out_l[first token] We_l + be_l{score}
//   final classifier (layer {L}): logits = out_{L}[first token] Wc + bc
//
// The exit points form one chain of nested dyn.exit_if (docs/early-exit.md):
// each sample gets the logits of the first exit point whose criterion holds,
// or the final classifier's. Thresholds are runtime parameters.
"""

    def module(self):
        text = super().module()
        _, sep, rest = text.partition("\n#id2 = ")
        assert sep, "make_encoder.Gen's module changed its layout"
        return self.header() + sep + rest


# ---------------------------------------------------------------------------
# Weights


@torch.no_grad()
def make_model(a, learned):
    """The encoder (init_scaled, torch.manual_seed(seed): its layers are
    make_encoder.py's for the same seed) with internal classifiers fitted
    to mimic the final classifier, scaled so that confidence grows with
    depth, and (learned_score) exit-score heads whose bias grows with depth."""
    torch.manual_seed(a.seed)
    model = EarlyExitEncoder(layers=a.layers, d_model=a.d_model, heads=a.heads, d_ff=a.d_ff,
                             classes=a.classes, learned_score=learned).init_scaled().eval()
    L, D = a.layers, a.d_model

    # First-token states of every layer on random training inputs (float32).
    g = torch.Generator().manual_seed(a.seed + 2_000_003)
    feats = []
    for i in range(0, a.train_cases, 32):
        h = torch.randn(min(32, a.train_cases - i), a.seq, D, generator=g)
        hs = []
        for layer in model.layers:
            h = layer(h)
            hs.append(h[:, 0, :].double())
        feats.append(torch.stack(hs, 1))
    H = torch.cat(feats)                                          # [N, L, D]
    N = H.shape[0]
    wc, bc = model.head.weight.double(), model.head.bias.double()
    y = H[:, -1] @ wc.t() + bc                                     # the final logits
    # Centre the final head on the training inputs: with init_scaled its
    # logits are dominated by an input-independent offset (one class wins
    # for every input); centred, the classes are balanced.
    model.head.bias.sub_(y.mean(0).float())
    y = y - y.mean(0)

    def spread(z):  # RMS of the logits around each sample's mean
        return float((z - z.mean(1, keepdim=True)).pow(2).mean().sqrt())

    lo, hi = a.confidence
    target = [lo * (hi / lo) ** ((l - 1) / (L - 1)) for l in range(1, L + 1)]
    ones = torch.ones(N, 1, dtype=torch.float64)
    for l in range(1, L):
        X = torch.cat([H[:, l - 1], ones], 1)
        A = X.t() @ X
        A[:D, :D] += a.ridge * torch.eye(D, dtype=torch.float64)
        W = torch.linalg.solve(A, X.t() @ y)                       # [D + 1, C]
        k = target[l - 1] / max(spread(X @ W), 1e-12)
        model.exits[l - 1].weight.copy_((W[:D] * k).t())
        model.exits[l - 1].bias.copy_(W[D] * k)
    k = target[-1] / max(spread(y), 1e-12)
    model.head.weight.mul_(k)
    model.head.bias.mul_(k)

    if learned:
        gs = torch.Generator().manual_seed(a.seed + 3_000_017)
        ramp = np.linspace(-a.score_bias, a.score_bias, L - 1)
        for l in range(1, L):
            # pre-sigmoid score ~ ramp[l] + score_scale * (a random direction,
            # standardised on the training inputs)
            w = torch.randn(D, generator=gs, dtype=torch.float64)
            pre = H[:, l - 1] @ w
            k = a.score_scale / max(float(pre.std()), 1e-12)
            model.scores[l - 1].weight.copy_((w * k)[None, :])
            model.scores[l - 1].bias.fill_(float(ramp[l - 1] - k * float(pre.mean())))
    return model


# ---------------------------------------------------------------------------
# Thresholds


def exit_layers(kind, stat, cls, values):
    """Exit layers [N] from the per-exit-point statistics stat [N, L-1]
    (float32) for one threshold (scalar, or [C] for per_class)."""
    N, E = stat.shape
    if kind == "per_class":
        th = np.asarray(values, np.float32)[np.clip(cls, 0, None)]
        cond = (stat > th) & (cls >= 0)
    elif kind == "entropy":
        cond = stat < np.float32(values)
    elif kind == "patience":
        cond = stat >= np.float32(values)
    else:
        cond = stat > np.float32(values)
    cond &= ~np.isnan(stat)
    first = np.where(cond.any(1), cond.argmax(1) + 1, E + 1)
    return first.astype(np.int32)


def nice_inside(lo, hi):
    """A short decimal strictly inside (lo, hi) (float32 ends), in the
    middle half of the gap when possible."""
    mid = 0.5 * (lo + hi)
    q = 0.25 * (hi - lo)
    for d in range(1, 10):
        v = float(f"{mid:.{d}g}")
        if lo + q <= v <= hi - q and lo < np.float32(v) < hi:
            return v
    return mid


def choose_thresholds(kind, stat, cls, L, C):
    """A spread of thresholds: for each layer, the one that makes the most
    samples exit there (among the thresholds in wide gaps of the statistic),
    plus never-exit and always-exit settings. Rows are sorted by mean exit
    layer, duplicates (same exit layers) removed."""
    if kind == "patience":
        return [float(k) for k in range(1, L)]          # k = L-1 never exits
    if kind == "votes":
        return [float(t) for t in range(0, L)]          # 0: layer 1; L-1: never
    always, never = (math.inf, 0.0) if kind == "entropy" else (0.0, 1.0)
    u = np.unique(stat[np.isfinite(stat)].astype(np.float64))
    cands = []
    if len(u) > 1:
        gaps = np.diff(u) / np.maximum(np.abs(u[1:]), 1e-30)      # relative width
        idx = np.unique(np.linspace(0, len(gaps) - 1, min(len(gaps), 600)).round().astype(int))
        w = max(1, len(gaps) // 600)
        for i in idx:
            j0, j1 = max(0, i - w), min(len(gaps), i + w + 1)
            j = j0 + int(np.argmax(gaps[j0:j1]))
            cands.append((nice_inside(u[j], u[j + 1]), gaps[j]))
    rows = [always, never]
    if cands:
        layers = np.stack([exit_layers(kind, stat, cls, [v] * C if kind == "per_class" else v)
                           for v, _ in cands])                     # [cand, N]
        width = np.array([g for _, g in cands])
        for l in range(1, L + 1):
            count = (layers == l).sum(1)
            if count.max() == 0:
                continue
            ok = count >= 0.8 * count.max()
            best = int(np.argmax(np.where(ok, width, -1.0)))
            rows.append(cands[best][0])
    seen, out = {}, []
    for v in rows:
        th = [v] * C if kind == "per_class" else v
        e = exit_layers(kind, stat, cls, th)
        key = e.tobytes()
        if key not in seen:
            seen[key] = True
            out.append((float(e.mean()), th))
    out.sort(key=lambda r: r[0])
    res = [th for _, th in out]
    if kind == "per_class" and C >= 2 and len(res) >= 4:
        # two class-dependent settings: alternate a lower and a higher level
        a_, b_ = res[len(res) // 3][0], res[(2 * len(res)) // 3][0]
        res.append([a_ if c % 2 == 0 else b_ for c in range(C)])
        res.append([b_ if c % 2 == 0 else a_ for c in range(C)])
    return res


def parse_values(kind, text):
    if kind == "per_class":
        return [[float(v) for v in row.split(",")] for row in text.split(";") if row]
    return [float(v) for v in text.split(",") if v]


# ---------------------------------------------------------------------------
# The independent derivation (docs/early-exit.md in scalar numpy) for --self-check


def np_exp32(v):
    return np.float32(np.exp(np.float64(v)))


def np_log32(v):
    return np.float32(np.log(np.float64(v)))


def np_softmax(z):
    m = np.float32(np.max(z))                      # NaN if any NaN
    e = [np_exp32(np.float32(zc - m)) for zc in z]
    s = e[0]
    for ec in e[1:]:
        s = np.float32(s + ec)
    return [np.float32(ec / s) for ec in e]


def np_exit_layer(kind, value, temperature, zs, ss):
    """One sample: zs [L, C] float32 (every classifier), ss [L-1] float32 or
    None -> its exit layer (1-based, L = never)."""
    L, C = zs.shape
    th = (np.asarray(value, np.float32) if kind == "per_class" else np.float32(value))
    n, prev, votes = 0, -1, [0] * C
    for l in range(1, L):
        z = zs[l - 1]
        nan = any(np.isnan(v) for v in z)
        a = -1
        if not nan:
            a = 0
            for c in range(1, C):
                if z[c] > z[a]:
                    a = c
        if kind == "entropy":
            acc = np.float32(0)
            for i, p in enumerate(np_softmax(z)):
                t = np.float32(0) if p == 0 else np.float32(p * np_log32(p))
                acc = t if i == 0 else np.float32(acc + t)
            ok = np.float32(-acc) < th
        elif kind == "max_prob":
            tz = np.array([np.float32(v / np.float32(temperature)) for v in z], np.float32)
            ok = np.float32(np.max(np.array(np_softmax(tz), np.float32))) > th
        elif kind == "patience":
            n = n + 1 if (a >= 0 and a == prev) else 0
            prev = a
            ok = np.float32(n) >= th
        elif kind == "votes":
            if a >= 0:
                votes[a] += 1
            ok = np.float32(max(votes)) > th
        elif kind == "learned_score":
            s = ss[l - 1]
            ok = (not np.isnan(s)) and s > th
        elif kind == "per_class":
            ok = a >= 0 and np_softmax(z)[a] > th[a]
        if ok and not nan:
            return l
    return L


def check_decisions(kinds, L=12, C=3, N=400, seed=5):
    """reference.decide (torch) against np_exit_layer on adversarial
    classifier outputs: ties, NaN, +-inf, huge logits (p = 0 terms), -0.0,
    scores equal to the threshold, edge thresholds. Returns failures."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(N, L, C)) * rng.choice([0.1, 1, 5, 30], size=(N, 1, 1))
    z[: N // 4] = rng.integers(-2, 3, size=(N // 4, L, C))           # ties
    z[N // 4: N // 3, :, :] = np.repeat(z[N // 4: N // 3, :1, :], L, axis=1)   # agreeing
    z = z.astype(np.float32)
    flat = z.reshape(-1)
    for v, frac in ((np.nan, 0.01), (np.inf, 0.005), (-np.inf, 0.005), (1e30, 0.01), (-0.0, 0.01)):
        flat[rng.random(flat.size) < frac] = v
    s = rng.random((N, L - 1)).astype(np.float32)
    s[rng.random(s.shape) < 0.05] = np.float32(0.5)
    s[rng.random(s.shape) < 0.02] = np.nan
    s[rng.random(s.shape) < 0.02] = 0.0
    s[rng.random(s.shape) < 0.02] = 1.0
    grid = {
        "entropy": [0.0, 1e-30, 0.05, 0.3, 0.7, 1.0986123, 2.0, math.inf],
        "max_prob": [0.0, 0.34, 0.5, 0.9, 0.999, 1.0],
        "patience": [1, 2, 3, 5, L - 2, L - 1, L],
        "votes": [0, 0.5, 1, 2, 3, 5.5, L - 2, L - 1],
        "learned_score": [0.0, 0.25, 0.5, 0.9, 1.0],
        "per_class": [[0.0] * C, [1.0] * C, [0.5] * C, [0.9, 0.4, 0.7][:C] + [0.5] * max(0, C - 3)],
    }
    fails = []
    for kind in kinds:
        temps = [1.0, 0.5, 2.5] if kind == "max_prob" else [1.0]
        for T_ in temps:
            for v in grid[kind]:
                crit = Criterion(kind, theta=v, temperature=T_)
                got, _ = decide(crit, torch.from_numpy(z),
                                torch.from_numpy(s) if kind == "learned_score" else None)
                want = np.array([np_exit_layer(kind, v, T_, z[i], s[i]) for i in range(N)])
                bad = np.nonzero(got.numpy() != want)[0]
                if len(bad):
                    fails.append(f"{crit}: {len(bad)} of {N} differ (first: sample {bad[0]}, "
                                 f"torch {int(got[bad[0]])}, numpy {int(want[bad[0]])})")
    # The edge rules of docs/early-exit.md on NaN-free, finite logits.
    fin = np.isfinite(z).all(axis=(1, 2))
    zf = torch.from_numpy(z[fin])
    E = lambda crit, sc=None: decide(crit, zf, sc)[0].numpy()  # noqa: E731
    rules = [
        ("entropy theta=0 never exits", (E(Criterion("entropy", theta=0.0)) == L).all()),
        ("entropy theta=inf always exits", (E(Criterion("entropy", theta=math.inf)) == 1).all()),
        ("max_prob theta=1 never exits", (E(Criterion("max_prob", theta=1.0)) == L).all()),
        ("max_prob theta=0 always exits", (E(Criterion("max_prob", theta=0.0)) == 1).all()),
        ("per_class theta=1 never exits", (E(Criterion("per_class", thresholds=[1.0] * C)) == L).all()),
        ("per_class theta=0 always exits", (E(Criterion("per_class", thresholds=[0.0] * C)) == 1).all()),
        ("votes theta >= exit points never exits", (E(Criterion("votes", theta=L - 1)) == L).all()),
        ("votes theta=0 always exits", (E(Criterion("votes", theta=0)) == 1).all()),
        ("patience k >= exit points never exits", (E(Criterion("patience", k=L - 1)) == L).all()),
        ("patience never exits at layer 1", (E(Criterion("patience", k=1)) >= 2).all()),
    ]
    for what, ok in rules:
        if not ok:
            fails.append("edge rule failed: " + what)
    return fails, len(rules)


# ---------------------------------------------------------------------------


def margins(kind, crit_values, stat, logits32, exits):
    """[N]: per sample, the smallest distance between the statistic and the
    threshold over the exit points evaluated (l <= exit layer, l < L); for
    patience and votes the smallest gap between the two largest logits (the
    argmax's robustness)."""
    N, E = stat.shape
    upto = np.arange(1, E + 1)[None, :] <= exits[:, None]
    if kind in ("patience", "votes"):
        zs = np.sort(logits32[:, :E, :].astype(np.float64), axis=2)
        d = zs[:, :, -1] - zs[:, :, -2] if zs.shape[2] > 1 else np.full((N, E), np.inf)
    else:
        th = np.asarray(crit_values, np.float64)
        if kind == "per_class":
            cls = np.argmax(logits32[:, :E, :], axis=2)
            th = np.asarray(crit_values, np.float32).astype(np.float64)[cls]
        else:
            th = np.float64(np.float32(th))
        d = np.abs(stat.astype(np.float64) - th)
    d = np.where(upto, d, np.inf)
    return d.min(axis=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--criterion", choices=CRITERIA, default="entropy")
    ap.add_argument("--threshold", type=float, default=None,
                    help="the MLIR's default threshold (theta; entropy, max_prob, votes, learned_score)")
    ap.add_argument("--patience", type=int, default=None, help="the MLIR's default k (patience)")
    ap.add_argument("--class-thresholds", default=None,
                    help="the MLIR's default per-class thresholds a,b,... (per_class)")
    ap.add_argument("--temperature", type=float, default=1.0, help="max_prob's temperature")
    ap.add_argument("--thresholds", default=None,
                    help="thresholds of NAME.expected.npz: a,b,c (per_class: a,b;c,d); "
                         "default: a spread that makes every layer an exit layer")
    add_shape_arguments(ap, layers=12)
    ap.add_argument("--cases", type=int, default=100)
    ap.add_argument("--out-dir", default=".")
    ap.add_argument("--name", default="early_exit")
    ap.add_argument("--self-check", action="store_true",
                    help="run the eager loops (batch1, batched) and the numpy derivation; "
                         "check they agree exactly")
    ap.add_argument("--check-cases", type=int, default=None,
                    help="with --self-check: run the eager loops on the first N cases only")
    g = ap.add_argument_group("weights")
    g.add_argument("--train-cases", type=int, default=512,
                   help="random inputs on which the internal classifiers are fitted")
    g.add_argument("--ridge", type=float, default=10.0)
    g.add_argument("--confidence", default="0.3,3",
                   help="RMS of the centred logits at layer 1 and at layer L (geometric in between)")
    g.add_argument("--score-bias", type=float, default=3.0,
                   help="learned_score: the score heads' bias ramps from -X (layer 1) to X")
    g.add_argument("--score-scale", type=float, default=1.5,
                   help="learned_score: std of the score heads' pre-sigmoid output")
    a = ap.parse_args()

    if a.d_model % a.heads:
        ap.error("--d-model must be a multiple of --heads")
    if a.layers < 2:
        ap.error("--layers must be >= 2 (exit points after layers 1 .. L-1)")
    if a.classes < 2:
        ap.error("--classes must be >= 2")
    if not a.name.isidentifier():
        ap.error("--name must be an identifier (it names the MLIR function and the library)")
    a.confidence = tuple(float(v) for v in a.confidence.split(","))
    kind, L, C, B, K = a.criterion, a.layers, a.classes, a.batch, a.cases
    os.makedirs(a.out_dir, exist_ok=True)
    base = os.path.join(a.out_dir, a.name)
    t_start = time.time()

    default = {"patience": a.patience if a.patience is not None else a.threshold,
               "per_class": a.class_thresholds}.get(kind, a.threshold)
    if kind == "per_class" and default is not None:
        default = [float(v) for v in default.split(",")]
        if len(default) != C:
            ap.error(f"--class-thresholds needs {C} values")

    # -- weights
    model = make_model(a, learned=kind == "learned_score")
    tensors = model.tensors()
    ref = EarlyExitEncoder.from_tensors(tensors, heads=a.heads).double().eval()

    # -- cases, full depth in float64
    shape = (a.seq, a.d_model) if B == 1 else (B, a.seq, a.d_model)
    xs = []
    all_logits, all_scores = [], []
    with torch.no_grad():
        for i in range(K):
            gen = torch.Generator().manual_seed(a.seed + 1_000_003 + 7919 * i)
            x = torch.randn(shape, generator=gen, dtype=torch.float32)
            xs.append(x.numpy())
            z, s = ref.forward_all(x.double())
            all_logits.append(z.numpy())
            if s is not None:
                all_scores.append(s.numpy())
    x_all = np.stack(xs)                                                 # [K, (B,) S, D]
    logits64 = np.stack(all_logits)                                      # [K, B, L, C]
    scores64 = np.stack(all_scores) if all_scores else None             # [K, B, L-1]
    logits32 = logits64.astype(np.float32)
    scores32 = scores64.astype(np.float32) if scores64 is not None else None
    flat_z = logits32.reshape(K * B, L, C)
    flat_s = scores32.reshape(K * B, L - 1) if scores32 is not None else None

    # -- the statistics and the thresholds
    probe = Criterion(kind, theta=0.5 if kind != "per_class" else [0.5] * C,
                      temperature=a.temperature)
    _, stat = decide(probe, torch.from_numpy(flat_z),
                     None if flat_s is None else torch.from_numpy(flat_s))
    stat = stat.numpy()                                                  # [K*B, L-1]
    cls = np.array([[np_first_argmax(r) for r in row] for row in flat_z[:, :L - 1]]) \
        if kind == "per_class" else None
    if a.thresholds:
        values = parse_values(kind, a.thresholds)
    else:
        values = choose_thresholds(kind, stat, cls, L, C)
    if default is None:
        means = [exit_layers(kind, stat, cls, v).mean() for v in values]
        default = values[int(np.argmin([abs(m - (L + 1) / 2) for m in means]))]
    if not any(np.array_equal(np.asarray(v), np.asarray(default)) for v in values):
        values.append(default)
    crit = Criterion(kind, theta=default, temperature=a.temperature)

    # -- expected (decided on the float32 logits, with reference.Criterion)
    Tn = len(values)
    exit_layer = np.zeros((Tn, K, B), np.int32)
    logits = np.zeros((Tn, K, B, C), np.float32)
    margin = np.zeros((Tn, K, B), np.float64)
    for t, v in enumerate(values):
        c = crit.with_value(v)
        e, _ = decide(c, torch.from_numpy(flat_z), None if flat_s is None else torch.from_numpy(flat_s))
        e = e.numpy()
        exit_layer[t] = e.reshape(K, B)
        logits[t] = logits64.reshape(K * B, L, C)[np.arange(K * B), e - 1].astype(np.float32).reshape(K, B, C)
        margin[t] = margins(kind, v, stat, flat_z, e).reshape(K, B)

    # -- write
    gen = EarlyExitGen(a.name, L, a.d_model, a.heads, a.d_ff, a.seq, C, B, crit)
    with open(base + ".mlir", "w") as f:
        f.write(gen.module())
    thr_text = ",".join(repr(float(v)) for v in np.asarray(crit.value).reshape(-1))
    metadata = dict(format="pt", generator="examples/early-exit/make_early_exit.py",
                    layers=L, d_model=a.d_model, heads=a.heads, d_ff=a.d_ff, seq=a.seq,
                    classes=C, batch=B, seed=a.seed, criterion=kind, threshold=thr_text,
                    temperature=a.temperature)
    save_safetensors(base + ".safetensors", tensors, metadata)
    np.save(base + ".x.npy", x_all)
    extra = {"scores": scores32} if scores32 is not None else {}
    np.savez(base + ".expected.npz",
             criterion=np.array(kind), temperature=np.float64(a.temperature),
             layers=np.int32(L),
             thresholds=np.array(values, np.float64),
             default_threshold=np.array(crit.value, np.float64),
             exit_layer=exit_layer, logits=logits,
             all_logits=logits32, stat=stat.reshape(K, B, L - 1),
             margin=margin, **extra)

    # -- report
    n = sum(t.size for t in tensors.values())
    print(f"wrote {base}.mlir, .safetensors ({len(tensors)} tensors, {n} floats), "
          f".x.npy {list(x_all.shape)}, .expected.npz ({Tn} thresholds) "
          f"in {time.time() - t_start:.1f} s")
    print(f"criterion {crit} (MLIR default); {K} cases x batch {B}; "
          f"exit-layer histogram per threshold:")
    head = "  ".join(f"{l:>4d}" for l in range(1, L + 1))
    label = {"patience": "k"}.get(kind, "threshold")
    print(f"  {label:>22s}   mean  {head}   min margin")
    for t, v in enumerate(values):
        hist = np.bincount(exit_layer[t].reshape(-1), minlength=L + 1)[1:]
        vt = (",".join(f"{x:.4g}" for x in v) if kind == "per_class" else f"{v:.6g}")
        print(f"  {vt:>22s}  {exit_layer[t].mean():5.2f}  "
              + "  ".join(f"{c:4d}" for c in hist) + f"   {margin[t].min():.3g}")
    hit = np.unique(exit_layer)
    missing = sorted(set(range(1, L + 1)) - set(hit.tolist()))
    print("every layer is an exit layer for some threshold" if not missing else
          f"layers never an exit layer: {missing}"
          + (" (patience cannot exit at layer 1)" if kind == "patience" and missing == [1] else ""))

    if a.self_check:
        ok = self_check(a, kind, values, crit, ref, x_all, flat_z, flat_s, exit_layer, logits)
        sys.exit(0 if ok else 1)


def np_first_argmax(z):
    if np.isnan(z).any():
        return -1
    a = 0
    for c in range(1, len(z)):
        if z[c] > z[a]:
            a = c
    return a


def self_check(a, kind, values, crit, ref, x_all, flat_z, flat_s, exit_layer, logits):
    K, B = a.cases, a.batch
    ok = True
    t0 = time.time()
    with np.errstate(all="ignore"):
        fails, nrules = check_decisions(CRITERIA)
    print("self-check: decisions, torch vs numpy on adversarial logits (ties, NaN, inf, "
          "p = 0, edge thresholds), all criteria: "
          + ("OK" if not fails else f"{len(fails)} FAILURES") + f"; {nrules} edge rules checked")
    for f in fails:
        print("   ", f)
    ok &= not fails

    # numpy derivation from the full-depth logits
    with np.errstate(all="ignore"):
        bad = 0
        for t, v in enumerate(values):
            want = np.array([np_exit_layer(kind, v, a.temperature, flat_z[n],
                                           None if flat_s is None else flat_s[n])
                             for n in range(K * B)])
            bad += int((want != exit_layer[t].reshape(-1)).sum())
    print("self-check: expected exit layers vs numpy derivation from full-depth logits: "
          + ("OK" if not bad else f"{bad} DIFFER") + f" ({len(values)} thresholds x {K * B} samples)")
    ok &= bad == 0

    # the eager loops
    Kc = K if a.check_cases is None else min(K, a.check_cases)
    for mode in ("batched", "batch1"):
        bad_e, bad_z = 0, 0
        for t, v in enumerate(values):
            c = crit.with_value(v)
            for i in range(Kc):
                x = torch.from_numpy(x_all[i]).double()
                z, e = ref.early_exit(x, c, mode=mode)
                e = e.numpy()
                z32 = z.numpy().astype(np.float32)
                bad_e += int((e != exit_layer[t, i]).sum())
                bad_z += int((z32 != logits[t, i]).any(axis=1).sum())
        print(f"self-check: eager {mode} loop (float64) vs expected, {len(values)} thresholds x "
              f"{Kc} cases: exit layers " + ("OK" if not bad_e else f"{bad_e} DIFFER")
              + ", float32 logits " + ("bit-identical" if not bad_z else f"differ for {bad_z} samples"))
        ok &= bad_e == 0
    print(f"self-check: {'PASSED' if ok else 'FAILED'} in {time.time() - t0:.1f} s")
    return ok


if __name__ == "__main__":
    main()
