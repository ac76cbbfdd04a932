"""PyTorch -> dyncc: torch.export + torch-mlir's FX importer.

`export(module, example_inputs, path)` writes `path.mlir` (the model as
linalg-on-tensors, every parameter and buffer an argument marked
`{dyn.weight = "<state_dict key>"}`) and `path.safetensors` (the weights as
PyTorch holds them), ready for `dyncc compile path.mlir --weights ...`.

Parameters are not frozen into the graph: the module is called through
`torch.func.functional_call` with its parameters and buffers as inputs, so
they reach MLIR as arguments named after `module.named_parameters()` /
`named_buffers()` (the state_dict keys; non-persistent buffers such as BERT's
`position_ids` keep their module path too).
"""
import contextlib
import inspect
import os

from ._files import check_ops, write_outputs, save_weights, tag_arguments
from .errors import ExportError, first_line


def _flat_outputs(out):
    import torch
    from torch.utils import _pytree as pytree
    leaves = [x for x in pytree.tree_leaves(out) if isinstance(x, torch.Tensor)]
    if not leaves:
        raise ExportError("the module returns no tensor")
    return tuple(leaves)


def _input_names(module, n):
    """Names of the first n positional arguments of module.forward, as C
    identifiers (x, input_ids, ...)."""
    try:
        params = [p.name for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = params[:n] + [f"input{i}" for i in range(len(params), n)]
    return [n if n.isidentifier() else f"input{i}" for i, n in enumerate(names)]


def weights_of(module):
    """(names, tensors) of the module's parameters and buffers, tied ones once."""
    names, tensors = [], []
    for name, t in list(module.named_parameters()) + list(module.named_buffers()):
        names.append(name)
        tensors.append(t.detach())
    return names, tensors


def _cumsum(x, dim, dtype=None):
    """aten.cumsum as a masked sum over a lower-triangular iota mask: torch-mlir
    lowers cumsum to tm_tensor.scan, which MLIR alone cannot parse. O(n^2) in
    the scanned length (position ids of RoBERTa-style models)."""
    import torch
    if dtype is not None:
        x = x.to(dtype)
    elif not x.dtype.is_floating_point:
        x = x.to(torch.int64)   # what torch.cumsum returns for integers
    dim = dim % x.dim()
    xt = x.movedim(dim, -1)
    n = xt.shape[-1]
    i = torch.arange(n, device=x.device)
    tri = (i.unsqueeze(1) >= i.unsqueeze(0)).to(xt.dtype)  # tri[j, i] = i <= j
    return (xt.unsqueeze(-2) * tri).sum(-1).movedim(-1, dim)


def _decompositions():
    import torch
    from torch_mlir.extras.fx_decomp_util import get_decomposition_table
    table = dict(get_decomposition_table())
    table[torch.ops.aten.cumsum.default] = _cumsum
    return table


@contextlib.contextmanager
def eval_mode(module):
    """The module in eval mode (dropout off), every submodule's own training
    flag restored afterwards."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


DENSE_LITERAL_LIMIT = 4096


@contextlib.contextmanager
def dense_literals():
    """Tensors created in forward (torch.tensor([...]) constants) become
    dense<...> literals up to DENSE_LITERAL_LIMIT elements instead of the
    dense_resource blobs torch-mlir's FX importer makes of every tensor of
    more than one element, which dyncc reads only as weights."""
    import numpy as np
    import torch
    from torch_mlir.extras import fx_importer as fi
    original = fi._make_vtensor_literal_op

    def literal(tensor, vtensor_type, tracker):
        npy = fi.TORCH_DTYPE_TO_NPY_TYPE.get(tensor.dtype)
        mlir_t = fi.TORCH_DTYPE_TO_MLIR_TYPE.get(tensor.dtype)
        if not (1 < tensor.numel() <= DENSE_LITERAL_LIMIT and npy is not None and mlir_t
                and tensor.dtype != torch.bool):
            return original(tensor, vtensor_type, tracker)
        mapping = tracker.track(tensor)
        if mapping.is_empty:
            arr = np.array(tensor.tolist()).astype(npy)
            mapping.value = fi.DenseElementsAttr.get(arr, type=mlir_t(), shape=arr.shape)
        return fi.Operation.create(name="torch.vtensor.literal", results=[vtensor_type],
                                   attributes={"value": mapping.value})
    fi._make_vtensor_literal_op = literal
    try:
        yield
    finally:
        fi._make_vtensor_literal_op = original


def to_linalg(module, example_inputs, func_name="main", dynamic_rows=False):
    """The module as a torch-mlir linalg-on-tensors module (text) and the
    (names, tensors) of its weights, which are its first arguments. With
    dynamic_rows, the leading dimension of every input is `?` (the rows of
    a dyn.route expert body)."""
    import torch
    from torch_mlir import fx

    if not isinstance(module, torch.nn.Module):
        raise ExportError(f"expected a torch.nn.Module, got {type(module).__name__}")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    example_inputs = tuple(example_inputs)
    for i, x in enumerate(example_inputs):
        if not isinstance(x, torch.Tensor):
            raise ExportError(f"example input {i} is a {type(x).__name__}, not a tensor")
    names, tensors = weights_of(module)
    count = len(names)
    mod_name = type(module).__name__

    class Functional(torch.nn.Module):
        """The module with its weights as inputs; holds no state itself."""

        def forward(self, *args):
            state = dict(zip(names, args[:count]))
            out = torch.func.functional_call(module, state, args[count:], tie_weights=True)
            return _flat_outputs(out)

    dynamic = None
    if dynamic_rows:
        rows = torch.export.Dim("rows")
        dynamic = (tuple([None] * count + [{0: rows}] * len(example_inputs)),)
    try:
        with eval_mode(module), dense_literals():
            mlir = fx.export_and_import(Functional(), *tensors, *example_inputs,
                                        output_type="linalg-on-tensors", func_name=func_name,
                                        decomposition_table=_decompositions(),
                                        dynamic_shapes=dynamic)
    except ExportError:
        raise
    except Exception as e:  # torch.export and torch-mlir raise many kinds
        raise ExportError(f"cannot export {mod_name}: {type(e).__name__}: {first_line(e)}") from e
    check_ops(mlir, f"cannot export {mod_name}")
    return mlir, names, tensors


def export(module, example_inputs, path, *, input_names=None):
    """Exports `module` called on `example_inputs` to `path.mlir` and
    `path.safetensors`. Returns (mlir_path, weights_path).

    Shapes are those of the example inputs (dyncc compiles static shapes).
    Raises ExportError (nothing written) when torch.export or torch-mlir
    cannot take the module."""
    import torch
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    example_inputs = tuple(example_inputs)
    if input_names is None:
        input_names = _input_names(module, len(example_inputs))
    from .nn._export import dyn_modules, export_dynamic, splice
    if isinstance(module, torch.nn.Module) and dyn_modules(module):
        mlir, names, tensors, funcs = export_dynamic(module, example_inputs)
        text = splice(tag_arguments(mlir, names, input_names), funcs)
    else:
        mlir, names, tensors = to_linalg(module, example_inputs)
        text = tag_arguments(mlir, names, input_names)
    base = os.fspath(path)
    return write_outputs(base, text, lambda tmp: save_weights(tmp, names, tensors))


def export_weights(module, path):
    """Writes `path.safetensors` as `export(module, ..., path)` would, without
    tracing the module (no torch-mlir needed): for a machine that runs a
    library compiled elsewhere and only needs the weights of a rebuilt
    module. Tensors the exported model does not use are written too."""
    import os
    from .nn._export import export_weights as named_weights
    names, tensors = named_weights(module)
    weights_path = path + ".safetensors"
    tmp = weights_path + ".tmp"
    save_weights(tmp, names, tensors)
    os.replace(tmp, weights_path)
    return weights_path
