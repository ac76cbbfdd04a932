#!/usr/bin/env python3
"""The W2 / W4 early-exit encoder classifier as a dyncc.nn.EarlyExit module.

The encoder layers of examples/encoder/torch_eager.py (post-LN, W2's sizes
by default: 12 layers, d=256, 4 heads, d_ff=1024, seq 128, 2 classes), a
linear classifier on the first token after every layer (the last one is the
final classifier) and, for learned_score, a score head (linear + sigmoid)
after every layer but the last. The criterion is any of docs/early-exit.md.
The eager module is the reference; dyncc.export turns it into a chain of
dyn.exit_if.

    import model as ee                                   # examples/early-exit on sys.path
    m = ee.build_model("entropy", layers=12, d_model=256, heads=4, d_ff=1024,
                       seq=128, classes=2, seed=0)       # weights fitted (below)
    ee.export(m, "out/w2", batch=1)                      # out/w2.mlir, out/w2.safetensors
    xs = ee.make_inputs(cases=100, batch=1, seq=128, d_model=256, seed=0)   # [K, B, S, D]
    logits = m(xs[0]); m.exit_layer                      # eager: [B, C], [B]
    m.criterion.value = 0.3                              # another threshold (eager)

Command line (writes NAME.mlir, NAME.safetensors, NAME.x.npy [K, B, S, D],
NAME.expected.npz: per threshold the eager exit layers and logits; with
--weights-only no NAME.mlir, the weights through dyncc.export_weights, which
needs no torch-mlir):

    .venv/bin/python examples/early-exit/model.py --criterion entropy --out-dir DIR --name NAME

Weights: torch.manual_seed(seed), init_scaled (torch_eager.Encoder's), then
the internal classifiers are fitted (ridge regression on random training
inputs) to mimic the final classifier, scaled so that confidence grows with
depth (RMS of the centred logits from --confidence lo at layer 1 to hi at
layer L, geometric), so that every layer is an exit layer for some
threshold; learned_score's heads get a bias ramp over the layers.
"""

import argparse
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "examples", "encoder"))
sys.path.insert(0, os.path.join(ROOT, "python"))

from torch_eager import EncoderLayer, LN_EPS, add_shape_arguments  # noqa: E402,F401  (sets OPENBLAS_CORETYPE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import dyncc.nn as dnn  # noqa: E402
from dyncc.nn.exits import CRITERIA, Criterion  # noqa: E402

PARAM = {"patience": "patience", "per_class": "class_thresholds"}


class FirstTokenHead(nn.Module):
    """A linear classifier [D] -> [C] on the first token: [B, S, D] -> [B, C]."""

    def __init__(self, d_model, classes):
        super().__init__()
        self.fc = nn.Linear(d_model, classes)

    def forward(self, h):
        return self.fc(h[:, 0, :])


class ScoreHead(nn.Module):
    """learned_score's exit score: sigmoid(linear [D] -> 1 on the first token), [B, 1]."""

    def __init__(self, d_model):
        super().__init__()
        self.fc = nn.Linear(d_model, 1)

    def forward(self, h):
        return torch.sigmoid(self.fc(h[:, 0, :]))


def make_criterion(kind, value=None, temperature=1.0, classes=2):
    """The dyncc.nn criterion of `kind` with threshold `value` (k for
    patience, a list for per_class); None: a placeholder (0.5, k = 1)."""
    if kind == "entropy":
        return dnn.Entropy(0.5 if value is None else value)
    if kind == "max_prob":
        return dnn.MaxProb(0.5 if value is None else value, temperature=temperature)
    if kind == "patience":
        return dnn.Patience(1 if value is None else int(value))
    if kind == "votes":
        return dnn.Votes(0.5 if value is None else value)
    if kind == "learned_score":
        return dnn.LearnedScore(0.5 if value is None else value)
    if kind == "per_class":
        return dnn.PerClass([0.5] * classes if value is None else list(value))
    raise ValueError(f"unknown criterion {kind!r}; one of {', '.join(CRITERIA)}")


