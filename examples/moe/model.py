#!/usr/bin/env python3
"""Mixture-of-experts models (dyn.route) built with dyncc.nn.MoE: the layers
and transformer blocks the MoE tests and W1 use, as PyTorch modules.

    from model import build_model, make_cases
    module, example = build_model(strategy="switch", capacity_factor=1.25)
    dyncc.export(module, example, "work/moe")       # work/moe.mlir, .safetensors
    for inputs in make_cases(module, 20): y = module(*inputs) ...

The model (every expert a GELU FFN gelu(t W1[e] + b1[e]) W2[e] + b2[e],
stacked weights [E, ...] through dyncc.nn.StackedExperts):

  layer  (block=False): y = MoE(x)
  block  (block=True):  h = x [+ Attention(LN_a(x)) with attention=True],
                        y = h + MoE(LN(h))  (pre-LN)

The gate is a linear layer inside the model (default; its logits are also
returned as a second output unless logits_output=False, so that a test can
route the eager module on the compiled logits: float32 GEMMs round
differently and can flip a near-tie), the logits as a model input
(gate_input=True: forward(x, gate)), or, for hash, the token ids
(forward(x, ids), int32 [T]). The eager module is the reference: after a
call, `module.moe.routing` holds its decisions (dyncc.nn.routing.Routing).

Also here: `build_ffn_only` (the experts alone on an [E, C, d] dispatch
buffer, batched GEMMs: W1's "experts alone"), `EagerMoE` (the Hugging Face
Switch / Mixtral way of writing the layer: W1's eager baseline),
`DenseDispatchMoE` (the same layer with static shapes, GShard / Switch
reference style: cumsum capacity, one-hot dispatch and combine tensors
[T, E, C], einsum, batched expert matmuls: W1's torch.compile peer;
`check_dense_dispatch` checks it against EagerMoE) and `weights_dict` (the
model's weights under the names EagerMoE takes).

Command line (writes NAME.mlir and NAME.safetensors via dyncc.export, only
NAME.safetensors with --weights-only (dyncc.export_weights: no torch-mlir), and
with --cases N the inputs NAME.x.npy [N, T, D], NAME.gate.npy [N, T, E] or
[N, T] ids, and NAME.expected.npz: the eager module's y, assignment
[N, T*K], tokens_per_expert [N, E], dropped [N], the outputs' names
(y[, logits]) and the route config as JSON):

    model.py --strategy switch --capacity-factor 1.25 --out-dir DIR --name NAME [--cases N]
    model.py --ffn-only --experts 8 --dim 512 --ffn 2048 --rows 80 --out-dir DIR --name NAME
    model.py --check-dense-dispatch [--tokens 64 --dim 32 --ffn 64 --experts 8]
"""
import argparse
import contextlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "python"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import dyncc  # noqa: E402
import dyncc.nn as dnn  # noqa: E402
from dyncc.nn.routing import PRIORITIES, STRATEGIES, expert_capacity  # noqa: E402


def gelu_ffn(x, w1, b1, w2, b2):
    """One expert: gelu(x W1 + b1) W2 + b2 (erf GELU), weights [in, out]."""
    return F.gelu(x @ w1 + b1) @ w2 + b2


class Attention(nn.Module):
    """Multi-head self-attention on one sequence [T, D] (no mask)."""

    def __init__(self, d, heads):
        super().__init__()
        self.h = heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x):
        T, D = x.shape
        dh = D // self.h

        def split(a):
            return a.reshape(T, self.h, dh).transpose(0, 1)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        p = torch.softmax(q @ k.transpose(-1, -2) * (1.0 / dh ** 0.5), dim=-1)
        return self.o((p @ v).transpose(0, 1).reshape(T, D))


class _MoEModel(nn.Module):
    """The layer or block around one dyncc.nn.MoE (`self.moe`)."""

    def __init__(self, spec, moe):
        super().__init__()
        self.spec = spec
        D = spec["dim"]
        if spec["block"] and spec["attention"]:
            self.ln_a = nn.LayerNorm(D)
            self.attn = Attention(D, spec["heads"])
        if spec["block"]:
            self.ln = nn.LayerNorm(D)
        self.moe = moe

    def _run(self, x, *gate):
        h = x
        if self.spec["block"]:
            if self.spec["attention"]:
                h = x + self.attn(self.ln_a(x))
            u = self.ln(h)
        else:
            u = x
        y = self.moe(u, *gate)
        if self.spec["block"]:
            y = h + y
        if self.spec["logits_output"]:
            return y, self.moe.gate(u)
        return y


