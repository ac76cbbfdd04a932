"""ctest import.errors: bad input to the import path is a clear error with
exit status 1 and nothing written.

  1. a module torch.export cannot export (data-dependent control flow):
     dyncc.export raises ExportError naming the module; no files;
  2. a truncated ONNX file and a text file: `dyncc import` exits 1 with a
     message naming the file; no files;
  3. an op dyncc does not support (torch.sort -> tm_tensor.sort): an
     ExportError naming the module and the op; no files;
  4. a weights file that does not match the model: creating the model fails
     with a status naming the tensor;
  5. a token id outside the embedding table (100, 10^6, -1): the run fails
     with the status of the gather's index check (PyTorch raises too), and
     later runs are unaffected.

    check_errors.py WORKDIR
"""
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402
import dyncc  # noqa: E402

failures = []


def expect(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def written(work, stem):
    return sorted(f for f in os.listdir(work) if f.startswith(stem) or f.startswith(".dyncc-"))


class DataDependent(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:          # a Python branch on a tensor value
            return x * 2
        return x - 1


class Sorts(torch.nn.Module):
    def forward(self, x):
        return torch.sort(x, dim=-1).values


def main():
    work = sys.argv[1]
    os.makedirs(work, exist_ok=True)
    dyncc_exe = dyncc.dyncc_binary()

    # 1. torch.export fails.
    try:
        dyncc.export(DataDependent(), (torch.randn(4),), os.path.join(work, "dd"))
        expect(False, "export of data-dependent control flow raises")
    except dyncc.ExportError as e:
        print(f"     {e}")
        expect("DataDependent" in str(e), "the ExportError names the module")
    expect(written(work, "dd") == [], "nothing written for the failed export")

    # 2. Truncated and non-ONNX files.
    module, example = models.make("conv1d")
    good = os.path.join(work, "conv.onnx")
    torch.onnx.export(module, example, good, dynamo=True, verbose=False)
    with open(good, "rb") as f:
        data = f.read()
    bad_files = {"truncated.onnx": data[: len(data) // 3], "text.onnx": b"this is not a model\n"}
    for name, content in bad_files.items():
        path = os.path.join(work, name)
        with open(path, "wb") as f:
            f.write(content)
        out = os.path.join(work, "bad_" + name[:-5])
        r = subprocess.run([dyncc_exe, "import", path, "-o", out], capture_output=True, text=True)
        print(f"     {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ''}")
        expect(r.returncode == 1, f"dyncc import {name} exits 1")
        expect(path in r.stderr and "error" in r.stderr, f"the message names {name}")
        expect(written(work, "bad_" + name[:-5]) == [], f"nothing written for {name}")

    # 3. An op dyncc does not support reaches the compiler with its location.
    try:
        mlir, _ = dyncc.export(Sorts(), (torch.randn(4, 8),), os.path.join(work, "sorts"))
        lib_base = os.path.join(work, "lib", "sorts")
        os.makedirs(os.path.dirname(lib_base), exist_ok=True)
        r = subprocess.run([dyncc_exe, "compile", mlir, "-o", lib_base], capture_output=True,
                           text=True)
        print(f"     {r.stderr.strip().splitlines()[0] if r.stderr.strip() else ''}")
        expect(r.returncode == 1, "dyncc compile of an unsupported op exits 1")
        expect("sorts.mlir:" in r.stderr and "error:" in r.stderr and "unsupported op" in r.stderr,
               "a located 'unsupported op' error")
        expect(not os.path.exists(os.path.join(work, "lib", "libsorts.a")), "no library written")
        expect(False, "export of torch.sort raises")
    except dyncc.ExportError as e:  # tm_tensor.sort: refused before anything is written
        print(f"     {e}")
        expect("Sorts" in str(e) and "tm_tensor.sort" in str(e),
               "the ExportError names the module and the op")
        expect(written(work, "sorts") == [], "nothing written for the unsupported op")

    # 4. Weights that do not match.
    bert, bx = models.make("bert")
    gpt, gx = models.make("gpt2")
    mb, wb = dyncc.export(bert, bx, os.path.join(work, "bert"))
    _, wg = dyncc.export(gpt, gx, os.path.join(work, "gpt2"))
    lib = dyncc.build(mb, os.path.join(work, "lib", "bert"))
    try:
        dyncc.load(lib, wg)
        expect(False, "loading BERT with GPT-2's weights fails")
    except RuntimeError as e:
        print(f"     {e}")
        expect("model.embeddings" in str(e) or "tensor" in str(e),
               "the status names the missing or mismatched tensor")

    # 5. A token id outside the embedding table at run time: PyTorch raises;
    #    the library fails the run with the gather's check, never reads
    #    outside the table.
    m = dyncc.load(lib, wb)
    for bad_id in (100, 10**6, -1):
        ids = bx[0].clone()
        ids[0, 3] = bad_id
        try:
            m(ids, bx[1])
            expect(False, f"a run with token id {bad_id} fails")
        except RuntimeError as e:
            print(f"     {e}")
            # torch-mlir's own bounds check (a cf.assert) or dyncc's check of
            # a gather the model wrote, whichever the kernel evaluates first.
            expect("kernel check failed: index must be" in str(e) or
                   f"gather index {bad_id} is out of range [0, 100 )" in str(e),
                   f"token id {bad_id}: the status is the index check")
    expect(np.abs(m(*bx) - bert(*bx).detach().numpy()).max() < 1e-4,
           "the model still runs correctly after failed runs")
    m.close()
    print("PASS" if not failures else f"FAIL: {len(failures)} checks")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
