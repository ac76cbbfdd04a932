#!/usr/bin/env python3
"""Skimming (dyn.skip) in PyTorch eager: the reference of every method of
the survey's Table 1, with the loop of docs/skim.md, exactly.

    from reference import SkimConfig, make_method, run_skim
    cfg = SkimConfig("lstm_jump", seq=12, dim=8, hidden=16)
    m = make_method(cfg, weights)          # weights: {name: float32 array}
    r = run_skim(m, x, classes=None, query=None)
    r.state, r.trace, r.steps, r.termination

The loop (docs/skim.md, "Semantics, exactly"):

    while 0 <= pos < S and n < B:
      a, amount = decide(pos, x = seq[pos], state)
      record (pos, a, amount); n += 1
      a outside [0, #actions): the run fails (SkipError names the step)
      state = region_a(pos, x, state)      # None (empty region): unchanged
      pos = next(pos, a)                   # read/skim/skip/partial/flush/upper
                                           # +1, jump + max(amount, 1),
                                           # shuttle + amount, jump_to: the
                                           # next step of a target class (S
                                           # if none), reread: pos
      if kind(a) == stop: leave

Everything is float32, batch 1. Decisions are argmaxes (the first maximum)
or thresholds (sigmoid(z) > 0.5), deterministic; the `amount` of a step is
0 unless its action is a jump or a shuttle (every decide region of
make_skim.py yields 0 then). Each decision also reports its margin (the gap
between the best and the second-best logit, |z| for a threshold, the
distance to the nearest integer of VCRNN's m(t)*H): make_skim.py keeps only
cases whose decisions are all at least --min-margin away from a tie, so
that the compiled model (float32, other summation orders) takes the same
decisions.

The methods (name: cell, actions; `state`; the decision):

  lstm_jump       LSTM-Jump (Yu et al. 2017). LSTM; [read, jump, stop];
                  (h, c, n) with n the tokens read since the last jump.
                  n < R: read. Else j = argmax(jump.w h + jump.b) over
                  {stop, jump 1..K}: j = 0 stop, else jump j (region: n = 0).
  skip_rnn        Skip RNN (Campos et al. 2018). GRU; [read, skip]; (h).
                  read iff sigmoid(gate.w_h h + gate.w_x x + gate.b) > 0.5,
                  else skip (the state is copied). (The gate also sees x:
                  skip copies the whole state, so a gate of the state alone
                  would skip to the end once it skipped.)
  reasonet        ReasoNet (Shen et al. 2017). GRU; [read, stop]; (h).
                  stop iff sigmoid(term.w h + term.b) > 0.5 (terminal gate).
  jumper          Jumper (Liu et al. 2018). GRU; [read, stop]; (h); needs
                  the token classes. At a sentence end (class in
                  SENTENCE_ENDS) stop iff sigmoid(stop.w h + stop.b) > 0.5;
                  elsewhere read. The stop region reads the sentence-end
                  token (h = GRU(x, h)) before the loop ends.
  rim             RIM (Li et al. 2019). vanilla RNN; [read, skip, stop]; (h).
                  argmax(act.w_h h + act.w_x x + act.b) over {read, skip,
                  stop}. bad_action: a 4th logit whose action (index 3) does
                  not exist: the run fails at that step.
  yu2018          Yu et al. 2018. LSTM; [read, reread, jump, stop]; (h, c).
                  argmax over {read, reread, stop, jump 0..K-1}
                  (act.w_h h + act.w_x x + act.b, 3 + K logits); reread
                  updates the state with the same token and stays; jump
                  copies the state and moves max(amount, 1): amount 0 moves 1.
  lstm_shuttle    LSTM-Shuttle (Fu and Ma 2018). LSTM; [read, shuttle];
                  (h, c, n). n < R: read. Else shuttle by
                  argmax(shuttle.w h + shuttle.b) - K in [-K, K] (region:
                  read the token, n = 0); 0 stays, < 0 goes back.
  structural_jump Structural Jump-LSTM (Hansen et al. 2019). LSTM; [read,
                  jump_to SEPARATORS, jump_to SENTENCE_ENDS, jump_to [] (the
                  end)]; (h, c); needs the classes. argmax(act.w_h h +
                  act.w_x x + act.b) over the four.
  vcrnn           VCRNN (Jernite et al. 2017). vanilla RNN; [partial]; (h).
                  m = sigmoid(sched.w_h h + sched.w_x x + sched.b); units
                  i < m H are updated (e_i = 1), with the weights masked to
                  them: h' = e*tanh(W x + U (e*h) + b) + (1 - e)*h.
  skim_rnn        Skim-RNN (Seo et al. 2018). [read, skim]; (h, c).
                  argmax(act.w_x x + act.w_h h + act.b) (a linear of [x, h]):
                  read: the big LSTM updates all H units; skim: the small
                  LSTM (hidden Hs) updates the first Hs units of h and c.
  hm_rnn          HM-RNN (Chung et al. 2017), two levels. vanilla RNNs
                  lower (D -> H) and upper (H -> H); [read, skip, flush];
                  (h1, h2). Boundary detector argmax(act.w_h h1 + act.w_u h2
                  + act.w_x x + act.b): read (update the lower layer, copy
                  the upper), skip (copy both), flush (the upper layer reads
                  the lower one, h2 = upper(h1, h2), and the lower layer
                  restarts from the token, h1 = lower(x, 0)).
  fhrnn           Focused Hierarchical RNN (Ke et al. 2018). LSTM lower (D ->
                  H), GRU upper (H -> H); [read, upper]; (h1, c1, h2); a
                  query q [D] (model input). Query gate: q' = gate.wq q
                  (once), upper iff sigmoid(q' . h1 + gate.w_x x + gate.b)
                  > 0.5. read: the lower LSTM reads x; upper: also the upper
                  GRU reads the new h1.

Cells (PyTorch's gate order and formulas): LSTM gates = W_ih x + W_hh h + b
(i, f, g, o), c' = sigma(f) c + sigma(i) tanh(g), h' = sigma(o) tanh(c');
GRU as torch.nn.GRUCell (b_ih, b_hh); vanilla RNN h' = tanh(W_ih x + W_hh h
+ b). Weights [out, in] (as nn.LSTMCell.weight_ih).

Command line: `reference.py --self-check` checks the cells against
torch.nn.LSTMCell / GRUCell / RNNCell and the loop's position rules on
hand-made decisions.
"""

