#!/usr/bin/env python3
"""Skimming RNNs as PyTorch models: every method of the survey's Table 1 as
one dyncc.nn.Skim (docs/skim.md), exported with dyncc.export.

    import methods
    model, example = methods.build_model("lstm_jump", seq=12, dim=8, hidden=16)
    state = model(*example)                 # eager: the reference
    model.skim.trace                        # [(pos, action, amount)] of every step
    dyncc.export(model, example, "out/lstm_jump")   # out/lstm_jump.mlir, .safetensors

    methods.py --method M --out-dir DIR [--name NAME] [--self-check] [sizes...]

The module is the method: `model(x [S, D], [classes [S] int32], [query [D]])`
returns the final state (zeros at the start). The eager module runs the loop
of docs/skim.md step by step (dyncc.nn.Skim.forward); the compiled library
runs the same loop as one `dyn.skip`. Everything is float32, batch 1.
Decisions are argmaxes (the first maximum) or thresholds (sigmoid(z) > 0.5);
the `amount` of a step is 0 unless its action is a jump or a shuttle.

The methods (name: cells, actions; state; the decision):

  lstm_jump       LSTM-Jump (Yu et al. 2017). LSTMCell; [read, jump, stop];
                  (h, c, n) with n the tokens read since the last jump.
                  n < R: read. Else j = argmax(jump(h)) over {stop, jump
                  1..K}: j = 0 stop, else jump j (its cell sets n = 0).
  skip_rnn        Skip RNN (Campos et al. 2018). GRUCell; [read, skip]; (h).
                  read iff sigmoid(gate([x, h])) > 0.5, else skip (the state
                  is copied; the gate also sees x, or a skip would repeat to
                  the end).
  reasonet        ReasoNet (Shen et al. 2017). GRUCell; [read, stop]; (h).
                  stop iff sigmoid(term(h)) > 0.5 (terminal gate).
  jumper          Jumper (Liu et al. 2018). GRUCell; [read, stop]; (h); takes
                  the token classes, appended to the step input as one more
                  column (Skim's steps see x[pos] only). At a sentence end
                  (class in SENTENCE_ENDS) stop iff sigmoid(stop(h)) > 0.5;
                  elsewhere read. The stop cell reads the sentence-end token
                  before the loop ends (a copy of the read cell's weights).
  rim             RIM (Li et al. 2019). RNNCell; [read, skip, stop]; (h).
                  argmax(act([x, h])) over {read, skip, stop}. bad_action: a
                  4th logit whose action (index 3) does not exist: the run
                  fails at that step (dyncc.nn.SkimError eagerly).
  yu2018          Yu et al. 2018. LSTMCell; [read, reread, jump, stop]; (h, c).
                  argmax(act([x, h])) over {read, reread, stop, jump
                  0..K-1}; reread updates the state with the same token and
                  stays; jump copies the state and moves max(amount, 1).
  lstm_shuttle    LSTM-Shuttle (Fu and Ma 2018). LSTMCell; [read, shuttle];
                  (h, c, n). n < R: read. Else shuttle by argmax(shuttle(h))
                  - K in [-K, K] (its cell reads the token, n = 0); 0 stays,
                  < 0 goes back.
  structural_jump Structural Jump-LSTM (Hansen et al. 2019). LSTMCell; [read,
                  jump_to SEPARATORS, jump_to SENTENCE_ENDS, jump_to [] (the
                  end)]; (h, c); takes the classes (Skim's jump_to operand).
                  argmax(act([x, h])) over the four.
  vcrnn           VCRNN (Jernite et al. 2017). RNNCell; [partial]; (h).
                  m = sigmoid(sched([x, h])); units i < m H are updated
                  (e_i = 1), with the weights masked to them:
                  h' = e*tanh(W x + U (e*h) + b) + (1 - e)*h.
  skim_rnn        Skim-RNN (Seo et al. 2018). [read, skim]; (h, c).
                  argmax(act([x, h])): read: the big LSTMCell updates all H
                  units; skim: the small LSTMCell (hidden Hs) updates the
                  first Hs units of h and c.
  hm_rnn          HM-RNN (Chung et al. 2017), two levels. RNNCells lower
                  (D -> H) and upper (H -> H); [read, skip, flush]; (h1, h2).
                  Boundary detector argmax(act([x, h1, h2])): read (update
                  the lower layer), skip (copy both), flush (the upper layer
                  reads the lower one, h2 = upper(h1, h2), and the lower
                  layer restarts from the token, h1 = lower(x, 0)).
  fhrnn           Focused Hierarchical RNN (Ke et al. 2018). LSTMCell lower
                  (D -> H), GRUCell upper (H -> H); [read, upper]; takes a
                  query q [D]. q' = wq(q) is computed once before the loop
                  and carried in the state (h1, c1, h2, q'); the model
                  returns (h1, c1, h2). upper iff sigmoid(q'.h1 + gate(x))
                  > 0.5. read: the lower LSTM reads x; upper: also the upper
                  GRU reads the new h1.

Cells are torch.nn.LSTMCell / GRUCell / RNNCell (exported through nn.Linear:
a linalg.transpose of the weight and a linalg.matmul [1, I] x [I, O]); with
gemv="mv" they are written with torch.mv (the export turns W.v into a
broadcast multiply and a reduction, no named matmul); with gemv="mm" as
W @ v[:, None] (a linalg.matmul [O, I] x [I, 1], no transpose). The three
forms compute the same cells; at W3's sizes the compiled "mm" form runs as
fast as the matvec the old MLIR generator wrote, the other two 2.5-3.5x
slower (docs/performance.md, W3). Where two actions run the same cell (read and reread, a
read and a stop that reads), each has its own copy of the weights.

Weights: `make_weights` draws them by the method's list of named tensors
(`weight_spec`: cells uniform(-1/sqrt(H), 1/sqrt(H)) like PyTorch, decision
heads scaled and biased so that every action and the method's endings
happen); `build_model` copies them into the modules. The independent
float64 numpy loop `np_run` (for --self-check) reads the same named tensors.

Cases (`draw_case`): x = o + N(0, 1) with a per-case offset o ~ N(0, 0.7^2)
(so cases differ in how they read); classes: words with p = 0.7, `,` 0.08,
`:` 0.04, `.` 0.1, `!` 0.04, `?` 0.04; queries N(0, 1). `generate` draws a
case again when one of its decisions comes within --min-margin (1e-3) of a
tie (two logits, a threshold, VCRNN's m(t) H at an integer), so that the
compiled float32 kernels, which sum in a different order, make the same
decisions.

The command line writes NAME.mlir and NAME.safetensors (dyncc.export;
--weights-only: only NAME.safetensors, through dyncc.export_weights),
NAME.x.npy ([cases, S, D]), NAME.classes.npy / NAME.query.npy when the
method takes them and NAME.expected.npz (per case: steps, trace [N, B, 3]
with -1 rows past the steps, termination, final_pos, error_step, margin and
state_<name>, the eager module's final state). It prints the histogram of
actions and endings. --self-check replays every case with `np_run` (an
independent float64 numpy loop written from the descriptions above, not
from the modules), which must give the same traces and endings and the
final states to 1e-5; checks that every action and the method's required
endings (REQUIRED) occur; and, with --dyncc-opt (default: build/'s), that
the exported MLIR parses and verifies. `methods.py --check-basics` checks
the "mv" and "mm" cells against torch.nn's and the position rules on
hand-made decisions.
"""

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "python"))
# OPENBLAS_CORETYPE before numpy/torch load (as examples/encoder/torch_eager.py)
os.environ.setdefault("OPENBLAS_CORETYPE", "SkylakeX")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import dyncc  # noqa: E402
import dyncc.nn as dnn  # noqa: E402
from dyncc.nn.skimming import next_position  # noqa: E402

