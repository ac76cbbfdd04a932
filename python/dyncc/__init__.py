"""dyncc's Python front end.

    dyncc.export(module, example_inputs, "out/model")  # -> model.mlir, model.safetensors
    dyncc.import_onnx("model.onnx", "out/model")       # the same from an ONNX file
    lib = dyncc.build("out/model.mlir", "out/lib")      # dyncc compile --shared
    m = dyncc.load(lib, "out/model.safetensors")        # run on numpy / torch tensors
    y = m(x)

    fast = dyncc.compile(model, (x,))                    # export + compile, cached
    y = fast(x); fast.report.exit_layer

    dyncc.tune("out/model.mlir", "out/model.safetensors", [x])  # GEMMs timed in the
    # model; then `dyncc compile --tune` builds with the winners

dyncc.nn holds the modules of dynamic networks (EarlyExit, MoE) that export
to dyn ops. See docs/import.md and docs/nn.md.
"""
from .errors import ExportError
from .export import export, export_weights
from .onnx_import import import_onnx
from .library import build, load, Model, dyncc_binary
from .compile import compile, Compiled, Report
from .tuning import tune
from . import nn

__all__ = ["ExportError", "export", "export_weights", "import_onnx", "build", "load", "Model", "dyncc_binary",
           "compile", "Compiled", "Report", "tune", "nn"]
