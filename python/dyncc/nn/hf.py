"""Hugging Face transformers MoE layers as dyncc.nn.MoE.

`convert(model)` replaces, in place, every sparse MoE block of a
transformers model that dyncc knows with an equivalent `dyncc.nn.MoE`
(the same parameters, shared, not copied), so that the model exports with
its routing as dyn.route:

    model = MixtralForCausalLM(config).eval()
    dyncc.nn.hf.convert(model)                  # MixtralSparseMoeBlock -> MixtralMoE
    fast = dyncc.compile(model, (input_ids,))

Known blocks: transformers' MixtralSparseMoeBlock (softmax router, top-k,
weights renormalized over the k; SwiGLU experts stored stacked).
"""
import torch.nn as nn
import torch.nn.functional as F

from .modules import MoE, StackedExperts


class _Router(nn.Module):
    """The router's logits: x W^T (the weight is the HF router's)."""

    def __init__(self, weight):
        super().__init__()
        self.weight = weight

    def forward(self, x):
        return F.linear(x, self.weight)


class MixtralMoE(nn.Module):
    """transformers' MixtralSparseMoeBlock as a dyncc.nn.MoE: [B, S, D] in,
    the tokens routed together, [B, S, D] out."""

    def __init__(self, block):
        super().__init__()
        ex = block.experts
        act = ex.act_fn

        def expert(x, gate_up_proj, down_proj):
            gate, up = F.linear(x, gate_up_proj).chunk(2, dim=-1)
            return F.linear(act(gate) * up, down_proj)
        self.moe = MoE(_Router(block.gate.weight),
                       StackedExperts(expert, gate_up_proj=ex.gate_up_proj, down_proj=ex.down_proj),
                       "top_k", k=block.top_k, renormalize=True)

    def forward(self, hidden_states):
        shape = hidden_states.shape
        return self.moe(hidden_states.reshape(-1, shape[-1])).reshape(shape)


def _converter(module):
    name = type(module).__name__
    if name == "MixtralSparseMoeBlock":
        if getattr(module, "jitter_noise", 0) and module.training:
            raise ValueError("MixtralSparseMoeBlock with router jitter in training mode: "
                             "call model.eval() first")
        return MixtralMoE
    return None


def convert(model):
    """Replaces the known MoE blocks of `model` in place; returns the
    number replaced."""
    count = 0
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            conv = _converter(child)
            if conv is not None:
                setattr(parent, child_name, conv(child))
                count += 1
    return count
