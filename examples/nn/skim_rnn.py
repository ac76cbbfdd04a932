"""Skim-RNN (LSTM) and Skip RNN (GRU) text classifiers with dyncc.nn.Skim.

- skim-rnn: at each token a gate on (x, h) chooses to read it with the big
  LSTM (hidden 128) or skim it with a small LSTM that updates the first 16
  units only (Seo et al. 2018);
- skip-rnn: a gate chooses to read the token with a GRU or skip it, copying
  the state (Campos et al. 2018).

Ordinary PyTorch sits around the loop: an embedding lookup before it, a
linear classifier on the final state after it. Each model is compiled with
dyncc.compile and run on random token sequences (the weights are random:
the point is the decisions, not the task); the script prints the step
trace (R read, S skim, K skip) of the compiled library next to the eager
module's, checks that they are equal and that the logits agree to 1e-5,
and times both.

    .venv/bin/python examples/nn/skim_rnn.py [--method skim-rnn|skip-rnn|both] [--seq 64]
"""
import argparse
import os
import sys
import tempfile
import time

import torch
import torch.nn as nn

import dyncc
import dyncc.nn as dnn
from timing import best_ms

VOCAB, EMB, H, SMALL, CLASSES = 1000, 64, 128, 16, 4


class Gate(nn.Module):
    """Scores of the actions from the token and the state; the argmax."""

    def __init__(self, n):
        super().__init__()
        self.fc = nn.Linear(EMB + H, n)

    def forward(self, x, h, *rest):
        return torch.argmax(self.fc(torch.cat([x, h])))


class BigLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(EMB, H)

    def forward(self, x, h, c):
        return self.cell(x, (h, c))


class SmallLSTM(nn.Module):
    """Updates the first SMALL units of the state."""

    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(EMB, SMALL)

    def forward(self, x, h, c):
        h1, c1 = self.cell(x, (h[:SMALL], c[:SMALL]))
        return torch.cat([h1, h[SMALL:]]), torch.cat([c1, c[SMALL:]])


class GRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(EMB, H)

    def forward(self, x, h):
        return self.cell(x, h)


class Classifier(nn.Module):
    def __init__(self, method, seq):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, EMB)
        if method == "skim-rnn":
            self.loop = dnn.Skim(["read", "skim"], Gate(2), {0: BigLSTM(), 1: SmallLSTM()},
                                 budget=seq)
            self.states = 2
        else:
            self.loop = dnn.Skim(["read", "skip"], Gate(2), {0: GRU()}, budget=seq)
            self.states = 1
        self.head = nn.Linear(H, CLASSES)

    def forward(self, ids):
        x = self.emb(ids)
        init = [torch.zeros(H, dtype=x.dtype) for _ in range(self.states)]
        out = self.loop(x, *init)
        h = out[0] if isinstance(out, tuple) else out
        return self.head(h)


def run(method, a):
    torch.manual_seed(0)
    model = Classifier(method, a.seq).eval()
    ids = torch.randint(0, VOCAB, (a.seq,))
    t0 = time.perf_counter()
    fast = dyncc.compile(model, (ids,), threads=1)
    print(f"== {method}: {a.seq} tokens, hidden {H}; compiled in {time.perf_counter() - t0:.1f} s")
    letters = "RS" if method == "skim-rnn" else "RK"
    ok = True
    g = torch.Generator().manual_seed(1)
    for case in range(a.cases):
        ids = torch.randint(0, VOCAB, (a.seq,), generator=g)
        with torch.no_grad():
            want = model(ids)
        got = fast(ids)
        mine = [tuple(int(v) for v in row) for row in fast.report.skips[0]["trace"]]
        same = mine == model.loop.trace
        err = float((got - want).abs().max() / want.abs().max())
        ok = ok and same and err <= 1e-5
        reads = sum(1 for _, act, _ in mine if act == 0)
        print(f"  case {case}: {reads}/{len(mine)} tokens read; trace "
              f"{'equal' if same else 'DIFFERS'}; logits within {err:.1e}")
        print(f"    dyncc {''.join(letters[act] for _, act, _ in mine)}")
        print(f"    eager {''.join(letters[act] for _, act, _ in model.loop.trace)}")
    times = {"dyncc": best_ms(lambda: fast(ids), a.repeat),
             "eager": best_ms(lambda: model(ids), a.repeat)}
    print(f"  time per sequence: dyncc {times['dyncc']:.2f} ms, PyTorch eager loop "
          f"{times['eager']:.2f} ms ({times['eager'] / times['dyncc']:.1f}x)")
    fast.close()
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", choices=["skim-rnn", "skip-rnn", "both"], default="both")
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--cases", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("DYNCC_CACHE", os.path.join(a.work or tempfile.gettempdir(),
                                                      "dyncc-cache"))
    methods = ["skim-rnn", "skip-rnn"] if a.method == "both" else [a.method]
    ok = all([run(m, a) for m in methods])
    print("all traces equal, logits within 1e-5" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
