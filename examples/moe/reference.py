#!/usr/bin/env python3
"""Mixture-of-experts routing (dyn.route) in PyTorch eager: the reference.

Two things live here:

1. `route(cfg, gate)`: the token-to-expert assignment of docs/moe.md,
   exactly (bit for bit): every strategy (top_k, switch, gshard with the
   SplitMix64 numbers, base with the float64 auction, k_top1,
   dense_to_sparse, hash mod E or with a table, random), capacity with local
   groups and both priorities, no capacity, dropless, renormalize. It returns
   a `Routing`: per token and choice the expert, the combine weight and
   whether it was kept, and the statistics the compiled library reports
   through `dynrt_model_run_ex` (the `assignment` array, `tokens_per_expert`,
   `dropped`).

       from reference import RouteConfig, route
       cfg = RouteConfig("switch", num_experts=8, capacity_factor=1.25)
       r = route(cfg, logits)                # logits: [T, E] float32
       r.assignment, r.tokens_per_expert, r.dropped

   `MoEModel` is the layer (and the transformer block) that
   examples/moe/make_moe.py writes as MLIR: y[t] = sum over the kept choices
   j of w[t, j] * expert_e(x[t]), with the expert the FFN
   gelu(x W1[e] + b1[e]) W2[e] + b2[e] (erf GELU), computed in float64 from
   the float32 weights.

2. `EagerMoE`: the natural PyTorch implementation of an MoE layer, the way
   Hugging Face Switch Transformers / Mixtral write it (softmax gate,
   `topk`, a Python loop over the experts with index_select / index_add_,
   expert capacity for top-1 / top-2 as Switch and GShard apply it): the
   baseline of WORKLOADS.md W1 (bench/w1_bench.py).

Conventions of the decisions (docs/moe.md, "Assignment, exactly"):
scores are float32 tensors and every + - * / below is one float32 operation
in the order written; sums over experts (the softmax denominator) and over a
token's choices (renormalize) run sequentially in index order; exp is the C
library's expf, as runtime/Route.cpp calls it (DYNCC_MOE_EXP=rounded: the
correctly rounded float32 exp instead, see EXP_MODE); dense_to_sparse
compares q > threshold in float32 (the threshold rounded to float32). Choices
are ordered by the logits with a stable descending sort (ties: the lower
expert index first). The BASE auction and the gshard keep test are float64;
SplitMix64 is Python integer arithmetic masked to 64 bits.

Command line: `reference.py --self-check` runs the checks of the assignment
on random and adversarial gates (see make_moe.py --self-check for the
independent scalar derivation).
"""

import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "encoder"))

# torch_eager sets OPENBLAS_CORETYPE before torch loads (see WORKLOADS.md).
from torch_eager import load_safetensors  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

STRATEGIES = ("top_k", "switch", "gshard", "base", "k_top1", "dense_to_sparse", "hash", "random")
PRIORITIES = ("token_order", "score")
MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
BASE_EPS = 1e-3
LN_EPS = 1e-5


class RouteError(Exception):
    """A run that fails (hash: an id outside the table, or a table entry
    outside [0, E)); `token` is the position, `value` the offending value."""

    def __init__(self, token, value, what):
        super().__init__(f"token {token}: {what} {value}")
        self.token, self.value = token, value


# ---------------------------------------------------------------------------
# Configuration


def expert_capacity(T, E, K, factor, groups=1):
    """C = ceil(f*K*T / (E*G)) clamped to [1, T/G], as the compiler computes
    it (see RouteConfig.capacity)."""
    per_group = T // groups
    slots = factor * float(K) * float(per_group) / float(E)
    return int(min(max(math.ceil(slots - 1e-9), 1), per_group))


