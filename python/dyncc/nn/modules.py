"""dyncc.nn: PyTorch modules for the decisions of dynamic networks.

Each module's eager `forward` is the reference semantics of its dyn op (the
same float32 decisions as the compiled library, bit for bit), and
`dyncc.export` / `dyncc.compile` turn it into that op:

    EarlyExit -> a chain of dyn.exit_if   (docs/early-exit.md)
    MoE       -> dyn.route                (docs/moe.md)

The static parts (layers, heads, experts, gates) are ordinary modules,
exported through torch.export + torch-mlir; the code around these modules in
a model is ordinary PyTorch too. After an eager call the module keeps what
it decided (`exit_layer`, `routing`), which the compiled library reports.
"""
import torch
import torch.nn as nn

from ..errors import ExportError
from ..export import weights_of
from . import exits, routing
from ._export import Builder, mlir_type


class DynModule(nn.Module):
    """Base of the modules that export to dyn ops."""

    def export_weights(self, prefix):
        """(full names, tensors) of the weights the dyn function takes."""
        return _prefixed(prefix, self)

    def check_export(self, args):
        pass

    def validate(self, prefix, args):
        """Raises ExportError naming the rule these inputs break."""

    def _where(self, prefix):
        return f"{type(self).__name__} '{prefix[:-1] or 'model'}'"


def _prefixed(prefix, module):
    """(names with `prefix`, tensors) of the module's weights (weights_of)."""
    names, tensors = weights_of(module)
    return [prefix + n for n in names], tensors


def _signature(sym, args, wtensors, out_types):
    """The header of the dyn function: inputs %in<i>, then weights %w<i>."""
    ins = [f"%in{i}: {mlir_type(a)}" for i, a in enumerate(args)]
    ins += [f"%w{i}: {mlir_type(t)}" for i, t in enumerate(wtensors)]
    outs = out_types[0] if len(out_types) == 1 else "(" + ", ".join(out_types) + ")"
    return f"\n  func.func private @{sym}({', '.join(ins)}) -> {outs} {{\n"


# ---------------------------------------------------------------------------
# Early exit


