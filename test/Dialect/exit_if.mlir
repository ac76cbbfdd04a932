// RUN: dyncc-opt %s | FileCheck %s
// RUN: dyncc-opt %s | dyncc-opt | FileCheck %s
// RUN: dyncc-opt %s -mlir-print-op-generic | dyncc-opt | FileCheck %s

// Every exit criterion of survey Table 3, sample- and token-level exit,
// and a cascade of complete models.

// CHECK-LABEL: func @entropy
func.func @entropy(%l1: tensor<1x2xf32>, %l2: tensor<1x2xf32>, %l3: tensor<1x2xf32>) -> tensor<1x2xf32> {
  // CHECK: dyn.exit_if %{{.*}} criterion #dyn.entropy<threshold = <"theta" = 0.3>> layer 1 : tensor<1x2xf32> {
  // CHECK:   dyn.exit_if %{{.*}} criterion #dyn.entropy<threshold = <"theta" = 0.3>> layer 2 : tensor<1x2xf32> {
  // CHECK:     dyn.yield %{{.*}} : tensor<1x2xf32>
  %r = dyn.exit_if %l1 criterion #dyn.entropy<threshold = #dyn.param<"theta" = 0.3>> layer 1 : tensor<1x2xf32> {
    %inner = dyn.exit_if %l2 criterion #dyn.entropy<threshold = #dyn.param<"theta" = 0.3>> layer 2 : tensor<1x2xf32> {
      dyn.yield %l3 : tensor<1x2xf32>
    }
    dyn.yield %inner : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// CHECK-LABEL: func @never_and_always
func.func @never_and_always(%l1: tensor<4x3xf64>, %l2: tensor<4x3xf64>) -> tensor<4x3xf64> {
  // CHECK: #dyn.entropy<threshold = <"always" = inf>>
  %r = dyn.exit_if %l1 criterion #dyn.entropy<threshold = #dyn.param<"always" = inf>> layer 1 : tensor<4x3xf64> {
    dyn.yield %l2 : tensor<4x3xf64>
  }
  // CHECK: #dyn.entropy<threshold = <"never" = 0>>
  %s = dyn.exit_if %l1 criterion #dyn.entropy<threshold = #dyn.param<"never" = 0>> layer 1 : tensor<4x3xf64> {
    dyn.yield %r : tensor<4x3xf64>
  }
  return %s : tensor<4x3xf64>
}

// CHECK-LABEL: func @max_prob
func.func @max_prob(%l1: tensor<1x2xf32>, %l2: tensor<1x2xf32>) -> tensor<1x2xf32> {
  // CHECK: criterion #dyn.max_prob<temperature = 1.500000e+00 : f64, threshold = <"tau" = 0.9>> layer 4
  %r = dyn.exit_if %l1 criterion #dyn.max_prob<temperature = 1.5 : f64, threshold = #dyn.param<"tau" = 0.9>> layer 4 : tensor<1x2xf32> {
    dyn.yield %l2 : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// CHECK-LABEL: func @patience
func.func @patience(%l1: tensor<1x2xf32>, %l2: tensor<1x2xf32>, %l3: tensor<1x2xf32>) -> tensor<1x2xf32> {
  // CHECK: criterion #dyn.patience<k = <"patience" = 3>> layer 1
  // CHECK: criterion #dyn.patience<k = <"patience" = 3>> layer 2
  %r = dyn.exit_if %l1 criterion #dyn.patience<k = #dyn.param<"patience" = 3>> layer 1 : tensor<1x2xf32> {
    %inner = dyn.exit_if %l2 criterion #dyn.patience<k = #dyn.param<"patience" = 3>> layer 2 : tensor<1x2xf32> {
      dyn.yield %l3 : tensor<1x2xf32>
    }
    dyn.yield %inner : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// CHECK-LABEL: func @votes
func.func @votes(%l1: tensor<2x5xf32>, %l2: tensor<2x5xf32>) -> tensor<2x5xf32> {
  // CHECK: criterion #dyn.votes<threshold = <"votes" = 2>> layer 1
  %r = dyn.exit_if %l1 criterion #dyn.votes<threshold = #dyn.param<"votes" = 2>> layer 1 : tensor<2x5xf32> {
    dyn.yield %l2 : tensor<2x5xf32>
  }
  return %r : tensor<2x5xf32>
}

