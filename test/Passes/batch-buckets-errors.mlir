// RUN: dyncc-opt %s -split-input-file -verify-diagnostics -dyn-batch-buckets="buckets=1,2"

// What -dyn-batch-buckets does not batch is an error at the op.

func.func @token(%h: tensor<1x4x8xf32> {dyn.name = "h"}, %z: tensor<1x4x3xf32> {dyn.name = "z"}) -> tensor<1x4x3xf32> {
  // expected-error @+1 {{--batch-buckets does not batch token-level exit}}
  %r = dyn.exit_if %z hidden %h : tensor<1x4x8xf32> criterion #dyn.entropy<threshold = #dyn.param<"theta" = 0.5>> layer 1 granularity token : tensor<1x4x3xf32> {
  ^bb0(%frozen: tensor<1x4x8xf32>):
    dyn.yield %z : tensor<1x4x3xf32>
  }
  return %r : tensor<1x4x3xf32>
}

// -----

// Sample-level logits must be one row per sample.
func.func @rows(%x: tensor<2x3xf32> {dyn.name = "x"}) -> tensor<2x3xf32> {
  // expected-error @+1 {{--batch-buckets: a sample's logits must be [C] or [1, C], got 'tensor<2x3xf32>'}}
  %r = dyn.exit_if %x criterion #dyn.entropy<threshold = #dyn.param<"theta" = 0.5>> layer 1 : tensor<2x3xf32> {
    dyn.yield %x : tensor<2x3xf32>
  }
  return %r : tensor<2x3xf32>
}
