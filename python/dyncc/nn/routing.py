"""The token-to-expert assignment of dyn.route (docs/moe.md), exactly.

`route(cfg, gate)` is what the runtime's route builtin (runtime/Route.cpp)
computes, bit for bit: every strategy (top_k, switch, gshard with the
SplitMix64 numbers, base with the float64 auction, k_top1, dense_to_sparse,
hash mod E or with a table, random), capacity with local groups and both
priorities, no capacity, dropless, renormalize. It returns a `Routing`: per
token and choice the expert, the combine weight and whether it was kept, and
the statistics the compiled library reports through `dynrt_model_run_ex`
(the `assignment` array, `tokens_per_expert`, `dropped`).

    from dyncc.nn.routing import RouteConfig, route
    cfg = RouteConfig("switch", num_experts=8, capacity_factor=1.25)
    r = route(cfg, logits)                # logits: [T, E] float32
    r.assignment, r.tokens_per_expert, r.dropped

`dyncc.nn.MoE` is the PyTorch module built on it.

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
"""

import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

STRATEGIES = ("top_k", "switch", "gshard", "base", "k_top1", "dense_to_sparse", "hash", "random")
PRIORITIES = ("token_order", "score")
MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
BASE_EPS = 1e-3


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

    def mlir_attrs(self):
        """The attribute dictionary of the dyn.route op."""
        from .exits import float_text
        a = [f"num_experts = {self.num_experts} : i64"]
        if self.k is not None:
            a.append(f"k = {self.k} : i64")
        if self.capacity_factor is not None:
            a.append(f"capacity_factor = {float_text(self.capacity_factor)} : f64")
        if self.priority is not None:
            a.append(f"priority = #dyn.priority<{self.priority}>")
        if self.groups is not None:
            a.append(f"groups = {self.groups} : i64")
        if self.dropless_block is not None:
            a.append(f"dropless_block = {self.dropless_block} : i64")
        if self.seed is not None:
            a.append(f"seed = {i64_text(self.seed)} : i64")
        if self.temperature is not None:
            a.append(f"temperature = {float_text(self.temperature)} : f64")
        if self.threshold is not None:
            a.append(f"threshold = {float_text(self.threshold)} : f64")
        if self.renormalize:
            a.append("renormalize")
        return "{" + ", ".join(a) + "}"


def i64_text(v):
    """An i64 attribute literal (seeds above 2^63 wrap, as C++ reads them)."""
    v = int(v) & ((1 << 64) - 1)
    return str(v - (1 << 64) if v >= 1 << 63 else v)


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
