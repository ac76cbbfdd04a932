// RUN: dyncc-opt %s -split-input-file -dyn-lower-route="expert-parallel=2" -verify-diagnostics | FileCheck %s

// Expert parallelism over 2 ranks: the [4, ...] expert weights become one
// rank's [2, ...] shard (dyn.expert_shard = 2), the dispatch [4, 8, 8]
// travels to the experts' ranks ([2, 2 * 8, 8]: every rank's 8 rows of each
// local expert), the body runs on the local experts and the results come
// back ([4, 8, 8]) for the combine. The module records the rank count.

// CHECK: module attributes {dyn.expert_parallel = 2 : i64}
// CHECK-LABEL: func.func private @capacity_route0_exchange(tensor<4x8x8xf32>, tensor<32xi32>) -> tensor<2x16x8xf32>
// CHECK-SAME: dyn.builtin = 4 : i32
// CHECK-SAME: dyn.config = array<f64: 0.000000e+00, 0.000000e+00, 4.000000e+00, 2.000000e+00, 8.000000e+00, 8.000000e+00>
// CHECK-LABEL: func.func private @capacity_route0_return(tensor<2x16x8xf32>, tensor<32xi32>) -> tensor<4x8x8xf32>
// CHECK-SAME: dyn.builtin = 4 : i32
// CHECK-SAME: dyn.config = array<f64: 0.000000e+00, 1.000000e+00, 4.000000e+00, 2.000000e+00, 8.000000e+00, 8.000000e+00>
// CHECK-LABEL: func.func @capacity(
// CHECK-SAME: %arg2: tensor<2x8x12xf32> {dyn.expert_shard = 2 : i64, dyn.weight = "w1"}
// CHECK-SAME: %arg3: tensor<2x12x8xf32> {dyn.expert_shard = 2 : i64, dyn.weight = "w2"}
// CHECK: %[[A:.*]]:3 = call @capacity_route0(%{{.*}})
// CHECK: %[[XD:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<4x8x8xf32>)
// CHECK: %[[XL:.*]] = call @capacity_route0_exchange(%[[XD]], %[[A]]#0) : (tensor<4x8x8xf32>, tensor<32xi32>) -> tensor<2x16x8xf32>
// CHECK: %[[H:.*]] = linalg.generic {{.*}} ins(%[[XL]], %arg2 : tensor<2x16x8xf32>, tensor<2x8x12xf32>)
// CHECK: %[[YL:.*]] = linalg.generic {{.*}} ins(%{{.*}}, %arg3 : tensor<2x16x12xf32>, tensor<2x12x8xf32>)
// CHECK: %[[YD:.*]] = call @capacity_route0_return(%[[YL]], %[[A]]#0) : (tensor<2x16x8xf32>, tensor<32xi32>) -> tensor<4x8x8xf32>
// CHECK: tensor.collapse_shape %[[YD]]
// CHECK-NOT: dyn.route

func.func @capacity(%x: tensor<16x8xf32>, %logits: tensor<16x4xf32>, %w1: tensor<4x8x12xf32> {dyn.weight = "w1"}, %w2: tensor<4x12x8xf32> {dyn.weight = "w2"}) -> tensor<16x8xf32> {
  %y = dyn.route top_k %x, %logits experts(%w1, %w2 : tensor<4x8x12xf32>, tensor<4x12x8xf32>)
      {num_experts = 4 : i64, k = 2 : i64, capacity_factor = 1.0 : f64}
      : tensor<16x8xf32>, tensor<16x4xf32> -> tensor<16x8xf32> {
  ^bb0(%t: tensor<?x8xf32>, %a: tensor<8x12xf32>, %b: tensor<12x8xf32>):
    %c0 = arith.constant 0 : index
    %n = tensor.dim %t, %c0 : tensor<?x8xf32>
    %zero = arith.constant 0.0 : f32
    %e1 = tensor.empty(%n) : tensor<?x12xf32>
    %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<?x12xf32>) -> tensor<?x12xf32>
    %h = linalg.matmul ins(%t, %a : tensor<?x8xf32>, tensor<8x12xf32>) outs(%f1 : tensor<?x12xf32>) -> tensor<?x12xf32>
    %e2 = tensor.empty(%n) : tensor<?x8xf32>
    %f2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<?x8xf32>) -> tensor<?x8xf32>
    %o = linalg.matmul ins(%h, %b : tensor<?x12xf32>, tensor<12x8xf32>) outs(%f2 : tensor<?x8xf32>) -> tensor<?x8xf32>
    dyn.yield %o : tensor<?x8xf32>
  }
  return %y : tensor<16x8xf32>
}

// -----