import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "encoder"))

# torch_eager sets OPENBLAS_CORETYPE before torch loads (see WORKLOADS.md).
import torch_eager  # noqa: E402,F401

import numpy as np  # noqa: E402
import torch  # noqa: E402

# Token classes (NAME.classes.npy, the `classes` operand of dyn.skip).
WORD, COMMA, COLON, PERIOD, EXCLAIM, QUESTION = range(6)
CLASS_NAMES = ["word", ",", ":", ".", "!", "?"]
SEPARATORS = (COMMA, COLON)
SENTENCE_ENDS = (PERIOD, EXCLAIM, QUESTION)

# The loop itself (actions, positions, budget) is dyncc.nn's: one
# implementation, shared with dyncc.nn.Skim.
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
from dyncc.nn.skimming import (  # noqa: E402,F401
    ADVANCE_ONE, KINDS, TERMINATIONS, Action, next_position, run_loop)

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


class SkipError(Exception):
    """An action outside [0, #actions): the run fails at step `step`."""

    def __init__(self, step, pos, action, num_actions):
        super().__init__(f"step {step} (position {pos}) chose action {action}, "
                         f"outside [0, {num_actions})")
        self.step, self.pos, self.action, self.num_actions = step, pos, action, num_actions


# ---------------------------------------------------------------------------
# Configuration


