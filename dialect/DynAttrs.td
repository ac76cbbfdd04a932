//===- DynAttrs.td - enums and attributes of dyn -----------*- tablegen -*-===//
//
// Policies of the dyn ops: routing strategies, exit criteria, skip actions,
// and runtime parameters (thresholds the caller may retune).
//
//===----------------------------------------------------------------------===//

#ifndef DYN_ATTRS_TD
#define DYN_ATTRS_TD

include "dialect/DynBase.td"
include "mlir/IR/EnumAttr.td"

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def Dyn_ExitGranularity : I32EnumAttr<"ExitGranularity",
    "what exits: a whole sample or single tokens", [
      I32EnumAttrCase<"sample", 0>,
      I32EnumAttrCase<"token", 1>
    ]> {
  let cppNamespace = "::dyncc::dyn";
  let genSpecializedAttr = 0;
}
def Dyn_ExitGranularityAttr
    : EnumAttr<Dyn_Dialect, Dyn_ExitGranularity, "granularity"> {
  let assemblyFormat = "$value";
}

def Dyn_RoutingStrategy : I32EnumAttr<"RoutingStrategy",
    "how tokens are assigned to experts", [
      // Sparsely-gated MoE: softmax over the gate, the k best experts.
      I32EnumAttrCase<"top_k", 0>,
      // Switch Transformer: top-1 with expert capacity.
      I32EnumAttrCase<"switch_", 1, "switch">,
      // GShard: top-2 with capacity, second expert taken at random with
      // probability proportional to its weight.
      I32EnumAttrCase<"gshard", 2>,
      // BASE layers: balanced linear assignment (auction algorithm).
      I32EnumAttrCase<"base", 3>,
      // M6-T: k prototypes (expert groups), top-1 inside each.
      I32EnumAttrCase<"k_top1", 4>,
      // DTS-gate: temperature softmax, every expert above a threshold.
      I32EnumAttrCase<"dense_to_sparse", 5>,
      // Hash layers: the expert is a function of the token id.
      I32EnumAttrCase<"hash", 6>,
      // THOR: one expert drawn at random per token.
      I32EnumAttrCase<"random", 7>
    ]> {
  let cppNamespace = "::dyncc::dyn";
  let genSpecializedAttr = 0;
}
def Dyn_RoutingStrategyAttr
    : EnumAttr<Dyn_Dialect, Dyn_RoutingStrategy, "strategy"> {
  let assemblyFormat = "$value";
}

def Dyn_CapacityPriority : I32EnumAttr<"CapacityPriority",
    "which tokens keep their slot when an expert overflows", [
      I32EnumAttrCase<"token_order", 0>,
      I32EnumAttrCase<"score", 1>
    ]> {
  let cppNamespace = "::dyncc::dyn";
  let genSpecializedAttr = 0;
}
def Dyn_CapacityPriorityAttr
    : EnumAttr<Dyn_Dialect, Dyn_CapacityPriority, "priority"> {
  let assemblyFormat = "`<` $value `>`";
}

def Dyn_SkipActionKind : I32EnumAttr<"SkipActionKind",
    "what a skimming model does at one step", [
      // Update the state with the full cell, advance one step.
      I32EnumAttrCase<"read", 0>,
      // Update the state with a small cell (Skim-RNN), advance one step.
      I32EnumAttrCase<"skim", 1>,
      // Copy the state unchanged, advance one step (Skip RNN, RIM).
      I32EnumAttrCase<"skip", 2>,
      // Advance by the decided amount >= 1 (LSTM-Jump, Yu et al. 2018).
      I32EnumAttrCase<"jump", 3>,
      // Move by a decided signed amount (LSTM-Shuttle).
      I32EnumAttrCase<"shuttle", 4>,
      // Move to the next step whose class is one of the targets, or to the
      // end of the sequence (Structural Jump-LSTM).
      I32EnumAttrCase<"jump_to", 5>,
      // Stop reading (LSTM-Jump, ReasoNet, Jumper, RIM, Yu et al. 2018).
      I32EnumAttrCase<"stop", 6>,
      // Update the state and stay at the same step (Yu et al. 2018).
      I32EnumAttrCase<"reread", 7>,
      // Update a scheduled fraction of the state (VCRNN).
      I32EnumAttrCase<"partial", 8>,
      // Flush the lower layer into the upper one (HM-RNN).
      I32EnumAttrCase<"flush", 9>,
      // Update the upper layer through a query gate (Focused HRNN).
      I32EnumAttrCase<"upper", 10>
    ]> {
  let cppNamespace = "::dyncc::dyn";
  let genSpecializedAttr = 0;
}

//===----------------------------------------------------------------------===//
// Runtime parameters
//===----------------------------------------------------------------------===//

def Dyn_RuntimeParamAttr : Dyn_Attr<"RuntimeParam", "param"> {
  let summary = "A named value the caller may retune at run time";
  let description = [{
    A runtime parameter has a name, unique within a model, and a default: one
    number (`#dyn.param<"theta" = 0.3>`) or a vector of them
    (`#dyn.param<"theta" = [0.9, 0.8]>`). The generated library exposes every
    parameter by name, so that thresholds (and the patience `k`) are retuned
    without recompiling. Two uses of the same name must agree on the default.
  }];
  let parameters = (ins StringRefParameter<"parameter name">:$name,
                        "::mlir::DenseF64ArrayAttr":$defaults,
                        "bool":$isVector);
  let builders = [
    AttrBuilder<(ins "::llvm::StringRef":$name,
                     "::llvm::ArrayRef<double>":$values, "bool":$isVector), [{
      return $_get($_ctxt, name, ::mlir::DenseF64ArrayAttr::get($_ctxt, values),
                   isVector);
    }]>
  ];
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// The default values (one for a scalar parameter).
    ::llvm::ArrayRef<double> getValues() const {
      return getDefaults().asArrayRef();
    }
    /// The default of a scalar parameter.
    double getScalar() const { return getValues().front(); }
  }];
}