// CHECK-LABEL: func @learned_score
func.func @learned_score(%l1: tensor<2x2xf32>, %s1: tensor<2x1xf32>, %s1b: tensor<2xf32>, %l2: tensor<2x2xf32>) -> tensor<2x2xf32> {
  // CHECK: dyn.exit_if %{{.*}} score %{{.*}} : tensor<2x1xf32> criterion #dyn.learned_score<threshold = <"lte" = 0.5>> layer 1
  // CHECK: dyn.exit_if %{{.*}} score %{{.*}} : tensor<2xf32> criterion
  %r = dyn.exit_if %l1 score %s1 : tensor<2x1xf32> criterion #dyn.learned_score<threshold = #dyn.param<"lte" = 0.5>> layer 1 : tensor<2x2xf32> {
    %inner = dyn.exit_if %l2 score %s1b : tensor<2xf32> criterion #dyn.learned_score<threshold = #dyn.param<"lte" = 0.5>> layer 2 : tensor<2x2xf32> {
      dyn.yield %l2 : tensor<2x2xf32>
    }
    dyn.yield %inner : tensor<2x2xf32>
  }
  return %r : tensor<2x2xf32>
}

// CHECK-LABEL: func @per_class
func.func @per_class(%l1: tensor<1x3xf32>, %l2: tensor<1x3xf32>) -> tensor<1x3xf32> {
  // CHECK: criterion #dyn.per_class<thresholds = <"rank" = [0.9, 0.5, 1]>> layer 1
  %r = dyn.exit_if %l1 criterion #dyn.per_class<thresholds = #dyn.param<"rank" = [0.9, 0.5, 1]>> layer 1 : tensor<1x3xf32> {
    dyn.yield %l2 : tensor<1x3xf32>
  }
  return %r : tensor<1x3xf32>
}

// Token-level exit: the region receives the frozen hidden state.
// CHECK-LABEL: func @token_level
func.func @token_level(%l3: tensor<1x8x9xf32>, %h3: tensor<1x8x16xf32>, %w: tensor<1x8x9xf32>) -> tensor<1x8x9xf32> {
  // CHECK: dyn.exit_if %{{.*}} hidden %{{.*}} : tensor<1x8x16xf32> criterion #dyn.max_prob<{{.*}}> layer 3 granularity token : tensor<1x8x9xf32> {
  // CHECK: ^bb0(%[[FROZEN:.*]]: tensor<1x8x16xf32>):
  // CHECK:   dyn.exit_if %{{.*}} hidden %[[FROZEN]] : tensor<1x8x16xf32> {{.*}} layer 4 granularity token
  %r = dyn.exit_if %l3 hidden %h3 : tensor<1x8x16xf32> criterion #dyn.max_prob<temperature = 1.0 : f64, threshold = #dyn.param<"tau" = 0.9>> layer 3 granularity token : tensor<1x8x9xf32> {
  ^bb0(%frozen: tensor<1x8x16xf32>):
    %inner = dyn.exit_if %w hidden %frozen : tensor<1x8x16xf32> criterion #dyn.max_prob<temperature = 1.0 : f64, threshold = #dyn.param<"tau" = 0.9>> layer 4 granularity token : tensor<1x8x9xf32> {
    ^bb0(%frozen2: tensor<1x8x16xf32>):
      dyn.yield %w : tensor<1x8x9xf32>
    }
    dyn.yield %inner : tensor<1x8x9xf32>
  }
  return %r : tensor<1x8x9xf32>
}

// A cascade: the region runs the next, larger model on the original input.
func.func private @small(tensor<1x16xi64>) -> tensor<1x2xf32>
func.func private @large(tensor<1x16xi64>) -> tensor<1x2xf32>
// CHECK-LABEL: func @cascade
func.func @cascade(%ids: tensor<1x16xi64>) -> tensor<1x2xf32> {
  // CHECK: %[[S:.*]] = call @small
  // CHECK: dyn.exit_if %[[S]] criterion #dyn.max_prob<{{.*}}> layer 1 : tensor<1x2xf32> {
  // CHECK:   call @large
  %s = func.call @small(%ids) : (tensor<1x16xi64>) -> tensor<1x2xf32>
  %r = dyn.exit_if %s criterion #dyn.max_prob<temperature = 1.2 : f64, threshold = #dyn.param<"cascade" = 0.8>> layer 1 : tensor<1x2xf32> {
    %l = func.call @large(%ids) : (tensor<1x16xi64>) -> tensor<1x2xf32>
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}
