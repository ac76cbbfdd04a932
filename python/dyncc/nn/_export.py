"""Exporting models that hold dyncc.nn modules.

torch.export and torch-mlir cannot carry the decisions (torch.cond and
data-dependent shapes are rejected), so a model is exported in pieces:

1. The model runs once eagerly on the example inputs; each outermost
   dyncc.nn module records the inputs it was called with.
2. Each such module becomes an opaque custom op (`dyncc_dyn::opN`, its
   inputs and weights as operands) and the model is exported through
   torch.export + torch-mlir's FX importer. The op reaches torch-mlir as
   `torch.operator`, which is replaced by a `func.call @dyn_opN` to a private
   declaration before the lowering to linalg. User code around the modules
   is thus ordinary PyTorch.
3. Each dyncc.nn module writes `@dyn_opN` itself: a `dyn.exit_if` chain, a
   `dyn.route` or a `dyn.skip` whose regions call its static sub-modules
   (layers, heads, experts, cells, gates), each exported on its own through
   torch.export + torch-mlir (`Piece`).

dyncc's pipeline inlines the calls. Every weight is an argument of the
entry function tagged with its state_dict name (experts: stacked [E, ...]
tensors named `<moe>.experts.<param>`).
"""
import collections
import itertools

from ..errors import ExportError, first_line

_OP_COUNTER = itertools.count()
_LIBRARY = None


def _library():
    global _LIBRARY
    if _LIBRARY is None:
        import torch
        _LIBRARY = torch.library.Library("dyncc_dyn", "FRAGMENT")
    return _LIBRARY


def mlir_type(t):
    """The builtin tensor type of a torch tensor: tensor<2x8xf32>."""
    import torch
    names = {torch.float32: "f32", torch.float64: "f64", torch.int64: "i64",
             torch.int32: "i32", torch.bool: "i1", torch.float16: "f16", torch.bfloat16: "bf16",
             torch.int8: "i8", torch.uint8: "ui8"}
    if t.dtype not in names:
        raise ExportError(f"tensors of {t.dtype} are not supported")
    return "tensor<" + "".join(f"{d}x" for d in t.shape) + names[t.dtype] + ">"


class Piece:
    """One static sub-module exported on its own: a private function
    `@sym(weights..., inputs...) -> results`, the weights given by their
    full names in the model's weights file."""

    def __init__(self, ctx, sym, module, inputs, full_prefix, dynamic_rows=False):
        from torch_mlir import ir
        from ..export import to_linalg
        self.sym = sym
        try:
            mlir, names, _ = to_linalg(module, inputs, func_name=sym, dynamic_rows=dynamic_rows)
        except ExportError as e:
            raise ExportError(f"{full_prefix or 'model'}: {e}") from e
        self.weights = [full_prefix + n for n in names]
        self.module = ir.Module.parse(str(mlir), ctx)
        fn = self.module.body.operations[0].operation
        fn.attributes["sym_visibility"] = ir.StringAttr.get("private", ctx)
        ftype = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)
        self.arg_types = [str(t) for t in ftype.inputs]
        self.result_types = [str(t) for t in ftype.results]
        self.input_types = self.arg_types[len(names):]

    def call(self, b, weight_values, inputs):
        """Emits the call into builder b; returns the result values."""
        args = [weight_values[w] for w in self.weights] + list(inputs)
        return b.op(f"func.call @{self.sym}({', '.join(args)}) : "
                    f"({', '.join(self.arg_types)}) -> "
                    f"{_results(self.result_types)}", len(self.result_types))


def _results(types):
    return types[0] if len(types) == 1 else "(" + ", ".join(types) + ")"


class Builder:
    """Text of a function body: fresh SSA names and lines."""

    def __init__(self, prefix):
        self.prefix, self.lines, self.count, self.indent = prefix, [], 0, "    "

    def fresh(self):
        self.count += 1
        return f"%{self.prefix}{self.count}"

    def line(self, text):
        self.lines.append(self.indent + text)

    def op(self, text, results=1):
        """`%v = text` (or `%v:n = text`); returns the result names."""
        v = self.fresh()
        if results == 0:
            self.line(text)
            return []
        if results == 1:
            self.line(f"{v} = {text}")
            return [v]
        self.line(f"{v}:{results} = {text}")
        return [f"{v}#{i}" for i in range(results)]


class Context:
    """What the export of one model shares: the MLIR context of the pieces,
    the pieces themselves and the dyn functions' text."""

    def __init__(self):
        from torch_mlir import ir
        self.ir = ir.Context()
        self.pieces = []
        self.funcs = []

    def piece(self, sym, module, inputs, full_prefix, dynamic_rows=False):
        p = Piece(self.ir, sym, module, inputs, full_prefix, dynamic_rows)
        self.pieces.append(p)
        return p


def dyn_modules(module):
    """The outermost dyncc.nn modules of `module` with their paths."""
    from .modules import DynModule
    found = []
    for path, m in module.named_modules():
        if isinstance(m, DynModule) and not any(path.startswith(p + ".") or p == "" for p, _ in found):
            found.append((path, m))
    return found