def set_threshold(model, value):
    """Sets the eager module's threshold (what set_param does to the library)."""
    crit = model.criterion
    if crit.kind == "per_class":
        crit.value = np.asarray(value, np.float64).reshape(-1)
    else:
        crit.value = float(np.asarray(value).reshape(-1)[0]) if np.ndim(value) else float(value)


def make_inputs(cases, batch, seq, d_model, seed=0):
    """[K, B, S, D] float32: case i is N(0, 1) from its own generator."""
    xs = []
    for i in range(cases):
        g = torch.Generator().manual_seed(seed + 1_000_003 + 7919 * i)
        xs.append(torch.randn((batch, seq, d_model), generator=g, dtype=torch.float32))
    return torch.stack(xs)


@torch.no_grad()
def full_depth(model, x):
    """Every layer, every head on x [N, S, D]: (logits [N, L, C], scores
    [N, L-1] or None), float32."""
    zs, ss = [], []
    h = x
    L = model.num_layers
    for l in range(L):
        h = model.layers[l](h)
        zs.append(model.heads[l](h))
        if model.score_heads is not None and l < L - 1:
            ss.append(model.score_heads[l](h).reshape(-1))
    return torch.stack(zs, 1), (torch.stack(ss, 1) if ss else None)


def decide(criterion, logits, scores=None):
    """Exit layers from full-depth classifier outputs: logits [N, L, C],
    scores [N, L-1] or None -> (exit_layer [N] int32, stat [N, L-1] float32)."""
    z = torch.as_tensor(logits).to(torch.float32)
    N, L, _ = z.shape
    s = None if scores is None else torch.as_tensor(scores).to(torch.float32)
    state = criterion.start(N)
    exit_layer = torch.full((N,), L, dtype=torch.int32)
    stats = []
    for l in range(1, L):
        e, st = criterion.step(state, l, z[:, l - 1], None if s is None else s[:, l - 1])
        exit_layer = torch.where(e & (exit_layer == L), torch.full_like(exit_layer, l), exit_layer)
        stats.append(st)
    return exit_layer, torch.stack(stats, 1)