class RouteConfig:
    """The attributes of one dyn.route op (docs/dialect.md), with the
    verifier's rules that matter for the semantics."""

    def __init__(self, strategy, num_experts, k=None, capacity_factor=None, priority=None,
                 groups=None, seed=None, temperature=None, threshold=None,
                 renormalize=False, dropless_block=None, table=None):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}")
        self.strategy = strategy
        self.num_experts = E = int(num_experts)
        self.k = None if k is None else int(k)
        self.capacity_factor = None if capacity_factor is None else float(capacity_factor)
        self.priority = priority
        self.groups = None if groups is None else int(groups)
        self.seed = None if seed is None else int(seed)
        self.temperature = None if temperature is None else float(temperature)
        self.threshold = None if threshold is None else float(threshold)
        self.renormalize = bool(renormalize)
        self.dropless_block = None if dropless_block is None else int(dropless_block)
        self.table = None if table is None else np.asarray(table, np.int64).reshape(-1)
        if E < 1:
            raise ValueError("num_experts must be >= 1")
        if strategy in ("top_k", "k_top1"):
            if self.k is None or not 1 <= self.k <= E:
                raise ValueError(f"{strategy} needs 1 <= k <= num_experts")
            if strategy == "k_top1" and E % self.k:
                raise ValueError("k_top1: k must divide num_experts")
        elif self.k is not None and not (strategy == "switch" and self.k == 1):
            raise ValueError(f"k does not apply to {strategy}")
        if strategy == "gshard" and E < 2:
            raise ValueError("gshard needs num_experts >= 2")
        if strategy == "dense_to_sparse":
            if self.temperature is None or self.threshold is None:
                raise ValueError("dense_to_sparse needs temperature and threshold")
        if strategy == "random" and self.seed is None:
            raise ValueError("random needs a seed")
        if self.capacity_factor is not None and self.dropless_block is not None:
            raise ValueError("capacity_factor and dropless_block exclude each other")
        if self.priority is not None:
            if self.priority not in PRIORITIES:
                raise ValueError(f"unknown priority {self.priority!r}")
            if self.capacity_factor is None:
                raise ValueError("priority only applies with a capacity_factor")
        if strategy == "base" and (self.capacity_factor is not None or self.dropless_block is not None):
            raise ValueError("base: no capacity_factor / dropless_block")
        if self.table is not None and strategy != "hash":
            raise ValueError("table only applies to hash")

    # -- derived sizes (docs/moe.md, "Slots") --------------------------------

    @property
    def per_token(self):
        """K: the choices a token has at most."""
        return {"top_k": self.k, "k_top1": self.k, "gshard": 2,
                "dense_to_sparse": self.num_experts}.get(self.strategy, 1)

    @property
    def num_groups(self):
        return self.groups or 1

    def capacity(self, T):
        """C per expert and group (0: no capacity): ceil(f*K*T / (E*G)) clamped
        to [1, T/G], computed as the compiler does (dialect/DynUtils.cpp
        computeCapacity): ceil(f * K * (T/G) / E - 1e-9) in float64, the
        epsilon keeping products like 1.1 * 100 / 10 = 11.000000000000002 at
        11 (docs/moe.md gives the formula without saying how it is rounded)."""
        if self.capacity_factor is None:
            return 0
        return expert_capacity(T, self.num_experts, self.per_token, self.capacity_factor,
                               self.num_groups)

    def slots(self, T):
        """S, the rows of the dispatch buffer."""
        E = self.num_experts
        if self.strategy == "base":
            return T
        if self.capacity_factor is not None:
            return E * self.num_groups * self.capacity(T)
        if self.dropless_block is not None:
            b = self.dropless_block
            return self.num_blocks(T) * b
        return E * T

    def num_blocks(self, T):
        if self.dropless_block is None:
            return 0
        b = self.dropless_block
        return -(-(T * self.per_token + self.num_experts * (b - 1)) // b)

    # -- text ------------------------------------------------------------------

    def to_dict(self):
        d = dict(strategy=self.strategy, num_experts=self.num_experts)
        for key in ("k", "capacity_factor", "priority", "groups", "seed", "temperature",
                    "threshold", "dropless_block"):
            v = getattr(self, key)
            if v is not None:
                d[key] = v
        if self.renormalize:
            d["renormalize"] = True
        if self.table is not None:
            d["table_size"] = int(self.table.size)
        return d

    def to_json(self):
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d, table=None):
        d = dict(d)
        d.pop("table_size", None)
        return cls(table=table, **d)

    def __repr__(self):
        return "RouteConfig(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"


# ---------------------------------------------------------------------------
# float32 scoring helpers


def _load_expf():
    try:
        import ctypes
        import ctypes.util
        libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        f = libm.expf
        f.restype, f.argtypes = ctypes.c_float, [ctypes.c_float]
        return f
    except (OSError, AttributeError):
        return None


# exp of the scores: "libm" is the C library's expf, what the runtime's
# std::exp(float) calls (runtime/Route.cpp), so that weights are bit-identical
# on the same machine; "rounded" is the correctly rounded float32 exp (float64
# exp rounded once). glibc's expf differs from the correctly rounded result
# for about 0.07% of arguments, by one ulp. docs/moe.md does not say which.
_EXPF = _load_expf()
EXP_MODE = os.environ.get("DYNCC_MOE_EXP", "libm" if _EXPF else "rounded")


def exp32(t):
    """float32 exp of a float32 tensor (see EXP_MODE)."""
    t = t.float()
    if EXP_MODE == "libm" and _EXPF is not None:
        flat = t.reshape(-1).tolist()
        f = _EXPF
        return torch.tensor([f(v) for v in flat], dtype=torch.float32).reshape(t.shape)
    return torch.exp(t.double()).float()


def exp32_scalar(v):
    """The same exp on one float32 value (a numpy float32)."""
    if EXP_MODE == "libm" and _EXPF is not None:
        return np.float32(_EXPF(float(v)))
    return np.float32(np.exp(np.float64(v)))


def softmax32(z):
    """softmax over the last dimension of a float32 [T, n] tensor:
    exp(z - max z) / sum exp(z - max z), the sum sequential in index order."""
    z = z.float()
    m = z.max(dim=1, keepdim=True).values
    e = exp32(z - m)
    s = e[:, 0].clone()
    for c in range(1, z.shape[1]):
        s = s + e[:, c]
    return e / s[:, None]


def sigmoid32(z):
    """1 / (1 + exp(-z)) in float32."""
    one = torch.ones((), dtype=torch.float32)
    return one / (one + exp32(-z.float()))


