"""Inputs and the float64 reference of Inputs/skip_projections.mlir
(run/skip-projections.test): `gen DIR` writes the inputs, the final state
and the trace; `check DIR` compares dyncc run's output0.npy and
skip0.trace.npy with them."""
import sys

import numpy as np

S, D, H, BUDGET = 9, 5, 4, 7


def reference(seq, h, w, u, v, d):
    trace = []
    for pos in range(min(S, BUDGET)):
        x = seq[pos]
        logits = d @ x
        a = int(np.argmax(logits))
        margin = abs(logits[0] - logits[1])
        trace.append((pos, a, 0))
        h = np.tanh(w @ x + u @ h) if a == 0 else h + 0.5 * (v @ x)
        assert margin > 1e-3, f"step {pos}: a decision within {margin} of a tie"
    return h, np.array(trace, np.int32)


def main():
    mode, out = sys.argv[1], sys.argv[2]
    names = ["seq", "h0", "w", "u", "v", "d"]
    if mode == "gen":
        rng = np.random.default_rng(5)
        arrays = [rng.standard_normal(s).astype(np.float32)
                  for s in [(S, D), (H,), (H, D), (H, H), (H, D), (2, D)]]
        for n, a in zip(names, arrays):
            np.save(f"{out}/{n}.npy", a)
        h, trace = reference(*[a.astype(np.float64) for a in arrays])
        assert 0 < (trace[:, 1] == 0).sum() < len(trace), trace  # both actions
        np.save(f"{out}/want_h.npy", h)
        np.save(f"{out}/want_trace.npy", trace)
        return
    got = np.load(f"{out}/{sys.argv[3]}/output0.npy")
    trace = np.load(f"{out}/{sys.argv[3]}/skip0.trace.npy")
    want = np.load(f"{out}/want_h.npy")
    assert np.array_equal(trace, np.load(f"{out}/want_trace.npy")), trace
    err = np.abs(got - want).max()
    assert err < 1e-5, (got, want)
    print(f"trace equal ({len(trace)} steps), state within {err:.1e}")


if __name__ == "__main__":
    main()
