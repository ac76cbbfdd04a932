#!/usr/bin/env python3
"""Differential fuzz of dyn.route's assignment: libdynrt's builtin
(runtime/Route.cpp, through test/moe/route_assign_driver.cpp) against the
PyTorch assignment of docs/moe.md (dyncc.nn.routing, what dyncc.nn.MoE
routes with), without the compiler. Random configurations of every strategy (k, capacity factors with
groups and both priorities, no capacity, dropless, renormalize, seeds over
the whole i64 range, hash tables) on random gates, gates with ties, with
-inf logits and with NaN (which both must reject), hash ids outside the
table. Compares exactly: the assignment array, tokens_per_expert, dropped,
and the kept pairs' combine weights bit for bit; for rejected gates, that
both reject and that the runtime's message names the token.

  fuzz_assign.py DRIVER [--seed S] [--configs N]
"""
import argparse
import os
import struct
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))

from dyncc.nn import routing  # noqa: E402
from dyncc.nn.routing import STRATEGIES, RouteConfig, RouteError, route  # noqa: E402


def config_doubles(cfg, T):
    """The DYNRT_ROUTE_CFG_* entries the compiler writes for cfg."""
    seed = (cfg.seed or 0) & ((1 << 64) - 1)
    return [0, STRATEGIES.index(cfg.strategy), T, cfg.num_experts, cfg.per_token, cfg.k or 0,
            cfg.capacity(T), cfg.num_groups, 1 if cfg.priority == "score" else 0,
            cfg.dropless_block or 0, seed & 0xFFFFFFFF, seed >> 32,
            cfg.temperature if cfg.temperature is not None else 1.0,
            cfg.threshold if cfg.threshold is not None else 0.0,
            int(cfg.renormalize), int(cfg.table is not None), cfg.slots(T), cfg.num_blocks(T)]


def run_driver(driver, cfg, gate, T):
    """(assignment, tokens_per_expert, dropped, weights) or the error message."""
    E, K = cfg.num_experts, cfg.per_token
    V = 0 if cfg.table is None else cfg.table.size
    data = struct.pack("<18d", *config_doubles(cfg, T)) + struct.pack("<4i", T, E, K, V)
    data += np.ascontiguousarray(gate, np.int32 if cfg.strategy == "hash" else np.float32).tobytes()
    if V:
        data += cfg.table.astype(np.int32).tobytes()
    out = subprocess.run([driver], input=data, capture_output=True, check=True).stdout
    if struct.unpack("<i", out[:4])[0] != 1:
        return out[4:].decode()
    o = 4
    a = np.frombuffer(out, np.int32, T * K, o)
    o += 4 * T * K
    tpe = np.frombuffer(out, np.uint64, E, o).astype(np.int64)
    o += 8 * E
    (dropped,) = struct.unpack("<Q", out[o:o + 8])
    w = np.frombuffer(out, np.float32, T * K, o + 8)
    return a, tpe, dropped, w


def random_config(rng):
    s = str(rng.choice(STRATEGIES))
    E = int(rng.choice([1, 2, 3, 4, 8, 16]))
    if s == "gshard" and E < 2:
        E = 4
    G = int(rng.choice([1, 1, 2, 4]))
    T = G * int(rng.integers(1, 40))
    if s == "base":
        T, G = E * int(rng.integers(1, 20)), 1
    kw = {}
    if s == "top_k":
        kw["k"] = int(rng.integers(1, E + 1))
    if s == "k_top1":
        kw["k"] = int(rng.choice([d for d in range(1, E + 1) if E % d == 0]))
    if s in ("gshard", "random"):
        kw["seed"] = int(rng.integers(-2 ** 63, 2 ** 63))
    if s == "dense_to_sparse":
        kw["temperature"] = float(rng.choice([0.3, 0.5, 0.7, 1.0, 2.0]))
        kw["threshold"] = float(rng.choice([0.0, 0.05, 0.1, 0.125, 0.3]))
    mode = int(rng.integers(0, 3)) if s != "base" else 0
    if mode == 1:
        kw["capacity_factor"] = float(rng.choice([0.1, 0.3, 0.5, 1.0, 1.1, 1.25, 2.0, 3.7]))
        kw["priority"] = str(rng.choice(["token_order", "score"]))
        kw["groups"] = G
    elif mode == 2:
        kw["dropless_block"] = int(rng.choice([1, 2, 8]))
    if s != "gshard" and rng.random() < 0.3:
        kw["renormalize"] = True
    if s == "hash" and rng.random() < 0.5:
        kw["table"] = rng.integers(0, E, 50)
    return RouteConfig(s, E, **kw), T


def random_gate(rng, cfg, T, c):
    E = cfg.num_experts
    if cfg.strategy == "hash":
        if cfg.table is not None:
            g = rng.integers(0, 50, T)
            if c == 3:
                g[rng.integers(0, T)] = int(rng.choice([-1, 50, 2 ** 31 - 1]))
        else:
            g = rng.integers(-2 ** 31, 2 ** 31, T)
        return g.astype(np.int32)
    g = (rng.standard_normal((T, E)) * rng.choice([0.01, 1, 10, 60])).astype(np.float32)
    if c == 1:
        g = np.round(g)                                   # ties
    elif c == 2 and cfg.strategy != "base":
        g[rng.random((T, E)) < 0.1] = -np.inf             # allowed, unless a whole row
    elif c == 3:
        g[rng.integers(0, T), rng.integers(0, E)] = rng.choice([np.nan, np.inf])
    return g


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("driver")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--configs", type=int, default=400)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    compared = rejected = 0
    fails = []
    for _ in range(a.configs):
        cfg, T = random_config(rng)
        for c in range(4):
            g = random_gate(rng, cfg, T, c)
            got = run_driver(a.driver, cfg, g, T)
            try:
                r = route(cfg, g)
            except RouteError as err:
                rejected += 1
                if not isinstance(got, str):
                    fails.append(f"{cfg} T={T} gate {c}: the reference rejects ({err}), "
                                 "the runtime accepts")
                elif f"{err.token}" not in got:
                    fails.append(f"{cfg} T={T} gate {c}: runtime message {got!r} does not "
                                 f"name token {err.token}")
                continue
            compared += 1
            if isinstance(got, str):
                fails.append(f"{cfg} T={T} gate {c}: the runtime rejects: {got}")
                continue
            asg, tpe, dropped, w = got
            want_w = np.where(r.kept.numpy(), r.weight.numpy(), 0).reshape(-1).astype(np.float32)
            if not (np.array_equal(asg, r.assignment) and np.array_equal(tpe, r.tokens_per_expert)
                    and dropped == r.dropped
                    and np.array_equal(w.view(np.int32), want_w.view(np.int32))):
                d = np.nonzero((asg != r.assignment) | (w.view(np.int32) != want_w.view(np.int32)))[0]
                p = int(d[0]) if len(d) else 0
                fails.append(f"{cfg} T={T} gate {c}: pair {p} (token {p // cfg.per_token}): "
                             f"runtime {int(asg[p])} w {float(w[p])!r}, reference "
                             f"{int(r.assignment[p])} w {float(want_w[p])!r}; dropped {dropped} "
                             f"vs {r.dropped}")
    for f in fails[:10]:
        print("  " + f)
    print(f"assign-fuzz (seed {a.seed}, exp {routing.EXP_MODE}): {compared - len(fails)}/{compared} "
          f"gates decided identically by the runtime and the reference, {rejected} rejected by "
          f"the reference" + (f" -- {len(fails)} FAILURES" if fails else ""))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
