"""The exit criteria of dyn.exit_if (docs/early-exit.md), exactly.

`Criterion` is what the compiled library decides at each exit point, in
float32, bit for bit: use `crit.start(B)`, then `crit.step(state, l, logits,
score)` at the exit points l = 1 .. L-1 in order. `dyncc.nn.EarlyExit` is the
PyTorch module built on it; the constructors `Entropy`, `MaxProb`,
`Patience`, `Votes`, `LearnedScore` and `PerClass` name the runtime
parameter each criterion's threshold becomes.
"""

import math

import numpy as np
import torch

CRITERIA = ("entropy", "max_prob", "patience", "votes", "learned_score", "per_class")

# ---------------------------------------------------------------------------
# The decisions, in float32, exactly as docs/early-exit.md says.
#
# Every value below is a float32 tensor and every + - * / is one float32
# operation, in the order written. Sums over classes run sequentially in
# class order (((t_0 + t_1) + t_2) + ...). exp and log are correctly rounded
# float32 functions: computed in float64 and rounded once to float32 (torch's
# own float32 exp/log are faithful, not correctly rounded, and may differ by
# one ulp from another implementation). Thresholds are runtime parameters that
# the compiled library holds as float32; they are rounded to float32 here too
# and compared in float32.


def exp32(t):
    return torch.exp(t.double()).float()


def log32(t):
    return torch.log(t.double()).float()


def f32(v):
    """A scalar parameter as a float32 0-d tensor."""
    return torch.tensor(np.float32(v), dtype=torch.float32)


def has_nan(z):
    """[B, C] -> [B] bool: the sample's logits contain a NaN."""
    return torch.isnan(z).any(dim=1)


def first_argmax(z):
    """[B, C] -> [B] int64: the first maximal index; -1 ("no class") where
    the logits contain a NaN."""
    best = torch.zeros(z.shape[0], dtype=torch.int64)
    bv = z[:, 0]
    for c in range(1, z.shape[1]):
        gt = z[:, c] > bv
        best = torch.where(gt, torch.full_like(best, c), best)
        bv = torch.where(gt, z[:, c], bv)
    return torch.where(has_nan(z), torch.full_like(best, -1), best)


def softmax32(z):
    """softmax(z)_c = exp(z_c - max z) / sum_j exp(z_j - max z), [B, C]
    float32 -> list of C [B] tensors."""
    C = z.shape[1]
    m = z[:, 0]
    for c in range(1, C):
        m = torch.maximum(m, z[:, c])      # propagates NaN
    e = [exp32(z[:, c] - m) for c in range(C)]
    s = e[0]
    for c in range(1, C):
        s = s + e[c]
    return [e[c] / s for c in range(C)]


def entropy32(z):
    """H = -sum_c p_c log p_c, terms with p_c = 0 counting 0."""
    p = softmax32(z)
    acc = None
    for pc in p:
        t = torch.where(pc == 0, torch.zeros_like(pc), pc * log32(pc))
        acc = t if acc is None else acc + t
    return -acc


class Criterion:
    """One exit criterion of docs/early-exit.md with its parameters.

    Criterion("entropy", theta=0.3)
    Criterion("max_prob", theta=0.9, temperature=1.5)
    Criterion("patience", k=3)
    Criterion("votes", theta=4)
    Criterion("learned_score", theta=0.5)
    Criterion("per_class", thresholds=[0.9, 0.8])

    Use: state = crit.start(B); then for l = 1 .. L-1 in order
    exit, stat = crit.step(state, l, logits_l, score_l). `exit` [B] bool is
    whether the criterion holds at l (for every sample: the caller keeps the
    first exit); `stat` [B] is the value compared with the threshold
    (entropy H, max probability, patience counter n_l, largest vote count,
    score, probability of the predicted class).
    """

    def __init__(self, kind, theta=None, temperature=1.0, k=None, thresholds=None):
        if kind not in CRITERIA:
            raise ValueError(f"unknown criterion {kind!r}; one of {', '.join(CRITERIA)}")
        self.kind = kind
        self.temperature = float(temperature)
        if kind == "patience":
            if k is None:
                k = theta
            if k is None:
                raise ValueError("patience needs k")
            self.value = float(k)
        elif kind == "per_class":
            if thresholds is None:
                thresholds = theta
            if thresholds is None:
                raise ValueError("per_class needs thresholds")
            self.value = np.asarray(thresholds, dtype=np.float64).reshape(-1)
        else:
            if theta is None:
                raise ValueError(f"{kind} needs a threshold")
            self.value = float(theta)

    def __repr__(self):
        if self.kind == "max_prob":
            return f"max_prob(T={self.temperature:g}, theta={self.value:g})"
        if self.kind == "per_class":
            return "per_class(" + ", ".join(f"{v:g}" for v in self.value) + ")"
        name = {"patience": "k"}.get(self.kind, "theta")
        return f"{self.kind}({name}={self.value:g})"

    def with_value(self, value):
        """The same criterion with another threshold (k, or vector)."""
        if self.kind == "per_class":
            return Criterion(self.kind, thresholds=value, temperature=self.temperature)
        return Criterion(self.kind, theta=value, temperature=self.temperature)

    @classmethod
    def from_metadata(cls, meta, value=None):
        """From a dict of strings (criterion, temperature, threshold: the
        default, comma-separated for per_class), with an optional other
        threshold."""
        kind = meta["criterion"]
        if value is None:
            value = meta["threshold"]
        if isinstance(value, str):
            value = [float(v) for v in value.split(",")] if kind == "per_class" else float(value)
        return cls(kind, theta=value, temperature=float(meta.get("temperature", 1.0)))

    def start(self, batch):
        return {"n": torch.zeros(batch, dtype=torch.int64),
                "prev": torch.full((batch,), -1, dtype=torch.int64),
                "votes": None, "batch": batch}

    def step(self, state, l, logits, score=None):
        z = logits.detach().to(torch.float32)
        B, C = z.shape
        valid = ~has_nan(z)
        kind = self.kind
        if kind == "entropy":
            stat = entropy32(z)
            cond = stat < f32(self.value)
        elif kind == "max_prob":
            zt = z / f32(self.temperature)
            p = softmax32(zt)
            stat = p[0]
            for pc in p[1:]:
                stat = torch.maximum(stat, pc)
            cond = stat > f32(self.value)
        elif kind == "patience":
            a = first_argmax(z)
            same = (a >= 0) & (a == state["prev"])
            state["n"] = torch.where(same, state["n"] + 1, torch.zeros_like(state["n"]))
            state["prev"] = a
            stat = state["n"].to(torch.float32)
            cond = stat >= f32(self.value)
        elif kind == "votes":
            a = first_argmax(z)
            if state["votes"] is None:
                state["votes"] = torch.zeros(B, C, dtype=torch.int64)
            v = state["votes"]
            cast = a >= 0
            v[cast, a[cast]] += 1
            stat = v.max(dim=1).values.to(torch.float32)
            cond = stat > f32(self.value)
        elif kind == "learned_score":
            if score is None:
                raise ValueError("learned_score needs the score")
            s = score.detach().to(torch.float32).reshape(B)
            stat = s
            cond = s > f32(self.value)
            valid = valid & ~torch.isnan(s)
        elif kind == "per_class":
            if len(self.value) != C:
                raise ValueError(f"per_class has {len(self.value)} thresholds for {C} classes")
            a = first_argmax(z)
            p = torch.stack(softmax32(z), dim=1)                 # [B, C]
            ai = a.clamp(min=0)
            stat = p.gather(1, ai[:, None])[:, 0]
            th = torch.from_numpy(self.value.astype(np.float32))[ai]
            cond = stat > th
            valid = valid & (a >= 0)
        return cond & valid, stat




