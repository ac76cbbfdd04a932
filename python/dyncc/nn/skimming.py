"""The loop of dyn.skip (docs/skim.md), exactly: `run_loop` is what the
compiled library does step by step; `dyncc.nn.Skim` runs it eagerly (the
skimming methods of examples/skim/methods.py are Skim modules)."""

KINDS = ("read", "skim", "skip", "jump", "shuttle", "jump_to", "stop", "reread", "partial",
         "flush", "upper")
ADVANCE_ONE = ("read", "skim", "skip", "partial", "flush", "upper")
NEEDS_CELL = ("read", "skim", "reread", "partial", "flush", "upper")
TERMINATIONS = ("stop", "end", "start", "budget", "error")


class Action:
    """One action of a skim loop: Action("read"), Action("jump_to", [1, 2])."""

    def __init__(self, kind, targets=()):
        if kind not in KINDS:
            raise ValueError(f"unknown skim action {kind!r}; one of {', '.join(KINDS)}")
        if targets and kind != "jump_to":
            raise ValueError("targets only apply to jump_to")
        self.kind, self.targets = kind, tuple(int(t) for t in targets)

    def mlir(self):
        if self.kind == "jump_to" and self.targets:
            return f"#dyn.action<jump_to, targets = [{', '.join(map(str, self.targets))}]>"
        return f"#dyn.action<{self.kind}>"

    def __repr__(self):
        return self.kind + (f"{list(self.targets)}" if self.kind == "jump_to" else "")


def next_position(action, pos, amount, classes, S):
    """Where the loop goes after `action` at `pos` (docs/skim.md's table)."""
    k = action.kind
    if k in ADVANCE_ONE:
        return pos + 1
    if k == "jump":
        return pos + max(amount, 1)
    if k == "shuttle":
        return pos + amount
    if k == "jump_to":
        if action.targets:
            for p in range(pos + 1, S):
                if int(classes[p]) in action.targets:
                    return p
        return S
    if k == "reread":
        return pos
    assert k == "stop"
    return pos


def int32(v):
    """An amount as the trace records it: truncated to 32 bits."""
    return (int(v) + 2 ** 31) % 2 ** 32 - 2 ** 31


def run_loop(S, budget, actions, decide, apply, classes=None):
    """Runs the loop over positions [0, S): decide(pos) -> (action, amount);
    apply(action, pos) computes the new state (or keeps it). Returns (trace
    [(pos, action, amount)], termination, final position, error) with error
    None or (step, pos, action) for an action outside [0, len(actions))."""
    pos, n, trace = 0, 0, []
    while 0 <= pos < S and n < budget:
        a, amount = decide(pos)
        trace.append((pos, a, int32(amount)))
        n += 1
        if not 0 <= a < len(actions):
            return trace, "error", pos, (n - 1, pos, a)
        apply(a, pos)
        if actions[a].kind == "stop":
            return trace, "stop", next_position(actions[a], pos, amount, classes, S), None
        pos = next_position(actions[a], pos, amount, classes, S)
    return trace, ("end" if pos >= S else "start" if pos < 0 else "budget"), pos, None
