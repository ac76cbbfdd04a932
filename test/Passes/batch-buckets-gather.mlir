// RUN: dyncc-opt %s -dyn-batch-buckets="buckets=1,2" | FileCheck %s

// A gather from a per-sample table (transformers build their attention
// masks this way) reads the current sample's row: the batched op's body
// extracts at (linalg.index 0, ...).
// CHECK-LABEL: func.func @gather
// CHECK: linalg.generic
// CHECK: %[[S:.*]] = linalg.index 0 : index
// CHECK-NEXT: tensor.extract %{{.*}}[%[[S]], %{{.*}}] : tensor<1x4xf32>
// CHECK: tensor.extract %arg0[%{{[0-9]+}}, %in] : tensor<2x4xf32>
func.func @gather(%x: tensor<4xf32> {dyn.name = "x"}, %i: tensor<2xindex> {dyn.name = "i"}) -> tensor<2xf32> {
  %e = tensor.empty() : tensor<2xf32>
  %g = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]}
      ins(%i : tensor<2xindex>) outs(%e : tensor<2xf32>) {
  ^bb0(%j: index, %o: f32):
    %v = tensor.extract %x[%j] : tensor<4xf32>
    linalg.yield %v : f32
  } -> tensor<2xf32>
  return %g : tensor<2xf32>
}