// 3 experts do not split over 2 ranks.
func.func @uneven(%x: tensor<8x4xf32>, %g: tensor<8x3xf32>, %w: tensor<3x4x4xf32> {dyn.weight = "w"}) -> tensor<8x4xf32> {
  // expected-error @+1 {{'dyn.route' op has 3 experts, which --expert-parallel=2 cannot split evenly}}
  %y = dyn.route switch %x, %g experts(%w : tensor<3x4x4xf32>) {num_experts = 3 : i64} : tensor<8x4xf32>, tensor<8x3xf32> -> tensor<8x4xf32> {
  ^bb0(%t: tensor<?x4xf32>, %a: tensor<4x4xf32>):
    %c0 = arith.constant 0 : index
    %n = tensor.dim %t, %c0 : tensor<?x4xf32>
    %e = tensor.empty(%n) : tensor<?x4xf32>
    %o = linalg.matmul ins(%t, %a : tensor<?x4xf32>, tensor<4x4xf32>) outs(%e : tensor<?x4xf32>) -> tensor<?x4xf32>
    dyn.yield %o : tensor<?x4xf32>
  }
  return %y : tensor<8x4xf32>
}

// -----

// Expert parameters must be weights (entry arguments marked dyn.weight).
func.func @not_weight(%x: tensor<8x4xf32>, %g: tensor<8x2xf32>, %w: tensor<2x4x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'dyn.route' op has an expert parameter that is not a weight of the model}}
  %y = dyn.route switch %x, %g experts(%w : tensor<2x4x4xf32>) {num_experts = 2 : i64} : tensor<8x4xf32>, tensor<8x2xf32> -> tensor<8x4xf32> {
  ^bb0(%t: tensor<?x4xf32>, %a: tensor<4x4xf32>):
    %c0 = arith.constant 0 : index
    %n = tensor.dim %t, %c0 : tensor<?x4xf32>
    %e = tensor.empty(%n) : tensor<?x4xf32>
    %o = linalg.matmul ins(%t, %a : tensor<?x4xf32>, tensor<4x4xf32>) outs(%e : tensor<?x4xf32>) -> tensor<?x4xf32>
    dyn.yield %o : tensor<?x4xf32>
  }
  return %y : tensor<8x4xf32>
}

// -----

// A weight the rest of the model reads too cannot be split.
func.func @shared(%x: tensor<8x4xf32>, %g: tensor<8x2xf32>, %w: tensor<2x4x4xf32> {dyn.weight = "w"}) -> (tensor<8x4xf32>, tensor<2x4x4xf32>) {
  // expected-error @+1 {{'dyn.route' op has expert weight 'w', which is also used outside the expert parameters}}
  %y = dyn.route switch %x, %g experts(%w : tensor<2x4x4xf32>) {num_experts = 2 : i64} : tensor<8x4xf32>, tensor<8x2xf32> -> tensor<8x4xf32> {
  ^bb0(%t: tensor<?x4xf32>, %a: tensor<4x4xf32>):
    %c0 = arith.constant 0 : index
    %n = tensor.dim %t, %c0 : tensor<?x4xf32>
    %e = tensor.empty(%n) : tensor<?x4xf32>
    %o = linalg.matmul ins(%t, %a : tensor<?x4xf32>, tensor<4x4xf32>) outs(%e : tensor<?x4xf32>) -> tensor<?x4xf32>
    dyn.yield %o : tensor<?x4xf32>
  }
  return %y, %w : tensor<8x4xf32>, tensor<2x4x4xf32>
}

// -----

// Dropless blocks are not grouped by rank.
func.func @dropless(%x: tensor<8x4xf32>, %g: tensor<8x2xf32>, %w: tensor<2x4x4xf32> {dyn.weight = "w"}) -> tensor<8x4xf32> {
  // expected-error @+1 {{'dyn.route' op uses dropless_block, which --expert-parallel does not support yet}}
  %y = dyn.route top_k %x, %g experts(%w : tensor<2x4x4xf32>) {num_experts = 2 : i64, k = 1 : i64, dropless_block = 4 : i64} : tensor<8x4xf32>, tensor<8x2xf32> -> tensor<8x4xf32> {
  ^bb0(%t: tensor<?x4xf32>, %a: tensor<4x4xf32>):
    %c0 = arith.constant 0 : index
    %n = tensor.dim %t, %c0 : tensor<?x4xf32>
    %e = tensor.empty(%n) : tensor<?x4xf32>
    %o = linalg.matmul ins(%t, %a : tensor<?x4xf32>, tensor<4x4xf32>) outs(%e : tensor<?x4xf32>) -> tensor<?x4xf32>
    dyn.yield %o : tensor<?x4xf32>
  }
  return %y : tensor<8x4xf32>
}