@torch.no_grad()
def build_model(criterion="entropy", layers=12, d_model=256, heads=4, d_ff=1024, seq=128,
                classes=2, seed=0, threshold=None, temperature=1.0, train_cases=512,
                ridge=10.0, confidence=(0.3, 3.0), score_bias=3.0, score_scale=1.5, fit=True):
    """The early-exit encoder (dyncc.nn.EarlyExit, eval mode) with fitted
    weights; its criterion's threshold is `threshold` (None: a placeholder,
    set it with set_threshold before exporting). fit=False: the architecture
    only, with PyTorch's default initialisation (then load_weights)."""
    if d_model % heads:
        raise ValueError("d_model must be a multiple of heads")
    if layers < 2:
        raise ValueError("an early-exit encoder needs at least 2 layers")
    learned = criterion == "learned_score"
    torch.manual_seed(seed)
    enc_layers = [EncoderLayer(d_model, heads, d_ff) for _ in range(layers)]
    heads_ = [FirstTokenHead(d_model, classes) for _ in range(layers)]
    scores = [ScoreHead(d_model) for _ in range(layers - 1)] if learned else None
    model = dnn.EarlyExit(enc_layers, heads_, make_criterion(criterion, threshold, temperature,
                                                             classes),
                          score_heads=scores)
    if not fit:
        return model.eval()
    # init_scaled (torch_eager.Encoder's): O(1) activations through any depth
    for m in model.modules():
        if isinstance(m, nn.Linear):
            std = 1.0 / math.sqrt(m.in_features)
            m.weight.normal_(0.0, std)
            m.bias.normal_(0.0, 0.1 * std)
        elif isinstance(m, nn.LayerNorm):
            m.weight.normal_(1.0, 0.1)
            m.bias.normal_(0.0, 0.1)
    model.eval()
    L, D = layers, d_model

    # First-token states of every layer on random training inputs.
    g = torch.Generator().manual_seed(seed + 2_000_003)
    feats = []
    for i in range(0, train_cases, 32):
        h = torch.randn(min(32, train_cases - i), seq, D, generator=g)
        hs = []
        for layer in model.layers:
            h = layer(h)
            hs.append(h[:, 0, :].double())
        feats.append(torch.stack(hs, 1))
    H = torch.cat(feats)                                          # [N, L, D]
    N = H.shape[0]
    final = model.heads[L - 1].fc
    wc, bc = final.weight.double(), final.bias.double()
    y = H[:, -1] @ wc.t() + bc                                     # the final logits
    # Centre the final head on the training inputs (balanced classes).
    final.bias.sub_(y.mean(0).float())
    y = y - y.mean(0)

    def spread(z):  # RMS of the logits around each sample's mean
        return float((z - z.mean(1, keepdim=True)).pow(2).mean().sqrt())

    lo, hi = confidence
    target = [lo * (hi / lo) ** ((l - 1) / (L - 1)) for l in range(1, L + 1)]
    ones = torch.ones(N, 1, dtype=torch.float64)
    for l in range(1, L):
        X = torch.cat([H[:, l - 1], ones], 1)
        A = X.t() @ X
        A[:D, :D] += ridge * torch.eye(D, dtype=torch.float64)
        W = torch.linalg.solve(A, X.t() @ y)                       # [D + 1, C]
        k = target[l - 1] / max(spread(X @ W), 1e-12)
        model.heads[l - 1].fc.weight.copy_((W[:D] * k).t())
        model.heads[l - 1].fc.bias.copy_(W[D] * k)
    k = target[-1] / max(spread(y), 1e-12)
    final.weight.mul_(k)
    final.bias.mul_(k)

    if learned:
        gs = torch.Generator().manual_seed(seed + 3_000_017)
        ramp = np.linspace(-score_bias, score_bias, L - 1)
        for l in range(1, L):
            # pre-sigmoid score ~ ramp[l] + score_scale * (a random direction,
            # standardised on the training inputs)
            w = torch.randn(D, generator=gs, dtype=torch.float64)
            pre = H[:, l - 1] @ w
            k = score_scale / max(float(pre.std()), 1e-12)
            model.score_heads[l - 1].fc.weight.copy_((w * k)[None, :])
            model.score_heads[l - 1].fc.bias.fill_(float(ramp[l - 1] - k * float(pre.mean())))
    return model


def load_weights(model, path):
    """Loads NAME.safetensors (written by export: the state_dict names) into
    the module; returns it."""
    from torch_eager import load_safetensors
    tensors, _ = load_safetensors(path)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()})
    return model


def plain_encoder(model):
    """torch_eager.Encoder sharing the module's layers and final head: the
    same network without exit points (eager full-depth baseline)."""
    from torch_eager import Encoder
    fc = model.heads[-1].fc
    enc = Encoder(layers=1, d_model=fc.in_features, heads=1, d_ff=1,
                  classes=fc.out_features).eval()
    enc.layers = model.layers
    enc.head = fc
    return enc


class Forced(Criterion):
    """Timing only: the criterion is computed at every exit point as usual,
    but every sample exits exactly at `layer` (L: never)."""

    def __init__(self, crit, layer):
        super().__init__(crit.kind, theta=crit.value, temperature=crit.temperature)
        self.param = getattr(crit, "param", None)
        self.layer = layer

    def step(self, state, l, logits, score=None):
        _, stat = super().step(state, l, logits, score)
        return torch.full((logits.shape[0],), l == self.layer), stat


def export(model, path, batch=1, seq=128, d_model=256):
    """dyncc.export at input [batch, seq, d_model]: path.mlir, path.safetensors.
    The threshold the MLIR holds as its default is the module's current one."""
    import dyncc
    return dyncc.export(model, (torch.zeros(batch, seq, d_model),), path)


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