# Token classes (the `classes` input).
WORD, COMMA, COLON, PERIOD, EXCLAIM, QUESTION = range(6)
CLASS_NAMES = ["word", ",", ":", ".", "!", "?"]
SEPARATORS = (COMMA, COLON)
SENTENCE_ENDS = (PERIOD, EXCLAIM, QUESTION)

METHODS = ("lstm_jump", "skip_rnn", "reasonet", "jumper", "rim", "yu2018", "lstm_shuttle",
           "structural_jump", "vcrnn", "skim_rnn", "hm_rnn", "fhrnn")

TITLES = {
    "lstm_jump": "LSTM-Jump (Yu et al. 2017)",
    "skip_rnn": "Skip RNN (Campos et al. 2018)",
    "reasonet": "ReasoNet (Shen et al. 2017)",
    "jumper": "Jumper (Liu et al. 2018)",
    "rim": "RIM (Li et al. 2019)",
    "yu2018": "Yu et al. 2018 (skim, reread, early stop)",
    "lstm_shuttle": "LSTM-Shuttle (Fu and Ma 2018)",
    "structural_jump": "Structural Jump-LSTM (Hansen et al. 2019)",
    "vcrnn": "VCRNN (Jernite et al. 2017)",
    "skim_rnn": "Skim-RNN (Seo et al. 2018)",
    "hm_rnn": "HM-RNN (Chung et al. 2017)",
    "fhrnn": "Focused Hierarchical RNN (Ke et al. 2018)",
}

USES_CLASSES = ("jumper", "structural_jump")
USES_QUERY = ("fhrnn",)
STATE_NAMES = {"lstm_jump": ("h", "c", "n"), "lstm_shuttle": ("h", "c", "n"),
               "yu2018": ("h", "c"), "structural_jump": ("h", "c"), "skim_rnn": ("h", "c"),
               "hm_rnn": ("h1", "h2"), "fhrnn": ("h1", "c1", "h2")}


