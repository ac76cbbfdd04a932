#!/usr/bin/env python3
"""dyncc.nn modules, eager against compiled (ctests nn.exit, nn.moe, nn.skim).

Every case builds a small model with dyncc.nn (ordinary PyTorch around the
module: an input projection before it, a norm after it where the op allows),
compiles it with dyncc.compile and runs eager and compiled on the same
random inputs. The decisions are compared exactly (exit layers; expert
assignments, tokens per expert and dropped pairs; skim traces) and the
outputs to 1e-5 relative. Outputs are poisoned (NaN) before each run by
dyncc.compile's callable. Each case runs at batch 1 (or the module's own
shape) and, where the case says so, bucketed (`--batch-buckets=1,4`, 3
samples per call).

    check_nn.py exit|moe|skim WORK_DIR [--case NAME]

An early-exit decision may differ only where the eager criterion's value is
within 1e-4 of the threshold (float32 GEMMs round differently); such
samples are counted and reported, not failed.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import dyncc
import dyncc.nn as dnn

TOL = 1e-5
failures = []


def rel_err(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if not np.all(np.isfinite(a)):
        return math.inf
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def check(case, cond, what):
    if not cond:
        failures.append(f"{case}: {what}")
        print(f"  FAIL {what}")


def t(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


# ---------------------------------------------------------------------------
# Early exit

D, S, C = 16, 6, 3


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, D)
        self.ln = nn.LayerNorm(D)

    def forward(self, h):
        return self.ln(h + torch.tanh(self.fc(h)))


class FirstTokenHead(nn.Module):
    def __init__(self, n=C):
        super().__init__()
        self.fc = nn.Linear(D, n)

    def forward(self, h):
        return self.fc(h[:, 0]) * 3.0


class ScoreHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, 1)

    def forward(self, h):
        return torch.sigmoid(self.fc(h[:, 0]) * 3.0)


class ExitNet(nn.Module):
    def __init__(self, ee, after=False):
        super().__init__()
        self.proj = nn.Linear(8, D)
        self.ee = ee
        self.after = after

    def forward(self, x):
        z = self.ee(self.proj(x))
        return torch.softmax(z, -1) * 2.0 if self.after else z


class MixLayer(nn.Module):
    """A token-mixing layer ([B, S, D]): each token adds the mean of all."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, D)
        self.ln = nn.LayerNorm(D)

    def forward(self, h):
        return self.ln(h + torch.tanh(self.fc(h + h.mean(1, keepdim=True))))


class TokenHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, C)

    def forward(self, h):
        return self.fc(h) * 3.0


class Classifier(nn.Module):
    """A complete model of a cascade: `width` hidden units, logits [B, C]."""

    def __init__(self, width):
        super().__init__()
        self.fc1 = nn.Linear(D, width)
        self.fc2 = nn.Linear(width, C)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x.mean(1)))) * 3.0


# name: (criterion, thresholds to retune to, kind of network, bucketed)
EXIT_CASES = {
    "entropy": (lambda: dnn.Entropy(0.6), [0.3, 0.9], "layers", True),
    "max_prob": (lambda: dnn.MaxProb(0.8, temperature=1.5), [0.6, 0.95], "layers", True),
    "patience": (lambda: dnn.Patience(2), [1, 3], "layers", True),
    "votes": (lambda: dnn.Votes(1), [0, 2], "layers", True),
    "learned_score": (lambda: dnn.LearnedScore(0.5), [0.3, 0.8], "layers", True),
    "per_class": (lambda: dnn.PerClass([0.7, 0.8, 0.6]), [[0.5, 0.6, 0.9], [0.9, 0.9, 0.9]],
                  "layers", True),
    # token-level exit (bucketed: the samples run one after another)
    "token_max_prob": (lambda: dnn.MaxProb(0.8), [0.6, 0.95], "token", True),
    "token_patience": (lambda: dnn.Patience(1), [2], "token", True),
    "cascade_max_prob": (lambda: dnn.MaxProb(0.8), [0.6, 0.95], "cascade", True),
    # ordinary PyTorch after the EarlyExit (bucketed: sample after sample)
    "after_chain": (lambda: dnn.Entropy(0.6), [0.3, 0.9], "after", True),
}