def first_argmax(z):
    """[N, E, C] -> [N, E]: the first maximal class, -1 where NaN."""
    a = np.argmax(z, axis=-1)
    return np.where(np.isnan(z).any(-1), -1, a)


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


def margins(kind, value, stat, logits32, exits):
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
        if kind == "per_class":
            cls = np.argmax(logits32[:, :E, :], axis=2)
            th = np.asarray(value, np.float32).astype(np.float64)[cls]
        else:
            th = np.float64(np.float32(value))
        d = np.abs(stat.astype(np.float64) - th)
    d = np.where(upto, d, np.inf)
    return d.min(axis=1)


def statistics(model, xs, chunk=64):
    """Full depth on the cases xs [K, B, S, D]: (logits [K*B, L, C], scores
    [K*B, L-1] or None, stat [K*B, L-1], cls [K*B, L-1] or None) for the
    model's criterion."""
    x = xs.reshape(-1, *xs.shape[2:])
    zs, ss = [], []
    for i in range(0, x.shape[0], chunk):
        z, s = full_depth(model, x[i:i + chunk])
        zs.append(z)
        if s is not None:
            ss.append(s)
    z = torch.cat(zs).numpy()
    s = torch.cat(ss).numpy() if ss else None
    _, stat = decide(model.criterion, torch.from_numpy(z), None if s is None else torch.from_numpy(s))
    L = model.num_layers
    cls = first_argmax(z[:, :L - 1]) if model.criterion.kind == "per_class" else None
    return z, s, stat.numpy(), cls


@torch.no_grad()
def expected(model, xs, values, chunk=64):
    """The eager module on every case at every threshold: (exit_layer [T, K, B]
    int32, logits [T, K, B, C] float32, margin [T, K, B]), the samples run
    `chunk` at a time. Leaves the module's threshold as it was."""
    K, B = xs.shape[:2]
    kind = model.criterion.kind
    keep = model.criterion.value
    z, _, stat, _ = statistics(model, xs)
    C = z.shape[-1]
    T = len(values)
    exit_layer = np.zeros((T, K, B), np.int32)
    logits = np.zeros((T, K, B, C), np.float32)
    margin = np.zeros((T, K, B), np.float64)
    x = xs.reshape(K * B, *xs.shape[2:])
    for t, v in enumerate(values):
        set_threshold(model, v)
        zs, es = [], []
        for i in range(0, K * B, chunk):     # samples are decided independently
            zs.append(model(x[i:i + chunk]).numpy())
            es.append(model.exit_layer.numpy())
        logits[t] = np.concatenate(zs).reshape(K, B, C)
        exit_layer[t] = np.concatenate(es).reshape(K, B)
        margin[t] = margins(kind, v, stat, z, exit_layer[t].reshape(-1)).reshape(K, B)
    model.criterion.value = keep
    return exit_layer, logits, margin


def parse_values(kind, text):
    if kind == "per_class":
        return [[float(v) for v in row.split(",")] for row in text.split(";") if row]
    return [float(v) for v in text.split(",") if v]




def parser():
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
    add_shape_arguments(ap)
    ap.add_argument("--cases", type=int, default=100)
    ap.add_argument("--out-dir", default=".")
    ap.add_argument("--name", default="early_exit")
    ap.add_argument("--no-expected", action="store_true",
                    help="write only NAME.mlir, NAME.safetensors and NAME.x.npy")
    ap.add_argument("--weights-only", action="store_true",
                    help="write NAME.safetensors with dyncc.export_weights (no NAME.mlir, no "
                         "tracing, no torch-mlir) and the data files: for a machine that runs "
                         "a library compiled elsewhere")
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
    return ap