def default_budget(method, S):
    """The budget B of each method for sequence length S (docs/skim.md: the
    loop also ends after B steps)."""
    return {"lstm_jump": max(1, (3 * S) // 4), "reasonet": max(1, S - 2), "yu2018": S,
            "lstm_shuttle": S + S // 3}.get(method, S)


class SkimConfig:
    def __init__(self, method, seq=12, dim=8, hidden=16, small=4, budget=None, read=2,
                 max_jump=4, bad_action=False):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; one of {', '.join(METHODS)}")
        self.method, self.seq, self.dim, self.hidden, self.small = method, seq, dim, hidden, small
        self.budget = budget if budget is not None else default_budget(method, seq)
        self.read, self.max_jump, self.bad_action = read, max_jump, bad_action
        if bad_action and method != "rim":
            raise ValueError("bad_action applies to rim only")
        if method == "skim_rnn" and not 0 < small <= hidden:
            raise ValueError("skim_rnn needs 0 < small <= hidden")
        if method in ("lstm_jump", "lstm_shuttle", "yu2018") and max_jump < 1:
            raise ValueError("max_jump must be >= 1")
        if self.budget < 1:
            raise ValueError("budget must be >= 1")

    def to_json(self):
        return json.dumps(dict(method=self.method, seq=self.seq, dim=self.dim,
                               hidden=self.hidden, small=self.small, budget=self.budget,
                               read=self.read, max_jump=self.max_jump,
                               bad_action=self.bad_action))

    @classmethod
    def from_json(cls, text):
        return cls(**json.loads(text))


# ---------------------------------------------------------------------------
# Cells (float32, batch 1; weights [out, in])


def sigmoid(v):
    return torch.sigmoid(v)


def lstm_cell(x, h, c, w_ih, w_hh, b):
    g = torch.mv(w_ih, x) + torch.mv(w_hh, h) + b
    i, f, gg, o = g.chunk(4)
    c2 = sigmoid(f) * c + sigmoid(i) * torch.tanh(gg)
    return sigmoid(o) * torch.tanh(c2), c2


def gru_cell(x, h, w_ih, w_hh, b_ih, b_hh):
    gx = torch.mv(w_ih, x) + b_ih
    gh = torch.mv(w_hh, h) + b_hh
    xr, xz, xn = gx.chunk(3)
    hr, hz, hn = gh.chunk(3)
    r = sigmoid(xr + hr)
    z = sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    return (1 - z) * n + z * h


def rnn_cell(x, h, w_ih, w_hh, b):
    return torch.tanh(torch.mv(w_ih, x) + torch.mv(w_hh, h) + b)


def cell_weights(prefix, kind, n_in, H):
    """[(name, shape)] of one cell's weights."""
    if kind == "lstm":
        return [(f"{prefix}.w_ih", (4 * H, n_in)), (f"{prefix}.w_hh", (4 * H, H)),
                (f"{prefix}.b", (4 * H,))]
    if kind == "gru":
        return [(f"{prefix}.w_ih", (3 * H, n_in)), (f"{prefix}.w_hh", (3 * H, H)),
                (f"{prefix}.b_ih", (3 * H,)), (f"{prefix}.b_hh", (3 * H,))]
    assert kind == "rnn"
    return [(f"{prefix}.w_ih", (H, n_in)), (f"{prefix}.w_hh", (H, H)), (f"{prefix}.b", (H,))]


# ---------------------------------------------------------------------------
# Decisions


def argmax_margin(logits):
    """(first index of the maximum, best - second best) of a 1-D tensor."""
    v = logits.detach().numpy().astype(np.float32)
    i = int(torch.argmax(logits))
    if v.size < 2:
        return i, math.inf
    s = np.sort(v)
    return i, float(s[-1]) - float(s[-2])


def gate(z):
    """sigmoid(z) > 0.5 for a [1] tensor: (bool, margin |z|)."""
    return bool(sigmoid(z)[0] > 0.5), abs(float(z[0]))


# ---------------------------------------------------------------------------
# Methods


class Method:
    """One method: its actions, state, weights, decision and action regions.
    `w` maps weight names to float32 torch tensors."""

    cell = None
    state_names = ()
    uses_classes = False
    uses_query = False
    step_info = None

    def __init__(self, cfg, weights=None):
        self.cfg = cfg
        self.S, self.D, self.H, self.B = cfg.seq, cfg.dim, cfg.hidden, cfg.budget
        if weights is not None:
            missing = [n for n, _ in self.weight_shapes() if n not in weights]
            if missing:
                raise KeyError(f"missing weights {missing}")
            self.w = {n: torch.from_numpy(np.ascontiguousarray(weights[n], np.float32))
                      for n, _ in self.weight_shapes()}

    # what the model looks like
    def actions(self):
        raise NotImplementedError

    def state_shapes(self):
        H = self.H
        return [(n, (1,) if n == "n" else (H,)) for n in self.state_names]

    def weight_shapes(self):
        raise NotImplementedError

    def decision_weights(self):
        """{weight name: std multiplier} of the decision heads (the rest are
        cells, uniform(-1/sqrt(H), 1/sqrt(H)) like PyTorch)."""
        return {}

    def decision_biases(self):
        """{weight name: bias vector} that makes every action happen."""
        return {}

    def init_state(self):
        return tuple(torch.zeros(s) for _, s in self.state_shapes())

    def prepare(self, query):
        """Per-run values computed once before the loop."""
        return None

    # one step
    def decide(self, ctx, pos, x, st, classes):
        """(action, amount, margin)"""
        raise NotImplementedError

    def region(self, k, ctx, pos, x, st):
        """The new state of action k, or None (an empty region)."""
        raise NotImplementedError

    # helpers
    def lstm(self, p, x, h, c):
        w = self.w
        return lstm_cell(x, h, c, w[p + ".w_ih"], w[p + ".w_hh"], w[p + ".b"])

    def gru(self, p, x, h):
        w = self.w
        return gru_cell(x, h, w[p + ".w_ih"], w[p + ".w_hh"], w[p + ".b_ih"], w[p + ".b_hh"])

    def rnn(self, p, x, h):
        w = self.w
        return rnn_cell(x, h, w[p + ".w_ih"], w[p + ".w_hh"], w[p + ".b"])

    def lin(self, p, v):
        return torch.mv(self.w[p], v)


class LSTMJump(Method):
    cell = "lstm"
    state_names = ("h", "c", "n")

    def actions(self):
        return [Action("read"), Action("jump"), Action("stop")]

    def weight_shapes(self):
        K = self.cfg.max_jump
        return cell_weights("cell", "lstm", self.D, self.H) + [
            ("jump.w", (K + 1, self.H)), ("jump.b", (K + 1,))]

    def decision_weights(self):
        return {"jump.w": 10.0}

    def decision_biases(self):
        K = self.cfg.max_jump
        return {"jump.b": np.array([-0.1] + [0.5 * (j == 1) + 0.1 * (j == K)
                                             for j in range(1, K + 1)], np.float32)}

    def decide(self, ctx, pos, x, st, classes):
        h, c, n = st
        if float(n[0]) < self.cfg.read:
            return 0, 0, math.inf
        j, m = argmax_margin(self.lin("jump.w", h) + self.w["jump.b"])
        return (2, 0, m) if j == 0 else (1, j, m)

    def region(self, k, ctx, pos, x, st):
        h, c, n = st
        if k == 0:
            h2, c2 = self.lstm("cell", x, h, c)
            return h2, c2, n + 1
        if k == 1:
            return h, c, torch.zeros(1)
        return None


class SkipRNN(Method):
    cell = "gru"
    state_names = ("h",)

    def actions(self):
        return [Action("read"), Action("skip")]

    def weight_shapes(self):
        return cell_weights("cell", "gru", self.D, self.H) + [
            ("gate.w_h", (1, self.H)), ("gate.w_x", (1, self.D)), ("gate.b", (1,))]

    def decision_weights(self):
        return {"gate.w_h": 3.0, "gate.w_x": 1.5}

    def decision_biases(self):
        return {"gate.b": np.array([0.3], np.float32)}

    def decide(self, ctx, pos, x, st, classes):
        (h,) = st
        z = self.lin("gate.w_h", h) + self.lin("gate.w_x", x) + self.w["gate.b"]
        upd, m = gate(z)
        return (0 if upd else 1), 0, m

    def region(self, k, ctx, pos, x, st):
        if k == 0:
            return (self.gru("cell", x, st[0]),)
        return None


class ReasoNet(Method):
    cell = "gru"
    state_names = ("h",)

    def actions(self):
        return [Action("read"), Action("stop")]

    def weight_shapes(self):
        return cell_weights("cell", "gru", self.D, self.H) + [
            ("term.w", (1, self.H)), ("term.b", (1,))]

    def decision_weights(self):
        return {"term.w": 6.0}

    def decision_biases(self):
        return {"term.b": np.array([-0.8], np.float32)}

    def decide(self, ctx, pos, x, st, classes):
        z = self.lin("term.w", st[0]) + self.w["term.b"]
        stop, m = gate(z)
        return (1 if stop else 0), 0, m

    def region(self, k, ctx, pos, x, st):
        if k == 0:
            return (self.gru("cell", x, st[0]),)
        return None


class Jumper(Method):
    cell = "gru"
    state_names = ("h",)
    uses_classes = True

    def actions(self):
        return [Action("read"), Action("stop")]

    def weight_shapes(self):
        return cell_weights("cell", "gru", self.D, self.H) + [
            ("stop.w", (1, self.H)), ("stop.b", (1,))]

    def decision_weights(self):
        return {"stop.w": 6.0}

    def decision_biases(self):
        return {"stop.b": np.array([0.0], np.float32)}

    def decide(self, ctx, pos, x, st, classes):
        z = self.lin("stop.w", st[0]) + self.w["stop.b"]
        if int(classes[pos]) not in SENTENCE_ENDS:
            return 0, 0, math.inf
        stop, m = gate(z)
        return (1 if stop else 0), 0, m

    def region(self, k, ctx, pos, x, st):
        # read and stop both read the token (stop: the sentence's last one)
        return (self.gru("cell", x, st[0]),)


class RIM(Method):
    cell = "rnn"
    state_names = ("h",)

    def actions(self):
        return [Action("read"), Action("skip"), Action("stop")]

    def logits(self):
        return 4 if self.cfg.bad_action else 3

    def weight_shapes(self):
        L = self.logits()
        return cell_weights("cell", "rnn", self.D, self.H) + [
            ("act.w_h", (L, self.H)), ("act.w_x", (L, self.D)), ("act.b", (L,))]

    def decision_weights(self):
        return {"act.w_h": 2.0, "act.w_x": 1.0}

    def decision_biases(self):
        b = [1.2, 0.2, -1.3] + ([-2.4] if self.cfg.bad_action else [])
        return {"act.b": np.array(b, np.float32)}

    def decide(self, ctx, pos, x, st, classes):
        (h,) = st
        j, m = argmax_margin(self.lin("act.w_h", h) + self.lin("act.w_x", x) + self.w["act.b"])
        return j, 0, m

    def region(self, k, ctx, pos, x, st):
        if k == 0:
            return (self.rnn("cell", x, st[0]),)
        return None


class Yu2018(Method):
    cell = "lstm"
    state_names = ("h", "c")

    def actions(self):
        return [Action("read"), Action("reread"), Action("jump"), Action("stop")]

    def weight_shapes(self):
        L = 3 + self.cfg.max_jump
        return cell_weights("cell", "lstm", self.D, self.H) + [
            ("act.w_h", (L, self.H)), ("act.w_x", (L, self.D)), ("act.b", (L,))]

    def decision_weights(self):
        return {"act.w_h": 3.0, "act.w_x": 1.0}

    def decision_biases(self):
        K = self.cfg.max_jump
        return {"act.b": np.array([1.4, 0.1, -0.9] + [-0.4] * K, np.float32)}

    def decide(self, ctx, pos, x, st, classes):
        h, c = st
        j, m = argmax_margin(self.lin("act.w_h", h) + self.lin("act.w_x", x) + self.w["act.b"])
        if j <= 1:
            return j, 0, m          # read, reread
        if j == 2:
            return 3, 0, m          # stop
        return 2, j - 3, m          # jump by j - 3 (0 moves 1)

    def region(self, k, ctx, pos, x, st):
        if k in (0, 1):
            return self.lstm("cell", x, *st)
        return None


class LSTMShuttle(Method):
    cell = "lstm"
    state_names = ("h", "c", "n")

    def actions(self):
        return [Action("read"), Action("shuttle")]

    def weight_shapes(self):
        K = self.cfg.max_jump
        return cell_weights("cell", "lstm", self.D, self.H) + [
            ("shuttle.w", (2 * K + 1, self.H)), ("shuttle.b", (2 * K + 1,))]

    def decision_weights(self):
        return {"shuttle.w": 6.0}

    def decision_biases(self):
        K = self.cfg.max_jump
        b = [0.25 * (o > 0) - 0.1 * abs(o) for o in range(-K, K + 1)]
        return {"shuttle.b": np.array(b, np.float32)}

    def decide(self, ctx, pos, x, st, classes):
        h, c, n = st
        if float(n[0]) < self.cfg.read:
            return 0, 0, math.inf
        j, m = argmax_margin(self.lin("shuttle.w", h) + self.w["shuttle.b"])
        return 1, j - self.cfg.max_jump, m

    def region(self, k, ctx, pos, x, st):
        h, c, n = st
        h2, c2 = self.lstm("cell", x, h, c)
        return (h2, c2, n + 1) if k == 0 else (h2, c2, torch.zeros(1))


class StructuralJump(Method):
    cell = "lstm"
    state_names = ("h", "c")
    uses_classes = True

    def actions(self):
        return [Action("read"), Action("jump_to", SEPARATORS), Action("jump_to", SENTENCE_ENDS),
                Action("jump_to")]

    def weight_shapes(self):
        return cell_weights("cell", "lstm", self.D, self.H) + [
            ("act.w_h", (4, self.H)), ("act.w_x", (4, self.D)), ("act.b", (4,))]

    def decision_weights(self):
        return {"act.w_h": 2.0, "act.w_x": 1.0}

    def decision_biases(self):
        return {"act.b": np.array([1.6, 0.2, -0.2, -1.9], np.float32)}

    def decide(self, ctx, pos, x, st, classes):
        h, c = st
        j, m = argmax_margin(self.lin("act.w_h", h) + self.lin("act.w_x", x) + self.w["act.b"])
        return j, 0, m

    def region(self, k, ctx, pos, x, st):
        if k == 0:
            return self.lstm("cell", x, *st)
        return None


class VCRNN(Method):
    cell = "rnn"
    state_names = ("h",)

    def actions(self):
        return [Action("partial")]

    def weight_shapes(self):
        return cell_weights("cell", "rnn", self.D, self.H) + [
            ("sched.w_h", (1, self.H)), ("sched.w_x", (1, self.D)), ("sched.b", (1,))]

    def decision_weights(self):
        return {"sched.w_h": 3.0, "sched.w_x": 1.5}

    def decision_biases(self):
        return {"sched.b": np.array([0.5], np.float32)}

    def mask(self, x, h):
        """(e [H] 0/1 float32, margin): e_i = i < m H, m = sigmoid(...)."""
        z = self.lin("sched.w_h", h) + self.lin("sched.w_x", x) + self.w["sched.b"]
        mh = sigmoid(z) * float(self.H)
        e = (torch.arange(self.H, dtype=torch.float32) < mh).float()
        v = float(mh[0])
        return e, min(abs(v - i) for i in range(self.H))

    def decide(self, ctx, pos, x, st, classes):
        return 0, 0, self.mask(x, st[0])[1]

    def region(self, k, ctx, pos, x, st):
        (h,) = st
        e, _ = self.mask(x, h)
        self.step_info = int(e.sum())    # the units updated (run_skim records it)
        w = self.w
        u = torch.tanh(torch.mv(w["cell.w_ih"], x) + torch.mv(w["cell.w_hh"], e * h) + w["cell.b"])
        return (e * u + (1 - e) * h,)


class SkimRNN(Method):
    cell = "lstm"
    state_names = ("h", "c")

    def actions(self):
        return [Action("read"), Action("skim")]

    def weight_shapes(self):
        return (cell_weights("big", "lstm", self.D, self.H)
                + cell_weights("small", "lstm", self.D, self.cfg.small)
                + [("act.w_x", (2, self.D)), ("act.w_h", (2, self.H)), ("act.b", (2,))])

    def decision_weights(self):
        return {"act.w_x": 1.0, "act.w_h": 2.0}

    def decision_biases(self):
        return {"act.b": np.array([0.0, 0.3], np.float32)}

    def decide(self, ctx, pos, x, st, classes):
        h, c = st
        j, m = argmax_margin(self.lin("act.w_x", x) + self.lin("act.w_h", h) + self.w["act.b"])
        return j, 0, m

    def region(self, k, ctx, pos, x, st):
        h, c = st
        if k == 0:
            return self.lstm("big", x, h, c)
        s = self.cfg.small
        hs, cs = self.lstm("small", x, h[:s], c[:s])
        return torch.cat([hs, h[s:]]), torch.cat([cs, c[s:]])


class HMRNN(Method):
    cell = "rnn"
    state_names = ("h1", "h2")

    def actions(self):
        return [Action("read"), Action("skip"), Action("flush")]

    def weight_shapes(self):
        return (cell_weights("lower", "rnn", self.D, self.H)
                + cell_weights("upper", "rnn", self.H, self.H)
                + [("act.w_h", (3, self.H)), ("act.w_u", (3, self.H)), ("act.w_x", (3, self.D)),
                   ("act.b", (3,))])

    def decision_weights(self):
        return {"act.w_h": 2.0, "act.w_u": 1.0, "act.w_x": 1.0}

    def decision_biases(self):
        return {"act.b": np.array([1.0, -0.3, 0.0], np.float32)}

    def decide(self, ctx, pos, x, st, classes):
        h1, h2 = st
        j, m = argmax_margin(self.lin("act.w_h", h1) + self.lin("act.w_u", h2)
                             + self.lin("act.w_x", x) + self.w["act.b"])
        return j, 0, m

    def region(self, k, ctx, pos, x, st):
        h1, h2 = st
        if k == 0:
            return self.rnn("lower", x, h1), h2
        if k == 1:
            return None
        return self.rnn("lower", x, torch.zeros(self.H)), self.rnn("upper", h1, h2)


class FHRNN(Method):
    cell = "lstm"
    state_names = ("h1", "c1", "h2")
    uses_query = True

    def actions(self):
        return [Action("read"), Action("upper")]

    def weight_shapes(self):
        return (cell_weights("lower", "lstm", self.D, self.H)
                + cell_weights("upper", "gru", self.H, self.H)
                + [("gate.wq", (self.H, self.D)), ("gate.w_x", (1, self.D)), ("gate.b", (1,))])

    def decision_weights(self):
        return {"gate.wq": 4.0, "gate.w_x": 1.0}

    def decision_biases(self):
        return {"gate.b": np.array([-0.4], np.float32)}

    def prepare(self, query):
        return self.lin("gate.wq", query)

    def decide(self, ctx, pos, x, st, classes):
        h1, c1, h2 = st
        z = torch.mv(ctx.reshape(1, -1), h1) + self.lin("gate.w_x", x) + self.w["gate.b"]
        up, m = gate(z)
        return (1 if up else 0), 0, m

    def region(self, k, ctx, pos, x, st):
        h1, c1, h2 = st
        n1, m1 = self.lstm("lower", x, h1, c1)
        if k == 0:
            return n1, m1, h2
        return n1, m1, self.gru("upper", n1, h2)


CLASSES = {"lstm_jump": LSTMJump, "skip_rnn": SkipRNN, "reasonet": ReasoNet, "jumper": Jumper,
           "rim": RIM, "yu2018": Yu2018, "lstm_shuttle": LSTMShuttle,
           "structural_jump": StructuralJump, "vcrnn": VCRNN, "skim_rnn": SkimRNN,
           "hm_rnn": HMRNN, "fhrnn": FHRNN}


def make_method(cfg, weights=None):
    return CLASSES[cfg.method](cfg, weights)


# ---------------------------------------------------------------------------
# The loop


class SkimResult:
    """state: tuple of float32 numpy arrays; trace: [(pos, action, amount)];
    steps; termination (TERMINATIONS); final_pos; margin (the smallest
    decision margin); error (a SkipError or None); info: per step, what the
    method's region noted (VCRNN: the units updated) or None."""

    def __init__(self, state, trace, termination, final_pos, margins, error=None, info=()):
        self.state, self.trace, self.termination = state, trace, termination
        self.info = list(info)
        self.steps, self.final_pos, self.error = len(trace), final_pos, error
        self.margins = margins
        self.margin = min(margins) if margins else math.inf


def run_skim(method, x, classes=None, query=None):
    """Runs the loop of docs/skim.md on one sequence x [S, ...]."""
    S, B = method.S, method.B
    acts = method.actions()
    xs = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    q = None if query is None else torch.from_numpy(np.ascontiguousarray(query, np.float32))
    with torch.no_grad():
        ctx = method.prepare(q)
        box = [method.init_state()]
        margins, info = [], []

        def decide(pos):
            a, amount, margin = method.decide(ctx, pos, xs[pos], box[0], classes)
            margins.append(margin)
            return a, amount

        def apply(a, pos):
            method.step_info = None
            new = method.region(a, ctx, pos, xs[pos], box[0])
            info.append(method.step_info)
            if new is not None:
                box[0] = tuple(new)
        trace, termination, pos, err = run_loop(S, B, acts, decide, apply, classes)
        error = None if err is None else SkipError(err[0], err[1], err[2], len(acts))
        state = box[0]
    st = tuple(s.numpy().astype(np.float32) for s in state)
    return SkimResult(st, trace, termination, pos, margins, error, info)


# ---------------------------------------------------------------------------
# Self-check


def self_check():
    ok = True
    g = torch.Generator().manual_seed(0)
    D, H = 8, 16
    x, h, c = torch.randn(D, generator=g), torch.randn(H, generator=g), torch.randn(H, generator=g)
    with torch.no_grad():
        m = torch.nn.LSTMCell(D, H)
        ref_h, ref_c = m(x[None], (h[None], c[None]))
        got_h, got_c = lstm_cell(x, h, c, m.weight_ih, m.weight_hh, m.bias_ih + m.bias_hh)
        e1 = max(float((got_h - ref_h[0]).abs().max()), float((got_c - ref_c[0]).abs().max()))
        m = torch.nn.GRUCell(D, H)
        e2 = float((gru_cell(x, h, m.weight_ih, m.weight_hh, m.bias_ih, m.bias_hh)
                    - m(x[None], h[None])[0]).abs().max())
        m = torch.nn.RNNCell(D, H)
        e3 = float((rnn_cell(x, h, m.weight_ih, m.weight_hh, m.bias_ih + m.bias_hh)
                    - m(x[None], h[None])[0]).abs().max())
    for name, e in (("LSTMCell", e1), ("GRUCell", e2), ("RNNCell", e3)):
        good = e < 1e-6
        ok &= good
        print(f"self-check: cell vs torch.nn.{name}: max error {e:.2g} {'OK' if good else 'DIFFER'}")

    # positions
    cls = [WORD, COMMA, WORD, PERIOD, WORD, COLON, WORD]
    S = len(cls)
    cases = [(Action("read"), 2, 0, 3), (Action("jump"), 2, 0, 3), (Action("jump"), 2, 3, 5),
             (Action("shuttle"), 2, -3, -1), (Action("shuttle"), 2, 0, 2),
             (Action("jump_to", SEPARATORS), 1, 0, 5), (Action("jump_to", SEPARATORS), 5, 0, S),
             (Action("jump_to", SENTENCE_ENDS), 0, 0, 3), (Action("jump_to"), 0, 0, S),
             (Action("reread"), 4, 0, 4)]
    bad = [(a, p, k, want, next_position(a, p, k, cls, S)) for a, p, k, want in cases
           if next_position(a, p, k, cls, S) != want]
    print("self-check: next positions: " + ("OK" if not bad else f"WRONG {bad}"))
    ok &= not bad
    print(f"self-check: {'PASSED' if ok else 'FAILED'}")
    return ok


if __name__ == "__main__":
    if "--self-check" in sys.argv:
        sys.exit(0 if self_check() else 1)
    print(__doc__)
