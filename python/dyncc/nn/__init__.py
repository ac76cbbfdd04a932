"""dyncc.nn: modules for dynamic networks that run eagerly in PyTorch and
export to dyncc's dyn ops (docs/nn.md).

    EarlyExit(layers, heads, criterion)     -> dyn.exit_if chain (sample or token level)
    Cascade(models, criterion)              -> dyn.exit_if chain of complete models
    MoE(gate, experts, strategy, ...)       -> dyn.route
    Skim(actions, decide, cells, budget)    -> dyn.skip

Criteria: Entropy, MaxProb, Patience, Votes, LearnedScore, PerClass.
dyncc.nn.hf.convert(model) turns transformers' Mixtral MoE blocks into MoE.
"""
from .exits import Criterion, Entropy, LearnedScore, MaxProb, Patience, PerClass, Votes
from .modules import (Action, Cascade, DynModule, EarlyExit, MoE, Skim, SkimError,
                      StackedExperts)
from .routing import RouteConfig, RouteError, Routing, route

__all__ = ["Criterion", "Entropy", "MaxProb", "Patience", "Votes", "LearnedScore", "PerClass",
           "DynModule", "EarlyExit", "Cascade", "MoE", "StackedExperts", "Skim", "SkimError", "Action", "RouteConfig", "RouteError", "Routing", "route"]
