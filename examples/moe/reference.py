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

The assignment itself (`route`, `RouteConfig`, the float32 conventions of
docs/moe.md) is dyncc.nn.routing, re-exported here.

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


# The assignment lives in the dyncc package (one implementation, shared with
# dyncc.nn.MoE); re-exported here for the generators and tests.
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
from dyncc.nn.routing import (  # noqa: E402,F401
    BASE_EPS, EXP_MODE, GOLDEN, MASK64, PRIORITIES, STRATEGIES, RouteConfig, RouteError, Routing,
    base_auction, check_scores, exp32, exp32_scalar, expert_capacity, order_by_logits,
    random_experts, route, sigmoid32, softmax32, splitmix64, uniform)

LN_EPS = 1e-5



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