class EarlyExit(DynModule):
    """An early-exit network: `layers[l]` then its classifier `heads[l]`
    (l = 0 .. L-1); after each layer but the last the criterion decides
    whether a sample leaves with that head's logits. `heads[L-1]` is the
    final classifier. For LearnedScore, `score_heads[l]` (l < L-1) give the
    score in [0, 1] ([B, 1] or [B]).

        ee = dyncc.nn.EarlyExit(layers, heads, dyncc.nn.Entropy(0.3))
        logits = ee(x)            # x: [B, ...]; logits [B, C]
        ee.exit_layer             # [B] int32, 1-based; L: never exited
        ee.stats                  # per exit point reached, the criterion's value [B]

    `ee(x, *context)` passes the context tensors (an attention mask, ...)
    to every layer and head after the hidden state: `layers[l](h, *context)`.
    The criterion's threshold is a runtime parameter of the compiled library
    (`Entropy(0.3, param="theta")`). Each sample is decided on its own; the
    layers and heads must compute every sample independently.

    granularity="token" (sequence labeling): the layers map [B, S, D] to
    [B, S, D] and the heads give [B, S, C]; each token exits on its own and
    is frozen: deeper layers see its state at its exit layer, never change
    it; `exit_layer` is [B, S]. The network stops when every token exited.
    """

    def __init__(self, layers, heads, criterion, score_heads=None, granularity="sample"):
        super().__init__()
        if not isinstance(criterion, exits.Criterion):
            raise TypeError("criterion must be dyncc.nn.Entropy(...), MaxProb(...), Patience(...), "
                            "Votes(...), LearnedScore(...) or PerClass(...)")
        if granularity not in ("sample", "token"):
            raise ValueError(f"EarlyExit: granularity is 'sample' or 'token', not {granularity!r}")
        self.granularity = granularity
        self.layers = nn.ModuleList(layers)
        self.heads = nn.ModuleList(heads)
        L = len(self.layers)
        if L < 2:
            raise ValueError("EarlyExit needs at least 2 layers")
        if len(self.heads) != L:
            raise ValueError(f"EarlyExit: {L} layers need {L} heads (the last is the final "
                             f"classifier), got {len(self.heads)}")
        if criterion.kind == "learned_score":
            if score_heads is None or len(score_heads) != L - 1:
                raise ValueError(f"EarlyExit with LearnedScore needs {L - 1} score_heads")
            if granularity == "token":
                raise ValueError("EarlyExit: LearnedScore decides whole samples (granularity "
                                 "'sample')")
            self.score_heads = nn.ModuleList(score_heads)
        elif score_heads is not None:
            raise ValueError("score_heads only apply to LearnedScore")
        else:
            self.score_heads = None
        self.criterion = criterion
        self.exit_layer = None

    @property
    def num_layers(self):
        return len(self.layers)

    def _layer(self, l, h, context):
        return self.layers[l](h, *context)

    def _context(self, args):
        """The tensors passed to every layer and head after the hidden state."""
        return tuple(args[1:])

    def forward(self, x, *context):
        context = self._context((x,) + context)
        L = self.num_layers
        token = self.granularity == "token"
        state = None
        done = exit_layer = out = frozen = None
        h = x
        self.stats = []   # per exit point, the value compared with the threshold
        for l in range(1, L + 1):
            h = self._layer(l - 1, h, context)
            z = self.heads[l - 1](h, *context)
            if out is None:
                out = torch.empty_like(z)
                rows = z.shape[:-1]                    # [B] or [B, S]
                done = torch.zeros(rows, dtype=torch.bool)
                exit_layer = torch.full(rows, L, dtype=torch.int32)
                state = self.criterion.start(int(done.numel()))
            # The decisions are made on the CPU (the loop's break reads
            # them there anyway) and applied to the model's tensors on
            # their device (a GPU).
            dev = z.device
            if l == L:
                rest = (~done).to(dev)
                out[rest] = z[rest]
                break
            score = (self.score_heads[l - 1](h, *context) if self.score_heads is not None
                     else None)
            flat = z.detach().reshape(-1, z.shape[-1]).cpu()
            if score is not None:
                score = score.detach().cpu()
            ex, stat = self.criterion.step(state, l, flat, score)
            ex, stat = ex.reshape(rows), stat.reshape(rows)
            self.stats.append(stat)
            new = ex & ~done
            newd = new.to(dev)
            out[newd] = z[newd]
            exit_layer[new] = l
            done |= new
            if token:
                # frozen tokens keep their state at their exit layer
                frozen = h.detach().clone() if frozen is None else frozen
                frozen[newd] = h[newd]
                h = torch.where(done.to(dev)[..., None], frozen, h)
            if bool(done.all()):
                break
        self.exit_layer = exit_layer
        return out

    def check_export(self, args):
        if not args:
            raise ExportError("EarlyExit takes the hidden state and optional context tensors")

    def validate(self, prefix, args):
        """The rules of dyn.exit_if on these inputs (ExportError); returns the
        example values (hidden states, logits, scores) of every layer."""
        where = self._where(prefix)
        L = self.num_layers
        x, ctx = args[0], self._context(args)
        hs, zs, ss = [x], [], []
        with torch.no_grad():
            for l in range(L):
                hs.append(self._layer(l, hs[-1], ctx))
                zs.append(self.heads[l](hs[-1], *ctx))
                if self.score_heads is not None and l < L - 1:
                    ss.append(self.score_heads[l](hs[-1], *ctx))
        B = x.shape[0]
        token = self.granularity == "token"
        want = "[B, S, C]" if token else "[B, C]"
        for l, z in enumerate(zs):
            if not (isinstance(z, torch.Tensor) and z.dim() == (3 if token else 2) and
                    z.shape[0] == B and z.dtype == torch.float32 and z.shape[-1] >= 1):
                raise ExportError(f"{where}: heads[{l}] must return float32 logits {want} "
                                  f"with B = {B} (the criterion reads classes), got "
                                  f"{getattr(z, 'dtype', type(z).__name__)} "
                                  f"{tuple(getattr(z, 'shape', ()))}")
            if z.shape != zs[0].shape:
                raise ExportError(f"{where}: every head must return the same shape; heads[0] "
                                  f"gives {tuple(zs[0].shape)}, heads[{l}] {tuple(z.shape)}")
        if token:
            for l, h in enumerate(hs[1:]):
                if h.dim() != 3 or h.shape[:2] != zs[0].shape[:2] or h.shape != hs[1].shape:
                    raise ExportError(f"{where}: with token granularity, layers[{l}] must "
                                      f"return [B, S, D] with the heads' B, S = "
                                      f"{tuple(zs[0].shape[:2])}, got {tuple(h.shape)}")
        C = zs[0].shape[-1]
        if self.criterion.kind == "per_class" and len(self.criterion.value) != C:
            raise ExportError(f"{where}: PerClass has {len(self.criterion.value)} thresholds "
                              f"for {C} classes")
        for l, s in enumerate(ss):
            if s.dtype != torch.float32 or s.numel() != B:
                raise ExportError(f"{where}: score_heads[{l}] must return one float32 score per "
                                  f"sample ([B, 1] or [B]), got {s.dtype} {tuple(s.shape)}")
        return hs, zs, ss

    def _layer_piece(self, ctx, sym, prefix, l, inputs):
        return ctx.piece(f"{sym}_layer{l}", self.layers[l], inputs, f"{prefix}layers.{l}.")

    def _layer_inputs(self, h, xs):
        return [h] + xs

    def emit_function(self, ctx, sym, prefix, args, outs, wnames, wtensors):
        hs, zs, ss = self.validate(prefix, args)
        L = self.num_layers
        B = args[0].shape[0]
        token = self.granularity == "token"
        extra = self._context(args)
        first = len(args) - len(extra)
        xs = [f"%in{first + i}" for i in range(len(extra))]
        layers = [self._layer_piece(ctx, sym, prefix, l, (hs[l],) + extra) for l in range(L)]
        heads = [ctx.piece(f"{sym}_head{l}", self.heads[l], (hs[l + 1],) + extra,
                           f"{prefix}heads.{l}.") for l in range(L)]
        scores = [ctx.piece(f"{sym}_score{l}", self.score_heads[l], (hs[l + 1],) + extra,
                            f"{prefix}score_heads.{l}.") for l in range(len(ss))]
        values = {n: f"%w{i}" for i, n in enumerate(wnames)}
        zt = mlir_type(zs[0])
        ht = mlir_type(hs[1])
        attr = exits.criterion_attr(self.criterion)
        b = Builder("e")
        h = "%in0"
        closers = []
        for l in range(L):
            (h,) = layers[l].call(b, values, self._layer_inputs(h, xs))
            (z,) = heads[l].call(b, values, [h] + xs)
            if l == L - 1:   # the final head, inside the innermost exit point (L >= 2)
                b.line(f"dyn.yield {z} : {zt}")
                break
            score = ""
            if scores:
                (s,) = scores[l].call(b, values, [h] + xs)
                st = mlir_type(ss[l])
                if ss[l].dim() != 2:
                    (s,) = b.op(f"tensor.expand_shape {s} [[0, 1]] output_shape [{B}, 1] : "
                                f"{st} into tensor<{B}x1xf32>")
                    st = f"tensor<{B}x1xf32>"
                score = f" score {s} : {st}"
            r = b.fresh()
            if token:
                b.line(f"{r} = dyn.exit_if {z} hidden {h} : {ht} criterion {attr} "
                       f"layer {l + 1} granularity token : {zt} {{")
                frozen = b.fresh()
                b.line(f"^bb0({frozen}: {ht}):")
                h = frozen
            else:
                b.line(f"{r} = dyn.exit_if {z}{score} criterion {attr} layer {l + 1} : {zt} {{")
            closers.append(r)
            b.indent += "  "
        for i, r in enumerate(reversed(closers)):
            b.indent = b.indent[:-2]
            b.line("}")
            outer = len(closers) - 1 - i
            b.line(f"dyn.yield {r} : {zt}" if outer > 0 else f"return {r} : {zt}")
        return _signature(sym, args, wtensors, [zt]) + "\n".join(b.lines) + "\n  }\n"