def check_scores(z, what="gate logit", first=0, row0=0):
    """The runtime fails a run whose scores softmax cannot take: a NaN or
    +inf score, or a token whose scores are all -inf (runtime/Route.cpp;
    docs/moe.md does not say). z: [T, n] float32."""
    bad = torch.isnan(z) | (z == math.inf)
    allneg = (z == -math.inf).all(dim=1)
    if bad.any() or allneg.any():
        t = int(torch.nonzero(bad.any(dim=1) | allneg)[0])   # the first token
        if bad[t].any():
            e = int(torch.nonzero(bad[t])[0])
            raise RouteError(t + row0, float(z[t, e]), f"{what} (expert {first + e}) is")
        raise RouteError(t + row0, -math.inf, f"{what} is -inf for every expert from {first}:")


def order_by_logits(l):
    """[T, n] -> [T, n] int64: expert indices by descending logit, ties to
    the lower index (a stable sort)."""
    return torch.sort(l, dim=1, descending=True, stable=True).indices


# ---------------------------------------------------------------------------
# Random numbers (gshard, random)


def splitmix64(seed, t):
    """z(t) of docs/moe.md: SplitMix64 of the seed and the token index."""
    z = ((seed & MASK64) + (t + 1) * GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def uniform(seed, T):
    """u(t) = (z(t) >> 40) * 2^-24 for t < T, float64 [T]."""
    return torch.tensor([(splitmix64(seed, t) >> 40) * 2.0 ** -24 for t in range(T)],
                        dtype=torch.float64)


def random_experts(seed, T, E):
    """((z(t) >> 40) * E) >> 24 for t < T, int64 [T]."""
    return torch.tensor([((splitmix64(seed, t) >> 40) * E) >> 24 for t in range(T)],
                        dtype=torch.int64)


# ---------------------------------------------------------------------------
# BASE: Bertsekas' auction, float64, exactly the pseudo-code of docs/moe.md


def base_auction(logits, eps=BASE_EPS, return_prices=False):
    """[T, E] float32 logits -> [T] int64 experts, exactly T/E tokens each."""
    s = np.asarray(logits, np.float32).astype(np.float64).tolist()  # Python floats = C doubles
    T = len(s)
    E = len(s[0]) if T else 0
    if T % E:
        raise ValueError(f"base needs T ({T}) divisible by E ({E})")
    cap = T // E
    price = [0.0] * E
    holders = [[] for _ in range(E)]          # (token, bid), in insertion order
    queue = list(range(T))
    head = 0
    while head < len(queue):
        t = queue[head]
        head += 1
        row = s[t]
        v = [row[e] - price[e] for e in range(E)]
        e1 = 0
        for e in range(1, E):
            if v[e] > v[e1]:
                e1 = e
        v1 = v[e1]
        if E == 1:
            v2 = v1
        else:
            v2 = None
            for e in range(E):
                if e != e1 and (v2 is None or v[e] > v2):
                    v2 = v[e]
        bid = price[e1] + (v1 - v2) + eps
        hs = holders[e1]
        hs.append((t, bid))
        if len(hs) > cap:
            # the lowest bid; on ties the highest token index
            worst = 0
            for i in range(1, len(hs)):
                ti, bi = hs[i]
                tw, bw = hs[worst]
                if bi < bw or (bi == bw and ti > tw):
                    worst = i
            evicted, _ = hs.pop(worst)
            queue.append(evicted)
        if len(hs) == cap:
            price[e1] = min(b for _, b in hs)
    expert = [-1] * T
    for e in range(E):
        for t, _ in holders[e]:
            expert[t] = e
    out = torch.tensor(expert, dtype=torch.int64)
    if return_prices:
        return out, price
    return out


# ---------------------------------------------------------------------------
# The assignment


class Routing:
    """The decisions of one dyn.route run.

    expert [T, K] int64: the expert of choice j of token t, -1 when the token
        has no choice j;
    weight [T, K] float32: its combine weight (0 when there is no choice);
    kept   [T, K] bool: the choice exists and was not dropped over capacity;
    capacity: C per expert and group (0: none).
    """

    def __init__(self, cfg, expert, weight, kept, capacity):
        self.cfg = cfg
        self.expert, self.weight, self.kept, self.capacity = expert, weight, kept, capacity

    @property
    def valid(self):
        return self.expert >= 0

    @property
    def dropped_mask(self):
        return self.valid & ~self.kept

    @property
    def assignment(self):
        """[T*K] int32: e kept, -2-e dropped, -1 no choice (docs/moe.md)."""
        a = torch.where(self.kept, self.expert,
                        torch.where(self.valid, -2 - self.expert, torch.full_like(self.expert, -1)))
        return a.reshape(-1).to(torch.int32).numpy()

    @property
    def tokens_per_expert(self):
        e = self.expert[self.kept]
        return torch.bincount(e, minlength=self.cfg.num_experts).numpy().astype(np.int64)

    @property
    def dropped(self):
        return int(self.dropped_mask.sum())

    def summary(self):
        tpe = self.tokens_per_expert
        return (f"tokens per expert {tpe.tolist()}, dropped {self.dropped}, "
                f"no-choice {int((~self.valid).sum())}")


def _choices(cfg, gate):
    """(expert [T, K] int64 with -1, weight [T, K] float32) before capacity."""
    s, E = cfg.strategy, cfg.num_experts
    K = cfg.per_token
    if s == "hash":
        ids = torch.as_tensor(np.asarray(gate)).reshape(-1).to(torch.int64)
        T = ids.shape[0]
        if cfg.table is not None:
            V = cfg.table.size
            expert = torch.empty(T, dtype=torch.int64)
            for t in range(T):
                i = int(ids[t])
                if not 0 <= i < V:
                    raise RouteError(t, i, f"hash id outside the table [0, {V}):")
                e = int(cfg.table[i])
                if not 0 <= e < E:
                    raise RouteError(t, e, f"hash table entry table[{i}] outside [0, {E}):")
                expert[t] = e
        else:
            expert = torch.remainder(ids, E)          # non-negative
        return expert[:, None], torch.ones(T, 1, dtype=torch.float32)

    l = torch.as_tensor(np.asarray(gate, np.float32))
    T = l.shape[0]
    if l.shape[1] != E:
        raise ValueError(f"gate has {l.shape[1]} columns, num_experts = {E}")
    rows = torch.arange(T)

    if s in ("top_k", "switch", "gshard"):
        check_scores(l)
    elif s == "k_top1":
        # checked token by token, each token's prototypes in order
        n = E // cfg.k
        for t in range(T):
            for j in range(cfg.k):
                check_scores(l[t:t + 1, j * n:(j + 1) * n], first=j * n, row0=t)
    elif s == "base" and not torch.isfinite(l).all():
        t, e = (int(v) for v in torch.nonzero(~torch.isfinite(l))[0])
        raise RouteError(t, float(l[t, e]), f"gate logit (expert {e}) is not finite (base):")

    if s in ("top_k", "switch"):
        k = cfg.per_token
        expert = order_by_logits(l)[:, :k].contiguous()
        weight = softmax32(l).gather(1, expert)
    elif s == "gshard":
        top = order_by_logits(l)[:, :2]
        p = softmax32(l)
        p1, p2 = p[rows, top[:, 0]], p[rows, top[:, 1]]
        sum12 = p1 + p2
        g1, g2 = p1 / sum12, p2 / sum12
        keep2 = uniform(cfg.seed or 0, T) < 2.0 * g2.double()
        e2 = torch.where(keep2, top[:, 1], torch.full_like(top[:, 1], -1))
        w2 = torch.where(keep2, g2, torch.zeros_like(g2))
        expert = torch.stack([top[:, 0], e2], 1)
        weight = torch.stack([g1, w2], 1)
    elif s == "base":
        e = base_auction(l.numpy())
        expert = e[:, None]
        weight = sigmoid32(l[rows, e])[:, None]
    elif s == "k_top1":
        n = E // cfg.k
        es, ws = [], []
        for j in range(cfg.k):
            blk = l[:, j * n:(j + 1) * n]
            i = order_by_logits(blk)[:, 0]
            es.append(j * n + i)
            ws.append(softmax32(blk)[rows, i])
        expert, weight = torch.stack(es, 1), torch.stack(ws, 1)
    elif s == "dense_to_sparse":
        z = l / torch.tensor(np.float32(cfg.temperature))
        check_scores(z, "gate logit / temperature")
        q = softmax32(z)
        # compared in float32, the threshold rounded to float32
        above = q > torch.tensor(np.float32(cfg.threshold))
        expert = torch.full((T, K), -1, dtype=torch.int64)
        weight = torch.zeros(T, K, dtype=torch.float32)
        pos = torch.zeros(T, dtype=torch.int64)
        for e in range(E):
            m = above[:, e]
            expert[rows[m], pos[m]] = e
            weight[rows[m], pos[m]] = q[m, e]
            pos = pos + m.to(torch.int64)
    elif s == "random":
        expert = random_experts(cfg.seed, T, E)[:, None]
        weight = torch.ones(T, 1, dtype=torch.float32)
    else:  # pragma: no cover
        raise AssertionError(s)

    if cfg.renormalize and s != "gshard":
        valid = expert >= 0
        tot = torch.zeros(T, dtype=torch.float32)
        for j in range(expert.shape[1]):
            tot = torch.where(valid[:, j], tot + weight[:, j], tot)
        # a token whose weights do not sum to > 0 keeps them (runtime/Route.cpp)
        has = tot > 0
        safe = torch.where(has, tot, torch.ones_like(tot))
        weight = torch.where(valid & has[:, None], weight / safe[:, None], weight)
        weight = torch.where(valid, weight, torch.zeros_like(weight))
    return expert.contiguous(), weight.contiguous()


def _apply_capacity(cfg, expert, weight):
    """kept [T, K]: slots are handed out choice-rank-major; within a rank the
    tokens of a group in token order or by descending weight (ties: token
    index); a choice whose expert already holds C tokens of the group is
    dropped."""
    T, K = expert.shape
    E = cfg.num_experts
    valid = expert >= 0
    C = cfg.capacity(T)
    if C == 0:
        return valid.clone(), 0
    G = cfg.num_groups
    Tg = T // G
    kept = torch.zeros_like(valid)
    count = torch.zeros(G, E, dtype=torch.int64)
    for j in range(K):
        for g in range(G):
            ts = torch.arange(g * Tg, (g + 1) * Tg)
            ts = ts[valid[ts, j]]
            if ts.numel() == 0:
                continue
            if cfg.priority == "score":
                # ts is ascending, so a stable sort breaks ties by token index
                ts = ts[torch.sort(weight[ts, j], descending=True, stable=True).indices]
            e = expert[ts, j]
            onehot = F.one_hot(e, E)
            before = (torch.cumsum(onehot, 0) - onehot).gather(1, e[:, None])[:, 0]
            keep = count[g, e] + before < C
            kept[ts[keep], j] = True
            count[g] += torch.bincount(e[keep], minlength=E)
    return kept, C


def route(cfg, gate):
    """The assignment of docs/moe.md. gate: [T, E] float32 logits, or [T]
    integer token ids for hash. Raises RouteError where the run fails."""
    expert, weight = _choices(cfg, gate)
    kept, C = _apply_capacity(cfg, expert, weight)
    weight = torch.where(expert >= 0, weight, torch.zeros_like(weight))
    return Routing(cfg, expert, weight, kept, C)


# ---------------------------------------------------------------------------
# The layer and the block (make_moe.py's model)


def gelu(x):
    return F.gelu(x)  # erf form


def expert_ffn(x, w1, b1, w2, b2):
    """gelu(x W1 + b1) W2 + b2, weights [in, out]."""
    return gelu(x @ w1 + b1) @ w2 + b2


def moe_combine(x, routing, w1, b1, w2, b2, dtype=torch.float64):
    """y[t] = sum over the kept choices j of w[t, j] * expert_e(x[t]), with the
    expert parameters [E, ...] (float32 arrays or tensors), in `dtype`."""
    x = torch.as_tensor(x).to(dtype)
    W1, B1, W2, B2 = (torch.as_tensor(np.asarray(a)).to(dtype) for a in (w1, b1, w2, b2))
    y = torch.zeros(x.shape[0], W2.shape[2], dtype=dtype)
    for e in range(routing.cfg.num_experts):
        t_idx, j_idx = torch.nonzero(routing.kept & (routing.expert == e), as_tuple=True)
        if t_idx.numel() == 0:
            continue
        out = expert_ffn(x[t_idx], W1[e], B1[e], W2[e], B2[e])
        y.index_add_(0, t_idx, out * routing.weight[t_idx, j_idx].to(dtype)[:, None])
    return y


def layer_norm(x, gamma, beta):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + LN_EPS) * gamma + beta


