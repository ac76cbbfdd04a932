#!/usr/bin/env python3
"""dyncc.nn misuse: each mistake is a Python exception naming the module and
the rule, raised before any MLIR is written (ctest nn.errors); a compiled
model rejects what its eager module rejects.

    check_errors.py WORK_DIR
"""
import os
import sys

import torch
import torch.nn as nn

import dyncc
import dyncc.nn as dnn

failures = []


def expect(name, fn, exc, *words, path=None):
    try:
        fn()
    except exc as e:
        msg = str(e)
        missing = [w for w in words if w not in msg]
        if missing:
            failures.append(f"{name}: message lacks {missing}: {msg}")
        else:
            print(f"  ok {name}: {type(e).__name__}: {msg.splitlines()[0][:160]}")
        if path is not None:
            left = [p for p in (path + ".mlir", path + ".safetensors") if os.path.exists(p)]
            if left:
                failures.append(f"{name}: {left} written despite the error")
        return
    except Exception as e:  # the wrong kind
        failures.append(f"{name}: {type(e).__name__} instead of {exc.__name__}: {e}")
        return
    failures.append(f"{name}: no error")


class MixingExpert(nn.Module):
    """Normalizes over the tokens it receives: rows depend on each other."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return self.fc(x - x.mean(0, keepdim=True))


class Expert(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return self.fc(x)


class TokenHead(nn.Module):
    """Returns per-token scores [B, S, C]: not a sample's logits."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 2)

    def forward(self, h):
        return self.fc(h)