def default_budget(method, S):
    """The budget B of each method for sequence length S."""
    return {"lstm_jump": max(1, (3 * S) // 4), "reasonet": max(1, S - 2), "yu2018": S,
            "lstm_shuttle": S + S // 3}.get(method, S)


class Config:
    def __init__(self, method, seq=12, dim=8, hidden=16, small=4, budget=None, read=2,
                 max_jump=4, bad_action=False, gemv="linear"):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; one of {', '.join(METHODS)}")
        self.method, self.seq, self.dim, self.hidden, self.small = method, seq, dim, hidden, small
        self.budget = budget if budget is not None else default_budget(method, seq)
        self.read, self.max_jump, self.bad_action, self.gemv = read, max_jump, bad_action, gemv
        if bad_action and method != "rim":
            raise ValueError("bad_action applies to rim only")
        if method == "skim_rnn" and not 0 < small <= hidden:
            raise ValueError("skim_rnn needs 0 < small <= hidden")
        if method in ("lstm_jump", "lstm_shuttle", "yu2018") and max_jump < 1:
            raise ValueError("max_jump must be >= 1")
        if self.budget < 1:
            raise ValueError("budget must be >= 1")
        if gemv not in CELLS:
            raise ValueError(f"gemv is one of {', '.join(CELLS)}")
        self.state_names = STATE_NAMES.get(method, ("h",))
        self.uses_classes = method in USES_CLASSES
        self.uses_query = method in USES_QUERY

    def to_json(self):
        return json.dumps(dict(method=self.method, seq=self.seq, dim=self.dim,
                               hidden=self.hidden, small=self.small, budget=self.budget,
                               read=self.read, max_jump=self.max_jump,
                               bad_action=self.bad_action, gemv=self.gemv))


# ---------------------------------------------------------------------------
# Weights: named float32 tensors ([out, in] matrices), drawn as before


def _cell(prefix, kind, n_in, H):
    if kind == "lstm":
        return [(f"{prefix}.w_ih", (4 * H, n_in)), (f"{prefix}.w_hh", (4 * H, H)),
                (f"{prefix}.b", (4 * H,))]
    if kind == "gru":
        return [(f"{prefix}.w_ih", (3 * H, n_in)), (f"{prefix}.w_hh", (3 * H, H)),
                (f"{prefix}.b_ih", (3 * H,)), (f"{prefix}.b_hh", (3 * H,))]
    return [(f"{prefix}.w_ih", (H, n_in)), (f"{prefix}.w_hh", (H, H)), (f"{prefix}.b", (H,))]


def weight_spec(cfg):
    """([(name, shape)], {decision weight: std multiplier}, {decision bias:
    values}) of the method: the cells are drawn like PyTorch's, the decision
    heads so that every action happens."""
    m, D, H, K = cfg.method, cfg.dim, cfg.hidden, cfg.max_jump
    f = lambda *v: np.array(v, np.float32)  # noqa: E731
    if m == "lstm_jump":
        return (_cell("cell", "lstm", D, H) + [("jump.w", (K + 1, H)), ("jump.b", (K + 1,))],
                {"jump.w": 10.0},
                {"jump.b": f(-0.1, *[0.5 * (j == 1) + 0.1 * (j == K) for j in range(1, K + 1)])})
    if m == "skip_rnn":
        return (_cell("cell", "gru", D, H) + [("gate.w_h", (1, H)), ("gate.w_x", (1, D)),
                                               ("gate.b", (1,))],
                {"gate.w_h": 3.0, "gate.w_x": 1.5}, {"gate.b": f(0.3)})
    if m == "reasonet":
        return (_cell("cell", "gru", D, H) + [("term.w", (1, H)), ("term.b", (1,))],
                {"term.w": 6.0}, {"term.b": f(-0.8)})
    if m == "jumper":
        return (_cell("cell", "gru", D, H) + [("stop.w", (1, H)), ("stop.b", (1,))],
                {"stop.w": 6.0}, {"stop.b": f(0.0)})
    if m == "rim":
        L = 4 if cfg.bad_action else 3
        return (_cell("cell", "rnn", D, H) + [("act.w_h", (L, H)), ("act.w_x", (L, D)),
                                               ("act.b", (L,))],
                {"act.w_h": 2.0, "act.w_x": 1.0},
                {"act.b": f(1.2, 0.2, -1.3, *([-2.4] if cfg.bad_action else []))})
    if m == "yu2018":
        L = 3 + K
        return (_cell("cell", "lstm", D, H) + [("act.w_h", (L, H)), ("act.w_x", (L, D)),
                                                ("act.b", (L,))],
                {"act.w_h": 3.0, "act.w_x": 1.0}, {"act.b": f(1.4, 0.1, -0.9, *[-0.4] * K)})
    if m == "lstm_shuttle":
        return (_cell("cell", "lstm", D, H) + [("shuttle.w", (2 * K + 1, H)),
                                                ("shuttle.b", (2 * K + 1,))],
                {"shuttle.w": 6.0},
                {"shuttle.b": f(*[0.25 * (o > 0) - 0.1 * abs(o) for o in range(-K, K + 1)])})
    if m == "structural_jump":
        return (_cell("cell", "lstm", D, H) + [("act.w_h", (4, H)), ("act.w_x", (4, D)),
                                                ("act.b", (4,))],
                {"act.w_h": 2.0, "act.w_x": 1.0}, {"act.b": f(1.6, 0.2, -0.2, -1.9)})
    if m == "vcrnn":
        return (_cell("cell", "rnn", D, H) + [("sched.w_h", (1, H)), ("sched.w_x", (1, D)),
                                               ("sched.b", (1,))],
                {"sched.w_h": 3.0, "sched.w_x": 1.5}, {"sched.b": f(0.5)})
    if m == "skim_rnn":
        return (_cell("big", "lstm", D, H) + _cell("small", "lstm", D, cfg.small)
                + [("act.w_x", (2, D)), ("act.w_h", (2, H)), ("act.b", (2,))],
                {"act.w_x": 1.0, "act.w_h": 2.0}, {"act.b": f(0.0, 0.3)})
    if m == "hm_rnn":
        return (_cell("lower", "rnn", D, H) + _cell("upper", "rnn", H, H)
                + [("act.w_h", (3, H)), ("act.w_u", (3, H)), ("act.w_x", (3, D)), ("act.b", (3,))],
                {"act.w_h": 2.0, "act.w_u": 1.0, "act.w_x": 1.0}, {"act.b": f(1.0, -0.3, 0.0)})
    assert m == "fhrnn"
    return (_cell("lower", "lstm", D, H) + _cell("upper", "gru", H, H)
            + [("gate.wq", (H, D)), ("gate.w_x", (1, D)), ("gate.b", (1,))],
            {"gate.wq": 4.0, "gate.w_x": 1.0}, {"gate.b": f(-0.4)})


def make_weights(cfg, seed):
    """{name: float32 array} of the method (weight_spec), from `seed`."""
    rng = np.random.default_rng(seed)
    shapes, dw, db = weight_spec(cfg)
    t = {}
    for n, shape in shapes:
        if n in db:
            t[n] = np.asarray(db[n], np.float32).reshape(shape)
        elif n in dw:
            t[n] = (rng.standard_normal(shape) * dw[n] / math.sqrt(shape[-1])).astype(np.float32)
        else:
            hidden = cfg.small if n.startswith("small.") else cfg.hidden
            k = 1.0 / math.sqrt(hidden)
            t[n] = rng.uniform(-k, k, shape).astype(np.float32)
    return t


# ---------------------------------------------------------------------------
# Cells (torch.nn cells; gemv="mv": the same cells written with torch.mv)


def _gemv(form, W, v):
    """W v as torch.mv (form "mv") or as the matmul W [O, I] @ v [I, 1] ("mm")."""
    return torch.mv(W, v) if form == "mv" else (W @ v.unsqueeze(1)).squeeze(1)


class MvLSTMCell(nn.LSTMCell):
    form = "mv"

    def forward(self, x, hc):
        h, c = hc
        g = ((_gemv(self.form, self.weight_ih, x) + self.bias_ih)
             + (_gemv(self.form, self.weight_hh, h) + self.bias_hh))
        i, f, gg, o = g.chunk(4)
        c2 = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
        return torch.sigmoid(o) * torch.tanh(c2), c2


class MvGRUCell(nn.GRUCell):
    form = "mv"

    def forward(self, x, h):
        xr, xz, xn = (_gemv(self.form, self.weight_ih, x) + self.bias_ih).chunk(3)
        hr, hz, hn = (_gemv(self.form, self.weight_hh, h) + self.bias_hh).chunk(3)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        return (1 - z) * torch.tanh(xn + r * hn) + z * h


class MvRNNCell(nn.RNNCell):
    form = "mv"

    def forward(self, x, h):
        return torch.tanh(_gemv(self.form, self.weight_ih, x) + self.bias_ih
                          + _gemv(self.form, self.weight_hh, h) + self.bias_hh)


class MmLSTMCell(MvLSTMCell):
    form = "mm"


class MmGRUCell(MvGRUCell):
    form = "mm"


class MmRNNCell(MvRNNCell):
    form = "mm"


CELLS = {"linear": (nn.LSTMCell, nn.GRUCell, nn.RNNCell),
         "mv": (MvLSTMCell, MvGRUCell, MvRNNCell),
         "mm": (MmLSTMCell, MmGRUCell, MmRNNCell)}


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a, np.float32))


def _single_bias_cell(kind, cfg, w, p, n_in, H):
    """An LSTM (kind 0) or RNN (kind 2) cell from one bias (`p.b`)."""
    cell = CELLS[cfg.gemv][kind](n_in, H)
    with torch.no_grad():
        cell.weight_ih.copy_(_t(w[p + ".w_ih"]))
        cell.weight_hh.copy_(_t(w[p + ".w_hh"]))
        cell.bias_ih.copy_(_t(w[p + ".b"]))
        cell.bias_hh.zero_()
    return cell


def lstm_cell(cfg, w, p, n_in, H):
    return _single_bias_cell(0, cfg, w, p, n_in, H)


def gru_cell(cfg, w, p, n_in, H):
    cell = CELLS[cfg.gemv][1](n_in, H)
    with torch.no_grad():
        for a, b in (("weight_ih", "w_ih"), ("weight_hh", "w_hh"), ("bias_ih", "b_ih"),
                     ("bias_hh", "b_hh")):
            getattr(cell, a).copy_(_t(w[f"{p}.{b}"]))
    return cell


def rnn_cell(cfg, w, p, n_in, H):
    return _single_bias_cell(2, cfg, w, p, n_in, H)