def attention(x, t, heads):
    """Multi-head self-attention of examples/encoder (weights [in, out])."""
    S, D = x.shape
    dh = D // heads

    def lin(n):
        return x @ t[f"attn.w{n}"] + t[f"attn.b{n}"]

    def split(a):
        return a.reshape(S, heads, dh).transpose(0, 1)

    q, k, v = split(lin("q")), split(lin("k")), split(lin("v"))
    p = torch.softmax(q @ k.transpose(-1, -2) * (1.0 / math.sqrt(dh)), dim=-1)
    ctx = (p @ v).transpose(0, 1).reshape(S, D)
    return ctx @ t["attn.wo"] + t["attn.bo"]


class MoEModel:
    """The model make_moe.py writes, in float64 from the float32 weights.

    layer  (block=False): y = MoE(x)
    block  (block=True):  h = x [+ Attention(LN_a(x)) with attention=True];
                          y = h + MoE(LN(h))
    The gate is the model input `gate` (gate_input=True; for hash the token
    ids) or the linear layer logits = u gate.w + gate.b inside the model.
    """

    def __init__(self, tensors, cfg, block=False, attention=False, heads=1, gate_input=False):
        self.cfg = cfg
        self.t = {k: torch.as_tensor(np.asarray(v)).double() if np.asarray(v).dtype.kind == "f"
                  else torch.as_tensor(np.asarray(v)) for k, v in tensors.items()}
        self.raw = tensors
        self.block, self.attention, self.heads = block, attention, heads
        self.gate_input = gate_input or cfg.strategy == "hash"

    @classmethod
    def from_files(cls, safetensors_path):
        """The model and its config from make_moe.py's safetensors metadata."""
        tensors, meta = load_safetensors(safetensors_path)
        cfg = RouteConfig.from_dict(json.loads(meta["route"]), table=tensors.get("hash.table"))
        return cls(tensors, cfg, block=meta.get("block") == "1",
                   attention=meta.get("attention") == "1", heads=int(meta.get("heads", 1)),
                   gate_input=meta.get("gate_input") == "1"), meta

    def pre_route(self, x):
        """(h: the residual stream, u: the routed tokens), float64."""
        x = torch.as_tensor(np.asarray(x)).double()
        t = self.t
        if not self.block:
            return x, x
        h = x
        if self.attention:
            h = h + attention(layer_norm(x, t["ln_a.gamma"], t["ln_a.beta"]), t, self.heads)
        return h, layer_norm(h, t["ln.gamma"], t["ln.beta"])

    def gate_logits(self, u):
        """The gate linear layer's logits, float64 [T, E]."""
        return u @ self.t["gate.w"] + self.t["gate.b"]

    def forward(self, x, gate=None, decide_logits=None):
        """Returns (y float64 [T, D], logits float32 [T, E] or None, Routing).

        gate: the model's gate input (gate_input models: logits or ids).
        decide_logits: route on these float32 logits instead of the
        reference's own (the logits a compiled gate layer produced), while
        everything else is computed here."""
        h, u = self.pre_route(x)
        if self.gate_input:
            logits = None
            g = gate
        else:
            logits = self.gate_logits(u).float()
            g = logits if decide_logits is None else decide_logits
        r = route(self.cfg, g if self.cfg.strategy == "hash" else np.asarray(g, np.float32))
        t = self.t
        y = moe_combine(u, r, t["experts.w1"], t["experts.b1"], t["experts.w2"], t["experts.b2"])
        if self.block:
            y = h + y
        return y, logits, r


