#!/usr/bin/env python3
"""Early-exit encoder classifier in PyTorch eager: the reference of dyn.exit_if.

The W2 encoder (examples/encoder/torch_eager.Encoder: post-LN layers, a
linear head on the first token) with an internal classifier after every
layer l < L, run the way Hugging Face DeeBERT / PABEE research code runs it:
a Python loop over the layers, after each layer l < L the internal
classifier (a linear head [D] -> [C] on the first token) and the exit
criterion; the final head for the samples that never exit. The decisions
follow docs/early-exit.md exactly (see `Criterion`).

    from reference import EarlyExitEncoder, Criterion, load_early_exit
    model, meta = load_early_exit("w2ee.safetensors")
    crit = Criterion.from_metadata(meta)                 # or Criterion("entropy", theta=0.3)
    logits, exit_layer = model.early_exit(x, crit, mode="batch1")

Modes: `batch1` runs one sample at a time and stops its loop as soon as it
exits (what the W2 timing measures); `batched` runs the whole batch through
every layer while any sample is still active, as eager code at batch > 1
must (W4). Both return (logits [B, C] of each sample's exit layer, in the
model's dtype; exit_layer [B] int32, 1-based, L for "never exited").

Command line (weights and inputs written by make_early_exit.py):

    # exit layers of the cases in NAME.x.npy at the default threshold (or --threshold ...)
    .venv/bin/python reference.py --weights NAME.safetensors --x NAME.x.npy
    # eager timing: batch1 loop forced to exit at layers 3, 6, 12, and the plain 12-layer encoder
    .venv/bin/python reference.py --time --weights NAME.safetensors --x NAME.x.npy
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "encoder"))

# torch_eager sets OPENBLAS_CORETYPE before torch loads (see WORKLOADS.md).
from torch_eager import Encoder, copy_slots, encoder_sizes, load_safetensors  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

# The decisions live in the dyncc package (one implementation, shared with
# dyncc.nn.EarlyExit); re-exported here for the generators and tests.
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
from dyncc.nn.exits import (  # noqa: E402,F401
    CRITERIA, Criterion, entropy32, exp32, f32, first_argmax, has_nan, log32, softmax32)

# ---------------------------------------------------------------------------
# The module


class EarlyExitEncoder(Encoder):
    """torch_eager.Encoder plus an internal classifier after each layer
    l = 1 .. L-1 (`exits[l-1]`, a linear [D] -> [C] on the first token) and,
    for learned_score, an exit-score head per exit point (`scores[l-1]`,
    [D] -> 1 followed by a sigmoid). The encoder layers and `head` (the
    final classifier, after layer L) are the base class's."""

    def __init__(self, layers=12, d_model=256, heads=4, d_ff=1024, classes=2,
                 learned_score=False):
        if layers < 2:
            raise ValueError("an early-exit encoder needs at least 2 layers")
        super().__init__(layers=layers, d_model=d_model, heads=heads, d_ff=d_ff,
                         classes=classes)
        self.config["learned_score"] = learned_score
        self.exits = nn.ModuleList(nn.Linear(d_model, classes) for _ in range(layers - 1))
        self.scores = (nn.ModuleList(nn.Linear(d_model, 1) for _ in range(layers - 1))
                       if learned_score else None)

    @property
    def num_layers(self):
        return len(self.layers)

    def _named_slots(self):
        slots = super()._named_slots()
        body, head = slots[:-2], slots[-2:]
        for l, lin in enumerate(self.exits, start=1):
            body.append((f"exits.{l}.w", lin.weight, True))
            body.append((f"exits.{l}.b", lin.bias, False))
            if self.scores is not None:
                body.append((f"exits.{l}.score_w", self.scores[l - 1].weight, True))
                body.append((f"exits.{l}.score_b", self.scores[l - 1].bias, False))
        return body + head

    @classmethod
    def from_tensors(cls, tensors, heads):
        layers, d_model, d_ff, classes = encoder_sizes(tensors)
        model = cls(layers=layers, d_model=d_model, heads=heads, d_ff=d_ff,
                    classes=classes, learned_score="exits.1.score_w" in tensors)
        copy_slots(model, tensors)
        return model

    # -- pieces ---------------------------------------------------------------

    def classify(self, l, h):
        """The classifier after layer l (1-based) on h [B, S, D]: (logits
        [B, C], score [B, 1] or None). l = L is the final head."""
        cls = h[:, 0, :]
        if l == self.num_layers:
            return self.head(cls), None
        z = self.exits[l - 1](cls)
        s = torch.sigmoid(self.scores[l - 1](cls)) if self.scores is not None else None
        return z, s

    @staticmethod
    def _batched(x):
        return x.unsqueeze(0) if x.dim() == 2 else x

    @torch.no_grad()
    def forward_all(self, x):
        """Full depth, every classifier: (logits [B, L, C], scores [B, L-1]
        or None)."""
        h = self._batched(x)
        zs, ss = [], []
        for l, layer in enumerate(self.layers, start=1):
            h = layer(h)
            z, s = self.classify(l, h)
            zs.append(z)
            if s is not None:
                ss.append(s[:, 0])
        return torch.stack(zs, 1), (torch.stack(ss, 1) if ss else None)

    # -- the eager early-exit loops ---------------------------------------------

    @torch.no_grad()
    def early_exit(self, x, criterion, mode="batch1", force_exit=None):
        """(logits [B, C], exit_layer [B] int32). `force_exit` (timing only)
        overrides the decisions: every exit point still computes its
        classifier and criterion, but the sample exits exactly at that layer."""
        x = self._batched(x)
        if mode == "batch1":
            outs, layers = [], []
            for b in range(x.shape[0]):
                z, e = self._loop_one(x[b:b + 1], criterion, force_exit)
                outs.append(z)
                layers.append(e)
            return torch.cat(outs, 0), torch.tensor(layers, dtype=torch.int32)
        if mode == "batched":
            return self._loop_batched(x, criterion, force_exit)
        raise ValueError(f"mode must be batch1 or batched, not {mode!r}")

    def _loop_one(self, x, criterion, force_exit):
        """One sample ([1, S, D]): DeeBERT's loop, stopping at the exit."""
        L = self.num_layers
        state = criterion.start(1)
        h = x
        for l in range(1, L + 1):
            h = self.layers[l - 1](h)
            z, s = self.classify(l, h)
            if l == L:
                return z, L
            exit_now, _ = criterion.step(state, l, z, s)
            if force_exit is not None:
                exit_now = torch.tensor([l == force_exit])
            if bool(exit_now[0]):
                return z, l
        raise AssertionError("unreachable")

    def _loop_batched(self, x, criterion, force_exit):
        """The whole batch through every layer while any sample is active;
        each sample keeps its first exit."""
        L, B = self.num_layers, x.shape[0]
        state = criterion.start(B)
        active = torch.ones(B, dtype=torch.bool)
        exit_layer = torch.full((B,), L, dtype=torch.int32)
        out = None
        h = x
        for l in range(1, L + 1):
            h = self.layers[l - 1](h)
            z, s = self.classify(l, h)
            if out is None:
                out = torch.zeros_like(z)
            if l == L:
                out[active] = z[active]
                break
            exit_now, _ = criterion.step(state, l, z, s)
            if force_exit is not None:
                exit_now = torch.full((B,), l == force_exit)
            new = exit_now & active
            out[new] = z[new]
            exit_layer[new] = l
            active &= ~exit_now
            if not bool(active.any()):
                break
        return out, exit_layer