def generate(a):
    """What the command line does, for the parsed arguments `a`: builds,
    picks the thresholds, exports, writes the files. Returns (model,
    thresholds, default threshold, xs, (exit_layer, logits, margin) or None)."""
    kind, L, C, B, K = a.criterion, a.layers, a.classes, a.batch, a.cases
    os.makedirs(a.out_dir, exist_ok=True)
    base = os.path.join(a.out_dir, a.name)
    default = {"patience": a.patience if a.patience is not None else a.threshold,
               "per_class": a.class_thresholds}.get(kind, a.threshold)
    if kind == "per_class" and isinstance(default, str):
        default = [float(v) for v in default.split(",")]
        if len(default) != C:
            raise SystemExit(f"--class-thresholds needs {C} values")
    model = build_model(kind, L, a.d_model, a.heads, a.d_ff, a.seq, C, a.seed,
                        temperature=a.temperature, train_cases=a.train_cases, ridge=a.ridge,
                        confidence=tuple(float(v) for v in str(a.confidence).split(",")),
                        score_bias=a.score_bias, score_scale=a.score_scale)
    xs = make_inputs(K, B, a.seq, a.d_model, a.seed)
    _, _, stat, cls = statistics(model, xs)
    if a.thresholds:
        values = parse_values(kind, a.thresholds)
    else:
        values = choose_thresholds(kind, stat, cls, L, C)
    if default is None:
        means = [exit_layers(kind, stat, cls, v).mean() for v in values]
        default = values[int(np.argmin([abs(m - (L + 1) / 2) for m in means]))]
    if not any(np.array_equal(np.asarray(v), np.asarray(default)) for v in values):
        values.append(default)
    set_threshold(model, default)
    if a.weights_only:
        import dyncc
        dyncc.export_weights(model, base)
    else:
        export(model, base, B, a.seq, a.d_model)
    np.save(base + ".x.npy", xs.numpy())
    if a.no_expected:
        return model, values, default, xs, None
    exit_layer, logits, margin = expected(model, xs, values)
    np.savez(base + ".expected.npz", criterion=np.array(kind),
             temperature=np.float64(a.temperature), layers=np.int32(L),
             thresholds=np.array(values, np.float64),
             default_threshold=np.array(default, np.float64),
             exit_layer=exit_layer, logits=logits, stat=stat.reshape(K, B, L - 1),
             margin=margin)
    return model, values, default, xs, (exit_layer, logits, margin)


def main():
    ap = parser()
    a = ap.parse_args()
    if a.d_model % a.heads:
        ap.error("--d-model must be a multiple of --heads")
    if a.layers < 2:
        ap.error("--layers must be >= 2 (exit points after layers 1 .. L-1)")
    if a.classes < 2:
        ap.error("--classes must be >= 2")
    if not a.name.isidentifier():
        ap.error("--name must be an identifier (it names the library)")
    t0 = time.time()
    model, values, default, xs, exp = generate(a)
    base = os.path.join(a.out_dir, a.name)
    print(f"wrote {base}" + (".safetensors" if a.weights_only else ".mlir, .safetensors")
          + f", .x.npy {list(xs.shape)}"
          + ("" if exp is None else f", .expected.npz ({len(values)} thresholds)")
          + f" in {time.time() - t0:.1f} s")
    dv = ",".join(repr(float(v)) for v in np.asarray(default, np.float64).reshape(-1))
    print(f"default threshold {dv}")
    if exp is None:
        return
    exit_layer, _, margin = exp
    kind, L = a.criterion, a.layers
    print(f"criterion {model.criterion} (MLIR default {default}); {a.cases} cases x batch "
          f"{a.batch}; exit-layer histogram per threshold:")
    head = "  ".join(f"{l:>4d}" for l in range(1, L + 1))
    label = {"patience": "k"}.get(kind, "threshold")
    print(f"  {label:>22s}   mean  {head}   min margin")
    for t, v in enumerate(values):
        hist = np.bincount(exit_layer[t].reshape(-1), minlength=L + 1)[1:]
        vt = (",".join(f"{x:.4g}" for x in v) if kind == "per_class" else f"{v:.6g}")
        print(f"  {vt:>22s}  {exit_layer[t].mean():5.2f}  "
              + "  ".join(f"{c:4d}" for c in hist) + f"   {margin[t].min():.3g}")


if __name__ == "__main__":
    main()