class Cascade(EarlyExit):
    """A cascade of complete models (CascadeBERT): `models[i](x, *context)`
    returns logits [B, C]; the criterion decides after each model but the
    last whether a sample keeps that model's answer, else the next (larger)
    model runs on the original input.

        cascade = dyncc.nn.Cascade([small, base, large], dyncc.nn.MaxProb(0.9))
        logits = cascade(x); cascade.exit_layer   # 1-based index of the answering model
    """

    def __init__(self, models, criterion):
        super().__init__(list(models), [_Logits() for _ in models], criterion)

    def _layer(self, l, h, context):
        return self.layers[l](*context)

    def _context(self, args):
        return tuple(args)

    def check_export(self, args):
        if not args:
            raise ExportError("Cascade takes the models' inputs")

    def _layer_piece(self, ctx, sym, prefix, l, inputs):
        return ctx.piece(f"{sym}_layer{l}", self.layers[l], inputs[1:], f"{prefix}layers.{l}.")

    def _layer_inputs(self, h, xs):
        return xs


class _Logits(nn.Module):
    """A cascade stage's head: its model's logits as they are."""

    def forward(self, z, *context):
        return z


# ---------------------------------------------------------------------------
# Mixture of experts


class StackedExperts(nn.Module):
    """Experts as stacked weights, the way fused MoE layers store them:
    `fn(x, *weights)` computes one expert on its rows x [n, D] from its
    slices of the stacked [E, ...] tensors.

        experts = dyncc.nn.StackedExperts(
            lambda x, w1, w2: F.gelu(x @ w1) @ w2,
            w1=torch.randn(E, D, F), w2=torch.randn(E, F, D))
        moe = dyncc.nn.MoE(gate, experts, "top_k", k=2)

    `experts[e]` is expert e as a module (a view of the stacks)."""

    def __init__(self, fn, **weights):
        super().__init__()
        if not weights:
            raise ValueError("StackedExperts needs at least one stacked weight")
        sizes = {int(w.shape[0]) for w in weights.values()}
        if len(sizes) != 1:
            raise ValueError(f"StackedExperts: the weights' leading (expert) dimensions differ: "
                             f"{sorted(sizes)}")
        self.fn = fn
        self.names = list(weights)
        for n, w in weights.items():
            self.register_parameter(n, w if isinstance(w, nn.Parameter) else nn.Parameter(w))

    def __len__(self):
        return int(getattr(self, self.names[0]).shape[0])

    def __getitem__(self, e):
        return _ExpertSlice(self, e)

    def template(self):
        """Expert 0 computing from its own copies of the slices (what export
        traces: one expert's shapes, weights as arguments)."""
        return _ExpertSlice(self, 0, own=True)


