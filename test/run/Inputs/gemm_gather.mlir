// A GEMM result read twice in one kernel: by its elementwise epilogue and by
// a gather (gemm-gather.test). The gather must see the GEMM's own values,
// not the epilogue's.
#id = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (i)>
func.func @g(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>, %idx: tensor<4xi32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %cst = arith.constant 0.0 : f32
  %one = arith.constant 1.0 : f32
  %e = tensor.empty() : tensor<4x8xf32>
  %z = linalg.fill ins(%cst : f32) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
  %y = linalg.matmul ins(%x, %w : tensor<4x8xf32>, tensor<8x8xf32>) outs(%z : tensor<4x8xf32>) -> tensor<4x8xf32>
  %p = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%y : tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = arith.addf %a, %one : f32
    linalg.yield %r : f32
  } -> tensor<4x8xf32>
  %g = linalg.generic {indexing_maps = [#row, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%idx, %p : tensor<4xi32>, tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%r: i32, %pp: f32, %o: f32):
    %ri = arith.index_cast %r : i32 to index
    %j = linalg.index 1 : index
    %v = tensor.extract %y[%ri, %j] : tensor<4x8xf32>
    %s = arith.addf %v, %pp : f32
    linalg.yield %s : f32
  } -> tensor<4x8xf32>
  return %p, %g : tensor<4x8xf32>, tensor<4x8xf32>
}
