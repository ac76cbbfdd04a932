// RUN: dyncc-opt %s -split-input-file -verify-diagnostics -allow-unregistered-dialect

// Runtime parameters and skip actions that cannot be built.

func.func @bad_name(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
  // expected-error @+2 {{runtime parameter name '2nd' is not an identifier}}
  // expected-error @+1 {{failed to parse Dyn_EntropyCriterionAttr parameter 'threshold'}}
  %r = dyn.exit_if %l criterion #dyn.entropy<threshold = #dyn.param<"2nd" = 0.3>> layer 1 : tensor<1x2xf32> {
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @empty_vector(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
  // expected-error @+2 {{expected attribute value}}
  // expected-error @+1 {{failed to parse Dyn_PerClassCriterionAttr parameter 'thresholds'}}
  %r = dyn.exit_if %l criterion #dyn.per_class<thresholds = #dyn.param<"c" = []>> layer 1 : tensor<1x2xf32> {
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @not_a_number(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
  // expected-error @+2 {{expected a number or 'inf'}}
  // expected-error @+1 {{failed to parse Dyn_EntropyCriterionAttr parameter 'threshold'}}
  %r = dyn.exit_if %l criterion #dyn.entropy<threshold = #dyn.param<"t" = "high">> layer 1 : tensor<1x2xf32> {
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @unknown_action() {
  // expected-error @+2 {{failed to parse Dyn_SkipActionAttr parameter 'kind'}}
  // expected-error @+1 {{expected ::dyncc::dyn::SkipActionKind to be one of: read, skim, skip, jump, shuttle, jump_to, stop, reread, partial, flush, upper}}
  "test.use"() {a = #dyn.action<hop>} : () -> ()
  return
}

// -----

func.func @unknown_strategy(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>) -> tensor<8x16xf32> {
  // expected-error @+2 {{custom op 'dyn.route' failed to parse Dyn_RoutingStrategyAttr}}
  // expected-error @+1 {{expected ::dyncc::dyn::RoutingStrategy to be one of: top_k, switch, gshard, base, k_top1, dense_to_sparse, hash, random}}
  %y = dyn.route top2 %x, %g {num_experts = 4 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}
