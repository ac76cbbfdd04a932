"""Writing an exported model: argument attributes, weights, whole files."""
import os
import tempfile

from .errors import ExportError


# Dialects of the ops that dyncc compiles (docs/ops.md); torch-mlir can also
# emit tm_tensor (sort, scan, scatter) and torch ops it could not lower.
_KNOWN_DIALECTS = {"builtin", "func", "arith", "math", "linalg", "tensor", "cf", "scf"}


def check_ops(module, what):
    """ExportError naming the first op outside the dialects dyncc compiles,
    with its location, before anything is written."""
    bad = {}   # op name -> location of its first occurrence, in walk order

    def walk(op):
        name = op.name
        if name.split(".", 1)[0] not in _KNOWN_DIALECTS and name not in bad:
            bad[name] = str(op.location)
        for region in op.regions:
            for block in region.blocks:
                for inner in block.operations:
                    walk(inner.operation)
    walk(module.operation)
    if bad:
        names = ", ".join(repr(n) for n in sorted(bad))
        first = next(iter(bad.values()))
        raise ExportError(f"{what}: torch-mlir lowered it to {names}, "
                          f"which dyncc does not support (first at {first}; see docs/ops.md)")


def tag_arguments(module, weight_names, input_names):
    """The text of `module` (a torch_mlir ir.Module with one public
    func.func, the entry; private helpers may follow) with its first len(weight_names) arguments marked
    {dyn.weight = name} and the rest {dyn.name = input name}."""
    from torch_mlir import ir
    with module.context:
        funcs = [op for op in module.body.operations if op.operation.name == "func.func" and
                 ("sym_visibility" not in op.operation.attributes or
                  ir.StringAttr(op.operation.attributes["sym_visibility"]).value != "private")]
        if len(funcs) != 1:
            raise ExportError(f"expected one function in the imported module, got {len(funcs)}")
        fn = funcs[0].operation
        nargs = len(fn.regions[0].blocks[0].arguments)
        if nargs != len(weight_names) + len(input_names):
            raise ExportError(f"the imported function has {nargs} arguments; expected "
                              f"{len(weight_names)} weights and {len(input_names)} inputs")
        attrs = [ir.DictAttr.get({"dyn.weight": ir.StringAttr.get(n)}) for n in weight_names]
        attrs += [ir.DictAttr.get({"dyn.name": ir.StringAttr.get(n)}) for n in input_names]
        fn.attributes["arg_attrs"] = ir.ArrayAttr.get(attrs)
        # assume_verified: a model of dyncc.nn modules calls functions that
        # are added to the text afterwards (nn/_export.py splice)
        return module.operation.get_asm(assume_verified=True)


def save_weights(path, names, tensors):
    """Writes the tensors as safetensors under their names (each its own
    contiguous copy: tied and strided tensors are fine)."""
    from safetensors.torch import save_file
    save_file({n: t.detach().contiguous().clone() for n, t in zip(names, tensors)}, path)


def write_outputs(base, mlir_text, write_weights):
    """Writes base.mlir and base.safetensors whole: both go to temporary
    files beside them first and are renamed only when both are complete."""
    directory = os.path.dirname(os.path.abspath(base)) or "."
    if not os.path.basename(base):
        raise ExportError(f"output path '{base}' names no file")
    if not os.path.isdir(directory):
        raise ExportError(f"output directory '{directory}' does not exist")
    mlir_path, weights_path = base + ".mlir", base + ".safetensors"
    tmps = []
    try:
        fd, tmp_mlir = tempfile.mkstemp(dir=directory, prefix=".dyncc-", suffix=".mlir")
        tmps.append(tmp_mlir)
        with os.fdopen(fd, "w") as f:
            f.write(mlir_text)
        fd, tmp_w = tempfile.mkstemp(dir=directory, prefix=".dyncc-", suffix=".safetensors")
        os.close(fd)
        tmps.append(tmp_w)
        write_weights(tmp_w)
        os.replace(tmp_w, weights_path)
        os.replace(tmp_mlir, mlir_path)
        tmps.clear()
    except OSError as e:
        raise ExportError(f"cannot write '{base}.*': {e}") from e
    finally:
        for t in tmps:
            try:
                os.unlink(t)
            except OSError:
                pass
    return mlir_path, weights_path
