//===- DynOps.td - ops of the dyn dialect ------------------*- tablegen -*-===//
//
// dyn.exit_if (depth), dyn.route (width), dyn.skip (time) and their
// terminators. The descriptions are the user documentation
// (docs/dialect.md is generated from them).
//
//===----------------------------------------------------------------------===//

#ifndef DYN_OPS_TD
#define DYN_OPS_TD

include "dialect/DynBase.td"
include "dialect/DynAttrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"
include "mlir/IR/RegionKindInterface.td"

//===----------------------------------------------------------------------===//
// dyn.exit_if
//===----------------------------------------------------------------------===//

def Dyn_ExitIfOp : Dyn_Op<"exit_if", [
    AttrSizedOperandSegments, RecursiveMemoryEffects,
    AllTypesMatch<["logits", "result"]>]> {
  let summary = "Early exit (depthwise): leave the network at an internal classifier";
  let description = [{
    `dyn.exit_if` sits after a layer of a network. Its operand `logits` is
    the output of the internal classifier of that layer (`[B, C]` for
    sample-level exit, `[B, S, C]` for token-level exit). Its region holds
    *the rest of the network*: the deeper layers, their own exit points, and
    the final classifier, whose logits the region yields. For every sample
    the result is `logits` when the criterion holds for that sample, and the
    region's result otherwise; at run time the region does not run for a
    sample that exited (with batch 1, it does not run at all).

    Nested `dyn.exit_if` ops form a *chain*: the exit points of one network,
    outermost first. `layer` numbers them (strictly increasing inward, from
    1); a sample that never exits is reported at layer `innermost + 1`.
    Criteria with memory (patience, votes) accumulate along the chain; every
    op of one chain uses the same kind of criterion.

    The criterion (survey Table 3) is one of:

    | attribute | method | exits when |
    |---|---|---|
    | `#dyn.entropy<threshold = P>` | DeeBERT, FastBERT, RomeBERT, Past-Future | `H(softmax(logits)) < P` |
    | `#dyn.max_prob<temperature = T, threshold = P>` | RightTool, CascadeBERT | `max softmax(logits / T) > P` |
    | `#dyn.patience<k = P>` | PABEE, LeeBERT | the argmax stayed the same for `P` consecutive classifiers |
    | `#dyn.votes<threshold = P>` | Voting | the most-voted class has more than `P` votes |
    | `#dyn.learned_score<threshold = P>` | BERxiT, CAT | `score > P` (`score` operand, from a head in the model) |
    | `#dyn.per_class<thresholds = P>` | early-exit document ranking | `softmax(logits)[c] > P[c]`, `c = argmax` |

    Every `P` is a runtime parameter (`#dyn.param<"name" = default>`): the
    generated library lets the caller retune it without recompiling. A NaN
    logit never triggers an exit.

    **Token-level exit** (`granularity token`, sequence labeling): `logits`
    is `[B, S, C]` and the `hidden` operand is the layer's output
    `[B, S, D]`. A token whose criterion holds is frozen: the region's block
    argument is `hidden` with the tokens that exited here or earlier in the
    chain replaced by their state at their exit layer, so deeper layers
    still attend to them but never change them. The network exits when every
    token has exited.

    **Cascades** (CascadeBERT) are chains whose regions hold complete
    models: the region of the exit point of the small model runs the next,
    larger model on the original input (values from outside the region are
    visible inside it).

    Example: a two-layer encoder with an entropy exit after layer 1.

    ```mlir
    %out = dyn.exit_if %logits1 criterion #dyn.entropy<threshold = #dyn.param<"theta" = 0.3>>
        layer 1 : tensor<1x2xf32> {
      %h2 = func.call @layer2(%h1) : (tensor<1x128x256xf32>) -> tensor<1x128x256xf32>
      %logits2 = func.call @head2(%h2) : (tensor<1x128x256xf32>) -> tensor<1x2xf32>
      dyn.yield %logits2 : tensor<1x2xf32>
    }
    ```

    Token-level exit after layer 3, freezing confident tokens:

    ```mlir
    %tags = dyn.exit_if %tok_logits hidden %h3 : tensor<1x128x256xf32>
        criterion #dyn.max_prob<temperature = 1.0, threshold = #dyn.param<"tau" = 0.9>>
        layer 3 granularity token : tensor<1x128x9xf32> {
    ^bb0(%frozen: tensor<1x128x256xf32>):
      %h4 = func.call @layer4(%frozen) : (tensor<1x128x256xf32>) -> tensor<1x128x256xf32>
      %l4 = func.call @tagger4(%h4) : (tensor<1x128x256xf32>) -> tensor<1x128x9xf32>
      dyn.yield %l4 : tensor<1x128x9xf32>
    }
    ```
  }];

  let arguments = (ins
    RankedTensorOf<[AnyFloat]>:$logits,
    Optional<RankedTensorOf<[AnyFloat]>>:$score,
    Optional<RankedTensorOf<[AnyFloat]>>:$hidden,
    Dyn_AnyCriterionAttr:$criterion,
    I64Attr:$layer,
    DefaultValuedAttr<Dyn_ExitGranularityAttr,
                      "::dyncc::dyn::ExitGranularity::sample">:$granularity);
  let results = (outs RankedTensorOf<[AnyFloat]>:$result);
  let regions = (region SizedRegion<1>:$body);

  let assemblyFormat = [{
    $logits (`score` $score^ `:` type($score))? (`hidden` $hidden^ `:` type($hidden))?
    `criterion` $criterion `layer` $layer (`granularity` ``$granularity^)?
    attr-dict `:` type($logits) $body
  }];
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
  let extraClassDeclaration = [{
    bool isTokenLevel() {
      return getGranularity() == ::dyncc::dyn::ExitGranularity::token;
    }
    /// The exit point this one is nested in directly, if any (its previous
    /// exit point in the chain).
    ExitIfOp getPreviousInChain();
  }];
}