//===----------------------------------------------------------------------===//
// Exit criteria (survey Table 3)
//===----------------------------------------------------------------------===//

class Dyn_CriterionAttr<string name, string attrMnemonic>
    : Dyn_Attr<name, attrMnemonic> {
  let assemblyFormat = "`<` struct(params) `>`";
}

def Dyn_EntropyCriterionAttr : Dyn_CriterionAttr<"EntropyCriterion", "entropy"> {
  let summary = "Exit when the entropy of the softmax is below a threshold";
  let description = [{
    DeeBERT, FastBERT, RomeBERT, Past-Future: exit when
    `H(softmax(logits)) < threshold`. `threshold` is in `[0, inf]`; 0 never
    exits, `inf` always exits.
  }];
  let parameters = (ins Dyn_RuntimeParamAttr:$threshold);
}

def Dyn_MaxProbCriterionAttr : Dyn_CriterionAttr<"MaxProbCriterion", "max_prob"> {
  let summary = "Exit when the calibrated maximum class probability is high";
  let description = [{
    RightTool, CascadeBERT: exit when
    `max(softmax(logits / temperature)) > threshold`. `temperature > 0` comes
    from calibration; `threshold` is in `[0, 1]` (1 never exits).
  }];
  let parameters = (ins "::mlir::FloatAttr":$temperature,
                        Dyn_RuntimeParamAttr:$threshold);
}

def Dyn_PatienceCriterionAttr : Dyn_CriterionAttr<"PatienceCriterion", "patience"> {
  let summary = "Exit when the last k internal classifiers agree";
  let description = [{
    PABEE, LeeBERT: a counter of consecutive internal classifiers whose
    argmax equals the previous one's; exit when it reaches `k` (an integer
    >= 1). The counter runs along the chain of nested `dyn.exit_if` ops.
  }];
  let parameters = (ins Dyn_RuntimeParamAttr:$k);
}

def Dyn_VotesCriterionAttr : Dyn_CriterionAttr<"VotesCriterion", "votes"> {
  let summary = "Exit when the votes accumulated by one class pass a threshold";
  let description = [{
    Voting: every internal classifier so far votes for its argmax; exit when
    the largest vote count is greater than `threshold` (>= 0). Votes
    accumulate along the chain of nested `dyn.exit_if` ops.
  }];
  let parameters = (ins Dyn_RuntimeParamAttr:$threshold);
}

def Dyn_LearnedScoreCriterionAttr
    : Dyn_CriterionAttr<"LearnedScoreCriterion", "learned_score"> {
  let summary = "Exit when a learned exit score passes a threshold";
  let description = [{
    BERxiT's learning-to-exit module, CAT's consistency classifier: a head of
    the model computes a score in `[0, 1]` per sample (the op's `score`
    operand); exit when `score > threshold`, `threshold` in `[0, 1]`.
  }];
  let parameters = (ins Dyn_RuntimeParamAttr:$threshold);
}

def Dyn_PerClassCriterionAttr : Dyn_CriterionAttr<"PerClassCriterion", "per_class"> {
  let summary = "Exit when the predicted class passes its own threshold";
  let description = [{
    Early exit for document ranking: with `c = argmax(logits)`, exit when
    `softmax(logits)[c] > thresholds[c]`. `thresholds` is a vector parameter
    with one value in `[0, 1]` per class.
  }];
  let parameters = (ins Dyn_RuntimeParamAttr:$thresholds);
}

def Dyn_AnyCriterionAttr : AnyAttrOf<[
    Dyn_EntropyCriterionAttr, Dyn_MaxProbCriterionAttr,
    Dyn_PatienceCriterionAttr, Dyn_VotesCriterionAttr,
    Dyn_LearnedScoreCriterionAttr, Dyn_PerClassCriterionAttr]>;

//===----------------------------------------------------------------------===//
// Skip actions (survey Table 1)
//===----------------------------------------------------------------------===//

def Dyn_SkipActionAttr : Dyn_Attr<"SkipAction", "action"> {
  let summary = "One action a skimming loop may take at a step";
  let description = [{
    `#dyn.action<read>`, `#dyn.action<jump>`, ... ; `jump_to` names the
    token classes it jumps to: `#dyn.action<jump_to, targets = [1, 2]>`
    (an empty list jumps to the end of the sequence).
  }];
  let parameters = (ins EnumParameter<Dyn_SkipActionKind>:$kind,
                        OptionalArrayRefParameter<"int64_t">:$targets);
  let assemblyFormat = "`<` $kind (`,` `targets` `=` `[` $targets^ `]`)? `>`";
}

def Dyn_SkipActionArrayAttr
    : TypedArrayAttrBase<Dyn_SkipActionAttr, "array of skip actions">;

#endif // DYN_ATTRS_TD
