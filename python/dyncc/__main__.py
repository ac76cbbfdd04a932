"""python -m dyncc import model.onnx -o out/model  (what `dyncc import` runs)."""
import argparse
import sys

from .errors import ExportError


def main(argv=None):
    p = argparse.ArgumentParser(prog="dyncc import",
                                description="Import an ONNX model: writes NAME.mlir and "
                                            "NAME.safetensors for dyncc compile")
    p.add_argument("command", choices=["import"])
    p.add_argument("model", help="the .onnx file")
    p.add_argument("-o", dest="out", required=True, help="output base path (dir/name)")
    a = p.parse_args(argv)
    try:
        from .onnx_import import import_onnx
        mlir, weights = import_onnx(a.model, a.out)
    except ExportError as e:
        print(f"dyncc import: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {mlir} and {weights}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