//===----------------------------------------------------------------------===//
// dyn.route
//===----------------------------------------------------------------------===//

def Dyn_RouteOp : Dyn_Op<"route", [
    AttrSizedOperandSegments, RecursiveMemoryEffects]> {
  let summary = "Mixture of experts (widthwise): send tokens to experts and combine";
  let description = [{
    `dyn.route` sends each of the `T` tokens of `input` (`[T, D]`) to one or
    a few of `num_experts` experts, runs the expert body (the region) on the
    tokens each expert received, and returns the weighted combination of the
    expert outputs in token order (`[T, D_out]`).

    `gate` carries the routing scores: `[T, E]` logits from a gate layer of
    the model, or, for `hash`, the `[T]` integer token ids.

    The region is the body of one expert, written for any number of rows:
    its block arguments are the tokens it received (`tensor<?xD>`) followed
    by one slice of each `experts(...)` operand, whose leading dimension is
    the expert index `E` (`[E, ...]` becomes `[...]` inside). Each row must
    be computed independently of the others. The lowering runs all experts
    as one batched computation over static dispatch buffers.

    Strategies (survey Table 2):

    | `strategy` | method | assignment |
    |---|---|---|
    | `top_k` | Sparsely-gated MoE | softmax over the gate, the `k` best experts (1 <= k <= E) |
    | `switch` | Switch Transformer | top-1 (`k` = 1) |
    | `gshard` | GShard | top-2; the second expert is kept at random with probability proportional to its weight (`seed`) |
    | `base` | BASE layers | balanced assignment by the auction algorithm, exactly `T/E` tokens per expert |
    | `k_top1` | M6-T | experts split into `k` prototypes of `E/k`; top-1 inside each |
    | `dense_to_sparse` | DTS-gate | softmax(gate / `temperature`), every expert with weight > `threshold` |
    | `hash` | Hash layers | `id mod E`, or `table[id]` (balanced hash) |
    | `random` | THOR | one expert drawn uniformly per token (`seed`) |

    Capacity: with `capacity_factor = f`, each expert holds at most
    `C = ceil(f * k * T / (E * groups))` tokens per group; the tokens over
    capacity are dropped and pass through on the residual path (their expert
    contribution is zero). `priority` decides who keeps a slot: earlier
    tokens first (`token_order`, the default) or higher gate weights first
    (`score`). `groups = G` splits the tokens into `G` local groups, each
    dispatched on its own (GShard's local group dispatching). `dropless`
    keeps every token: tokens are sorted by expert and each expert's group is
    padded to a multiple of `dropless_block` rows, a static bound of
    `T * k + E * (dropless_block - 1)` rows. Without either, every expert may
    receive all `T` tokens and nothing is dropped. `renormalize` rescales
    the kept weights of a token to sum to 1.

    Example: a Switch layer with GELU experts.

    ```mlir
    %y = dyn.route switch %x, %gate experts(%w1, %w2 : tensor<8x512x2048xf32>, tensor<8x2048x512xf32>)
        {num_experts = 8 : i64, capacity_factor = 1.25 : f64}
        : tensor<512x512xf32>, tensor<512x8xf32> -> tensor<512x512xf32> {
    ^bb0(%t: tensor<?x512xf32>, %a: tensor<512x2048xf32>, %b: tensor<2048x512xf32>):
      %h = func.call @ffn(%t, %a, %b) : (tensor<?x512xf32>, tensor<512x2048xf32>, tensor<2048x512xf32>) -> tensor<?x512xf32>
      dyn.yield %h : tensor<?x512xf32>
    }
    ```
  }];

  let arguments = (ins
    Dyn_RoutingStrategyAttr:$strategy,
    RankedTensorOf<[AnyFloat]>:$input,
    RankedTensorOf<[AnyFloat, AnySignlessInteger]>:$gate,
    Optional<RankedTensorOf<[AnySignlessInteger]>>:$table,
    Variadic<AnyRankedTensor>:$expert_params,
    I64Attr:$num_experts,
    OptionalAttr<I64Attr>:$k,
    OptionalAttr<F64Attr>:$capacity_factor,
    OptionalAttr<I64Attr>:$dropless_block,
    OptionalAttr<Dyn_CapacityPriorityAttr>:$priority,
    OptionalAttr<I64Attr>:$groups,
    OptionalAttr<I64Attr>:$seed,
    OptionalAttr<F64Attr>:$temperature,
    OptionalAttr<F64Attr>:$threshold,
    UnitAttr:$renormalize);
  let results = (outs RankedTensorOf<[AnyFloat]>:$result);
  let regions = (region SizedRegion<1>:$body);

  let assemblyFormat = [{
    ``$strategy $input `,` $gate (`table` $table^ `:` type($table))?
    (`experts` `(` $expert_params^ `:` type($expert_params) `)`)?
    attr-dict `:` type($input) `,` type($gate) `->` type($result) $body
  }];
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
  let extraClassDeclaration = [{
    /// Experts a token visits at most (k of top-k, 1 for switch, ...).
    int64_t getExpertsPerToken();
  }];
}

//===----------------------------------------------------------------------===//
// dyn.skip
//===----------------------------------------------------------------------===//

def Dyn_SkipOp : Dyn_Op<"skip", [
    AttrSizedOperandSegments, RecursiveMemoryEffects]> {
  let summary = "Skimming (timewise): a recurrent loop that decides how to read each step";
  let description = [{
    `dyn.skip` runs a recurrent model over `sequence` (`[S, ...]`), starting
    at position 0 with the state `init`, and returns the final state. At each
    step the `decide` region looks at the position, the step's input
    (`sequence[pos]`, the sequence type without its leading dimension) and
    the state, and yields the index of the action to take (and, for moving
    actions, an amount) with `dyn.decide`. The action's region then computes
    the new state (an empty region copies it), and the position moves as the
    action's kind says. The loop ends at a `stop` action, when the position
    leaves `[0, S)`, or after `budget` steps, whichever comes first: the
    budget (1 to 2^31 - 1) is mandatory, so that backward jumps always
    terminate.

    All regions take `(pos: index, step input, state...)`; action regions
    yield the new state with `dyn.yield`.

    | action | method | state | position |
    |---|---|---|---|
    | `read` | every RNN | region (full cell) | +1 |
    | `skim` | Skim-RNN | region (small cell updates part of the state) | +1 |
    | `skip` | Skip RNN, RIM, HM-RNN (copy) | copied | +1 |
    | `jump` | LSTM-Jump, Yu et al. 2018 | region or copied | + amount (>= 1) |
    | `shuttle` | LSTM-Shuttle | region or copied | + amount (signed) |
    | `jump_to` | Structural Jump-LSTM | region or copied | next step whose class is in `targets` (end if none, or if `targets` is empty) |
    | `stop` | LSTM-Jump, ReasoNet, Jumper, RIM, Yu et al. 2018 | region or copied | loop ends |
    | `reread` | Yu et al. 2018 | region | unchanged |
    | `partial` | VCRNN | region (scheduled fraction of the state) | +1 |
    | `flush` | HM-RNN | region (flush to the upper layer) | +1 |
    | `upper` | Focused HRNN | region (query-gated upper-layer update) | +1 |

    `jump_to` reads the per-step token classes from the `classes` operand
    (`[S]`, integers); an action names at most 1024 target classes. Decisions are made by ordinary ops in `decide`
    (an argmax, a threshold), so they are deterministic.

    Example: Skim-RNN reading with a big LSTM or skimming with a small one.

    ```mlir
    %h, %c = dyn.skip %emb init(%h0, %c0 : tensor<256xf32>, tensor<256xf32>) budget 200
        actions [#dyn.action<read>, #dyn.action<skim>]
        : tensor<200x128xf32> -> tensor<256xf32>, tensor<256xf32>
      decide {
      ^bb0(%pos: index, %x: tensor<128xf32>, %hs: tensor<256xf32>, %cs: tensor<256xf32>):
        %a = func.call @skim_gate(%x, %hs) : (tensor<128xf32>, tensor<256xf32>) -> index
        dyn.decide %a
      }
      {
      ^bb0(%pos: index, %x: tensor<128xf32>, %hs: tensor<256xf32>, %cs: tensor<256xf32>):
        %h1, %c1 = func.call @big_lstm(%x, %hs, %cs) : (tensor<128xf32>, tensor<256xf32>, tensor<256xf32>) -> (tensor<256xf32>, tensor<256xf32>)
        dyn.yield %h1, %c1 : tensor<256xf32>, tensor<256xf32>
      },
      {
      ^bb0(%pos: index, %x: tensor<128xf32>, %hs: tensor<256xf32>, %cs: tensor<256xf32>):
        %h1, %c1 = func.call @small_lstm(%x, %hs, %cs) : (tensor<128xf32>, tensor<256xf32>, tensor<256xf32>) -> (tensor<256xf32>, tensor<256xf32>)
        dyn.yield %h1, %c1 : tensor<256xf32>, tensor<256xf32>
      }
    ```
  }];

  let arguments = (ins
    AnyRankedTensor:$sequence,
    Optional<RankedTensorOf<[AnySignlessInteger]>>:$classes,
    Variadic<AnyType>:$init,
    OptionalAttr<I64Attr>:$budget,
    Dyn_SkipActionArrayAttr:$actions);
  let results = (outs Variadic<AnyType>:$results);
  let regions = (region SizedRegion<1>:$decide, VariadicRegion<AnyRegion>:$action_bodies);

  let assemblyFormat = [{
    $sequence (`classes` $classes^ `:` type($classes))?
    (`init` `(` $init^ `:` type($init) `)`)? (`budget` $budget^)?
    `actions` $actions attr-dict `:` type($sequence) (`->` type($results)^)?
    `decide` $decide $action_bodies
  }];
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
  let extraClassDeclaration = [{
    /// The type of one step of `sequence` (its leading dimension dropped).
    ::mlir::RankedTensorType getStepType();
  }];
}

//===----------------------------------------------------------------------===//
// Terminators
//===----------------------------------------------------------------------===//

def Dyn_YieldOp : Dyn_Op<"yield", [
    Pure, Terminator, ReturnLike,
    ParentOneOf<["ExitIfOp", "RouteOp", "SkipOp"]>]> {
  let summary = "Yield the results of a dyn region";
  let description = [{
    Ends the region of `dyn.exit_if` (the deeper network's logits),
    `dyn.route` (the expert output rows) and the action regions of
    `dyn.skip` (the new state).
  }];
  let arguments = (ins Variadic<AnyType>:$values);
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
  let builders = [OpBuilder<(ins), [{ build($_builder, $_state, std::nullopt); }]>];
}

def Dyn_DecideOp : Dyn_Op<"decide", [
    Pure, Terminator, HasParent<"SkipOp">]> {
  let summary = "Yield the action of one step of dyn.skip";
  let description = [{
    Ends the `decide` region of `dyn.skip`: `action` is the index of the
    action to take in the op's `actions` list; `amount` is how far a `jump`
    or `shuttle` moves (required when the list has such an action).

    ```mlir
    dyn.decide %action jump %k
    ```
  }];
  let arguments = (ins Index:$action, Optional<I64>:$amount);
  let assemblyFormat = "$action (`jump` $amount^)? attr-dict";
}

#endif // DYN_OPS_TD