class Wrap(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.inner = m

    def forward(self, *xs):
        return self.inner(*xs)


class Gate(nn.Module):
    def __init__(self, bad=None):
        super().__init__()
        self.fc = nn.Linear(8 + 4, 2)
        self.bad = bad

    def forward(self, x, h):
        a = torch.argmax(self.fc(torch.cat([x, h])))
        if self.bad == "range":   # out of range on large inputs only
            return a + 5 * (x.sum() > 100).to(a.dtype)
        return a


class WrongCell(nn.Module):
    """Returns a state of 3 units where the state has 4."""

    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(8, 3)

    def forward(self, x, h):
        return self.cell(x, h[:3])


class Cell(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(8, 4)

    def forward(self, x, h):
        return self.cell(x, h)


def main():
    work = sys.argv[1]
    os.makedirs(work, exist_ok=True)
    os.environ["DYNCC_CACHE"] = os.path.join(work, "cache")
    out = os.path.join(work, "m")
    x = torch.randn(6, 8)

    moe = Wrap(dnn.MoE(nn.Linear(8, 2), [MixingExpert(), MixingExpert()], "top_k", k=1))
    expect("expert mixes rows", lambda: dyncc.export(moe, (x,), out), dyncc.ExportError,
           "MoE 'inner'", "mixes rows", path=out)
    expect("unknown strategy", lambda: dnn.MoE(nn.Linear(8, 2), [Expert(), Expert()], "topk"),
           ValueError, "MoE", "unknown strategy 'topk'")
    expect("k outside [1, E]", lambda: dnn.MoE(nn.Linear(8, 2), [Expert(), Expert()], "top_k",
                                              k=3), ValueError, "MoE", "1 <= k <= num_experts")
    expect("experts differ", lambda: dnn.MoE(nn.Linear(8, 2), [Expert(), MixingExpert(),
                                                               nn.Linear(8, 4)], "switch"),
           ValueError, "experts[2]", "same architecture")
    wide = Wrap(dnn.MoE(nn.Linear(8, 3), [Expert(), Expert()], "switch"))
    expect("gate of the wrong width", lambda: dyncc.export(wide, (x,), out), dyncc.ExportError,
           "MoE 'inner'", "gate must return float32 logits [T, E] = [6, 2]", path=out)

    ee = Wrap(dnn.EarlyExit([nn.Identity(), nn.Identity()], [TokenHead(), TokenHead()],
                            dnn.Entropy(0.3)))
    expect("criterion on per-token scores", lambda: dyncc.export(ee, (torch.randn(2, 5, 8),), out),
           dyncc.ExportError, "EarlyExit 'inner'", "heads[0] must return float32 logits [B, C]",
           path=out)
    expect("heads count", lambda: dnn.EarlyExit([nn.Identity()] * 3, [TokenHead()] * 2,
                                                dnn.Entropy(0.3)), ValueError, "3 layers need 3 heads")
    expect("score heads without LearnedScore",
           lambda: dnn.EarlyExit([nn.Identity()] * 2, [TokenHead()] * 2, dnn.Entropy(0.3),
                                 score_heads=[nn.Identity()]), ValueError, "LearnedScore")
    expect("patience not an integer", lambda: dnn.Patience(1.5), ValueError, "Patience", "integer")
    pc = Wrap(dnn.EarlyExit([nn.Identity()] * 2, [nn.Linear(8, 2)] * 2, dnn.PerClass([0.5] * 3)))
    expect("per_class thresholds", lambda: dyncc.export(pc, (torch.randn(2, 8),), out),
           dyncc.ExportError, "PerClass has 3 thresholds for 2 classes", path=out)

    seq, h0 = torch.randn(5, 8), torch.zeros(4)
    sk = Wrap(dnn.Skim(["read", "skip"], Gate(), {0: WrongCell()}, budget=5))
    expect("skim cell with the wrong state shape", lambda: dyncc.export(sk, (seq, h0), out),
           dyncc.ExportError, "Skim 'inner'", "the cell of action 0 (read)", path=out)
    expect("unknown action", lambda: dnn.Skim(["read", "hop"], Gate(), {0: Cell()}, 5),
           ValueError, "unknown skim action 'hop'")
    expect("skip with a cell", lambda: dnn.Skim(["read", "skip"], Gate(), {0: Cell(), 1: Cell()}, 5),
           ValueError, "skip", "takes no cell")
    expect("read without a cell", lambda: dnn.Skim(["read", "skip"], Gate(), {}, 5),
           ValueError, "action 0 (read)", "give it a cell")
    expect("budget", lambda: dnn.Skim(["read"], Gate(), {0: Cell()}, 2 ** 40), ValueError, "budget")

    # an action out of range fails eagerly and compiled, each with its message
    bad = Wrap(dnn.Skim(["read", "skip"], Gate("range"), {0: Cell()}, budget=5))
    big = seq.clone()
    big[2] = 100
    expect("eager action out of range", lambda: bad(big, h0), dnn.SkimError,
           "step 2 (position 2) chose action", "outside [0, 2)")
    fast = dyncc.compile(bad, (seq, h0))
    expect("compiled action out of range", lambda: fast(big, h0), RuntimeError, "outside [0, 2)")
    expect("export of a model that fails eagerly", lambda: dyncc.export(bad, (big, h0), out),
           dyncc.ExportError, "fails on the example inputs", "outside [0, 2)", path=out)
    # runs the runtime fails fail eagerly too: a NaN gate logit, a hash id
    # outside the table
    moe_ok = Wrap(dnn.MoE(nn.Linear(8, 2), [Expert(), Expert()], "top_k", k=1))
    fast = dyncc.compile(moe_ok, (x,))
    xnan = x.clone()
    xnan[3, 0] = float("nan")
    expect("eager NaN gate logit", lambda: moe_ok(xnan), dnn.RouteError, "token 3")
    expect("compiled NaN gate logit", lambda: fast(xnan), RuntimeError, "token 3", "nan")
    table = Wrap(dnn.MoE(None, [Expert(), Expert()], "hash", table=[0, 1, 1, 0]))
    ids = torch.tensor([0, 1, 2, 3, 1, 2])
    fast = dyncc.compile(table, (x, ids))
    bad_ids = torch.tensor([0, 1, 2, 9, 1, 2])
    expect("eager hash id outside the table", lambda: table(x, bad_ids), dnn.RouteError,
           "token 3", "outside the table")
    expect("compiled hash id outside the table", lambda: fast(x, bad_ids), RuntimeError,
           "token id 9 at position 3", "outside the table [0, 4)")

    ok = Wrap(dnn.Skim(["read", "skip"], Gate(), {0: Cell()}, budget=5))
    fast = dyncc.compile(ok, (seq, h0))
    expect("input of the wrong shape", lambda: fast(torch.randn(4, 8), h0), ValueError,
           "shape (4, 8)", "(5, 8)")
    if failures:
        print(f"FAILED: {len(failures)}")
        for f in failures:
            print("  " + f)
        return 1
    print("all misuse cases give their error")
    return 0


if __name__ == "__main__":
    sys.exit(main())