# ---------------------------------------------------------------------------
# The eager baseline (W1): Hugging Face Switch / Mixtral style


class EagerMoE(nn.Module):
    """An MoE layer the way Hugging Face writes it (SwitchTransformersSparseMLP,
    MixtralSparseMoeBlock): a linear router, softmax, `topk`, then a Python
    loop over the experts that gathers each expert's tokens (index_select),
    runs its FFN (nn.Linear, GELU) and scatters the weighted result back
    (index_add_). With capacity_factor, top-1 (Switch) and top-k (GShard's
    top-2) keep at most C = ceil(f*k*T/E) tokens per expert (expert_capacity),
    rank-major in token order (first choices first), as Switch and GShard
    compute it with a cumulative sum over the one-hot expert mask; dropped
    choices contribute zero. Renormalize (Mixtral's norm_topk_prob) divides
    the top-k weights by their sum. forward(x, logits=None): the router's
    logits, or the given ones."""

    def __init__(self, tensors, top_k=1, capacity_factor=None, renormalize=False):
        super().__init__()
        w1 = np.asarray(tensors["experts.w1"], np.float32)
        E, D, Fd = w1.shape
        self.E, self.k, self.cf, self.renormalize = E, top_k, capacity_factor, renormalize
        self.router = nn.Linear(D, E, bias="gate.b" in tensors)
        self.experts = nn.ModuleList()
        with torch.no_grad():
            if "gate.w" in tensors:
                self.router.weight.copy_(torch.from_numpy(np.asarray(tensors["gate.w"], np.float32)).t())
            if "gate.b" in tensors:
                self.router.bias.copy_(torch.from_numpy(np.asarray(tensors["gate.b"], np.float32)))
            for e in range(E):
                fc1, fc2 = nn.Linear(D, Fd), nn.Linear(Fd, D)
                fc1.weight.copy_(torch.from_numpy(w1[e]).t())
                fc1.bias.copy_(torch.from_numpy(np.asarray(tensors["experts.b1"][e], np.float32)))
                fc2.weight.copy_(torch.from_numpy(np.asarray(tensors["experts.w2"][e], np.float32)).t())
                fc2.bias.copy_(torch.from_numpy(np.asarray(tensors["experts.b2"][e], np.float32)))
                self.experts.append(nn.Sequential(fc1, nn.GELU(), fc2))

    def forward(self, x, logits=None):
        T, D = x.shape
        if logits is None:
            logits = self.router(x)
        probs = torch.softmax(logits, dim=-1, dtype=torch.float32)
        weights, selected = torch.topk(probs, self.k, dim=-1)            # [T, k]
        if self.renormalize:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        # expert_mask[e, j, t]: token t's choice j is expert e
        expert_mask = F.one_hot(selected, num_classes=self.E).permute(2, 1, 0)
        if self.cf is not None:
            C = expert_capacity(T, self.E, self.k, self.cf)
            # position of each (choice, token) in its expert's buffer, rank-major
            flat = expert_mask.reshape(self.E, self.k * T)
            position = torch.cumsum(flat, dim=1) * flat
            expert_mask = (flat * (position <= C)).reshape(self.E, self.k, T)
        y = torch.zeros_like(x)
        for e in range(self.E):
            idx, top_x = torch.where(expert_mask[e])
            if top_x.numel() == 0:
                continue
            h = torch.index_select(x, 0, top_x)
            out = self.experts[e](h) * weights[top_x, idx, None]
            y.index_add_(0, top_x, out.to(x.dtype))
        return y


