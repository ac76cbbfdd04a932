// A matmul of 64 rows (the Tiled GEMM path) with an odd K and a bias
// epilogue (bf16.test).
func.func @m(%x: tensor<64x95xf32> {dyn.name = "x"}, %w: tensor<95x80xf32> {dyn.name = "w"}, %b: tensor<80xf32> {dyn.name = "b"}) -> tensor<64x80xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<64x80xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<64x80xf32>) -> tensor<64x80xf32>
  %mm = linalg.matmul ins(%x, %w : tensor<64x95xf32>, tensor<95x80xf32>) outs(%f : tensor<64x80xf32>) -> tensor<64x80xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]} ins(%mm, %b : tensor<64x80xf32>, tensor<80xf32>) outs(%e : tensor<64x80xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %s = arith.addf %a, %c : f32
    linalg.yield %s : f32
  } -> tensor<64x80xf32>
  return %r : tensor<64x80xf32>
}