class MoEModel(_MoEModel):
    """Gate inside: forward(x) -> y or (y, logits)."""

    def forward(self, x):
        return self._run(x)


class GateInputModel(_MoEModel):
    """The gate logits as an input: forward(x, gate) -> y."""

    def forward(self, x, gate):
        return self._run(x, gate)


class HashModel(_MoEModel):
    """Hash routing by token ids: forward(x, ids) -> y."""

    def forward(self, x, ids):
        return self._run(x, ids)


class _GivenLogits(nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, u):
        return self.logits


@contextlib.contextmanager
def route_on(module, logits):
    """Within the block, a gate-inside model's MoE routes on these logits
    ([T, E] float32: the compiled library's) instead of its gate's; the
    model's logits output returns them too."""
    old = module.moe.gate
    module.moe.gate = _GivenLogits(torch.as_tensor(np.asarray(logits, np.float32)))
    try:
        yield module
    finally:
        module.moe.gate = old


def make_table(V, E, seed):
    """A balanced hash table: V ids, each expert V/E of them (+-1), shuffled."""
    rng = np.random.default_rng(seed + 4242)
    return rng.permutation(np.arange(V) % E).astype(np.int64)


ROUTE_OPTIONS = ("k", "capacity_factor", "priority", "groups", "dropless_block", "seed",
                 "temperature", "threshold", "renormalize")