# ---------------------------------------------------------------------------
# Constructors and the MLIR attribute

PARAM_NAME = {"patience": "patience", "per_class": "class_thresholds"}


def _named(crit, param):
    crit.param = param or PARAM_NAME.get(crit.kind, "theta")
    if not crit.param.isidentifier():
        raise ValueError(f"runtime parameter name {crit.param!r} is not an identifier")
    return crit


def Entropy(theta, *, param=None):
    """DeeBERT, FastBERT: exit when H(softmax(logits)) < theta."""
    return _named(Criterion("entropy", theta=theta), param)


def MaxProb(threshold, temperature=1.0, *, param=None):
    """RightTool, CascadeBERT: exit when max softmax(logits / T) > threshold."""
    if not float(temperature) > 0:
        raise ValueError(f"MaxProb: temperature must be > 0, got {temperature}")
    return _named(Criterion("max_prob", theta=threshold, temperature=temperature), param)


def Patience(k, *, param=None):
    """PABEE: exit when the argmax stayed the same for k consecutive heads."""
    if int(k) != k or k < 1:
        raise ValueError(f"Patience: k must be an integer >= 1, got {k}")
    return _named(Criterion("patience", k=k), param)


def Votes(threshold, *, param=None):
    """Voting: exit when the most-voted class has more than `threshold` votes."""
    return _named(Criterion("votes", theta=threshold), param)


def LearnedScore(threshold, *, param=None):
    """BERxiT, CAT: exit when the score head's output passes `threshold`."""
    return _named(Criterion("learned_score", theta=threshold), param)


def PerClass(thresholds, *, param=None):
    """Early exit for ranking: exit when softmax(logits)[c] > thresholds[c],
    c = argmax."""
    return _named(Criterion("per_class", thresholds=thresholds), param)


def float_text(v):
    """A float as MLIR reads it (always a '.' before an exponent; inf)."""
    v = float(v)
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    t = repr(v)
    if "e" in t and "." not in t.split("e")[0]:
        m, e = t.split("e")
        t = f"{m}.0e{e}"
    return t


def param_text(kind, value):
    """The default of a #dyn.param: 0.3, inf, 3, [0.9, 0.8]."""
    def one(v):
        v = float(v)
        if kind in ("patience", "votes") and v.is_integer():
            return str(int(v))
        return float_text(v)
    if kind == "per_class":
        return "[" + ", ".join(one(v) for v in np.asarray(value).reshape(-1)) + "]"
    return one(value)


def criterion_attr(crit):
    """The criterion as a dyn.exit_if attribute, its threshold a runtime
    parameter named crit.param (default: theta, patience, class_thresholds)."""
    name = getattr(crit, "param", None) or PARAM_NAME.get(crit.kind, "theta")
    p = f'#dyn.param<"{name}" = {param_text(crit.kind, crit.value)}>'
    if crit.kind == "max_prob":
        return f"#dyn.max_prob<temperature = {float_text(crit.temperature)} : f64, threshold = {p}>"
    if crit.kind == "patience":
        return f"#dyn.patience<k = {p}>"
    if crit.kind == "per_class":
        return f"#dyn.per_class<thresholds = {p}>"
    return f"#dyn.{crit.kind}<threshold = {p}>"