def inner_names(found):
    """The state_dict names of the weights inside the dyn modules `found`."""
    from ..export import weights_of
    return {(path + "." if path else "") + k for path, m in found for k in weights_of(m)[0]}


def plain_weights(module, inner):
    """(names, tensors) of the module's weights outside its dyn modules
    (`inner`: inner_names of them)."""
    from ..export import weights_of
    names, tensors = [], []
    for k, t in zip(*weights_of(module)):
        if k not in inner:
            names.append(k)
            tensors.append(t)
    return names, tensors


def export_weights(module):
    """(names, tensors) of the weights as dyncc.export writes them: the
    weights outside the dyn modules, then each dyn module's (stacked
    experts, ...). Needs no tracing and no torch-mlir; the exported model
    may leave some unused (dyncc warns about those)."""
    found = dyn_modules(module)
    names, tensors = plain_weights(module, inner_names(found))
    for path, m in found:
        wnames, wtensors = m.export_weights(path + "." if path else "")
        names += list(wnames)
        tensors += list(wtensors)
    return names, tensors


def _flat(out):
    import torch
    if isinstance(out, torch.Tensor):
        return (out,)
    if isinstance(out, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in out):
        return tuple(out)
    raise ExportError(f"a dyncc.nn module must return a tensor or a tuple of tensors, "
                      f"got {type(out).__name__}")


# One dyn module of the model being exported: its custom op dyncc_dyn::op<n>,
# the outputs of its example call, the weights its function takes.
_DynOp = collections.namedtuple("_DynOp", "module n outs wnames wtensors")


def export_dynamic(module, example_inputs):
    """The model as an MLIR module (entry function @main, weights first), the
    (names, tensors) of its weights and the text of the dyn functions."""
    from ..export import eval_mode
    with eval_mode(module):
        return _export_dynamic(module, example_inputs)


def _export_dynamic(module, example_inputs):
    import torch
    from torch_mlir import fx, ir
    from torch_mlir.compiler_utils import run_pipeline_with_repro_report
    from ..export import _decompositions, _flat_outputs, dense_literals, weights_of
    from .._files import check_ops

    found = dyn_modules(module)
    # 1. one eager run: the inputs and outputs each dyn module sees
    seen, called = {}, {}

    def pre_recorder(path):
        def hook(m, args):
            called.setdefault(path, args)
        return hook

    def recorder(path):
        def hook(m, args, out):
            if path not in seen:
                seen[path] = ([a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args],
                              [t.detach().clone() for t in _flat(out)])
        return hook
    hooks = [m.register_forward_hook(recorder(p)) for p, m in found]
    hooks += [m.register_forward_pre_hook(pre_recorder(p)) for p, m in found]
    try:
        with torch.no_grad():
            module(*example_inputs)
    except Exception as e:
        # a dyn module that failed: say which of its rules the inputs break
        for path, m in found:
            if path in called and path not in seen:
                try:
                    m.check_export(called[path])
                    m.validate(path + "." if path else "", called[path])
                except ExportError:
                    raise
                except Exception:  # the rules could not even be checked
                    pass
        raise ExportError(f"{type(module).__name__} fails on the example inputs: "
                          f"{type(e).__name__}: {e}") from e
    finally:
        for h in hooks:
            h.remove()
    for path, m in found:
        if path not in seen:
            raise ExportError(f"{path or type(m).__name__}: the module is never called on the "
                              "example inputs")

    # 2. the dyn modules' own functions, and their weights
    ctx = Context()
    ops = []
    for path, m in found:
        args, outs = seen[path]
        for i, a in enumerate(args):
            if not isinstance(a, torch.Tensor):
                raise ExportError(f"{path or type(m).__name__}: input {i} is a "
                                  f"{type(a).__name__}; dyncc.nn modules take tensors")
        n = next(_OP_COUNTER)
        prefix = path + "." if path else ""
        wnames, wtensors = m.export_weights(prefix)
        m.check_export(args)
        ctx.funcs.append(m.emit_function(ctx, f"dyn_op{n}", prefix, args, outs, wnames,
                                         wtensors))
        ops.append(_DynOp(m, n, outs, wnames, wtensors))

    # the model's other weights (not inside a dyn module), then the dyn ops'
    inner = inner_names(found)
    names, tensors = plain_weights(module, inner)
    plain = len(names)
    for op in ops:
        names += op.wnames
        tensors += op.wtensors
    count = len(names)

    # 3. custom ops standing for the dyn modules
    lib = _library()
    for op in ops:
        # one list operand: schemas take at most 64 arguments, models
        # have hundreds of weights
        rets = "Tensor" if len(op.outs) == 1 else "(" + ", ".join("Tensor" for _ in op.outs) + ")"
        lib.define(f"op{op.n}(Tensor[] operands) -> {rets}")
        shapes = [(tuple(o.shape), o.dtype) for o in op.outs]

        def fake(xs, _shapes=shapes):
            r = [xs[0].new_empty(s, dtype=d) for s, d in _shapes]
            return r[0] if len(r) == 1 else tuple(r)
        lib.impl(f"op{op.n}", fake, "CompositeExplicitAutograd")
        torch.library.register_fake(f"dyncc_dyn::op{op.n}", fake, lib=lib)

    class Functional(torch.nn.Module):
        def forward(self, *a):
            state = dict(zip(names[:plain], a[:plain]))
            offset = plain
            for op in ops:
                ws = a[offset:offset + len(op.wnames)]
                offset += len(op.wnames)
                # a dyn module's weights that the code around it uses too
                # (its gate, say) stay arguments, not frozen constants
                state.update((n, w) for n, w in zip(op.wnames, ws) if n in inner)
                custom = getattr(torch.ops.dyncc_dyn, f"op{op.n}")
                op.module.forward = lambda *xs, _op=custom, _ws=ws: _op([*xs, *_ws])
            try:
                out = torch.func.functional_call(module, state, a[count:], tie_weights=True)
            finally:
                for op in ops:
                    del op.module.forward
            return _flat_outputs(out)

    try:
        with dense_literals():
            raw = fx.export_and_import(Functional(), *tensors, *example_inputs,
                                       output_type="raw", func_name="main",
                                       decomposition_table=_decompositions())
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"cannot export {type(module).__name__}: {type(e).__name__}: "
                          f"{first_line(e)}") from e
    _calls_for_operators(raw, ir)
    try:
        run_pipeline_with_repro_report(
            raw, "builtin.module(func.func(torch-match-quantized-custom-ops), "
            "torchdynamo-export-to-torch-backend-pipeline{ extra-library=})", "torch backend")
        # torch-backend-to-linalg-on-tensors-backend-pipeline without its
        # final contract check, which rejects the calls to @dyn_opN
        run_pipeline_with_repro_report(
            raw, "builtin.module(func.func(convert-torch-to-tmtensor,convert-torch-to-linalg,"
            "convert-torch-to-scf,convert-torch-to-arith,convert-torch-to-tensor),"
            "convert-torch-conversion-to-mlprogram,func.func(memref-expand,canonicalize),"
            "resolve-shaped-type-result-dims,func.func(cse),torch-func-backend-type-conversion,"
            "func.func(canonicalize,torch-finalizing-backend-type-conversion))", "linalg")
    except Exception as e:
        raise ExportError(f"cannot export {type(module).__name__}: {first_line(e)}") from e
    main = ir.Module.parse(str(raw), ctx.ir)
    body = main.body
    for decl in [op for op in body.operations
                 if op.operation.name == "func.func" and
                 ir.StringAttr(op.operation.attributes["sym_name"]).value.startswith("dyn_op")]:
        decl.operation.erase()
    for p in ctx.pieces:
        for op in list(p.module.body.operations):
            body.append(op)
    check_ops(main, f"cannot export {type(module).__name__}")
    return main, names, tensors, ctx.funcs


