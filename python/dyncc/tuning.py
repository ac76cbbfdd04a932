"""dyncc.tune (dyncc/tuning.py): the GEMMs on weights kept in panels, timed in the model.

    dyncc.tune("model.mlir", "model.safetensors", [ids, mask])
    # later: dyncc compile model.mlir --tune -o out/model  (uses the winners)

`dyncc compile --tune` times each plain GEMM shape alone, but not the GEMMs
that read a weight kept in panels (every linear layer of an imported
model): alone, their schedules rank differently from the model, where A
was just written by both cores and the kernel after reads what they wrote
(docs/codegen.md, --tune). So this times them in the model: the library
is built once per candidate (`dyncc compile --panel-tiling=RxV[/B]`, every
such GEMM asking for that micro-tile and rows per task), all the builds
run in one process on the caller's weights and inputs, interleaved round
by round, and the runtime's kernel profile gives each GEMM's time. Per
shape, the fastest candidate wins if it beats the automatic tiling by 3%
(as `--tune` decides), and the winners are kept if together they make
every kernel of the model 1% faster (a GEMM's rows per task also move the
kernel after it); they go into the --tune cache through
`dyncc compile --tune --tune-record`, keyed by the CPU, the target and the
shape ("... panels"), where every later `dyncc compile --tune` finds them.
"""
import os
import re
import shutil
import statistics
import tempfile

from .library import build, load

# Micro-tiles (rows x vectors) and rows per task (0: automatic) to time,
# as --panel-tiling takes them; "" is the automatic choice. Vectors are
# narrowed to divide the 64-column panel, so the list fits AVX2 as well.
CANDIDATES = ("", "4x4", "8x2", "6x4", "12x2", "4x4/128", "8x2/64")

_GEMM = re.compile(r"^gemm (\S+): (?:b(\d+) )?m(\d+) n(\d+) k(\d+) \(B in panels\): (.*)$")


def _panel_gemms(stats):
    """{kernel: (shape key, schedule)} of the GEMMs on weights in panels
    that `--stats` lists with a Tiled schedule (AMX ones are not Halide's)."""
    out = {}
    for line in stats.splitlines():
        m = _GEMM.match(line.strip())
        if not m or not m.group(6).startswith("tiled"):
            continue
        kernel, batch, M, N, K, schedule = m.groups()
        key = (f"b{batch or 0} m{M} n{N} k{K} t0"
               + (" bf16" if "bf16 operands" in schedule else "") + " panels")
        out[kernel] = (key, schedule)
    return out


def _tiling_text(candidate):
    """The cache's tiling fields (path vw vectors rows blockRows packB) of a
    --panel-tiling request; 0 and -1: chosen as the automatic tiling would."""
    if not candidate:
        return "tiled 0 0 0 0 -1"
    tile, _, rows = candidate.partition("/")
    r, v = tile.split("x")
    return f"tiled 0 {int(v)} {int(r)} {int(rows or 0)} -1"


def _profile(paths, weights, inputs, rounds, runs, threads):
    """Runs the libraries `paths` in one process, interleaved round by
    round, `runs` runs each a round (after 3 untimed: a new model's first
    runs fault in its arena). Per library: ({kernel: [µs a call, per
    round]}, {kernel: calls a run}, [µs a run in all kernels, per round])."""
    before_env = os.environ.get("DYNRT_PROFILE")
    os.environ["DYNRT_PROFILE"] = "quiet"  # read when a model is created
    try:
        models = [load(p, weights, num_threads=threads) for p in paths]
    finally:
        if before_env is None:
            del os.environ["DYNRT_PROFILE"]
        else:
            os.environ["DYNRT_PROFILE"] = before_env
    run = [m.runner(*inputs) for m in models]
    for r in run:
        for _ in range(3):
            r()
    out = [({}, {}, []) for _ in paths]
    for _ in range(rounds):
        for i, m in enumerate(models):
            before = {p["kernel"]: (p["calls"], p["seconds"]) for p in m.profile()}
            for _ in range(runs):
                run[i]()
            per_call, calls, totals = out[i]
            total = 0.0
            for p in m.profile():
                c0, s0 = before[p["kernel"]]
                total += p["seconds"] - s0
                if p["calls"] > c0:
                    per_call.setdefault(p["kernel"], []).append(
                        (p["seconds"] - s0) / (p["calls"] - c0) * 1e6)
                    calls[p["kernel"]] = (p["calls"] - c0) / runs
            totals.append(total / runs * 1e6)
    for m in models:
        m.close()
    return out


