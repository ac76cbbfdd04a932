// RUN: dyncc-opt %s -dyn-lower-route -dyn-form-kernels | FileCheck %s

// One expert: the batched body ops have a unit expert loop, which kernel
// formation drops everywhere else; the masked ones keep their loops and
// their dyn.row_mask, so that their GEMMs still skip the empty capacity.

// CHECK-LABEL: func.func private @one_expert_kernel
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<1x16x8xf32>, tensor<1x8x12xf32>, tensor<1x16xi32>)
// CHECK-SAME: attrs = {dyn.row_mask = 2 : i64}

func.func @one_expert(%x: tensor<16x8xf32>, %logits: tensor<16x1xf32>, %w1: tensor<1x8x12xf32> {dyn.weight = "w1"}) -> tensor<16x12xf32> {
  %y = dyn.route top_k %x, %logits experts(%w1 : tensor<1x8x12xf32>)
      {num_experts = 1 : i64, k = 1 : i64, capacity_factor = 1.0 : f64}
      : tensor<16x8xf32>, tensor<16x1xf32> -> tensor<16x12xf32> {
  ^bb0(%t: tensor<?x8xf32>, %a: tensor<8x12xf32>):
    %c0 = arith.constant 0 : index
    %n = tensor.dim %t, %c0 : tensor<?x8xf32>
    %zero = arith.constant 0.0 : f32
    %e1 = tensor.empty(%n) : tensor<?x12xf32>
    %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<?x12xf32>) -> tensor<?x12xf32>
    %h = linalg.matmul ins(%t, %a : tensor<?x8xf32>, tensor<8x12xf32>) outs(%f1 : tensor<?x12xf32>) -> tensor<?x12xf32>
    dyn.yield %h : tensor<?x12xf32>
  }
  return %y : tensor<16x12xf32>
}
