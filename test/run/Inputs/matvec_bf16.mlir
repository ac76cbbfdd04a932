// One row (the few-row Stream GEMM path) against 768 x 1024 weights (3 MB,
// more than an L2), with a bias epilogue (bf16.test).
func.func @v(%x: tensor<1x768xf32> {dyn.name = "x"}, %w: tensor<768x1024xf32> {dyn.name = "w"}, %b: tensor<1024xf32> {dyn.name = "b"}) -> tensor<1x1024xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x1024xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<1x1024xf32>) -> tensor<1x1024xf32>
  %mm = linalg.matmul ins(%x, %w : tensor<1x768xf32>, tensor<768x1024xf32>) outs(%f : tensor<1x1024xf32>) -> tensor<1x1024xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]} ins(%mm, %b : tensor<1x1024xf32>, tensor<1024xf32>) outs(%e : tensor<1x1024xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %s = arith.addf %a, %c : f32
    linalg.yield %s : f32
  } -> tensor<1x1024xf32>
  return %r : tensor<1x1024xf32>
}