def linear(w, names, bias, bias_on=True):
    """nn.Linear whose weight is the named [out, in] blocks side by side."""
    W = np.concatenate([np.asarray(w[n], np.float32) for n in names], 1)
    lin = nn.Linear(W.shape[1], W.shape[0], bias=bias_on)
    with torch.no_grad():
        lin.weight.copy_(_t(W))
        if bias_on:
            lin.bias.copy_(_t(w[bias]))
    return lin


# ---------------------------------------------------------------------------
# Decisions. Each head logs, when `log` is a list (eager runs of `run_case`
# only, never while exporting), the margin of its decision: best minus
# second-best logit, |z| for a threshold, inf for a rule.


class Head(nn.Module):
    log = None

    def note(self, margin, when=None):
        """Logs margin() (and only computes it) in a logged eager run, when
        when() holds."""
        if self.log is not None and (when is None or when()):
            self.log.append(float(margin()))


def _argmax_margin(v):
    s = torch.sort(v.detach().double()).values
    return float(s[-1] - s[-2]) if s.numel() > 1 else math.inf


def _gate(z):
    """sigmoid(z) > 0.5 as an int64 0/1 tensor (z of one element)."""
    return (torch.sigmoid(z) > 0.5).to(torch.int64).reshape(())


class ArgmaxHead(Head):
    """argmax(fc([x, *state[:k]])): the action."""

    def __init__(self, fc, uses_x=True, n_state=1):
        super().__init__()
        self.fc, self.uses_x, self.n_state = fc, uses_x, n_state

    def forward(self, x, *state):
        z = self.fc(torch.cat(([x] if self.uses_x else []) + list(state[:self.n_state])))
        self.note(lambda: _argmax_margin(z))
        return torch.argmax(z)


class SkipGate(Head):
    """Skip RNN: read (0) iff sigmoid(gate([x, h])) > 0.5, else skip (1)."""

    def __init__(self, fc):
        super().__init__()
        self.fc = fc

    def forward(self, x, h):
        z = self.fc(torch.cat([x, h]))
        self.note(lambda: abs(float(z[0])))
        return 1 - _gate(z)


class StopGate(Head):
    """ReasoNet: stop (1) iff sigmoid(term(h)) > 0.5."""

    def __init__(self, fc):
        super().__init__()
        self.fc = fc

    def forward(self, x, h):
        z = self.fc(h)
        self.note(lambda: abs(float(z[0])))
        return _gate(z)


class SentenceEndGate(Head):
    """Jumper: at a sentence end (the class, x[D]) stop (1) iff
    sigmoid(stop(h)) > 0.5; elsewhere read (0)."""

    def __init__(self, fc, D):
        super().__init__()
        self.fc, self.D = fc, D

    def forward(self, x, h):
        z = self.fc(h)
        end = x[self.D] >= float(min(SENTENCE_ENDS))
        self.note(lambda: abs(float(z[0])), lambda: bool(end))
        return torch.where(end, _gate(z), torch.zeros((), dtype=torch.int64))


class JumpHead(Head):
    """LSTM-Jump: n < R: read (0); else j = argmax(jump(h)): stop (2) if
    j = 0, else jump (1) by j."""

    def __init__(self, fc, R):
        super().__init__()
        self.fc, self.R = fc, float(R)

    def forward(self, x, h, c, n):
        z = self.fc(h)
        j = torch.argmax(z)
        reading = n[0] < self.R
        self.note(lambda: _argmax_margin(z), lambda: not bool(reading))
        zero = torch.zeros((), dtype=torch.int64)
        a = torch.where(reading, zero, torch.where(j == 0, zero + 2, zero + 1))
        return a, torch.where(reading, zero, j)


class Yu2018Head(Head):
    """argmax over {read, reread, stop, jump 0..K-1}: actions [read, reread,
    jump, stop], the jump's amount j - 3."""

    def __init__(self, fc):
        super().__init__()
        self.fc = fc

    def forward(self, x, h, c):
        z = self.fc(torch.cat([x, h]))
        self.note(lambda: _argmax_margin(z))
        j = torch.argmax(z)
        a = torch.where(j <= 1, j, torch.where(j == 2, j + 1, j - j + 2))
        return a, torch.where(j >= 3, j - 3, j - j)


class ShuttleHead(Head):
    """LSTM-Shuttle: n < R: read (0); else shuttle (1) by argmax(shuttle(h)) - K."""

    def __init__(self, fc, R, K):
        super().__init__()
        self.fc, self.R, self.K = fc, float(R), K

    def forward(self, x, h, c, n):
        z = self.fc(h)
        reading = n[0] < self.R
        self.note(lambda: _argmax_margin(z), lambda: not bool(reading))
        zero = torch.zeros((), dtype=torch.int64)
        return (torch.where(reading, zero, zero + 1),
                torch.where(reading, zero, torch.argmax(z) - self.K))


class VCRNNHead(Head):
    """VCRNN has one action (partial): its cell decides how much to update."""

    def forward(self, x, h):
        return (x[:1] * 0).to(torch.int64).reshape(())


class QueryGate(Head):
    """FHRNN: upper (1) iff sigmoid(q'.h1 + gate(x)) > 0.5."""

    def __init__(self, fc):
        super().__init__()
        self.fc = fc

    def forward(self, x, h1, c1, h2, q):
        z = (q * h1).sum().reshape(1) + self.fc(x)
        self.note(lambda: abs(float(z[0])))
        return _gate(z)


# ---------------------------------------------------------------------------
# Action cells: (x, *state) -> the new state


class LSTMStep(nn.Module):
    """h, c = LSTM(x, h, c); with a counter n: n + 1 (count) or 0 (reset)."""

    def __init__(self, cell, counter=None):
        super().__init__()
        self.cell, self.counter = cell, counter

    def forward(self, x, h, c, *n):
        h2, c2 = self.cell(x, (h, c))
        if self.counter is None:
            return h2, c2
        return h2, c2, (n[0] + 1 if self.counter == "count" else torch.zeros_like(n[0]))


class ResetCounter(nn.Module):
    def forward(self, x, h, c, n):
        return h, c, torch.zeros_like(n)


class GRUStep(nn.Module):
    def __init__(self, cell, D=None):
        super().__init__()
        self.cell, self.D = cell, D

    def forward(self, x, h):
        return self.cell(x if self.D is None else x[:self.D], h)


class RNNStep(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x, h):
        return self.cell(x, h)


class SmallLSTMStep(nn.Module):
    """Skim-RNN's skim: the small LSTM updates the first Hs units."""

    def __init__(self, cell, Hs):
        super().__init__()
        self.cell, self.Hs = cell, Hs

    def forward(self, x, h, c):
        s = self.Hs
        hs, cs = self.cell(x, (h[:s], c[:s]))
        return torch.cat([hs, h[s:]]), torch.cat([cs, c[s:]])


