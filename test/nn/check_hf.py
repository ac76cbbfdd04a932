#!/usr/bin/env python3
"""ctest nn.hf-mixtral: a transformers Mixtral model (random init, small
config) with its MixtralSparseMoeBlocks converted to dyncc.nn.MoE
(dyncc.nn.hf.convert), compiled with dyncc.compile at batch 1 and bucketed
(--batch-buckets=1,4, 3 samples per call). The logits must match the
unconverted Hugging Face model's to 1e-5 relative, and every layer's
expert assignment must equal the indices of Hugging Face's own router
(MixtralTopKRouter's top-k, recorded by a hook before the conversion).

    check_hf.py WORK_DIR
"""
import os
import sys

import numpy as np
import torch

import dyncc
import dyncc.nn.hf as hf


class CausalLM(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, ids):
        return self.m(input_ids=ids, use_cache=False).logits


def hf_reference(model, ids):
    """(logits, [per MoE layer: [T * k] expert indices]) of the HF model."""
    picks = []
    hooks = [blk.gate.register_forward_hook(lambda m, a, out: picks.append(out[2].reshape(-1)))
             for blk in model.modules() if type(blk).__name__ == "MixtralSparseMoeBlock"]
    with torch.no_grad():
        logits = model(input_ids=ids, use_cache=False).logits
    for h in hooks:
        h.remove()
    return logits, [p.numpy().astype(np.int32) for p in picks]


def main():
    work = sys.argv[1]
    os.makedirs(work, exist_ok=True)
    os.environ["DYNCC_CACHE"] = os.path.join(work, "cache")
    from transformers import MixtralConfig, MixtralForCausalLM
    torch.manual_seed(0)
    cfg = MixtralConfig(vocab_size=200, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                        num_experts_per_tok=2, max_position_embeddings=64)
    model = MixtralForCausalLM(cfg).eval()
    g = torch.Generator().manual_seed(1)
    cases = [torch.randint(0, 200, (1, 16), generator=g) for _ in range(3)]
    batch = torch.randint(0, 200, (3, 16), generator=g)
    refs = [hf_reference(model, ids) for ids in cases]
    ref_batch = [hf_reference(model, batch[i:i + 1]) for i in range(3)]
    n = hf.convert(model)
    print(f"converted {n} MixtralSparseMoeBlock(s) to dyncc.nn.MoE")
    net = CausalLM(model).eval()
    bad = 0
    fast = dyncc.compile(net, (cases[0],))
    for i, (ids, (want, picks)) in enumerate(zip(cases, refs)):
        got = fast(ids)
        err = float((got - want).abs().max() / want.abs().max())
        same = [np.array_equal(r["assignment"], p) for r, p in zip(fast.report.routes, picks)]
        ok = err <= 1e-5 and all(same) and len(same) == n
        bad += not ok
        print(f"batch 1, case {i}: logits within {err:.1e}; assignments equal to HF's router "
              f"per layer {same}; tokens per expert "
              f"{[r['tokens_per_expert'].tolist() for r in fast.report.routes]}")
    fast.close()
    fast = dyncc.compile(net, (cases[0],), batch_buckets=[1, 4])
    got = fast(batch)
    for i, (want, picks) in enumerate(ref_batch):
        err = float((got[i] - want[0]).abs().max() / want.abs().max())
        ok = err <= 1e-5
        bad += not ok
        print(f"bucketed, sample {i}: logits within {err:.1e}")
    # the report holds the last sample's assignment
    same = [np.array_equal(r["assignment"], p) for r, p in zip(fast.report.routes, ref_batch[-1][1])]
    bad += not all(same)
    print(f"bucketed: last sample's assignments equal to HF's router per layer {same}")
    fast.close()
    print("PASS" if bad == 0 else f"FAIL ({bad})")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