def load_early_exit(path, heads=None):
    """(EarlyExitEncoder in float32, metadata) from a safetensors file of
    make_early_exit.py."""
    tensors, meta = load_safetensors(path)
    if heads is None:
        heads = int(meta["heads"])
    return EarlyExitEncoder.from_tensors(tensors, heads=heads).eval(), meta


def decide(criterion, logits, scores=None):
    """Exit layers from full-depth classifier outputs: logits [N, L, C]
    (decided on their float32 rounding), scores [N, L-1] or None ->
    (exit_layer [N] int32, stat [N, L-1] float32)."""
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


# ---------------------------------------------------------------------------
# Command line


def _load_x(path, batch):
    """NAME.x.npy: [K, S, D] (batch 1) or [K, B, S, D]; a single case [S, D]
    or [B, S, D] too. Returns [K, B, S, D] float32."""
    x = np.load(path).astype(np.float32)
    if batch == 1 and x.ndim == 2:
        x = x[None, None]
    elif batch == 1 and x.ndim == 3:
        x = x[:, None]
    elif batch > 1 and x.ndim == 3:
        x = x[None]
    return torch.from_numpy(np.ascontiguousarray(x))


def main():
    import argparse
    import time

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True, help="NAME.safetensors of make_early_exit.py")
    ap.add_argument("--x", required=True, help="NAME.x.npy")
    ap.add_argument("--threshold", default=None,
                    help="threshold (k for patience, a,b,... for per_class); "
                         "default: the model's (safetensors metadata)")
    ap.add_argument("--mode", choices=("batch1", "batched"), default=None,
                    help="default: batch1 at batch 1, batched otherwise")
    ap.add_argument("--time", action="store_true",
                    help="time the eager loop (2 threads, float32, no_grad)")
    ap.add_argument("--exit-layers", default="3,6,12",
                    help="with --time: layers at which the loop is forced to exit")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--case", type=int, default=0, help="with --time: which case of --x")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    model, meta = load_early_exit(args.weights)
    crit = Criterion.from_metadata(meta, args.threshold)
    batch = int(meta.get("batch", 1))
    xs = _load_x(args.x, batch)
    mode = args.mode or ("batch1" if batch == 1 else "batched")
    L = model.num_layers

    if not args.time:
        with torch.no_grad():
            for i in range(xs.shape[0]):
                z, e = model.early_exit(xs[i], crit, mode=mode)
                zs = "; ".join(" ".join(f"{v:.6g}" for v in row) for row in z.numpy().tolist())
                print(f"case {i}: exit layer {e.tolist()}  logits [{zs}]")
        return

    x = xs[args.case]
    plain = Encoder(layers=L, d_model=model.config["d_model"], heads=model.config["heads"],
                    d_ff=model.config["d_ff"], classes=model.config["classes"]).eval()
    plain.layers = model.layers
    plain.head = model.head

    def median_ms(fn):
        times = []
        with torch.no_grad():
            for _ in range(args.warmup):
                fn()
            for _ in range(args.runs):
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
        return float(np.median(times)), min(times)

    print(f"eager early exit, {crit}, {mode}, batch {x.shape[0]}, {torch.get_num_threads()} threads, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')}, "
          f"median of {args.runs} runs (min):")
    rows = []
    for le in [int(v) for v in args.exit_layers.split(",") if v]:
        if not 1 <= le <= L:
            raise SystemExit(f"--exit-layers: {le} is not in 1..{L}")
        _, e = model.early_exit(x, crit, mode=mode, force_exit=le)
        assert (e == le).all()
        med, mn = median_ms(lambda: model.early_exit(x, crit, mode=mode, force_exit=le))
        rows.append((f"exit at layer {le}", med, mn))
    med, mn = median_ms(lambda: model.early_exit(x, crit, mode=mode))
    _, e = model.early_exit(x, crit, mode=mode)
    rows.append((f"criterion decides (exit {e.tolist() if e.numel() <= 4 else 'mean %.2f' % e.float().mean()})",
                 med, mn))
    med, mn = median_ms(lambda: plain(x))
    rows.append((f"all {L} layers, no exits (torch_eager.Encoder)", med, mn))
    for what, med, mn in rows:
        print(f"  {what:48s} {med:9.3f} ms  ({mn:.3f})")


if __name__ == "__main__":
    main()