def _calls_for_operators(module, ir):
    """torch.operator "torch.dyncc_dyn.opN" -> func.call @dyn_opN, with a
    private declaration (its definition is added to the text later)."""
    decls = {}
    with module.context, ir.Location.unknown():
        def walk(op):
            for region in op.regions:
                for block in region.blocks:
                    for inner in list(block.operations):
                        o = inner.operation
                        if o.name == "torch.operator":
                            name = ir.StringAttr(o.attributes["name"]).value
                            if not name.startswith("torch.dyncc_dyn.op"):
                                continue
                            sym = "dyn_" + name.rsplit(".", 1)[1]
                            # the operand list (torch.prim.ListConstruct) unpacked
                            lst = o.operands[0].owner
                            operands = list(lst.operands)
                            with ir.InsertionPoint(o):
                                call = ir.Operation.create(
                                    "func.call", results=[r.type for r in o.results],
                                    operands=operands,
                                    attributes={"callee": ir.FlatSymbolRefAttr.get(sym)})
                            for old, new in zip(o.results, call.results):
                                old.replace_all_uses_with(new)
                            decls[sym] = ir.FunctionType.get([v.type for v in operands],
                                                             [v.type for v in o.results])
                            o.erase()
                            if lst.name == "torch.prim.ListConstruct" and not list(lst.results[0].uses):
                                lst.erase()
                        else:
                            walk(o)
        walk(module.operation)
        with ir.InsertionPoint(module.body):
            for sym, ft in decls.items():
                ir.Operation.create("func.func", regions=1, attributes={
                    "sym_name": ir.StringAttr.get(sym), "function_type": ir.TypeAttr.get(ft),
                    "sym_visibility": ir.StringAttr.get("private")})


def splice(module_text, funcs):
    """Adds the dyn functions' text at the end of the module's body."""
    cut = module_text.find("\n{-#")
    head, tail = (module_text, "") if cut < 0 else (module_text[:cut], module_text[cut:])
    head = head.rstrip()
    if not head.endswith("}"):
        raise ExportError("unexpected module text from torch-mlir")
    return head[:-1] + "".join(funcs) + "}\n" + tail