class _ExpertSlice(nn.Module):
    """Expert e of a StackedExperts: fn on the slices [e] of the stacks. With
    own=True (the export template) the slices are the module's own
    parameters, so that export sees one expert's weights as arguments."""

    def __init__(self, stack, e, own=False):
        super().__init__()
        self.own = own
        self.fn = stack.fn
        self.names = stack.names
        if own:
            for n in stack.names:
                self.register_parameter(n, nn.Parameter(getattr(stack, n)[e].detach(),
                                                        requires_grad=False))
        object.__setattr__(self, "_stack", stack)
        self.e = e

    def forward(self, x):
        if self.own:
            weights = [getattr(self, n) for n in self.names]
        else:
            weights = [getattr(self._stack, n)[self.e] for n in self.names]
        return self.fn(x, *weights)


class MoE(DynModule):
    """A mixture-of-experts layer: each of the T tokens of x ([T, D]) goes
    to one or a few of the E `experts` as `strategy` decides from the
    `gate`'s logits ([T, E]; for "hash" the token ids given to forward), and
    the result is the weighted sum of their outputs ([T, D_out]).

        moe = dyncc.nn.MoE(nn.Linear(D, E), [FFN() for _ in range(E)], "top_k", k=2,
                           capacity_factor=1.25)
        y = moe(x)
        moe.routing.assignment, moe.routing.tokens_per_expert, moe.routing.dropped

    Options are dyn.route's (docs/moe.md): k, capacity_factor, priority
    ("token_order" or "score"), groups, seed (gshard, random), temperature
    and threshold (dense_to_sparse), renormalize, dropless_block. The
    experts must share one architecture (their weights are stacked
    [E, ...]) and compute every row independently.
    """

    def __init__(self, gate, experts, strategy="top_k", **options):
        super().__init__()
        stacked = isinstance(experts, StackedExperts)
        experts = experts if stacked else list(experts)
        try:
            self.cfg = routing.RouteConfig(strategy, num_experts=len(experts), **options)
        except (TypeError, ValueError) as e:
            raise type(e)(f"MoE: {e}") from None
        if strategy == "hash":
            if gate is not None:
                raise ValueError("MoE: hash routes by token ids (forward(x, ids)); gate must be None")
        elif gate is not None and not isinstance(gate, nn.Module):
            raise ValueError(f"MoE: strategy {strategy!r} needs a gate module ([T, D] -> [T, E]) "
                             "or None (the logits given as forward(x, logits))")
        self.gate = gate
        self.experts = experts if stacked else nn.ModuleList(experts)
        keys = [(k, tuple(t.shape), t.dtype) for k, t in experts[0].state_dict().items()]
        for e, m in enumerate([] if stacked else experts[1:], 1):
            if [(k, tuple(t.shape), t.dtype) for k, t in m.state_dict().items()] != keys:
                raise ValueError(f"MoE: experts[{e}] has other weights than experts[0]; every "
                                 "expert must have the same architecture")
        self.routing = None

    def forward(self, x, ids=None):
        """x [T, D]; ids: hash's token ids [T], or the logits [T, E] when the
        MoE has no gate module (gate=None)."""
        if self.cfg.strategy == "hash":
            if ids is None:
                raise ValueError("MoE with hash routing: call moe(x, ids)")
            r = routing.route(self.cfg, ids)
        elif self.gate is None:
            if ids is None:
                raise ValueError("MoE without a gate module: call moe(x, logits)")
            r = routing.route(self.cfg, ids.detach())
        else:
            r = routing.route(self.cfg, self.gate(x).detach())
        self.routing = r
        y = None
        for e in range(self.cfg.num_experts):
            t_idx, j_idx = torch.nonzero(r.kept & (r.expert == e), as_tuple=True)
            if t_idx.numel() == 0:
                continue
            out = self.experts[e](x[t_idx])
            if y is None:
                y = x.new_zeros(x.shape[0], out.shape[1], dtype=out.dtype)
            y = y.index_add(0, t_idx, out * r.weight[t_idx, j_idx].to(out.dtype)[:, None])
        if y is None:
            out = self.experts[0](x[:1])
            y = x.new_zeros(x.shape[0], out.shape[1], dtype=out.dtype)
        return y

    def export_weights(self, prefix):
        """The gate's weights, then the experts' stacked [E, ...]."""
        names, tensors = ([], []) if self.gate is None else _prefixed(f"{prefix}gate.", self.gate)
        if isinstance(self.experts, StackedExperts):
            more, stacks = _prefixed(f"{prefix}experts.", self.experts)
        else:
            per_expert = [weights_of(m) for m in self.experts]   # same names (checked)
            more = [f"{prefix}experts.{n}" for n in per_expert[0][0]]
            stacks = [torch.stack(ts) for ts in zip(*(t for _, t in per_expert))]
        return names + more, tensors + stacks

    def check_export(self, args):
        want = 2 if self.gate is None else 1
        if len(args) != want:
            raise ExportError(f"MoE ({self.cfg.strategy}) takes {want} input(s), got {len(args)}")
        x = args[0]
        if x.dim() != 2 or x.dtype != torch.float32:
            raise ExportError(f"MoE: x must be float32 [T, D], got {x.dtype} {tuple(x.shape)}")
        if self.cfg.strategy == "hash" and (args[1].dim() != 1 or args[1].dtype.is_floating_point
                                            or args[1].shape[0] != x.shape[0]):
            raise ExportError(f"MoE: hash ids must be integers [T] = [{x.shape[0]}], got "
                              f"{args[1].dtype} {tuple(args[1].shape)}")

    def _check_rows(self, where, x):
        """The rule of dyn.route's body: each row computed on its own."""
        with torch.no_grad():
            m = self.experts[0]
            full = m(x)
            perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
            part = m(x[perm][: max(1, x.shape[0] // 2)])
        if full.dim() != 2 or full.shape[0] != x.shape[0]:
            raise ExportError(f"{where}: an expert must map [n, D] to [n, D_out], got "
                              f"{tuple(x.shape)} -> {tuple(full.shape)}")
        ref = full[perm][: part.shape[0]]
        if not torch.allclose(part, ref, rtol=1e-4, atol=1e-5):
            raise ExportError(f"{where}: experts[0] mixes rows (its output for a token depends on "
                              "the other tokens it receives); dyn.route runs an expert on any "
                              "subset of the tokens, so every row must be computed on its own")

    def validate(self, prefix, args):
        where = self._where(prefix)
        x = args[0]
        cfg = self.cfg
        if cfg.strategy != "hash":
            if self.gate is None:
                g = args[1]
            else:
                with torch.no_grad():
                    g = self.gate(x)
            if g.dim() != 2 or g.shape != (x.shape[0], cfg.num_experts) or g.dtype != torch.float32:
                raise ExportError(f"{where}: the gate must return float32 logits [T, E] = "
                                  f"[{x.shape[0]}, {cfg.num_experts}], got {g.dtype} "
                                  f"{tuple(g.shape)}")
        self._check_rows(where, x)

    def emit_function(self, ctx, sym, prefix, args, outs, wnames, wtensors):
        self.validate(prefix, args)
        x = args[0]
        cfg = self.cfg
        values = {n: f"%w{i}" for i, n in enumerate(wnames)}
        b = Builder("m")
        if self.gate is None:   # hash ids, or logits given as the second input
            gate_val, gate_t = "%in1", mlir_type(args[1])
        else:
            gpiece = ctx.piece(f"{sym}_gate", self.gate, (x,), f"{prefix}gate.")
            (gate_val,) = gpiece.call(b, values, ["%in0"])
            gate_t = gpiece.result_types[0]
        template = (self.experts.template() if isinstance(self.experts, StackedExperts)
                    else self.experts[0])
        expert = ctx.piece(f"{sym}_expert", template, (x,), f"{prefix}experts.",
                           dynamic_rows=True)
        stacked = [(n, t) for n, t in zip(wnames, wtensors) if n.startswith(f"{prefix}experts.")]
        table = ""
        if cfg.table is not None:
            vals = ", ".join(str(int(v)) for v in cfg.table)
            (tv,) = b.op(f"arith.constant dense<[{vals}]> : tensor<{cfg.table.size}xi32>")
            table = f" table {tv} : tensor<{cfg.table.size}xi32>"
        yt = mlir_type(outs[0])
        y = b.fresh()
        sv = ", ".join(values[n] for n, _ in stacked)
        st = ", ".join(mlir_type(t) for _, t in stacked)
        experts_text = f" experts({sv} : {st})" if stacked else ""
        b.line(f"{y} = dyn.route {cfg.strategy} %in0, {gate_val}{table}{experts_text} "
               f"{cfg.mlir_attrs()} : {mlir_type(x)}, {gate_t} -> {yt} {{")
        slice_types = expert.arg_types[:len(expert.weights)]
        row_t = expert.input_types[0]
        bb = ", ".join([f"%t: {row_t}"] + [f"%p{i}: {t}" for i, t in enumerate(slice_types)])
        b.line(f"^bb0({bb}):")
        inner = {n: f"%p{i}" for i, n in enumerate(expert.weights)}
        (h,) = expert.call(b, inner, ["%t"])
        b.line(f"  dyn.yield {h} : {expert.result_types[0]}")
        b.line("}")
        b.line(f"return {y} : {yt}")
        return _signature(sym, args, wtensors, [yt]) + "\n".join(b.lines) + "\n  }\n"


# ---------------------------------------------------------------------------
# Skimming

from .skimming import NEEDS_CELL as _NEEDS_CELL, Action, run_loop  # noqa: E402


class SkimError(RuntimeError):
    """A step chose an action outside [0, #actions): the run fails."""


def _tuple(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


class Skim(DynModule):
    """A recurrent loop that decides, step by step, how to read a sequence
    (docs/skim.md): at position pos, `decide(x_t, *state)` returns the index
    of the action to take (an integer tensor with one element), or
    (action, amount) for jump / shuttle; the action's cell
    `cells[i](x_t, *state)` returns the new state (actions without a cell
    copy it); the position moves as the action's kind says. The loop ends
    at a stop action, at either end of the sequence, or after `budget`
    steps.

        skim = dyncc.nn.Skim(["read", "skim"], decide=Gate(),
                             cells={0: BigLSTM(), 1: SmallLSTM()}, budget=S)
        h, c = skim(seq, h0, c0)              # seq [S, D]; with jump_to: skim(seq, classes, ...)
        skim.trace                            # [(pos, action, amount)] of every step

    Steps see one position's input (x_t = seq[pos]) and the state; cells
    and decide are ordinary modules (LSTMCell, GRUCell, linear gates). With
    with_position=True they take the position first, as a 0-d int64 tensor:
    decide(pos, x_t, *state), cells[i](pos, x_t, *state) (VCRNN's schedule).
    """

    def __init__(self, actions, decide, cells, budget, with_position=False):
        super().__init__()
        self.with_position = bool(with_position)
        self.actions = [a if isinstance(a, Action) else
                        Action(a[0], a[1]) if isinstance(a, (tuple, list)) else Action(a)
                        for a in actions]
        if not self.actions:
            raise ValueError("Skim needs at least one action")
        if int(budget) != budget or not 1 <= budget < 2 ** 31:
            raise ValueError(f"Skim: budget must be an integer in [1, 2^31), got {budget}")
        self.budget = int(budget)
        self.decide = decide
        # the cells by action index (as a string: ModuleDict keys)
        self.cells = nn.ModuleDict()
        for key, m in dict(cells).items():
            i = key if isinstance(key, int) else next(
                (j for j, a in enumerate(self.actions) if a.kind == key), None)
            if i is None or not 0 <= i < len(self.actions):
                raise ValueError(f"Skim: cells key {key!r} names no action")
            if self.actions[i].kind == "skip":
                raise ValueError(f"Skim: action {i} (skip) copies the state; it takes no cell")
            self.cells[str(i)] = m
        for i, a in enumerate(self.actions):
            if a.kind in _NEEDS_CELL and str(i) not in self.cells:
                raise ValueError(f"Skim: action {i} ({a.kind}) computes the state; give it a cell")
        self.has_amount = any(a.kind in ("jump", "shuttle") for a in self.actions)
        self.has_classes = any(a.kind == "jump_to" for a in self.actions)
        self.trace = None

    def _split(self, args):
        """(sequence, classes or None, initial state) of the module's inputs."""
        if self.has_classes:
            return args[0], args[1], tuple(args[2:])
        return args[0], None, tuple(args[1:])

    def _step_args(self, pos, x, state):
        """What decide and the cells take: (x, *state), with the position
        first (a 0-d int64 tensor) when with_position."""
        if self.with_position:
            return (torch.tensor(pos, dtype=torch.int64), x, *state)
        return (x, *state)

    def _decide(self, pos, x, state):
        out = _tuple(self.decide(*self._step_args(pos, x, state)))
        if self.has_amount and len(out) != 2:
            raise ValueError("Skim: with jump or shuttle, decide returns (action, amount)")
        if not self.has_amount and len(out) != 1:
            raise ValueError("Skim: decide returns the action only (no jump or shuttle action)")
        for v in out:
            if not isinstance(v, torch.Tensor) or v.dtype.is_floating_point or v.numel() != 1:
                raise ValueError("Skim: decide must return integer tensors of one element")
        return int(out[0].reshape(())), (int(out[1].reshape(())) if self.has_amount else 0)

    def forward(self, seq, *rest):
        _, classes, init = self._split((seq,) + rest)
        S = seq.shape[0]
        state = [init]

        def decide(pos):
            return self._decide(pos, seq[pos], state[0])

        def apply(a, pos):
            if str(a) in self.cells:
                state[0] = _tuple(self.cells[str(a)](*self._step_args(pos, seq[pos], state[0])))
        trace, _, _, error = run_loop(S, self.budget, self.actions, decide, apply, classes)
        self.trace = trace
        if error is not None:
            step, pos, a = error
            raise SkimError(f"step {step} (position {pos}) chose action {a}, outside "
                            f"[0, {len(self.actions)})")
        state = state[0]
        return state[0] if len(state) == 1 else state

    def check_export(self, args):
        if len(args) < 2 + self.has_classes:
            raise ExportError(f"Skim takes the sequence{', the classes' if self.has_classes else ''}"
                              " and at least one state tensor")

    def validate(self, prefix, args):
        where = self._where(prefix)
        seq, classes, init = self._split(args)
        x = seq[0]
        if self.has_classes and (classes.dim() != 1 or classes.shape[0] != seq.shape[0] or
                                 classes.dtype.is_floating_point):
            raise ExportError(f"{where}: classes must be integers [S] = [{seq.shape[0]}], got "
                              f"{classes.dtype} {tuple(classes.shape)}")
        with torch.no_grad():
            dec = _tuple(self.decide(*self._step_args(0, x, init)))
            for key, cell in self.cells.items():
                i = int(key)
                new = _tuple(cell(*self._step_args(0, x, init)))
                if len(new) != len(init) or any(
                        a.shape != b.shape or a.dtype != b.dtype for a, b in zip(new, init)):
                    raise ExportError(
                        f"{where}: the cell of action {i} ({self.actions[i].kind}) returns "
                        f"{[tuple(t.shape) for t in new]}; the state is "
                        f"{[tuple(t.shape) for t in init]} (a cell maps (x, *state) to a new "
                        "state of the same shapes)")
        want = 2 if self.has_amount else 1
        if len(dec) != want or any(v.dtype.is_floating_point or v.numel() != 1 for v in dec):
            raise ExportError(f"{where}: decide must return {'(action, amount)' if want == 2 else 'the action'}"
                              " as integer tensors of one element")

    def emit_function(self, ctx, sym, prefix, args, outs, wnames, wtensors):
        self.validate(prefix, args)
        seq, classes, init = self._split(args)
        x = seq[0]
        ex = self._step_args(0, x, init)
        dpiece = ctx.piece(f"{sym}_decide", self.decide, ex, f"{prefix}decide.")
        cells = {int(k): ctx.piece(f"{sym}_cell{k}", cell, ex, f"{prefix}cells.{k}.")
                 for k, cell in self.cells.items()}
        values = {n: f"%w{i}" for i, n in enumerate(wnames)}
        xt, st = mlir_type(x), [mlir_type(t) for t in init]
        b = Builder("s")
        r = b.fresh()
        res = f"{r}:{len(init)}" if len(init) > 1 else r
        cls = f" classes %in1 : {mlir_type(classes)}" if self.has_classes else ""
        first = 1 + self.has_classes
        iv = ", ".join(f"%in{first + i}" for i in range(len(init)))
        acts = ", ".join(a.mlir() for a in self.actions)
        b.line(f"{res} = dyn.skip %in0{cls} init({iv} : {', '.join(st)}) budget {self.budget} "
               f"actions [{acts}] : {mlir_type(seq)} -> {', '.join(st)}")
        block = ", ".join(["%pos: index", f"%x: {xt}"] + [f"%st{i}: {t}" for i, t in enumerate(st)])
        svals = [f"%st{i}" for i in range(len(init))]

        def step_inputs():
            """The step's operands; the position as a tensor<i64> when asked."""
            if not self.with_position:
                return ["%x"] + svals
            (p64,) = b.op("arith.index_cast %pos : index to i64")
            (pt,) = b.op(f"tensor.from_elements {p64} : tensor<i64>")
            return [pt, "%x"] + svals
        b.line("  decide {")
        b.line(f"  ^bb0({block}):")
        b.indent += "  "
        outs_d = dpiece.call(b, values, step_inputs())
        scal = []
        if any("x" in t for t in dpiece.result_types):
            b.line("%c0 = arith.constant 0 : index")
        for v, t in zip(outs_d, dpiece.result_types):
            idx = "[" + ", ".join(["%c0"] * t.count("x")) + "]"
            (e,) = b.op(f"tensor.extract {v}{idx} : {t}")
            scal.append((e, t.split("x")[-1].rstrip(">").replace("tensor<", "")))
        (a,) = b.op(f"arith.index_cast {scal[0][0]} : {scal[0][1]} to index")
        if self.has_amount:
            amt, ty = scal[1]
            if ty != "i64":
                (amt,) = b.op(f"arith.extsi {amt} : {ty} to i64")
            b.line(f"dyn.decide {a} jump {amt}")
        else:
            b.line(f"dyn.decide {a}")
        b.indent = b.indent[:-2]
        b.line("  }")
        for i in range(len(self.actions)):
            b.line("  {")
            if i in cells:
                b.line(f"  ^bb0({block}):")
                b.indent += "  "
                new = cells[i].call(b, values, step_inputs())
                b.line(f"dyn.yield {', '.join(new)} : {', '.join(st)}")
                b.indent = b.indent[:-2]
            b.line("  }" + ("," if i < len(self.actions) - 1 else ""))
        ret = ", ".join([r] if len(init) == 1 else [f"{r}#{i}" for i in range(len(init))])
        b.line(f"return {ret} : {', '.join(st)}")
        return _signature(sym, args, wtensors, st) + "\n".join(b.lines) + "\n  }\n"
