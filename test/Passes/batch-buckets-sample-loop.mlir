// RUN: dyncc-opt %s -dyn-batch-buckets="buckets=1,2" | FileCheck %s --check-prefix=MARK
// RUN: dyncc-opt %s -dyn-batch-buckets="buckets=1,2" -dyn-lower-exit-if -dyn-batch-buckets="buckets=1,2 sample-loop=1" | FileCheck %s

// An exit chain that does not cut the model into stages (here token-level)
// runs sample after sample: the first run of the pass only marks the
// model; after -dyn-lower-exit-if the second builds the loop over samples,
// and the exit layers become a per-sample result like any other.

// MARK: module attributes {dyn.batch_sample_loop}
// MARK: dyn.exit_if

// CHECK: module attributes {dyn.batch_buckets = array<i32: 2>, dyn.batch_stages = 0 : i32}
// CHECK-LABEL: func.func @token(
// CHECK-SAME: tensor<2x1x4x8xf32>
// CHECK-SAME: -> (tensor<2x1x4x3xf32>, tensor<2x1x4xi32> {dyn.name = "exit_layer"})
// CHECK: scf.while
// CHECK: func.call @token_batch_sample
// CHECK-NOT: dyn.exit_if
func.func @token(%h: tensor<1x4x8xf32> {dyn.name = "h"}, %z: tensor<1x4x3xf32> {dyn.name = "z"}) -> tensor<1x4x3xf32> {
  %r = dyn.exit_if %z hidden %h : tensor<1x4x8xf32> criterion #dyn.entropy<threshold = #dyn.param<"theta" = 0.5>> layer 1 granularity token : tensor<1x4x3xf32> {
  ^bb0(%frozen: tensor<1x4x8xf32>):
    dyn.yield %z : tensor<1x4x3xf32>
  }
  return %r : tensor<1x4x3xf32>
}
