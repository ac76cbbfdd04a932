// RUN: dyncc-opt %s -dyn-lower-route | FileCheck %s

// An expert body as torch-mlir exports it with a dynamic row count: the
// row count comes from tensor.dim, a shape check asserts on it, and a fused
// gate/up projection is split with tensor.extract_slice (torch's chunk).
// In the batched body the check is decided for the static dispatch shape
// (it holds: no assert is left) and the slice takes the same columns of
// every expert's rows.

// CHECK-LABEL: func.func @chunked(
// CHECK-NOT: cf.assert
// CHECK: %[[P:.*]] = linalg.generic {{.*}} ins(%{{.*}}, %arg2, %{{.*}} : tensor<2x8x4xf32>, tensor<2x4x8xf32>, tensor<2x8xi32>)
// CHECK: tensor.extract_slice %[[P]][0, 0, 0] [2, 8, 4] [1, 1, 1] : tensor<2x8x8xf32> to tensor<2x8x4xf32>
// CHECK: tensor.extract_slice %[[P]][0, 0, 4] [2, 8, 4] [1, 1, 1] : tensor<2x8x8xf32> to tensor<2x8x4xf32>
// CHECK-NOT: dyn.route

#id = affine_map<(i, j) -> (i, j)>
#mm_a = affine_map<(i, j, k) -> (i, k)>
#mm_b = affine_map<(i, j, k) -> (k, j)>
#mm_c = affine_map<(i, j, k) -> (i, j)>
func.func @chunked(%x: tensor<8x4xf32>, %logits: tensor<8x2xf32>, %w: tensor<2x4x8xf32> {dyn.weight = "w"}) -> tensor<8x4xf32> {
  %y = dyn.route switch %x, %logits experts(%w : tensor<2x4x8xf32>) {num_experts = 2 : i64}
      : tensor<8x4xf32>, tensor<8x2xf32> -> tensor<8x4xf32> {
  ^bb0(%t: tensor<?x4xf32>, %we: tensor<4x8xf32>):
    %c0 = arith.constant 0 : index
    %zero64 = arith.constant 0 : i64
    %zero = arith.constant 0.0 : f32
    %n = tensor.dim %t, %c0 : tensor<?x4xf32>
    %n64 = arith.index_cast %n : index to i64
    %ok = arith.cmpi sge, %n64, %zero64 : i64
    cf.assert %ok, "negative values not allowed in new dimensions"
    %e = tensor.empty(%n) : tensor<?x8xf32>
    %f = linalg.fill ins(%zero : f32) outs(%e : tensor<?x8xf32>) -> tensor<?x8xf32>
    %p = linalg.generic {indexing_maps = [#mm_a, #mm_b, #mm_c], iterator_types = ["parallel", "parallel", "reduction"]}
        ins(%t, %we : tensor<?x4xf32>, tensor<4x8xf32>) outs(%f : tensor<?x8xf32>) {
    ^bb0(%a: f32, %b: f32, %acc: f32):
      %m = arith.mulf %a, %b : f32
      %s = arith.addf %acc, %m : f32
      linalg.yield %s : f32
    } -> tensor<?x8xf32>
    %g = tensor.extract_slice %p[0, 0] [%n, 4] [1, 1] : tensor<?x8xf32> to tensor<?x4xf32>
    %u = tensor.extract_slice %p[0, 4] [%n, 4] [1, 1] : tensor<?x8xf32> to tensor<?x4xf32>
    %e2 = tensor.empty(%n) : tensor<?x4xf32>
    %h = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
        ins(%g, %u : tensor<?x4xf32>, tensor<?x4xf32>) outs(%e2 : tensor<?x4xf32>) {
    ^bb0(%a: f32, %b: f32, %o: f32):
      %m = arith.mulf %a, %b : f32
      linalg.yield %m : f32
    } -> tensor<?x4xf32>
    dyn.yield %h : tensor<?x4xf32>
  }
  return %y : tensor<8x4xf32>
}