class VCRNNStep(nn.Module):
    """The first m(t) H units updated, m = sigmoid(sched([x, h])). Logs the
    margin (m H's distance to the nearest integer) and the units updated."""

    log = None

    def __init__(self, cell, sched, H):
        super().__init__()
        self.cell, self.sched, self.H = cell, sched, H

    def forward(self, x, h):
        mh = torch.sigmoid(self.sched(torch.cat([x, h]))) * float(self.H)
        # an integer arange (compared in float32): a float one exports as a
        # generic whose body captures a constant, which dyncc's kernel
        # formation rejects (region isolation)
        e = (torch.arange(self.H) < mh).to(h.dtype)
        if self.log is not None:
            v = float(mh[0])
            self.log.append((min(abs(v - i) for i in range(self.H)), int(e.sum())))
        u = self.cell(x, e * h)
        return e * u + (1 - e) * h


class HMRead(nn.Module):
    def __init__(self, lower):
        super().__init__()
        self.lower = lower

    def forward(self, x, h1, h2):
        return self.lower(x, h1), h2


class HMFlush(nn.Module):
    def __init__(self, lower, upper):
        super().__init__()
        self.lower, self.upper = lower, upper

    def forward(self, x, h1, h2):
        return self.lower(x, torch.zeros_like(h1)), self.upper(h1, h2)


class FHStep(nn.Module):
    """read: the lower LSTM reads x; upper: the upper GRU also reads the new h1."""

    def __init__(self, lower, upper=None):
        super().__init__()
        self.lower, self.upper = lower, upper

    def forward(self, x, h1, c1, h2, q):
        n1, m1 = self.lower(x, (h1, c1))
        return n1, m1, (h2 if self.upper is None else self.upper(n1, h2)), q


# ---------------------------------------------------------------------------
# Models


class SkimModel(nn.Module):
    """x [S, D] -> the final state; the loop is `self.skim` (dyncc.nn.Skim)."""

    def __init__(self, cfg, skim, init):
        super().__init__()
        self.cfg, self.skim, self.init = cfg, skim, init  # init: [(shape)] of the state

    def zeros(self, x):
        return [x.new_zeros(s) for s in self.init]

    def forward(self, x):
        return self.skim(x, *self.zeros(x))


class ClassesModel(SkimModel):
    """structural_jump: the classes are Skim's jump_to operand."""

    def forward(self, x, classes):
        return self.skim(x, classes, *self.zeros(x))


class JumperModel(SkimModel):
    """jumper: each step sees [x_t, class_t] (the class as one more column)."""

    def forward(self, x, classes):
        seq = torch.cat([x, classes.to(x.dtype).unsqueeze(1)], 1)
        return self.skim(seq, *self.zeros(x))


class FHRNNModel(SkimModel):
    """fhrnn: q' = wq(query) once, carried in the state; returns (h1, c1, h2)."""

    def __init__(self, cfg, skim, init, wq):
        super().__init__(cfg, skim, init)
        self.wq = wq

    def forward(self, x, query):
        h1, c1, h2, _ = self.skim(x, *self.zeros(x), self.wq(query))
        return h1, c1, h2


def make_model(cfg, w):
    """The method's model (a SkimModel) with the named weights w."""
    m, D, H, K, R = cfg.method, cfg.dim, cfg.hidden, cfg.max_jump, cfg.read
    B = cfg.budget
    Sk = dnn.Skim
    if m == "lstm_jump":
        skim = Sk(["read", "jump", "stop"], JumpHead(linear(w, ["jump.w"], "jump.b"), R),
                  {0: LSTMStep(lstm_cell(cfg, w, "cell", D, H), "count"), 1: ResetCounter()}, B)
        return SkimModel(cfg, skim, [(H,), (H,), (1,)])
    if m == "skip_rnn":
        skim = Sk(["read", "skip"], SkipGate(linear(w, ["gate.w_x", "gate.w_h"], "gate.b")),
                  {0: GRUStep(gru_cell(cfg, w, "cell", D, H))}, B)
        return SkimModel(cfg, skim, [(H,)])
    if m == "reasonet":
        skim = Sk(["read", "stop"], StopGate(linear(w, ["term.w"], "term.b")),
                  {0: GRUStep(gru_cell(cfg, w, "cell", D, H))}, B)
        return SkimModel(cfg, skim, [(H,)])
    if m == "jumper":
        read = GRUStep(gru_cell(cfg, w, "cell", D, H), D)
        skim = Sk(["read", "stop"], SentenceEndGate(linear(w, ["stop.w"], "stop.b"), D),
                  {0: read, 1: copy.deepcopy(read)}, B)
        return JumperModel(cfg, skim, [(H,)])
    if m == "rim":
        skim = Sk(["read", "skip", "stop"],
                  ArgmaxHead(linear(w, ["act.w_x", "act.w_h"], "act.b")),
                  {0: RNNStep(rnn_cell(cfg, w, "cell", D, H))}, B)
        return SkimModel(cfg, skim, [(H,)])
    if m == "yu2018":
        read = LSTMStep(lstm_cell(cfg, w, "cell", D, H))
        skim = Sk(["read", "reread", "jump", "stop"],
                  Yu2018Head(linear(w, ["act.w_x", "act.w_h"], "act.b")),
                  {0: read, 1: copy.deepcopy(read)}, B)
        return SkimModel(cfg, skim, [(H,), (H,)])
    if m == "lstm_shuttle":
        cell = lstm_cell(cfg, w, "cell", D, H)
        skim = Sk(["read", "shuttle"], ShuttleHead(linear(w, ["shuttle.w"], "shuttle.b"), R, K),
                  {0: LSTMStep(cell, "count"), 1: LSTMStep(copy.deepcopy(cell), "reset")}, B)
        return SkimModel(cfg, skim, [(H,), (H,), (1,)])
    if m == "structural_jump":
        skim = Sk(["read", ("jump_to", SEPARATORS), ("jump_to", SENTENCE_ENDS), ("jump_to", [])],
                  ArgmaxHead(linear(w, ["act.w_x", "act.w_h"], "act.b")),
                  {0: LSTMStep(lstm_cell(cfg, w, "cell", D, H))}, B)
        return ClassesModel(cfg, skim, [(H,), (H,)])
    if m == "vcrnn":
        skim = Sk(["partial"], VCRNNHead(),
                  {0: VCRNNStep(rnn_cell(cfg, w, "cell", D, H),
                                linear(w, ["sched.w_x", "sched.w_h"], "sched.b"), H)}, B)
        return SkimModel(cfg, skim, [(H,)])
    if m == "skim_rnn":
        skim = Sk(["read", "skim"], ArgmaxHead(linear(w, ["act.w_x", "act.w_h"], "act.b")),
                  {0: LSTMStep(lstm_cell(cfg, w, "big", D, H)),
                   1: SmallLSTMStep(lstm_cell(cfg, w, "small", D, cfg.small), cfg.small)}, B)
        return SkimModel(cfg, skim, [(H,), (H,)])
    if m == "hm_rnn":
        lower = rnn_cell(cfg, w, "lower", D, H)
        skim = Sk(["read", "skip", "flush"],
                  ArgmaxHead(linear(w, ["act.w_x", "act.w_h", "act.w_u"], "act.b"), n_state=2),
                  {0: HMRead(lower),
                   2: HMFlush(copy.deepcopy(lower), rnn_cell(cfg, w, "upper", H, H))}, B)
        return SkimModel(cfg, skim, [(H,), (H,)])
    assert m == "fhrnn"
    lower = lstm_cell(cfg, w, "lower", D, H)
    skim = Sk(["read", "upper"], QueryGate(linear(w, ["gate.w_x"], "gate.b")),
              {0: FHStep(lower), 1: FHStep(copy.deepcopy(lower), gru_cell(cfg, w, "upper", H, H))},
              B)
    return FHRNNModel(cfg, skim, [(H,), (H,), (H,)], linear(w, ["gate.wq"], None, bias_on=False))


