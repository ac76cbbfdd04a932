// RUN: dyncc-opt %s -split-input-file -verify-diagnostics -dyn-batch-buckets="buckets=1,2"

// What -dyn-batch-buckets does not batch is an error at the op.

// Sample-level logits must be one row per sample.
func.func @rows(%x: tensor<2x3xf32> {dyn.name = "x"}) -> tensor<2x3xf32> {
  // expected-error @+1 {{--batch-buckets: a sample's logits must be [C] or [1, C], got 'tensor<2x3xf32>'}}
  %r = dyn.exit_if %x criterion #dyn.entropy<threshold = #dyn.param<"theta" = 0.5>> layer 1 : tensor<2x3xf32> {
    dyn.yield %x : tensor<2x3xf32>
  }
  return %r : tensor<2x3xf32>
}
