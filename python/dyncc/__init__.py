"""dyncc's Python front end.

    dyncc.export(module, example_inputs, "out/model")  # -> model.mlir, model.safetensors
    dyncc.import_onnx("model.onnx", "out/model")       # the same from an ONNX file
    lib = dyncc.build("out/model.mlir", "out/lib")      # dyncc compile --shared
    m = dyncc.load(lib, "out/model.safetensors")        # run on numpy / torch tensors
    y = m(x)

See docs/import.md.
"""
from .errors import ExportError
from .export import export
from .onnx_import import import_onnx
from .library import build, load, Model, dyncc_binary

__all__ = ["ExportError", "export", "import_onnx", "build", "load", "Model", "dyncc_binary"]