# ---------------------------------------------------------------------------
# Cases and eager runs

CLASS_P = [0.7, 0.08, 0.04, 0.1, 0.04, 0.04]


def draw_case(cfg, rng):
    """(x [S, D] float32, classes [S] int32 or None, query [D] or None)"""
    S, D = cfg.seq, cfg.dim
    o = rng.standard_normal(D) * 0.7
    x = (rng.standard_normal((S, D)) + o).astype(np.float32)
    cls = (rng.choice(len(CLASS_P), size=S, p=CLASS_P).astype(np.int32)
           if cfg.uses_classes else None)
    q = rng.standard_normal(D).astype(np.float32) if cfg.uses_query else None
    return x, cls, q


def case_inputs(cfg, x, cls, q):
    """The model's inputs (torch tensors) for one case."""
    v = [torch.from_numpy(np.ascontiguousarray(x))]
    if cfg.uses_classes:
        v.append(torch.from_numpy(np.ascontiguousarray(cls)))
    if cfg.uses_query:
        v.append(torch.from_numpy(np.ascontiguousarray(q)))
    return tuple(v)


class Result:
    """One eager run: state (float32 arrays), trace [(pos, action, amount)],
    steps, termination (stop, end, start, budget, error), final_pos, margin
    (the smallest decision margin), error (None or (step, pos, action)),
    units (VCRNN: the units each step updated)."""

    def __init__(self, state, trace, termination, final_pos, margin, error, units):
        self.state, self.trace, self.termination = state, trace, termination
        self.steps, self.final_pos, self.margin = len(trace), final_pos, margin
        self.error, self.units = error, units


def _logs(model):
    return [m for m in model.modules() if isinstance(m, (Head, VCRNNStep))]


def run_case(model, x, cls=None, q=None):
    """Runs the eager model on one case; returns a Result."""
    cfg, skim = model.cfg, model.skim
    logs = _logs(model)
    for m in logs:
        m.log = []
    error = None
    try:
        with torch.no_grad():
            out = model(*case_inputs(cfg, x, cls, q))
        state = tuple(t.numpy().astype(np.float32) for t in (out if isinstance(out, tuple)
                                                               else (out,)))
    except dnn.SkimError:
        state = None
    finally:
        margins, units = [], []
        for m in logs:
            for v in m.log:
                if isinstance(v, tuple):
                    margins.append(v[0])
                    units.append(v[1])
                else:
                    margins.append(v)
            m.log = None
    trace = list(skim.trace)
    acts = skim.actions
    S = cfg.seq
    pos, a, amount = trace[-1] if trace else (0, 0, 0)
    if not 0 <= a < len(acts):
        termination, final = "error", pos
        error = (len(trace) - 1, pos, a)
    else:
        final = next_position(acts[a], pos, amount, cls, S)
        termination = ("stop" if acts[a].kind == "stop" else "end" if final >= S
                       else "start" if final < 0 else "budget")
    return Result(state, trace, termination, final, min(margins, default=math.inf), error,
                  units)


def build_model(method, seq=12, dim=8, hidden=16, small=4, budget=None, seed=0, read=2,
                max_jump=4, bad_action=False, gemv="linear"):
    """(model, example_inputs): the method's eager model (weights from
    `seed`) and a first case drawn from seed + 1000003 (a tuple of torch
    tensors: x [S, D], then classes [S] int32 / query [D] when it takes them)."""
    cfg = Config(method, seq=seq, dim=dim, hidden=hidden, small=small, budget=budget, read=read,
                 max_jump=max_jump, bad_action=bad_action, gemv=gemv)
    model = make_model(cfg, make_weights(cfg, seed)).eval()
    rng = np.random.default_rng(seed + 1_000_003)
    return model, case_inputs(cfg, *draw_case(cfg, rng))


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


def events(cfg, acts, r, classes):
    """The notable things case r did (for the histogram / coverage)."""
    ev = Counter()
    ev[r.termination] += 1
    if r.final_pos > cfg.seq:
        ev["past_end"] += 1
    if r.termination == "stop" and r.steps < cfg.seq:
        ev["early_stop"] += 1
    for units in r.units:
        ev["partial_all" if units == cfg.hidden else "partial_some"] += 1
    for pos, a, amount in r.trace:
        if not 0 <= a < len(acts):
            continue
        k = acts[a].kind
        if k == "shuttle":
            ev["backward" if amount < 0 else "shuttle_0" if amount == 0 else "forward"] += 1
        if k == "jump" and amount == 0:
            ev["jump_0"] += 1
        if k == "jump_to" and acts[a].targets:
            if not any(int(classes[p]) in acts[a].targets for p in range(pos + 1, cfg.seq)):
                ev["jump_to_none"] += 1
    return ev


class Generated:
    """What `generate` made: cfg, weights (named arrays), model, example
    (inputs), cases (xs, classes, queries lists), results (Result per case),
    hist (action counts), ev (events), rejected, paths (mlir, safetensors
    or None)."""