def make_exit(name, crit, kind, L=4):
    if kind == "token":
        return dnn.EarlyExit([MixLayer() for _ in range(L)], [TokenHead() for _ in range(L)], crit,
                             granularity="token")
    if kind == "cascade":
        return dnn.Cascade([Classifier(w) for w in (4, 16, 64)], crit)
    return dnn.EarlyExit([Layer() for _ in range(L)], [FirstTokenHead() for _ in range(L)], crit,
                         score_heads=[ScoreHead() for _ in range(L - 1)]
                         if name == "learned_score" else None)


def exit_margin(ee, crit, row):
    """How far row `row` (a sample, or a (sample, token)) was from flipping."""
    m = math.inf
    if crit.kind in ("patience", "votes"):
        return math.inf   # integer counts of argmaxes: exact in both
    for l, stat in enumerate(ee.stats):
        if ee.exit_layer[row] < l + 1:
            break
        th = np.asarray(crit.value, np.float64)
        th = th.max() if th.ndim else th
        m = min(m, abs(float(stat[row]) - float(th)))
    return m


def run_exit(name, work):
    make, values, kind, bucket = EXIT_CASES[name]
    torch.manual_seed(1)
    crit = make()
    ee = make_exit(name, crit, kind)
    net = ExitNet(ee, after=kind == "after").eval()
    g = torch.Generator().manual_seed(2)
    seen, near = set(), 0
    for bucketed in ((False, True) if bucket else (False,)):
        B = 1 if bucketed else 2
        fast = dyncc.compile(net, (torch.randn(B, S, 8),),
                             batch_buckets=[1, 4] if bucketed else None)
        for value in [None] + values:
            if value is not None:
                fast.set_param(crit.param, value)
                crit.value = (np.asarray(value, np.float64) if crit.kind == "per_class"
                              else float(value))
            n = 3 if bucketed else 2
            for _ in range(4):
                x = torch.randn(n, S, 8, generator=g) * 2
                with torch.no_grad():
                    want = net(x)
                got = fast(x)
                el = np.asarray(fast.report.exit_layer)
                check(name, el.shape == tuple(ee.exit_layer.shape),
                      f"exit_layer shape {el.shape} vs eager {tuple(ee.exit_layer.shape)}")
                for row in np.ndindex(*el.shape):
                    if int(el[row]) != int(ee.exit_layer[row]):
                        if exit_margin(ee, crit, row) < 1e-4:
                            near += 1
                            continue
                        check(name, False, f"exit layer {int(el[row])} vs eager "
                              f"{int(ee.exit_layer[row])} (threshold {value}, row {row})")
                    else:
                        e = rel_err(got[row], want[row])
                        check(name, e <= TOL, f"logits differ by {e:.2e}")
                    seen.add(int(ee.exit_layer[row]))
        hist = fast.stats()["exit_histogram"]
        check(name, sum(hist.values()) > 0 and set(hist) <= set(range(1, 5)),
              f"exit histogram {hist}")
        fast.close()
        crit.value = make().value
    print(f"  {name}: exit layers seen {sorted(seen)}, near-threshold rows {near}")
    check(name, len(seen) >= 2, f"only exit layers {sorted(seen)} seen: the test decides nothing")


# ---------------------------------------------------------------------------
# Mixture of experts

T, DM, E = 16, 8, 4


class FFN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(DM, 2 * DM)
        self.fc2 = nn.Linear(2 * DM, DM)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class MoENet(nn.Module):
    def __init__(self, moe, hashed):
        super().__init__()
        self.ln = nn.LayerNorm(DM)
        self.moe = moe
        self.hashed = hashed

    def forward(self, x, *ids):
        return x + self.moe(self.ln(x), *ids)


