"""ctest import.c-program: the tutorial of docs/import.md, step by step.
The GRU classifier of the tutorial is exported with dyncc.export, compiled
to a static library with `dyncc compile`, and linked into a plain C program
with the link line the tutorial gives; the program loads the weights file,
runs the model on token ids and prints the logits, which must match
PyTorch's (and the library's status must be OK).

    check_c_program.py WORKDIR
"""
import os
import subprocess
import sys

import numpy as np
import torch

import dyncc

MAIN_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include "classifier.h"

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  int64_t ids[1][32];
  FILE *f = fopen(argv[2], "rb");
  if (!f || fread(ids, sizeof ids, 1, f) != 1) { puts("cannot read ids"); return 1; }
  fclose(f);
  dynrt_model_t *m;
  dynrt_status_t st = classifier_create(NULL, argv[1], &m);
  if (st) { puts(dynrt_status_message(st)); return 1; }
  float logits[1][4];
  for (int i = 0; i < 4; ++i) logits[0][i] = 0.0f / 0.0f;  /* poisoned */
  st = classifier_run(m, &ids[0][0], &logits[0][0]);
  if (st) { puts(dynrt_status_message(st)); return 1; }
  for (int i = 0; i < 4; ++i) printf("%.9g\n", logits[0][i]);
  dynrt_model_destroy(m);
  return 0;
}
"""


class Classifier(torch.nn.Module):
    """The tutorial's model (docs/import.md)."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(1000, 64)
        self.rnn = torch.nn.GRU(64, 128, batch_first=True)
        self.head = torch.nn.Linear(128, 4)

    def forward(self, input_ids):
        out, _ = self.rnn(self.embed(input_ids))
        return self.head(out[:, -1])


def main():
    work = sys.argv[1]
    os.makedirs(os.path.join(work, "out", "lib"), exist_ok=True)
    torch.manual_seed(0)
    model = Classifier().eval()
    ids = torch.randint(0, 1000, (1, 32))
    app, weights = build_program(work, model, (ids,), "classifier", MAIN_C)
    worst = 0.0
    for seed in range(3):
        x = torch.randint(0, 1000, (1, 32), generator=torch.Generator().manual_seed(seed))
        path = os.path.join(work, f"ids{seed}.bin")
        x.numpy().astype(np.int64).tofile(path)
        r = subprocess.run([app, weights, path], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"the C program failed: {r.stdout}{r.stderr}")
            return 1
        got = np.array([float(v) for v in r.stdout.split()], np.float32)
        with torch.no_grad():
            want = model(x).numpy().ravel()
        err = float(np.abs(got - want).max())
        worst = max(worst, err)
        print(f"ids {seed}: C program {got}, PyTorch {want}, max abs difference {err:.3g}")
    ok = worst <= 1e-4 and np.isfinite(worst)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def build_program(work, model, inputs, name, main_c):
    """The tutorial's steps: dyncc.export to work/out/NAME.*, `dyncc compile`
    to a static library in work/out/lib, main_c compiled and linked with
    the link line of the docs. Returns (program, weights file)."""
    mlir, weights = dyncc.export(model, inputs, os.path.join(work, "out", name))
    lib = os.path.join(work, "out", "lib", name)
    subprocess.run([dyncc.dyncc_binary(), "compile", mlir, "-o", lib], check=True)
    src = os.path.join(work, "main.c")
    with open(src, "w") as f:
        f.write(main_c)
    app = os.path.join(work, "app")
    cc = [os.environ.get("CC", "cc"), "-I", os.path.dirname(lib), src,
          os.path.join(os.path.dirname(lib), f"lib{name}.a"),
          "-lpthread", "-ldl", "-lstdc++", "-lm", "-o", app]
    print(" ".join(cc))
    subprocess.run(cc, check=True)
    return app, weights


if __name__ == "__main__":
    sys.exit(main())
