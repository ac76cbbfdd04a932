"""ONNX -> dyncc through torch-mlir's ONNX importer.

`import_onnx("model.onnx", "out/model")` writes out/model.mlir and
out/model.safetensors. Floating-point initializers become weights (function
arguments marked {dyn.weight = "<initializer name>"}, values in the
safetensors file); integer initializers (shapes, axes, indices) stay
constants, since the static shapes of the graph depend on them.

The graph goes through torch-mlir's
torch-onnx-to-torch-backend-pipeline and
torch-backend-to-linalg-on-tensors-backend-pipeline.
"""
import os

from ._files import check_ops, write_outputs, tag_arguments
from .errors import ExportError, first_line

_PIPELINE = ("builtin.module(torch-onnx-to-torch-backend-pipeline,"
             "torch-backend-to-linalg-on-tensors-backend-pipeline)")


def _load(path):
    import onnx
    if not os.path.isfile(path):
        raise ExportError(f"{path}: no such file")
    try:
        model = onnx.load(path)
    except Exception as e:
        raise ExportError(f"{path}: not an ONNX model ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''})") from e
    if not model.graph.node and not model.graph.output:
        raise ExportError(f"{path}: not an ONNX model (no graph)")
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise ExportError(f"{path}: invalid ONNX model: {first_line(e)}") from e
    return model


def lift_weights(model):
    """Moves the floating-point initializers of more than one element of `model` (in place) to graph
    inputs placed before the real inputs; returns (names, numpy arrays)."""
    import onnx
    from onnx import numpy_helper
    g = model.graph
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
              onnx.TensorProto.BFLOAT16}
    initializer_names = {t.name for t in g.initializer}
    names, arrays, keep, lifted = [], [], [], []
    for t in g.initializer:
        numel = 1
        for d in t.dims:
            numel *= d
        # Scalars (epsilons, scales) stay constants: torch-mlir folds them.
        if t.data_type in floats and numel > 1:
            names.append(t.name)
            arrays.append(numpy_helper.to_array(t))
            lifted.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        else:
            keep.append(t)
    inputs = [i for i in g.input if i.name not in initializer_names]
    del g.initializer[:]
    g.initializer.extend(keep)
    del g.input[:]
    g.input.extend(lifted + inputs)
    return names, arrays, [i.name for i in inputs]


def rewrite_cumsum(model):
    """Replaces CumSum (which torch-mlir lowers to tm_tensor.scan, outside
    MLIR) by a masked ReduceSum over a lower-triangular constant: x unsqueezed
    at the axis, times tri[j, i] = (i <= j), summed over i. Needs the shapes
    (run after shape inference); exclusive/reverse forms are left alone (and
    then rejected by the compiler with a located error)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper
    g = model.graph
    shapes = {v.name: v.type.tensor_type for v in list(g.value_info) + list(g.input) + list(g.output)}
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = numpy_helper.to_array(a.t)
    nodes = []
    for k, n in enumerate(g.node):
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        tt = shapes.get(n.input[0])
        axis = consts.get(n.input[1]) if n.op_type == "CumSum" else None
        if (n.op_type != "CumSum" or attrs.get("exclusive", 0) or attrs.get("reverse", 0)
                or tt is None or axis is None or not tt.HasField("shape")):
            nodes.append(n)
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        rank, a = len(dims), int(np.asarray(axis).reshape(-1)[0]) % len(dims)
        if None in dims:
            nodes.append(n)
            continue
        size = dims[a]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
        tri = np.tril(np.ones((size, size), dtype)).reshape([size, size] + [1] * (rank - 1 - a))
        p = f"__dyncc_cumsum{k}"
        g.initializer.extend([numpy_helper.from_array(tri, p + "_tri"),
                              numpy_helper.from_array(np.array([a], np.int64), p + "_at"),
                              numpy_helper.from_array(np.array([a + 1], np.int64), p + "_sum")])
        nodes += [helper.make_node("Unsqueeze", [n.input[0], p + "_at"], [p + "_x"]),
                  helper.make_node("Mul", [p + "_x", p + "_tri"], [p + "_m"]),
                  helper.make_node("ReduceSum", [p + "_m", p + "_sum"], [n.output[0]], keepdims=0)]
    del g.node[:]
    g.node.extend(nodes)


def to_linalg(model, path="<onnx>"):
    """The ONNX model (a ModelProto, changed in place) as a torch-mlir
    linalg-on-tensors module, the weight names and arrays, and input names."""
    import onnx
    from torch_mlir.extras import onnx_importer
    from torch_mlir.dialects import torch as torch_d
    from torch_mlir import ir
    from torch_mlir.compiler_utils import run_pipeline_with_repro_report

    names, arrays, inputs = lift_weights(model)
    try:
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as e:
        raise ExportError(f"{path}: shape inference failed: {first_line(e)}") from e
    if any(n.op_type == "CumSum" for n in model.graph.node):
        rewrite_cumsum(model)
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    context = ir.Context()
    torch_d.register_dialect(context)
    try:
        info = onnx_importer.ModelInfo(model, config=onnx_importer.Config())
        module = info.create_module(context=context).operation
        imp = onnx_importer.NodeImporter.define_function(info.main_graph, module)
        imp.import_all()
        module.verify()
    except Exception as e:
        raise ExportError(f"{path}: torch-mlir cannot import it: {first_line(e)}") from e
    wrapped = ir.Module.parse(str(module), context) if not isinstance(module, ir.Module) else module
    try:
        run_pipeline_with_repro_report(wrapped, _PIPELINE, "Lowering ONNX to linalg-on-tensors")
    except Exception as e:
        msg = str(e).strip().splitlines()
        detail = next((l for l in msg if "error:" in l), msg[0] if msg else "")
        raise ExportError(f"{path}: cannot lower to linalg: {detail.strip()}") from e
    check_ops(wrapped, f"{path}: cannot import it")
    return wrapped, names, arrays, inputs


def import_onnx(path, out_base):
    """Imports the ONNX file at `path` to out_base.mlir + out_base.safetensors.
    Returns (mlir_path, weights_path); raises ExportError (nothing written)."""
    model = _load(os.fspath(path))
    module, names, arrays, inputs = to_linalg(model, os.fspath(path))
    idents = [n if n.isidentifier() else f"input{i}" for i, n in enumerate(inputs)]
    text = tag_arguments(module, names, idents)

    def write_weights(tmp):
        import numpy as np
        from safetensors.numpy import save_file
        save_file({n: np.ascontiguousarray(a) for n, a in zip(names, arrays)}, tmp)
    return write_outputs(os.fspath(out_base), text, write_weights)