MOE_CASES = {
    "top_k": ("top_k", dict(k=2), True),
    "top_k_renormalize": ("top_k", dict(k=2, renormalize=True), True),
    "top_k_dropless": ("top_k", dict(k=2, dropless_block=4), True),
    "switch_capacity": ("switch", dict(capacity_factor=1.0), True),
    "switch_score_priority": ("switch", dict(capacity_factor=1.0, priority="score"), True),
    "gshard_groups": ("gshard", dict(seed=3, capacity_factor=1.5, groups=2), True),
    "base": ("base", {}, True),
    "k_top1": ("k_top1", dict(k=2), True),
    "dense_to_sparse": ("dense_to_sparse", dict(temperature=1.0, threshold=0.2), True),
    "hash": ("hash", {}, True),
    "hash_table": ("hash", dict(table=[3, 1, 0, 2, 2, 1, 0, 3, 1, 2]), True),
    "random": ("random", dict(seed=5), True),
    # experts as stacked [E, ...] weights instead of a list of modules
    "stacked_top_k": ("top_k", dict(k=2, capacity_factor=1.5), True),
}


def stacked_experts():
    g = torch.Generator().manual_seed(7)
    return dnn.StackedExperts(lambda x, w1, b1, w2: F.gelu(x @ w1 + b1) @ w2,
                              w1=torch.randn(E, DM, 2 * DM, generator=g) * 0.3,
                              b1=torch.randn(E, 2 * DM, generator=g) * 0.1,
                              w2=torch.randn(E, 2 * DM, DM, generator=g) * 0.3)


def run_moe(name, work):
    strategy, opts, bucket = MOE_CASES[name]
    torch.manual_seed(3)
    hashed = strategy == "hash"
    experts = stacked_experts() if name.startswith("stacked") else [FFN() for _ in range(E)]
    moe = dnn.MoE(None if hashed else nn.Linear(DM, E), experts, strategy, **opts)
    net = MoENet(moe, hashed).eval()
    V = 10 if "table" in opts else 1000
    g = torch.Generator().manual_seed(4)
    total_dropped = 0
    for bucketed in ((False, True) if bucket else (False,)):
        ex = (torch.randn(T, DM),) + ((torch.randint(0, V, (T,)),) if hashed else ())
        fast = dyncc.compile(net, ex, batch_buckets=[1, 4] if bucketed else None)
        for _ in range(4):
            n = 3 if bucketed else 1
            xs = torch.randn(n, T, DM, generator=g) * 2
            ids = torch.randint(0, V, (n, T), generator=g)
            args = (xs, ids) if hashed else (xs,)
            got = fast(*args) if bucketed else fast(*(a[0] for a in args))
            got = got if bucketed else got[None]
            tpe = np.zeros(E, np.int64)
            dropped = 0
            for b in range(n):
                with torch.no_grad():
                    want = net(xs[b], *((ids[b],) if hashed else ()))
                e = rel_err(got[b], t(want))
                check(name, e <= TOL, f"outputs differ by {e:.2e}")
                tpe += moe.routing.tokens_per_expert
                dropped += moe.routing.dropped
            r = fast.report.routes[0]
            check(name, np.array_equal(r["assignment"], moe.routing.assignment),
                  f"assignment {r['assignment'].tolist()} vs eager "
                  f"{moe.routing.assignment.tolist()}")
            check(name, np.array_equal(r["tokens_per_expert"].astype(np.int64), tpe),
                  f"tokens per expert {r['tokens_per_expert'].tolist()} vs {tpe.tolist()}")
            check(name, r["dropped"] == dropped, f"dropped {r['dropped']} vs {dropped}")
            total_dropped += dropped
        fast.close()
    print(f"  {name}: tokens per expert (last) {moe.routing.tokens_per_expert.tolist()}, "
          f"dropped {total_dropped}")


# ---------------------------------------------------------------------------
# Skimming

SD, H, SS = 6, 8, 10