def tune(mlir, weights, inputs, *, cache=None, candidates=CANDIDATES, rounds=5, runs=10,
         threads=None, flags=(), work=None, gain=0.03, log=print):
    """Times `candidates` (--panel-tiling values, "" the automatic choice,
    which must come first) for every GEMM on a weight in panels of the model
    `mlir` with `weights` (safetensors) on `inputs` (numpy arrays), and
    stores each shape's winner in the --tune cache (`cache`, default
    dyncc's). `flags`: more `dyncc compile` options (--precision=bf16...).
    A shape's fastest candidate wins if it beats the automatic tiling by
    `gain` (3%: noise must not flip a schedule, as --tune decides).
    Winners that together do not make the model's kernels 1% faster than
    the automatic tilings (the kernels after a GEMM may pay for its rows
    per task) are dropped. Returns {shape key: {"schedule": what --stats
    says of the winner, "candidate", "us": µs a run of that shape's
    kernels, "default_us"}}; {} when the model has no such GEMM."""
    if not candidates or candidates[0] != "":
        raise ValueError("dyncc.tune: the candidates start with the automatic choice, ''")
    work = work or tempfile.mkdtemp(prefix="dyncc-tune-")
    # The builds here tune their plain GEMMs in a cache of their own, as the
    # final build does in the caller's (only the plain GEMMs' entries: the
    # check below records its winners in a copy).
    scratch_cache = os.path.join(work, "scratch-cache.tsv")
    scratch = ["--tune", "--tune-cache", scratch_cache]
    libs, gemms = [], []
    for i, c in enumerate(candidates):
        # The same library name everywhere: the kernels keep their names.
        out = os.path.join(work, f"c{i}", "model")
        args = [*flags, *scratch, *([f"--panel-tiling={c}"] if c else [])]
        path, stats = build(mlir, out, *args, stats=True)
        found = _panel_gemms(stats)
        if i == 0 and not found:
            return {}
        if i > 0 and all(found.get(k, ("", ""))[1] in {g[k][1] for g in gemms}
                         for k in gemms[0]):
            continue  # nothing new: every GEMM got a schedule already timed
        libs.append((c, path))
        gemms.append(found)
    timed = _profile([p for _, p in libs], weights, inputs, rounds, runs, threads)
    # Per shape: µs a run of its kernels under each candidate.
    shapes = {}
    for kernel, (key, _) in gemms[0].items():
        for i in range(len(libs)):
            per_call, calls, _ = timed[i]
            if kernel not in per_call:
                continue
            s = shapes.setdefault(key, {}).setdefault(i, [0.0, 0.0, gemms[i][kernel][1]])
            s[0] += statistics.median(per_call[kernel]) * calls[kernel]
            s[1] += calls[kernel]
    chosen = {}
    for key, by in sorted(shapes.items()):
        best = min((i for i in by if i), key=lambda i: by[i][0], default=0)
        chosen[key] = best if best and by[best][0] <= (1 - gain) * by[0][0] else 0
        log(f"dyncc.tune: {key}: " + "; ".join(
            f"{libs[i][0] or 'automatic'} {by[i][0]:.1f} us a run" for i in sorted(by))
            + f" -> {libs[chosen[key]][0] or 'automatic'}")

    def write_record(choice, name):
        lines = ["# dyncc.tune: GEMMs on weights in panels timed in the model"]
        for key, i in sorted(choice.items()):
            by = shapes[key]
            m, n, k = (int(x) for x in re.findall(r"[mnk](\d+)", key)[:3])
            flop = 2.0 * m * n * k * (int(key.split()[0][1:]) or 1) * by[0][1]
            lines.append(f"{key}\t{_tiling_text(libs[i][0])}\t"
                         f"{flop / by[i][0] / 1e3:.1f}\t{flop / by[0][0] / 1e3:.1f}")
        path = os.path.join(work, name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    if any(chosen.values()):
        # The winners together, against the automatic tilings: every kernel.
        check_cache = os.path.join(work, "check-cache.tsv")
        if os.path.exists(scratch_cache):
            shutil.copyfile(scratch_cache, check_cache)
        elif os.path.exists(check_cache):
            os.remove(check_cache)
        check = build(mlir, os.path.join(work, "check", "model"), *flags, "--tune",
                      "--tune-cache", check_cache, "--tune-record",
                      write_record(chosen, "check.tsv"))
        (_, _, t0), (_, _, t1) = _profile([libs[0][1], check], weights, inputs,
                                          rounds, runs, threads)
        t0, t1 = statistics.median(t0), statistics.median(t1)
        log(f"dyncc.tune: all kernels, the winners {t1:.1f} us a run against "
            f"{t0:.1f} automatic" + ("" if t1 <= 0.99 * t0 else ": kept the automatic tilings"))
        if t1 > 0.99 * t0:
            chosen = {key: 0 for key in chosen}
    build(mlir, os.path.join(work, "final", "model"), *flags, "--tune",
          *(["--tune-cache", os.fspath(cache)] if cache else []),
          "--tune-record", write_record(chosen, "record.tsv"))
    return {key: {"schedule": shapes[key][i][2], "candidate": libs[i][0],
                  "us": shapes[key][i][0], "default_us": shapes[key][0][0]}
            for key, i in chosen.items()}