def build_model(strategy="switch", k=None, capacity_factor=None, priority=None, groups=None,
                dropless_block=None, seed=None, temperature=None, threshold=None,
                renormalize=False, hash_table=0, tokens=64, dim=32, ffn=64, experts=8,
                gate_input=False, block=False, attention=False, heads=4, logits_output=True,
                skew=2.0, logit_scale=1.0, data_seed=0):
    """(module, example_inputs): the MoE layer or block, weights drawn from
    data_seed (gate inside: skew * a ramp over the experts in the gate's
    bias, so that the favoured experts overflow their capacity).

    strategy and the route options are dyn.route's (docs/moe.md); hash_table
    V > 0: hash routes through a balanced table of V ids (else id mod E).
    gate_input: the logits are the model's second input; hash always takes
    the ids. logits_output (gate inside only): also return the gate's
    logits. The example inputs are case 0 of make_cases."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}")
    if hash_table and strategy != "hash":
        raise ValueError("hash_table only applies to strategy hash")
    if block and attention and dim % heads:
        raise ValueError("dim must be a multiple of heads")
    if groups and tokens % groups:
        raise ValueError(f"groups {groups} must divide tokens {tokens}")
    if strategy == "base" and tokens % experts:
        raise ValueError(f"base needs tokens {tokens} divisible by experts {experts}")
    hashed = strategy == "hash"
    gate_input = bool(gate_input) and not hashed
    gate_inside = not (gate_input or hashed)
    spec = dict(strategy=strategy, tokens=tokens, dim=dim, ffn=ffn, experts=experts,
                gate_input=gate_input, hash=hashed, block=bool(block),
                attention=bool(block and attention), heads=heads,
                logits_output=bool(logits_output and gate_inside), skew=skew,
                logit_scale=logit_scale, data_seed=data_seed, hash_table=hash_table)
    opts = dict(k=k, capacity_factor=capacity_factor, priority=priority, groups=groups,
                dropless_block=dropless_block, seed=seed, temperature=temperature,
                threshold=threshold)
    opts = {n: v for n, v in opts.items() if v is not None}
    if renormalize:
        opts["renormalize"] = True
    if hash_table:
        opts["table"] = make_table(hash_table, experts, data_seed)

    g = torch.Generator().manual_seed(data_seed)
    E, D, Fd = experts, dim, ffn

    def n(*shape, std=1.0, mean=0.0):
        return torch.randn(*shape, generator=g) * std + mean

    gate = None
    if gate_inside:
        gate = nn.Linear(D, E)
    stack = dnn.StackedExperts(gelu_ffn, w1=n(E, D, Fd, std=D ** -0.5),
                               b1=n(E, Fd, std=0.1 * D ** -0.5),
                               w2=n(E, Fd, D, std=Fd ** -0.5), b2=n(E, D, std=0.1 * Fd ** -0.5))
    moe = dnn.MoE(gate, stack, strategy, **opts)
    cls = HashModel if hashed else GateInputModel if gate_input else MoEModel
    module = cls(spec, moe)
    with torch.no_grad():
        if spec["attention"]:
            module.ln_a.weight.copy_(n(D, std=0.1, mean=1.0))
            module.ln_a.bias.copy_(n(D, std=0.1))
            for lin in (module.attn.q, module.attn.k, module.attn.v, module.attn.o):
                lin.weight.copy_(n(D, D, std=D ** -0.5))
                lin.bias.copy_(n(D, std=0.1 * D ** -0.5))
        if block:
            module.ln.weight.copy_(n(D, std=0.1, mean=1.0))
            module.ln.bias.copy_(n(D, std=0.1))
        if gate_inside:
            gate.weight.copy_(n(E, D, std=logit_scale * D ** -0.5))
            perm = torch.randperm(E, generator=g)
            ramp = torch.linspace(1.0, -1.0, E)[perm] if E > 1 else torch.zeros(1)
            gate.bias.copy_(skew * ramp + n(E, std=0.1))
    module.eval()
    return module, make_cases(module, 1)[0]


def make_cases(module, count, seed=None):
    """count input tuples (x [T, D] float32, and the gate input: logits
    [T, E] float32 or hash ids [T] int32). Gate logits: N(0, 1) *
    logit_scale; every 4th case (i % 4 == 1) skewed by skew * a ramp over a
    random permutation of the experts (the favoured experts overflow);
    every 5th (i % 5 == 2) rounded to integers (ties between experts and
    between tokens); i % 7 == 3 repeats a few rows (score-priority ties).
    Hash ids: over the table, or the whole int32 range with a few edge
    values (and small ids every 3rd case)."""
    s = module.spec
    T, D, E = s["tokens"], s["dim"], s["experts"]
    gen = torch.Generator().manual_seed((s["data_seed"] if seed is None else seed) + 1_000_003)
    cases = []
    for i in range(count):
        x = torch.randn(T, D, generator=gen)
        if s["hash"]:
            V = s["hash_table"]
            if V:
                ids = torch.randint(0, V, (T,), generator=gen)
            else:
                ids = torch.randint(-(2 ** 31), 2 ** 31 - 1, (T,), generator=gen)
                if i % 3 == 1:
                    ids = torch.randint(-50, 1000, (T,), generator=gen)
                if i == 0:
                    ids[:6] = torch.tensor([-(2 ** 31), 2 ** 31 - 1, -1, 0, E, -E])
            cases.append((x, ids.to(torch.int32)))
        elif s["gate_input"]:
            lg = torch.randn(T, E, generator=gen) * s["logit_scale"]
            if s["skew"] and i % 4 == 1:
                perm = torch.randperm(E, generator=gen)
                ramp = torch.linspace(1.0, -1.0, E)[perm] if E > 1 else torch.zeros(1)
                lg = lg + s["skew"] * ramp
            if i % 5 == 2:
                lg = lg.round()
            if i % 7 == 3 and T >= 8:
                src = torch.randint(0, T, (T // 4,), generator=gen)
                dst = torch.randint(0, T, (T // 4,), generator=gen)
                lg[dst] = lg[src]
            cases.append((x, lg))
        else:
            cases.append((x,))
    return cases


def run_eager(module, inputs):
    """(outputs as a list of float32 arrays, Routing) of one eager call."""
    with torch.no_grad():
        out = module(*inputs)
    outs = list(out) if isinstance(out, tuple) else [out]
    return [o.numpy() for o in outs], module.moe.routing


# ---------------------------------------------------------------------------
# The experts alone (W1) and the Hugging Face-style eager layer


class BatchedExperts(nn.Module):
    """The E GELU FFN experts on a dispatch buffer [E, C, D] -> [E, C, D],
    batched over the experts: bmm, bias, GELU, bmm, bias (the expert GEMMs
    of a MoE layer alone)."""

    def __init__(self, w1, b1, w2, b2):
        super().__init__()
        self.w1, self.b1 = nn.Parameter(w1.detach().clone()), nn.Parameter(b1.detach().clone())
        self.w2, self.b2 = nn.Parameter(w2.detach().clone()), nn.Parameter(b2.detach().clone())

    def forward(self, buf):
        h = F.gelu(torch.bmm(buf, self.w1) + self.b1[:, None, :])
        return torch.bmm(h, self.w2) + self.b2[:, None, :]


def build_ffn_only(module, rows_per_expert, seed=0):
    """(BatchedExperts with the model's expert weights, (buf,)): buf a random
    [E, rows_per_expert, D] float32 dispatch buffer."""
    ex = module.moe.experts
    ffn = BatchedExperts(ex.w1, ex.b1, ex.w2, ex.b2).eval()
    E, D = ex.w1.shape[0], ex.w1.shape[1]
    g = torch.Generator().manual_seed(seed)
    return ffn, (torch.randn(E, rows_per_expert, D, generator=g),)


def capacity_rows(module):
    """Rows of the capacity buffers, E * G * C (0 without capacity)."""
    cfg = module.moe.cfg
    return cfg.num_experts * cfg.num_groups * cfg.capacity(module.spec["tokens"])


def weights_dict(module):
    """The model's gate and expert weights as float32 numpy arrays under the
    names EagerMoE takes: gate.w [D, E], gate.b [E] (gate inside),
    experts.w1 [E, D, F], experts.b1 [E, F], experts.w2 [E, F, D],
    experts.b2 [E, D]."""
    t = {}
    if module.moe.gate is not None:
        t["gate.w"] = module.moe.gate.weight.detach().t().contiguous().numpy()
        t["gate.b"] = module.moe.gate.bias.detach().numpy()
    for n in ("w1", "b1", "w2", "b2"):
        t[f"experts.{n}"] = getattr(module.moe.experts, n).detach().numpy()
    return t


class EagerMoE(nn.Module):
    """An MoE layer the way Hugging Face writes it (SwitchTransformersSparseMLP,
    MixtralSparseMoeBlock): a linear router, softmax, `topk`, then a Python
    loop over the experts that gathers each expert's tokens (index_select),
    runs its FFN (nn.Linear, GELU) and scatters the weighted result back
    (index_add_). With capacity_factor, top-1 (Switch) and top-k (GShard's
    top-2) keep at most C = ceil(f*k*T/E) tokens per expert, rank-major in
    token order (first choices first), as Switch and GShard compute it with
    a cumulative sum over the one-hot expert mask; dropped choices
    contribute zero. Renormalize (Mixtral's norm_topk_prob) divides the
    top-k weights by their sum. forward(x, logits=None): the router's
    logits, or the given ones. tensors: weights_dict(module)."""

    def __init__(self, tensors, top_k=1, capacity_factor=None, renormalize=False):
        super().__init__()
        w1 = np.asarray(tensors["experts.w1"], np.float32)
        E, D, Fd = w1.shape
        self.E, self.k, self.cf, self.renormalize = E, top_k, capacity_factor, renormalize
        self.router = _router(tensors, D, E)
        self.experts = nn.ModuleList()
        with torch.no_grad():
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


def _router(tensors, D, E):
    """The gate nn.Linear(D, E) of EagerMoE and DenseDispatchMoE from
    weights_dict's "gate.w" [D, E] and "gate.b" (absent: logits are given)."""
    router = nn.Linear(D, E, bias="gate.b" in tensors)
    with torch.no_grad():
        if "gate.w" in tensors:
            router.weight.copy_(torch.from_numpy(np.asarray(tensors["gate.w"], np.float32)).t())
        if "gate.b" in tensors:
            router.bias.copy_(torch.from_numpy(np.asarray(tensors["gate.b"], np.float32)))
    return router


class DenseDispatchMoE(nn.Module):
    """The same layer as EagerMoE (same weights, same routing, same result)
    written with static shapes, the way the GShard / Mesh-TensorFlow /
    Switch Transformer reference code writes it, so that torch.compile can
    capture the whole forward in one graph: softmax, topk, then per (token,
    choice) its position in its expert's buffer by a cumulative sum of the
    one-hot expert mask over the choices in rank-major order (every token's
    first choice before any second choice, token order within a rank: the
    same pairs as EagerMoE keep and drop), a one-hot dispatch tensor
    [T, E, C] and the combine weights [T, E, C] (the choice's weight at its
    slot, 0 for dropped choices), x_e = einsum('tec,td->ecd'), the experts
    as batched matmuls over [E, C, d] (bias, erf GELU, bias) and
    y = einsum('tec,ecd->td'). C = expert_capacity(T, E, k, f) as EagerMoE's,
    or T without a capacity factor (nothing dropped). The empty slots run
    through the FFN on zero rows and get weight 0: E·C rows are computed,
    not T·k. No data-dependent shapes, no branching on tensor values.
    tensors: weights_dict(module), as EagerMoE."""

    def __init__(self, tensors, top_k=1, capacity_factor=None, renormalize=False):
        super().__init__()
        w1 = np.asarray(tensors["experts.w1"], np.float32)
        E, D, Fd = w1.shape
        self.E, self.k, self.cf, self.renormalize = E, top_k, capacity_factor, renormalize
        self.router = _router(tensors, D, E)

        def p(name):
            return nn.Parameter(torch.from_numpy(np.array(tensors[name], np.float32)))
        self.w1, self.b1, self.w2, self.b2 = (p(f"experts.{n}") for n in ("w1", "b1", "w2", "b2"))

    def capacity(self, T):
        return T if self.cf is None else expert_capacity(T, self.E, self.k, self.cf)

    def routing(self, logits):
        """(dispatch [T, E, C] 0/1, combine [T, E, C] float32) of these logits."""
        T, E, k = logits.shape[0], self.E, self.k
        C = self.capacity(T)
        probs = torch.softmax(logits, dim=-1, dtype=torch.float32)
        weights, selected = torch.topk(probs, k, dim=-1)                 # [T, k]
        if self.renormalize:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        experts = torch.arange(E, device=logits.device)
        # mask[j, t, e]: token t's choice j is expert e; rank-major [k*T, E]
        mask = (selected.t()[..., None] == experts).to(torch.int64).reshape(k * T, E)
        # 1-based position of each (choice, token) in its expert's buffer
        position = torch.cumsum(mask, dim=0) * mask
        keep = mask * (position <= C)                                    # dropped: 0
        slots = torch.arange(C, device=logits.device)
        # slot_onehot[j*T + t, e, c]: the pair sits in slot c of expert e
        slot_onehot = (keep[..., None] * ((position - 1)[..., None] == slots)).reshape(k, T, E, C)
        slot_onehot = slot_onehot.to(torch.float32)
        dispatch = slot_onehot.sum(dim=0)                     # the k choices are distinct experts
        combine = (slot_onehot * weights.t()[:, :, None, None]).sum(dim=0)
        return dispatch, combine

    def forward(self, x, logits=None):
        if logits is None:
            logits = self.router(x)
        dispatch, combine = self.routing(logits)
        xe = torch.einsum("tec,td->ecd", dispatch.to(x.dtype), x)       # [E, C, D]
        h = F.gelu(torch.bmm(xe, self.w1) + self.b1[:, None, :])
        out = torch.bmm(h, self.w2) + self.b2[:, None, :]
        return torch.einsum("tec,ecd->td", combine.to(x.dtype), out)


def check_dense_dispatch(tokens=64, dim=32, ffn=64, experts=8, capacity_factor=1.25, cases=6,
                         tol=1e-5, verbose=True):
    """DenseDispatchMoE against EagerMoE on the same weights and inputs, for
    switch and top_k k = 2 (and k = 2 renormalized), with and without a
    capacity factor: the gate inside (a skewed gate bias: experts overflow)
    and given logits (every other case skewed by a ramp over the experts).
    Returns the largest max-abs error; raises AssertionError above tol or
    when no case drops a pair."""
    worst = 0.0
    for strategy, k, renorm in (("switch", 1, False), ("top_k", 2, False), ("top_k", 2, True)):
        for cf in (capacity_factor, None):
            module, _ = build_model(strategy, k=k if strategy == "top_k" else None,
                                    capacity_factor=cf, renormalize=renorm, tokens=tokens,
                                    dim=dim, ffn=ffn, experts=experts, skew=3.0,
                                    logits_output=False)
            t = weights_dict(module)
            eager = EagerMoE(t, top_k=k, capacity_factor=cf, renormalize=renorm).eval()
            dense = DenseDispatchMoE(t, top_k=k, capacity_factor=cf, renormalize=renorm).eval()
            g = torch.Generator().manual_seed(7)
            err, dropped = 0.0, 0
            for i in range(cases):
                x = torch.randn(tokens, dim, generator=g)
                lg = None
                if i % 2:
                    ramp = torch.linspace(3.0, -3.0, experts)[torch.randperm(experts, generator=g)]
                    lg = torch.randn(tokens, experts, generator=g) + ramp
                with torch.no_grad():
                    ye, yd = eager(x, lg), dense(x, lg)
                    disp, _ = dense.routing(dense.router(x) if lg is None else lg)
                dropped += tokens * k - int(disp.sum())
                err = max(err, float((ye - yd).abs().max()))
            if verbose:
                print(f"dense dispatch vs EagerMoE: {strategy} k={k}"
                      f"{' renormalize' if renorm else ''} capacity_factor={cf}: max error "
                      f"{err:.2g} over {cases} cases, {dropped} pairs dropped "
                      f"(C = {dense.capacity(tokens)})")
            assert err <= tol, f"{strategy} k={k} cf={cf}: max error {err} > {tol}"
            assert cf is None or dropped > 0, f"{strategy} k={k} cf={cf}: nothing dropped"
            worst = max(worst, err)
    return worst


# ---------------------------------------------------------------------------
# Command line


def add_model_args(ap):
    """The model options (as the old generator's flags)."""
    g = ap.add_argument_group("routing (the dyn.route attributes)")
    g.add_argument("--strategy", choices=STRATEGIES, default="switch")
    g.add_argument("--k", type=int, default=None, help="top_k: experts per token; k_top1: prototypes")
    g.add_argument("--capacity-factor", type=float, default=None)
    g.add_argument("--priority", choices=PRIORITIES, default=None)
    g.add_argument("--groups", type=int, default=None)
    g.add_argument("--dropless-block", type=int, default=None)
    g.add_argument("--seed", type=int, default=None, help="gshard / random seed (the attribute)")
    g.add_argument("--temperature", type=float, default=None)
    g.add_argument("--threshold", type=float, default=None)
    g.add_argument("--renormalize", action="store_true")
    g.add_argument("--hash-table", type=int, default=0, metavar="V",
                   help="hash: a balanced table of V ids instead of id mod E")
    g = ap.add_argument_group("model")
    g.add_argument("--tokens", type=int, default=64)
    g.add_argument("--dim", type=int, default=32)
    g.add_argument("--ffn", type=int, default=64)
    g.add_argument("--experts", type=int, default=8)
    g.add_argument("--gate-input", action="store_true",
                   help="the gate logits are a model input (default: a gate linear layer inside)")
    g.add_argument("--block", action="store_true", help="a pre-LN transformer block y = h + MoE(LN(h))")
    g.add_argument("--attention", action="store_true",
                   help="with --block: an attention sublayer first, h = x + Attention(LN_a(x))")
    g.add_argument("--heads", type=int, default=4)
    g.add_argument("--no-logits-output", dest="logits_output", action="store_false",
                   help="gate inside: do not return the logits as a second output")
    g.add_argument("--skew", type=float, default=2.0,
                   help="gate inputs: every 4th case adds skew * a ramp over the experts; "
                        "gate inside: the ramp is in the gate's bias")
    g.add_argument("--logit-scale", type=float, default=1.0)
    g.add_argument("--data-seed", type=int, default=0, help="weights and inputs")
    return ap


MODEL_ARGS = ("strategy", "k", "capacity_factor", "priority", "groups", "dropless_block", "seed",
              "temperature", "threshold", "renormalize", "hash_table", "tokens", "dim", "ffn",
              "experts", "gate_input", "block", "attention", "heads", "logits_output", "skew",
              "logit_scale", "data_seed")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_model_args(ap)
    ap.add_argument("--cases", type=int, default=0,
                    help="also write N cases' inputs and the eager module's results")
    ap.add_argument("--ffn-only", action="store_true",
                    help="export the experts alone on an [E, --rows, d] dispatch buffer")
    ap.add_argument("--rows", type=int, default=None,
                    help="--ffn-only: rows per expert (default: the capacity C)")
    ap.add_argument("--load-state", default=None, metavar="NPZ",
                    help="load these weights (state_dict names, a numpy .npz) into the model "
                         "before exporting")
    ap.add_argument("--weights-only", action="store_true",
                    help="write NAME.safetensors with dyncc.export_weights (no NAME.mlir, no "
                         "tracing, no torch-mlir) and the data files: for a machine that runs "
                         "a library compiled elsewhere")
    ap.add_argument("--out-dir", default=".")
    ap.add_argument("--name", default="moe")
    ap.add_argument("--check-dense-dispatch", action="store_true",
                    help="only check DenseDispatchMoE against EagerMoE (switch, top_k k=2, "
                         "with drops) at --tokens/--dim/--ffn/--experts and exit")
    a = ap.parse_args(argv)
    if not a.name.isidentifier():
        ap.error("--name must be an identifier")
    return ap, a


def model_kwargs(a):
    """build_model's keyword arguments from parsed options."""
    return {n: getattr(a, n) for n in MODEL_ARGS}


def write_cases(module, count, base):
    """base.x.npy, base.gate.npy (logits or ids) and base.expected.npz."""
    cases = make_cases(module, count)
    ys, asg, tpe, drp = [], [], [], []
    for inputs in cases:
        outs, r = run_eager(module, inputs)
        ys.append(outs[0])
        asg.append(r.assignment)
        tpe.append(r.tokens_per_expert)
        drp.append(r.dropped)
    np.save(base + ".x.npy", np.stack([c[0].numpy() for c in cases]))
    if len(cases[0]) > 1:
        np.save(base + ".gate.npy", np.stack([c[1].numpy() for c in cases]))
    outputs = ["y"] + (["logits"] if module.spec["logits_output"] else [])
    np.savez(base + ".expected.npz", y=np.stack(ys), assignment=np.stack(asg).astype(np.int32),
             tokens_per_expert=np.stack(tpe).astype(np.int64), dropped=np.array(drp, np.int64),
             outputs=np.array(outputs), config=np.array(module.moe.cfg.to_json()))


def main(argv=None):
    ap, a = parse_args(argv)
    if a.check_dense_dispatch:
        check_dense_dispatch(a.tokens, a.dim, a.ffn, a.experts, a.capacity_factor or 1.25)
        return 0
    try:
        module, example = build_model(**model_kwargs(a))
    except ValueError as e:
        ap.error(str(e))
    if a.load_state:
        with np.load(a.load_state) as z:
            module.load_state_dict({k: torch.from_numpy(z[k]) for k in z.files})
    os.makedirs(a.out_dir, exist_ok=True)
    base = os.path.join(a.out_dir, a.name)
    written = f"{base}.safetensors" if a.weights_only else f"{base}.mlir, .safetensors"
    if a.ffn_only:
        rows = a.rows or capacity_rows(module) // a.experts or a.tokens
        ffn, ex = build_ffn_only(module, rows)
        if a.weights_only:
            dyncc.export_weights(ffn, base)
        else:
            dyncc.export(ffn, ex, base)
        print(f"wrote {written}: {a.experts} experts on [{a.experts}, {rows}, {a.dim}]")
        return 0
    if a.weights_only:
        dyncc.export_weights(module, base)
    else:
        dyncc.export(module, example, base)
    if a.cases:
        write_cases(module, a.cases, base)
    cfg = module.moe.cfg
    print(f"wrote {written}" + (f", {a.cases} cases" if a.cases else "")
          + f": {cfg}, K = {cfg.per_token}, C = {cfg.capacity(a.tokens) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
