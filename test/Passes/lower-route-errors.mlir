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

// -----

// Each row of the expert body must come from its own token: the dispatch
// buffers hold other tokens, padding and dropped slots, so a body that
// mixes rows computes something eager PyTorch does not. Adding the mean of
// all rows (a reduction over the row loop) is a located error.
#rows = affine_map<(d0, d1) -> (d0, d1)>
#feat = affine_map<(d0, d1) -> (d1)>
func.func @row_mean(%x: tensor<8x4xf32>, %g: tensor<8x2xf32>) -> tensor<8x4xf32> {
  %y = dyn.route switch %x, %g {num_experts = 2 : i64} : tensor<8x4xf32>, tensor<8x2xf32> -> tensor<8x4xf32> {
  ^bb0(%t: tensor<?x4xf32>):
    %z = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<4xf32>
    %f = linalg.fill ins(%z : f32) outs(%e : tensor<4xf32>) -> tensor<4xf32>
    // expected-error @+1 {{'linalg.generic' op mixes tokens inside a dyn.route expert body: it reduces over the rows (loop d0)}}
    %s = linalg.generic {indexing_maps = [#rows, #feat], iterator_types = ["reduction", "parallel"]}
        ins(%t : tensor<?x4xf32>) outs(%f : tensor<4xf32>) {
    ^bb0(%a: f32, %acc: f32):
      %r = arith.addf %a, %acc : f32
      linalg.yield %r : f32
    } -> tensor<4xf32>
    dyn.yield %t : tensor<?x4xf32>
  }
  return %y : tensor<8x4xf32>
}

// -----

// A token-by-token product (t t^T, rows against rows).
#a = affine_map<(d0, d1, d2) -> (d0, d2)>
#b = affine_map<(d0, d1, d2) -> (d1, d2)>
#c = affine_map<(d0, d1, d2) -> (d0, d1)>
func.func @gram(%x: tensor<8x4xf32>, %g: tensor<8x2xf32>) -> tensor<8x8xf32> {
  %y = dyn.route switch %x, %g {num_experts = 2 : i64} : tensor<8x4xf32>, tensor<8x2xf32> -> tensor<8x8xf32> {
  ^bb0(%t: tensor<?x4xf32>):
    %c0 = arith.constant 0 : index
    %n = tensor.dim %t, %c0 : tensor<?x4xf32>
    %e = tensor.empty(%n) : tensor<?x8xf32>
    // expected-error @+1 {{'linalg.generic' op mixes tokens inside a dyn.route expert body: operand 1 is not read row by row}}
    %p = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "reduction"]}
        ins(%t, %t : tensor<?x4xf32>, tensor<?x4xf32>) outs(%e : tensor<?x8xf32>) {
    ^bb0(%u: f32, %v: f32, %acc: f32):
      %m = arith.mulf %u, %v : f32
      %r = arith.addf %m, %acc : f32
      linalg.yield %r : f32
    } -> tensor<?x8xf32>
    dyn.yield %p : tensor<?x8xf32>
  }
  return %y : tensor<8x8xf32>
}

// -----

// Rows shifted by one (reading the row position).
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @shift(%x: tensor<8x4xf32>, %g: tensor<8x2xf32>) -> tensor<8x4xf32> {
  %y = dyn.route switch %x, %g {num_experts = 2 : i64} : tensor<8x4xf32>, tensor<8x2xf32> -> tensor<8x4xf32> {
  ^bb0(%t: tensor<?x4xf32>):
    %c0 = arith.constant 0 : index
    %n = tensor.dim %t, %c0 : tensor<?x4xf32>
    %e = tensor.empty(%n) : tensor<?x4xf32>
    // expected-error @+1 {{'linalg.generic' op mixes tokens inside a dyn.route expert body: its body reads the row position (linalg.index 0)}}
    %s = linalg.generic {indexing_maps = [#id], iterator_types = ["parallel", "parallel"]}
        outs(%e : tensor<?x4xf32>) {
    ^bb0(%o: f32):
      %i = linalg.index 0 : index
      %j = linalg.index 1 : index
      %i1 = arith.addi %i, %c0 : index
      %v = tensor.extract %t[%i1, %j] : tensor<?x4xf32>
      linalg.yield %v : f32
    } -> tensor<?x4xf32>
    dyn.yield %s : tensor<?x4xf32>
  }
  return %y : tensor<8x4xf32>
}

// -----

// A slice of the rows.
func.func @row_slice(%x: tensor<8x4xf32>, %g: tensor<8x2xf32>) -> tensor<8x4xf32> {
  %y = dyn.route switch %x, %g {num_experts = 2 : i64} : tensor<8x4xf32>, tensor<8x2xf32> -> tensor<8x4xf32> {
  ^bb0(%t: tensor<?x4xf32>):
    // expected-error @+1 {{'tensor.extract_slice' op mixes tokens inside a dyn.route expert body: it slices the rows (dimension 0)}}
    %s = tensor.extract_slice %t[1, 0] [2, 4] [1, 1] : tensor<?x4xf32> to tensor<2x4xf32>
    %e = tensor.empty() : tensor<2x4xf32>
    dyn.yield %t : tensor<?x4xf32>
  }
  return %y : tensor<8x4xf32>
}