def generate(cfg, cases=64, seed=0, min_margin=1e-3, out_base=None, quiet=True,
             weights_only=False):
    """Builds the model and draws `cases` cases away from ties; exports the
    model to out_base.mlir/.safetensors when out_base is given (weights_only:
    only out_base.safetensors, through dyncc.export_weights: no torch-mlir)."""
    g = Generated()
    g.cfg, g.weights = cfg, make_weights(cfg, seed)
    g.model = make_model(cfg, g.weights).eval()
    rng = np.random.default_rng(seed + 1_000_003)
    xs, clss, qs, results = [], [], [], []
    rejected = 0
    while len(results) < cases:
        x, cls, q = draw_case(cfg, rng)
        r = run_case(g.model, x, cls, q)
        if r.margin < min_margin:
            rejected += 1
            if rejected > 50 * cases + 100:
                raise SystemExit(f"{cfg.method}: too many cases within --min-margin "
                                 f"{min_margin} of a tie")
            continue
        xs.append(x)
        clss.append(cls)
        qs.append(q)
        results.append(r)
    g.cases, g.results, g.rejected = (xs, clss, qs), results, rejected
    acts = g.model.skim.actions
    g.hist, g.ev = Counter(), Counter()
    for i, r in enumerate(results):
        g.ev.update(events(cfg, acts, r, clss[i]))
        g.hist.update(a for _, a, _ in r.trace)
    # the example for the export: the first case that runs to its end
    ok = next((i for i, r in enumerate(results) if r.error is None), 0)
    g.example = case_inputs(cfg, xs[ok], clss[ok], qs[ok])
    g.paths = None
    if out_base is not None and weights_only:
        g.paths = (None, dyncc.export_weights(g.model, out_base))
    elif out_base is not None:
        g.paths = dyncc.export(g.model, g.example, out_base)
    return g


def expected(g):
    """The eager results as arrays (NAME.expected.npz)."""
    cfg, results = g.cfg, g.results
    N, B = len(results), cfg.budget
    trace = np.full((N, B, 3), -1, np.int32)
    for i, r in enumerate(results):
        if r.trace:
            trace[i, :r.steps] = np.array(r.trace, np.int32)
    inputs = ["x"] + (["classes"] if cfg.uses_classes else []) + (["query"] if cfg.uses_query
                                                                  else [])
    acts = g.model.skim.actions
    exp = dict(config=np.array(cfg.to_json()), method=np.array(cfg.method),
               inputs=np.array(inputs), outputs=np.array(list(cfg.state_names)),
               actions=np.array(json.dumps([[a.kind, list(a.targets)] for a in acts])),
               budget=np.int64(B), steps=np.array([r.steps for r in results], np.int32),
               trace=trace, termination=np.array([r.termination for r in results]),
               final_pos=np.array([r.final_pos for r in results], np.int64),
               error_step=np.array([r.error[0] if r.error else -1 for r in results], np.int32),
               margin=np.array([r.margin for r in results], np.float64))
    for k, n in enumerate(cfg.state_names):
        shape = (1,) if n == "n" else (cfg.hidden,)
        exp["state_" + n] = np.stack([r.state[k] if r.state is not None else
                                      np.full(shape, np.nan, np.float32) for r in results])
    return exp


# ---------------------------------------------------------------------------
# The independent float64 implementation (for --self-check): plain loops,
# one branch per method, written from the descriptions in the docstring and
# reading the named weights of make_weights (not the modules).


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
    """(trace, state tuple, ending) of one case, float64."""
    w = {k: np.asarray(v, np.float64) for k, v in w.items()}
    x = np.asarray(x, np.float64)
    S, H, B, R, K = cfg.seq, cfg.hidden, cfg.budget, cfg.read, cfg.max_jump
    meth = cfg.method
    zeros = np.zeros(H)
    if meth in ("lstm_jump", "lstm_shuttle"):
        state = [zeros, zeros, 0.0]
    elif meth in ("yu2018", "structural_jump", "skim_rnn", "hm_rnn"):
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
            if int(classes[pos]) in SENTENCE_ENDS and \
                    np_sig(w["stop.w"] @ h + w["stop.b"])[0] > 0.5:
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


def find_dyncc_opt():
    if os.environ.get("DYNCC_OPT"):
        return os.environ["DYNCC_OPT"]
    for p in ("build/tools/dyncc-opt/dyncc-opt", "build-lead/tools/dyncc-opt/dyncc-opt"):
        q = os.path.join(ROOT, p)
        if os.path.exists(q):
            return q
    return None


def self_check(g, dyncc_opt=None):
    """The eager model against np_run on every case, the coverage of the
    actions and required endings, and (dyncc-opt) the exported MLIR."""
    t0 = time.time()
    cfg, ok = g.cfg, True
    xs, clss, qs = g.cases
    bad, worst = 0, 0.0
    for i, r in enumerate(g.results):
        tr, st, ending = np_run(cfg, g.weights, xs[i], clss[i], qs[i])
        same_state = True
        if ending != "error" and r.state is not None:
            err = max(float(np.abs(s - r.state[k]).max()) for k, s in enumerate(st))
            worst = max(worst, err)
            same_state = err <= 1e-5
        if tr != r.trace or ending != r.termination or not same_state:
            bad += 1
            if bad <= 3:
                print(f"  case {i}: numpy {ending} {tr}\n  torch {r.termination} {r.trace}")
    print(f"self-check: {cfg.method}: dyncc.nn.Skim eager vs independent float64 numpy loop, "
          f"{len(g.results)} cases: traces and endings "
          + ("identical" if not bad else f"{bad} DIFFER") + f", final states within {worst:.2g}")
    ok &= bad == 0 and worst <= 1e-5

    acts = g.model.skim.actions
    missing = [f"action {k} ({acts[k]})" for k in range(len(acts)) if not g.hist[k]]
    need = REQUIRED[cfg.method] + (["error"] if cfg.bad_action else [])
    missing += [e for e in need if not g.ev[e]]
    print(f"self-check: every action and the required endings/events {need} occur: "
          + ("OK" if not missing else f"MISSING {missing}"))
    ok &= not missing

    opt = dyncc_opt or find_dyncc_opt()
    if opt and g.paths and g.paths[0]:
        p = subprocess.run([opt, g.paths[0]], capture_output=True, text=True)
        print(f"self-check: {opt} parses and verifies the MLIR: "
              + ("OK" if p.returncode == 0 else "FAILED"))
        if p.returncode:
            print(p.stderr[-3000:])
        ok &= p.returncode == 0
    print(f"self-check: {'PASSED' if ok else 'FAILED'} in {time.time() - t0:.1f} s")
    return ok