class Gate(nn.Module):
    """Linear scores over (x, h) -> argmax action (and an amount in
    [lo, lo + n_amount))."""

    def __init__(self, n, n_amount=0, lo=1):
        super().__init__()
        self.fc = nn.Linear(SD + H, n)
        self.amt = nn.Linear(SD + H, n_amount) if n_amount else None
        self.lo = lo

    def forward(self, x, h, *rest):
        u = torch.cat([x, h])
        a = torch.argmax(self.fc(u))
        if self.amt is None:
            return a
        return a, torch.argmax(self.amt(u)) + self.lo


class LSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(SD, H)

    def forward(self, x, h, c):
        return self.cell(x, (h, c))


class SmallLSTM(nn.Module):
    """Skim-RNN's small cell: updates the first H/4 units only."""

    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(SD, H // 4)

    def forward(self, x, h, c):
        k = H // 4
        h1, c1 = self.cell(x, (h[:k], c[:k]))
        return torch.cat([h1, h[k:]]), torch.cat([c1, c[k:]])


class GRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(SD, H)

    def forward(self, x, h):
        return self.cell(x, h)


class RNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.RNNCell(SD, H)

    def forward(self, x, h):
        return self.cell(x, h)


class Partial(nn.Module):
    """VCRNN: a GRU step applied to the first half of the state."""

    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(SD, H)

    def forward(self, x, h):
        n = self.cell(x, h)
        mask = (torch.arange(H) < H // 2).to(h.dtype)
        return mask * n + (1 - mask) * h


class Scheduled(nn.Module):
    """VCRNN with its schedule: at position pos a GRU step updates the first
    1 + pos mod H units of the state."""

    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(SD, H)

    def forward(self, pos, x, h):
        n = self.cell(x, h)
        mask = (torch.arange(H) <= pos % H).to(h.dtype)
        return mask * n + (1 - mask) * h


class PosGRU(GRU):
    def forward(self, pos, x, h):
        return self.cell(x, h)


class PosGate(Gate):
    """A gate that also reads the position (even positions lean to read)."""

    def forward(self, pos, x, h, *rest):
        z = self.fc(torch.cat([x, h])) + (pos % 2).to(x.dtype) * torch.tensor([0.0, 0.5])
        return torch.argmax(z)


class Lower(nn.Module):
    """HM-RNN's lower layer (h, u: lower and upper states)."""

    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(SD, H)

    def forward(self, x, h, u):
        return self.cell(x, h), u


class Flush(nn.Module):
    """HM-RNN flush: the upper layer reads the lower state, which resets."""

    def __init__(self):
        super().__init__()
        self.up = nn.GRUCell(H, H)

    def forward(self, x, h, u):
        return torch.zeros_like(h), self.up(h, u)


class Upper(nn.Module):
    """Focused HRNN: a query-gated upper-layer update."""

    def __init__(self):
        super().__init__()
        self.gate = nn.Linear(SD, 1)
        self.up = nn.GRUCell(SD, H)

    def forward(self, x, h, u):
        g = torch.sigmoid(self.gate(x))
        return h, g * self.up(x, u) + (1 - g) * u


def lstm_init():
    return (torch.zeros(H), torch.zeros(H))


def h_init():
    return (torch.zeros(H),)


def hu_init():
    return (torch.zeros(H), torch.zeros(H))


SKIM_CASES = {
    # name: (actions, decide, cells, budget, init, bucketed)
    "skim_rnn_lstm": (["read", "skim"], lambda: Gate(2), lambda: {0: LSTM(), 1: SmallLSTM()},
                      SS, lstm_init, True),
    "skip_rnn_gru": (["read", "skip"], lambda: Gate(2), lambda: {0: GRU()}, SS, h_init, True),
    "lstm_jump": (["read", "jump", "stop"], lambda: Gate(3, 3), lambda: {0: LSTM()}, SS,
                  lstm_init, True),
    "shuttle_gru": (["read", "shuttle"], lambda: Gate(2, 5, lo=-2), lambda: {0: GRU()}, 2 * SS,
                    h_init, True),
    "jump_to_rnn": (["read", ("jump_to", [1]), "stop"], lambda: Gate(3), lambda: {0: RNN()}, SS,
                    h_init, True),
    "reread_stop": (["read", "reread", "stop"], lambda: Gate(3), lambda: {0: LSTM(), 1: LSTM()},
                    2 * SS, lstm_init, True),
    "partial_vcrnn": (["partial", "read"], lambda: Gate(2), lambda: {0: Partial(), 1: GRU()}, SS,
                      h_init, True),
    "partial_scheduled": (["partial", "read"], lambda: PosGate(2),
                          lambda: {0: Scheduled(), 1: PosGRU()}, SS, h_init, True),
    "flush_hmrnn": (["read", "flush"], lambda: Gate(2), lambda: {0: Lower(), 1: Flush()}, SS,
                    hu_init, True),
    "upper_fhrnn": (["read", "upper"], lambda: Gate(2), lambda: {0: Lower(), 1: Upper()}, SS,
                    hu_init, True),
}


class SkimNet(nn.Module):
    def __init__(self, skim):
        super().__init__()
        self.proj = nn.Linear(4, SD)
        self.skim = skim

    def forward(self, seq, *rest):
        return self.skim(self.proj(seq), *rest)


def run_skim(name, work):
    actions, decide, cells, budget, init, bucket = SKIM_CASES[name]
    torch.manual_seed(5)
    skim = dnn.Skim(actions, decide(), cells(), budget,
                    with_position=name == "partial_scheduled")
    net = SkimNet(skim).eval()
    g = torch.Generator().manual_seed(6)
    kinds = set()
    classes = skim.has_classes
    for bucketed in ((False, True) if bucket else (False,)):
        st0 = init()
        ex = (torch.randn(SS, 4),) + ((torch.randint(0, 3, (SS,)),) if classes else ()) + st0
        fast = dyncc.compile(net, ex, batch_buckets=[1, 4] if bucketed else None)
        for _ in range(4):
            n = 3 if bucketed else 1
            seqs = torch.randn(n, SS, 4, generator=g) * 2
            cls = torch.randint(0, 3, (n, SS), generator=g)
            inits = [torch.randn(n, H, generator=g) * 0.5 for _ in st0]
            args = (seqs,) + ((cls,) if classes else ()) + tuple(inits)
            got = fast(*args) if bucketed else fast(*(a[0] for a in args))
            got = got if isinstance(got, tuple) else (got,)
            trace = []
            for b in range(n):
                with torch.no_grad():
                    want = net(seqs[b], *((cls[b],) if classes else ()), *(i[b] for i in inits))
                want = want if isinstance(want, tuple) else (want,)
                for gi, wi in zip(got, want):
                    e = rel_err(gi[b] if bucketed else gi, t(wi))
                    check(name, e <= TOL, f"state differs by {e:.2e}")
                trace += skim.trace
            r = fast.report.skips[0]
            mine = [tuple(int(v) for v in row) for row in r["trace"]]
            check(name, mine == trace, f"trace {mine} vs eager {trace}")
            kinds |= {skim.actions[a].kind for _, a, _ in trace}
        fast.close()
    print(f"  {name}: actions taken {sorted(kinds)}")
    check(name, len(kinds) >= 2, f"only {sorted(kinds)} taken: the test decides nothing")


FAMILIES = {"exit": (EXIT_CASES, run_exit), "moe": (MOE_CASES, run_moe),
            "skim": (SKIM_CASES, run_skim)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("family", choices=sorted(FAMILIES))
    ap.add_argument("work")
    ap.add_argument("--case", action="append")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    os.environ["DYNCC_CACHE"] = os.path.join(a.work, "cache")
    torch.set_num_threads(1)
    cases, run = FAMILIES[a.family]
    for name in a.case or cases:
        print(f"{a.family} {name}")
        try:
            run(name, a.work)
        except Exception as e:  # a crash of one case is a failure, not the end
            import traceback
            traceback.print_exc()
            failures.append(f"{name}: {type(e).__name__}: {e}")
    if failures:
        print(f"FAILED: {len(failures)} check(s)")
        for f in failures[:40]:
            print("  " + f[:400])
        return 1
    print(f"all {len(a.case or cases)} {a.family} cases pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
