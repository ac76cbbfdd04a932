"""ctest nn.c-program: the C side of docs/nn.md, step by step.
A dyncc.nn.EarlyExit classifier is exported with dyncc.export, compiled to
a static library with `dyncc compile`, and linked into a plain C program
that sets the threshold (`dynrt_model_set_param`), runs the model on token
ids and prints the logits and the exit layer, which must match the eager
module's. Then a dyncc.nn.MoE layer and a dyncc.nn.Skim loop the same way,
their C programs reading the run reports (`dynrt_model_run_ex`): tokens per
expert, dropped pairs and assignments, the skim trace.

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


MOE_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include "moe.h"

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  float x[16][8], y[16][8];
  FILE *f = fopen(argv[2], "rb");
  if (!f || fread(x, sizeof x, 1, f) != 1) { puts("cannot read x"); return 1; }
  fclose(f);
  dynrt_model_t *m;
  dynrt_status_t st = moe_create(NULL, argv[1], &m);
  if (st) { puts(dynrt_status_message(st)); return 1; }
  uint64_t per_expert[4];
  int32_t assignment[16 * 1];
  dynrt_route_report_t route = {0};
  route.tokens_per_expert = per_expert;
  route.assignment = assignment;
  dynrt_run_report_t report = {0};
  report.num_routes = 1;
  report.routes = &route;
  void *inputs[] = {x}, *outputs[] = {y};
  st = dynrt_model_run_ex(m, (const void *const *)inputs, outputs, &report);
  if (st) { puts(dynrt_status_message(st)); return 1; }
  printf("%llu\n", (unsigned long long)route.dropped);
  for (int e = 0; e < 4; ++e) printf("%llu\n", (unsigned long long)per_expert[e]);
  for (int t = 0; t < 16; ++t) printf("%d\n", assignment[t]);
  for (int t = 0; t < 16; ++t) for (int d = 0; d < 8; ++d) printf("%.9g\n", y[t][d]);
  dynrt_model_destroy(m);
  return 0;
}
"""

SKIM_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include "skim.h"

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  float seq[12][6], h0[8] = {0}, h[8];
  FILE *f = fopen(argv[2], "rb");
  if (!f || fread(seq, sizeof seq, 1, f) != 1) { puts("cannot read seq"); return 1; }
  fclose(f);
  dynrt_model_t *m;
  dynrt_status_t st = skim_create(NULL, argv[1], &m);
  if (st) { puts(dynrt_status_message(st)); return 1; }
  int32_t trace[12 * 3];
  dynrt_skip_report_t skip = {0};
  skip.capacity = 12;
  skip.trace = trace;
  dynrt_run_report_t report = {0};
  report.num_skips = 1;
  report.skips = &skip;
  void *inputs[] = {seq, h0}, *outputs[] = {h};
  st = dynrt_model_run_ex(m, (const void *const *)inputs, outputs, &report);
  if (st) { puts(dynrt_status_message(st)); return 1; }
  printf("%d\n", skip.steps);
  for (int i = 0; i < skip.steps * 3; ++i) printf("%d\n", trace[i]);
  for (int i = 0; i < 8; ++i) printf("%.9g\n", h[i]);
  dynrt_model_destroy(m);
  return 0;
}
"""


class FFN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 8)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6 + 8, 2)

    def forward(self, x, h):
        return torch.argmax(self.fc(torch.cat([x, h])))


class GRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(6, 8)

    def forward(self, x, h):
        return self.cell(x, h)


def run_c(app, weights, arr, work, tag):
    path = os.path.join(work, f"{tag}.bin")
    arr.numpy().astype(np.float32).tofile(path)
    r = subprocess.run([app, weights, path], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"the C program failed: {r.stdout}{r.stderr}")
        return None
    return r.stdout.split()


def check_moe(work):
    """The route report from C (docs/nn.md) against the eager module."""
    torch.manual_seed(1)
    moe = dnn.MoE(nn.Linear(8, 4), [FFN() for _ in range(4)], "switch", capacity_factor=1.0)
    d = os.path.join(work, "moe")
    os.makedirs(os.path.join(d, "out", "lib"), exist_ok=True)
    app, weights = build_program(d, moe, (torch.randn(16, 8),), "moe", MOE_C)
    bad = 0
    for seed in range(3):
        x = torch.randn(16, 8, generator=torch.Generator().manual_seed(seed))
        vals = run_c(app, weights, x, d, f"x{seed}")
        if vals is None:
            return 1
        with torch.no_grad():
            want = moe(x)
        r = moe.routing
        dropped, tpe = int(vals[0]), [int(v) for v in vals[1:5]]
        asg = np.array([int(v) for v in vals[5:21]], np.int32)
        y = np.array([float(v) for v in vals[21:]], np.float32).reshape(16, 8)
        ok = (dropped == r.dropped and tpe == r.tokens_per_expert.tolist() and
              np.array_equal(asg, r.assignment) and np.abs(y - want.numpy()).max() <= 1e-5)
        bad += not ok
        print(f"moe x{seed}: C program tokens per expert {tpe}, dropped {dropped}; eager "
              f"{r.tokens_per_expert.tolist()}, {r.dropped}; assignments "
              f"{'equal' if np.array_equal(asg, r.assignment) else 'DIFFER'}")
    return bad


def check_skim(work):
    """The skim trace from C against the eager loop's."""
    torch.manual_seed(2)
    skim = dnn.Skim(["read", "skip"], Gate(), {0: GRU()}, budget=12)
    d = os.path.join(work, "skim")
    os.makedirs(os.path.join(d, "out", "lib"), exist_ok=True)
    app, weights = build_program(d, skim, (torch.randn(12, 6), torch.zeros(8)), "skim", SKIM_C)
    bad = 0
    for seed in range(3):
        seq = torch.randn(12, 6, generator=torch.Generator().manual_seed(seed)) * 2
        vals = run_c(app, weights, seq, d, f"seq{seed}")
        if vals is None:
            return 1
        with torch.no_grad():
            want = skim(seq, torch.zeros(8))
        n = int(vals[0])
        trace = [tuple(int(v) for v in vals[1 + 3 * i:4 + 3 * i]) for i in range(n)]
        h = np.array([float(v) for v in vals[1 + 3 * n:]], np.float32)
        ok = trace == skim.trace and np.abs(h - want.numpy()).max() <= 1e-5
        bad += not ok
        print(f"skim seq{seed}: C program {n} steps, trace "
              f"{'equal to' if trace == skim.trace else 'DIFFERS from'} eager's; actions "
              f"{''.join('RK'[a] for _, a, _ in trace)}")
    return bad


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
    bad += check_moe(work) + check_skim(work)
    ok = bad == 0 and len(seen) >= 2
    print("PASS" if ok else f"FAIL ({bad} differ, exit layers seen {sorted(seen)})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
