// RUN: dyncc-opt %s -split-input-file -dyn-lower-route -verify-diagnostics

// Ops outside the batchable set are located errors.
func.func @reshape(%x: tensor<8x4xf32>, %g: tensor<8x2xf32>) -> tensor<8x4xf32> {
  %y = dyn.route switch %x, %g {num_experts = 2 : i64} : tensor<8x4xf32>, tensor<8x2xf32> -> tensor<8x4xf32> {
  ^bb0(%t: tensor<?x4xf32>):
    // expected-error @+1 {{'tensor.collapse_shape' op is not supported in a dyn.route expert body}}
    %c = tensor.collapse_shape %t [[0, 1]] : tensor<?x4xf32> into tensor<?xf32>
    %c0 = arith.constant 0 : index
    %n = tensor.dim %t, %c0 : tensor<?x4xf32>
    %e = tensor.expand_shape %c [[0, 1]] output_shape [%n, 4] : tensor<?xf32> into tensor<?x4xf32>
    dyn.yield %e : tensor<?x4xf32>
  }
  return %y : tensor<8x4xf32>
}

// -----

// A slice whose offset is not a constant cannot be batched.
func.func @slice_offset(%x: tensor<8x4xf32>, %g: tensor<8x2xf32>, %k: index) -> tensor<8x2xf32> {
  %y = dyn.route switch %x, %g {num_experts = 2 : i64} : tensor<8x4xf32>, tensor<8x2xf32> -> tensor<8x2xf32> {
  ^bb0(%t: tensor<?x4xf32>):
    %c0 = arith.constant 0 : index
    %n = tensor.dim %t, %c0 : tensor<?x4xf32>
    // expected-error @+1 {{'tensor.extract_slice' op needs constant offsets inside a dyn.route expert body}}
    %s = tensor.extract_slice %t[0, %k] [%n, 2] [1, 1] : tensor<?x4xf32> to tensor<?x2xf32>
    dyn.yield %s : tensor<?x2xf32>
  }
  return %y : tensor<8x2xf32>
}

// -----

func.func @f64(%x: tensor<8x4xf64>, %g: tensor<8x2xf32>) -> tensor<8x4xf64> {
  // expected-error @+1 {{is compiled for f32 tokens; got 'f64'}}
  %y = dyn.route switch %x, %g {num_experts = 2 : i64} : tensor<8x4xf64>, tensor<8x2xf32> -> tensor<8x4xf64> {
  ^bb0(%t: tensor<?x4xf64>):
    dyn.yield %t : tensor<?x4xf64>
  }
  return %y : tensor<8x4xf64>
}
