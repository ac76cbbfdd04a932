#!/usr/bin/env python3
"""Self-check of dyncc.nn.routing, the assignment of docs/moe.md that
dyncc.nn.MoE routes with (ctest moe.routing-self-check): SplitMix64 against
its published vectors, the tie order of the stable descending sort, the
invariants of many configurations on random and adversarial gates
(encoding, capacity never exceeded, drops only when full, nothing dropped
without capacity, BASE balanced, renormalized sums, reproducible), random's
uniformity and hash mod E, hash-table and rejected-logit errors naming the
token, and the BASE auction's eps-complementary slackness and optimality
within T*eps on tiny instances (brute force). (Was examples/moe/reference.py
--self-check; the runtime's builtin is compared with it bit for bit by
fuzz_assign.py.)

  check_routing.py
"""
import math
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))

from dyncc.nn.routing import (BASE_EPS, RouteConfig, RouteError, base_auction,  # noqa: E402
                              order_by_logits, random_experts, route, splitmix64)


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
    ok = self_check()
    print("routing self-check: " + ("PASSED" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
