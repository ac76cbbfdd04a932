"""ctest nn.c-program: the early-exit tutorial of docs/nn.md, step by step.
A dyncc.nn.EarlyExit classifier is exported with dyncc.export, compiled to
a static library with `dyncc compile`, and linked into a plain C program
that sets the threshold (`dynrt_model_set_param`), runs the model on token
ids and prints the logits and the exit layer, which must match the eager
module's.

    check_c_program.py WORKDIR
"""
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn

import dyncc.nn as dnn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "import"))
from check_c_program import build_program  # noqa: E402  (the import tutorial's steps)

MAIN_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include "net.h"

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  int64_t ids[1][16];
  FILE *f = fopen(argv[2], "rb");
  if (!f || fread(ids, sizeof ids, 1, f) != 1) { puts("cannot read ids"); return 1; }
  fclose(f);
  dynrt_model_t *m;
  dynrt_status_t st = net_create(NULL, argv[1], &m);
  if (st) { puts(dynrt_status_message(st)); return 1; }
  float theta = (float)atof(argv[3]);
  st = dynrt_model_set_param(m, "theta", &theta, 1);
  if (st) { puts(dynrt_status_message(st)); return 1; }
  float logits[1][3];
  int32_t exit_layer[1] = {-1};
  for (int i = 0; i < 3; ++i) logits[0][i] = 0.0f / 0.0f;  /* poisoned */
  st = net_run(m, &ids[0][0], &logits[0][0], exit_layer);
  if (st) { puts(dynrt_status_message(st)); return 1; }
  printf("%d\n", exit_layer[0]);
  for (int i = 0; i < 3; ++i) printf("%.9g\n", logits[0][i]);
  dynrt_model_destroy(m);
  return 0;
}
"""


class Layer(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, h):
        return self.norm(h + torch.tanh(self.fc(h)))


class Head(nn.Module):
    def __init__(self, d, classes):
        super().__init__()
        self.fc = nn.Linear(d, classes)

    def forward(self, h):
        return self.fc(h[:, 0]) * 4


class Net(nn.Module):
    """The tutorial's model (docs/nn.md)."""

    def __init__(self, d=64, layers=4, classes=3):
        super().__init__()
        self.embed = nn.Embedding(1000, d)
        self.ee = dnn.EarlyExit([Layer(d) for _ in range(layers)],
                                [Head(d, classes) for _ in range(layers)],
                                dnn.Entropy(0.5))

    def forward(self, ids):
        return self.ee(self.embed(ids))


def main():
    work = sys.argv[1]
    os.makedirs(os.path.join(work, "out", "lib"), exist_ok=True)
    torch.manual_seed(0)
    model = Net().eval()
    ids = torch.randint(0, 1000, (1, 16))
    app, weights = build_program(work, model, (ids,), "net", MAIN_C)
    bad, seen = 0, set()
    for theta in (0.1, 0.5, 0.9):
        model.ee.criterion.value = theta
        for seed in range(4):
            x = torch.randint(0, 1000, (1, 16), generator=torch.Generator().manual_seed(seed))
            path = os.path.join(work, f"ids{seed}.bin")
            x.numpy().astype(np.int64).tofile(path)
            r = subprocess.run([app, weights, path, str(theta)], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"the C program failed: {r.stdout}{r.stderr}")
                return 1
            vals = r.stdout.split()
            layer, got = int(vals[0]), np.array([float(v) for v in vals[1:]], np.float32)
            with torch.no_grad():
                want = model(x).numpy().ravel()
            want_layer = int(model.ee.exit_layer[0])
            err = float(np.abs(got - want).max())
            ok = layer == want_layer and err <= 1e-5
            bad += not ok
            seen.add(layer)
            print(f"theta {theta} ids {seed}: C program exits at {layer}, eager at {want_layer}; "
                  f"logits differ by {err:.2g}{'' if ok else '  <-- FAIL'}")
    ok = bad == 0 and len(seen) >= 2
    print("PASS" if ok else f"FAIL ({bad} differ, exit layers seen {sorted(seen)})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