# ---------------------------------------------------------------------------
# Self-check of the assignment (invariants); make_moe.py --self-check adds an
# independent scalar derivation.


def check_invariants(cfg, r, T):
    """Returns a list of failed invariants of a Routing."""
    fails = []
    K, E = cfg.per_token, cfg.num_experts
    if tuple(r.expert.shape) != (T, K):
        fails.append(f"expert shape {tuple(r.expert.shape)} != {(T, K)}")
        return fails
    a = r.assignment.reshape(T, K)
    ex = r.expert.numpy()
    kept = r.kept.numpy()
    v = ex >= 0
    if kept[~v].any() or not (a[kept] == ex[kept]).all() or not (a[~v] == -1).all() \
            or not (a[v & ~kept] == -2 - ex[v & ~kept]).all():
        fails.append("assignment encoding")
    if ((ex < -1) | (ex >= E)).any():
        fails.append("expert out of range")
    for t in range(T):
        es = [e for e in ex[t] if e >= 0]
        if len(set(es)) != len(es):
            fails.append(f"token {t} visits an expert twice: {ex[t].tolist()}")
            break
    # choices are packed: no valid choice after an absent one, except gshard's
    # second choice
    if cfg.strategy in ("dense_to_sparse",):
        v = ex >= 0
        if (v[:, 1:] & ~v[:, :-1]).any():
            fails.append("dense_to_sparse choices not packed")
    if cfg.strategy in ("top_k", "switch", "k_top1", "base", "hash", "random") and (ex < 0).any():
        fails.append("a token without a choice")
    if int(r.tokens_per_expert.sum()) + r.dropped != int((ex >= 0).sum()):
        fails.append("tokens_per_expert + dropped != choices")
    C = cfg.capacity(T)
    if C:
        G = cfg.num_groups
        Tg = T // G
        for g in range(G):
            blk_e, blk_k = ex[g * Tg:(g + 1) * Tg], kept[g * Tg:(g + 1) * Tg]
            cnt = np.bincount(blk_e[blk_k], minlength=E)
            if (cnt > C).any():
                fails.append(f"group {g}: capacity {C} exceeded: {cnt.tolist()}")
            # an expert drops a choice only when full
            for e in range(E):
                if ((blk_e == e) & ~blk_k).any() and cnt[e] != C:
                    fails.append(f"group {g}: expert {e} drops with {cnt[e]} < C = {C}")
    elif r.dropped:
        fails.append(f"{r.dropped} dropped without capacity")
    if cfg.strategy == "base" and not (r.tokens_per_expert == T // E).all():
        fails.append(f"base not balanced: {r.tokens_per_expert.tolist()}")
    w = r.weight.numpy()
    if not np.isfinite(w).all() or (w[ex >= 0] < 0).any() or (w[ex < 0] != 0).any():
        fails.append("weights")
    if cfg.renormalize or cfg.strategy == "gshard":
        s = np.where(ex >= 0, w, 0).astype(np.float64).sum(1)
        has = (ex >= 0).any(1)
        if cfg.strategy != "gshard" and np.abs(s[has] - 1).max(initial=0) > 1e-5:
            fails.append("renormalized weights do not sum to 1")
    return fails


def self_check(verbose=True):
    ok = True

    def report(what, fails):
        nonlocal ok
        ok &= not fails
        if verbose:
            print(f"self-check: {what}: " + ("OK" if not fails else f"{len(fails)} FAILURES"))
            for f in fails[:10]:
                print("   ", f)

    # SplitMix64 against the published first outputs of seed 0.
    want = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    report("SplitMix64 reference vectors",
           [f"z({t}) = {splitmix64(0, t):#x} != {w:#x}" for t, w in enumerate(want)
            if splitmix64(0, t) != w])
    # The stable descending sort breaks ties towards the lower index, also
    # between -0.0 and 0.0.
    l = torch.tensor([[1.0, 3.0, 3.0, -0.0, 0.0, 3.0]])
    report("stable descending order (ties to the lower index)",
           [] if order_by_logits(l)[0].tolist() == [1, 2, 5, 0, 3, 4] else
           [f"order {order_by_logits(l)[0].tolist()}"])

    gen = torch.Generator().manual_seed(11)
    fails = []
    configs = [
        RouteConfig("top_k", 8, k=2), RouteConfig("top_k", 8, k=3, renormalize=True),
        RouteConfig("switch", 8, capacity_factor=1.0),
        RouteConfig("switch", 8, capacity_factor=1.0, priority="score", groups=2),
        RouteConfig("top_k", 8, k=2, capacity_factor=1.25, priority="score"),
        RouteConfig("gshard", 8, capacity_factor=2.0, groups=2, seed=42),
        RouteConfig("gshard", 8, seed=-5),
        RouteConfig("base", 8), RouteConfig("base", 1), RouteConfig("base", 4),
        RouteConfig("k_top1", 8, k=2, capacity_factor=1.0),
        RouteConfig("k_top1", 8, k=4, renormalize=True, dropless_block=4),
        RouteConfig("dense_to_sparse", 8, temperature=0.5, threshold=0.125),
        RouteConfig("dense_to_sparse", 8, temperature=2.0, threshold=0.0, capacity_factor=0.5),
        RouteConfig("hash", 8), RouteConfig("hash", 8, capacity_factor=1.0),
        RouteConfig("hash", 8, table=np.arange(100) % 8),
        RouteConfig("random", 8, seed=7), RouteConfig("random", 5, seed=2**63 + 3, capacity_factor=1.5),
    ]
    T = 64
    for cfg in configs:
        for case in range(12):
            if cfg.strategy == "hash":
                V = cfg.table.size if cfg.table is not None else 1 << 20
                g = torch.randint(0 if cfg.table is not None else -V, V, (T,), generator=gen).to(torch.int32)
            else:
                g = torch.randn(T, cfg.num_experts, generator=gen) * (1 + case % 3)
                if case % 4 == 1:
                    g[:, 0] += 3.0           # skew: expert 0 overflows
                if case % 4 == 2:
                    g = g.round()            # ties
            r = route(cfg, g.numpy())
            for f in check_invariants(cfg, r, T):
                fails.append(f"{cfg} case {case}: {f}")
            r2 = route(cfg, g.numpy())
            if not np.array_equal(r.assignment, r2.assignment):
                fails.append(f"{cfg} case {case}: not reproducible")
    report(f"invariants of {len(configs)} configurations x 12 gates (encoding, capacity never "
           "exceeded, drops only when full, nothing dropped without capacity, BASE balanced, "
           "renormalized sums, reproducible)", fails)

    # random: uniform over the experts; hash mod: id mod E
    e = random_experts(123, 80000, 8)
    cnt = torch.bincount(e, minlength=8).double()
    dev = float((cnt / 10000 - 1).abs().max())
    ids = np.array([-(2**31), -17, -1, 0, 1, 7, 8, 2**31 - 1], np.int32)
    hm = route(RouteConfig("hash", 8), ids).expert[:, 0].tolist()
    report("random uniform (80000 draws, max deviation %.3f) and hash id mod E" % dev,
           ([] if dev < 0.05 else ["random not uniform"])
           + ([] if hm == [int(i) % 8 for i in ids] else [f"hash mod {hm}"]))

    # hash errors name the token and the value
    fails = []
    try:
        route(RouteConfig("hash", 4, table=[0, 1, 2, 3]), np.array([0, 1, 4, 2], np.int32))
        fails.append("id outside the table accepted")
    except RouteError as err:
        if (err.token, err.value) != (2, 4):
            fails.append(f"error names token {err.token} value {err.value}")
    report("hash table: an id outside [0, V) fails naming the token and the id", fails)

    # scores softmax cannot take fail the run (as runtime/Route.cpp does)
    fails = []
    for cfg, bad in ((RouteConfig("top_k", 4, k=2), [[0, 1, 2, 3], [0, math.nan, 1, 2]]),
                     (RouteConfig("switch", 4), [[0, 1, 2, 3], [0, 1, math.inf, 2]]),
                     (RouteConfig("gshard", 4, seed=1), [[0, 1, 2, 3], [-math.inf] * 4]),
                     (RouteConfig("k_top1", 4, k=2), [[0, 1, 2, 3], [0, 1, -math.inf, -math.inf]]),
                     (RouteConfig("base", 2), [[0, 1], [-math.inf, 1]])):
        try:
            route(cfg, np.array(bad, np.float32))
            fails.append(f"{cfg}: {bad[1]} accepted")
        except RouteError as err:
            if err.token != 1:
                fails.append(f"{cfg}: error names token {err.token}")
    ok_inf = route(RouteConfig("top_k", 4, k=2), np.array([[0, -math.inf, 2, 1]], np.float32))
    if ok_inf.expert[0].tolist() != [2, 3] or float(ok_inf.weight[0].sum()) > 1.0 + 1e-6:
        fails.append("a -inf logit among finite ones")
    report("NaN / +inf logits, all -inf tokens fail the run naming the token; -inf is allowed",
           fails)

    # BASE: eps-complementary slackness, and optimal within T*eps on tiny
    # instances (brute force over all balanced assignments)
    import itertools
    fails = []
    for case in range(40):
        Tn, En = (4, 2) if case % 2 else (6, 3)
        s = (torch.randn(Tn, En, generator=gen) * (0.5 + case % 4)).numpy()
        if case % 5 == 0:
            s = np.round(s)
        s = s.astype(np.float32)
        ex, price = base_auction(s, return_prices=True)
        sd = s.astype(np.float64)
        for t in range(Tn):
            v = sd[t] - np.array(price)
            if v[ex[t]] < v.max() - BASE_EPS - 1e-12:
                fails.append(f"eps-CS violated, case {case} token {t}")
        best = -np.inf
        cap = Tn // En
        for perm in set(itertools.permutations([e for e in range(En) for _ in range(cap)])):
            best = max(best, sum(sd[t, perm[t]] for t in range(Tn)))
        got = sum(sd[t, ex[t]] for t in range(Tn))
        if got < best - Tn * BASE_EPS - 1e-9:
            fails.append(f"case {case}: auction {got} < optimum {best} - T*eps")
    report("BASE auction: eps-complementary slackness and optimal within T*eps (40 tiny instances)",
           fails)
    return ok


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--self-check", action="store_true", help="check the assignment's invariants")
    a = ap.parse_args()
    if a.self_check:
        ok = self_check()
        print("self-check: " + ("PASSED" if ok else "FAILED"))
        sys.exit(0 if ok else 1)
    ap.print_help()


if __name__ == "__main__":
    main()