def check_basics():
    """The torch.mv and W @ v[:, None] cells (gemv="mv", "mm") against
    torch.nn's cells, and the
    loop's position rules (dyncc.nn.skimming.next_position) on hand-made
    decisions. True when all agree."""
    from dyncc.nn.skimming import Action
    ok = True
    g = torch.Generator().manual_seed(0)
    D, H = 8, 16
    x, h, c = (torch.randn(D, generator=g), torch.randn(H, generator=g),
               torch.randn(H, generator=g))
    with torch.no_grad():
        for name, base, mine, args in (
                ("LSTMCell", nn.LSTMCell, MvLSTMCell, lambda: (x, (h, c))),
                ("GRUCell", nn.GRUCell, MvGRUCell, lambda: (x, h)),
                ("RNNCell", nn.RNNCell, MvRNNCell, lambda: (x, h)),
                ("LSTMCell", nn.LSTMCell, MmLSTMCell, lambda: (x, (h, c))),
                ("GRUCell", nn.GRUCell, MmGRUCell, lambda: (x, h)),
                ("RNNCell", nn.RNNCell, MmRNNCell, lambda: (x, h))):
            torch.manual_seed(1)
            ref = base(D, H)
            torch.manual_seed(1)
            got = mine(D, H)
            r, o = ref(*args()), got(*args())
            r, o = (r if isinstance(r, tuple) else (r,)), (o if isinstance(o, tuple) else (o,))
            e = max(float((a - b).abs().max()) for a, b in zip(r, o))
            good = e < 1e-6
            ok &= good
            print(f"basics: {mine.form} {name} vs torch.nn.{name}: max error {e:.2g} "
                  f"{'OK' if good else 'DIFFER'}")
    cls = [WORD, COMMA, WORD, PERIOD, WORD, COLON, WORD]
    S = len(cls)
    cases = [(Action("read"), 2, 0, 3), (Action("jump"), 2, 0, 3), (Action("jump"), 2, 3, 5),
             (Action("shuttle"), 2, -3, -1), (Action("shuttle"), 2, 0, 2),
             (Action("jump_to", SEPARATORS), 1, 0, 5), (Action("jump_to", SEPARATORS), 5, 0, S),
             (Action("jump_to", SENTENCE_ENDS), 0, 0, 3), (Action("jump_to"), 0, 0, S),
             (Action("reread"), 4, 0, 4)]
    bad = [(a, p, k, want, next_position(a, p, k, cls, S)) for a, p, k, want in cases
           if next_position(a, p, k, cls, S) != want]
    print("basics: next positions: " + ("OK" if not bad else f"WRONG {bad}"))
    ok &= not bad
    print(f"basics: {'PASSED' if ok else 'FAILED'}")
    return ok


# ---------------------------------------------------------------------------
# Command line


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--method", choices=METHODS, default="lstm_jump")
    ap.add_argument("--seq", type=int, default=12, help="S, steps of the sequence")
    ap.add_argument("--dim", type=int, default=8, help="D, the step input size")
    ap.add_argument("--hidden", type=int, default=16, help="H, the state size")
    ap.add_argument("--small", type=int, default=4, help="skim_rnn: the small cell's size")
    ap.add_argument("--budget", type=int, default=None,
                    help="B (default per method: default_budget)")
    ap.add_argument("--read", type=int, default=2,
                    help="lstm_jump / lstm_shuttle: tokens read before each decision (R)")
    ap.add_argument("--max-jump", type=int, default=4,
                    help="lstm_jump: jumps 1..K; yu2018: amounts 0..K-1; lstm_shuttle: [-K, K]")
    ap.add_argument("--bad-action", action="store_true",
                    help="rim: a 4th logit chooses action 3, which does not exist (the run fails)")
    ap.add_argument("--gemv", choices=tuple(CELLS), default="linear",
                    help="the cells as torch.nn cells (nn.Linear), or written with torch.mv, "
                    "or with W @ v[:, None]")
    ap.add_argument("--cases", type=int, default=64)
    ap.add_argument("--min-margin", type=float, default=1e-3)
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--out-dir", default=".")
    ap.add_argument("--name", default=None, help="default: the method")
    ap.add_argument("--weights-only", action="store_true",
                    help="write NAME.safetensors with dyncc.export_weights (no NAME.mlir, no "
                         "tracing, no torch-mlir) and the data files: for a machine that runs "
                         "a library compiled elsewhere")
    ap.add_argument("--self-check", action="store_true")
    ap.add_argument("--dyncc-opt", default=None)
    a = ap.parse_args(argv)
    a.name = a.name or a.method
    if not a.name.isidentifier():
        ap.error("--name must be an identifier")
    return ap, a


def config_of(a):
    return Config(a.method, seq=a.seq, dim=a.dim, hidden=a.hidden, small=a.small,
                  budget=a.budget, read=a.read, max_jump=a.max_jump, bad_action=a.bad_action,
                  gemv=a.gemv)


def write(cfg, a):
    """Generates, exports and writes the data files of the command line."""
    t0 = time.time()
    os.makedirs(a.out_dir, exist_ok=True)
    base = os.path.join(a.out_dir, a.name)
    g = generate(cfg, a.cases, a.data_seed, a.min_margin, out_base=base,
                 weights_only=a.weights_only)
    xs, clss, qs = g.cases
    np.save(base + ".x.npy", np.stack(xs))
    if cfg.uses_classes:
        np.save(base + ".classes.npy", np.stack(clss))
    if cfg.uses_query:
        np.save(base + ".query.npy", np.stack(qs))
    np.savez(base + ".expected.npz", **expected(g))
    acts = g.model.skim.actions
    hist, ev, results = g.hist, g.ev, g.results
    print(f"wrote {base}" + (".safetensors" if a.weights_only else ".mlir, .safetensors")
          + f", .x.npy [{len(xs)}, {cfg.seq}, {cfg.dim}]"
          + (", .classes.npy" if cfg.uses_classes else "")
          + (", .query.npy" if cfg.uses_query else "")
          + f", .expected.npz in {time.time() - t0:.1f} s")
    print(f"{cfg.method}: {TITLES[cfg.method]}; S={cfg.seq} D={cfg.dim} H={cfg.hidden} "
          f"B={cfg.budget}; {g.rejected} case(s) redrawn (a decision within {a.min_margin} "
          "of a tie)")
    names = [f"{k}:{acts[k] if k < len(acts) else 'OUT OF RANGE'}" for k in sorted(hist)]
    print("  actions: " + ", ".join(f"{nm} {hist[k]}" for nm, k in zip(names, sorted(hist))))
    print("  endings: " + ", ".join(f"{k} {ev[k]}" for k in ("stop", "end", "start", "budget",
                                                                "error") if ev[k]))
    other = [k for k in ev if k not in ("stop", "end", "start", "budget", "error")]
    if other:
        print("  events: " + ", ".join(f"{k} {ev[k]}" for k in sorted(other)))
    st = np.array([r.steps for r in results])
    print(f"  steps per case: min {st.min()}, mean {st.mean():.1f}, max {st.max()}; "
          f"smallest margin {min(r.margin for r in results):.3g}")
    return g


def main(argv=None):
    if argv is None and sys.argv[1:] == ["--check-basics"]:
        sys.exit(0 if check_basics() else 1)
    ap, a = parse_args(argv)
    try:
        cfg = config_of(a)
    except ValueError as e:
        ap.error(str(e))
    g = write(cfg, a)
    if a.self_check:
        sys.exit(0 if self_check(g, a.dyncc_opt) else 1)


if __name__ == "__main__":
    main()
