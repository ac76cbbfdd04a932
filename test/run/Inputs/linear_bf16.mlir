// Weights and --precision=bf16 (bf16-weights.test): fc1.weight only feeds a
// bf16 GEMM (kept as bf16); fc1.bias is its epilogue's (fp32); mixed feeds a
// bf16 GEMM and an elementwise op too (fp32, the op sees every bit).
#id = affine_map<(i, j) -> (i, j)>
func.func @lin(%x: tensor<64x96xf32> {dyn.name = "x"},
               %w1: tensor<96x80xf32> {dyn.weight = "fc1.weight"},
               %b1: tensor<80xf32> {dyn.weight = "fc1.bias"},
               %wm: tensor<80x80xf32> {dyn.weight = "mixed"})
    -> (tensor<64x80xf32>, tensor<80x80xf32>) {
  %z = arith.constant 0.0 : f32
  %two = arith.constant 2.0 : f32
  %e = tensor.empty() : tensor<64x80xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<64x80xf32>) -> tensor<64x80xf32>
  %mm = linalg.matmul ins(%x, %w1 : tensor<64x96xf32>, tensor<96x80xf32>) outs(%f : tensor<64x80xf32>) -> tensor<64x80xf32>
  %h = linalg.generic {indexing_maps = [#id, affine_map<(i, j) -> (j)>, #id], iterator_types = ["parallel", "parallel"]} ins(%mm, %b1 : tensor<64x80xf32>, tensor<80xf32>) outs(%e : tensor<64x80xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %s = arith.addf %a, %c : f32
    linalg.yield %s : f32
  } -> tensor<64x80xf32>
  %y = linalg.matmul ins(%h, %wm : tensor<64x80xf32>, tensor<80x80xf32>) outs(%f : tensor<64x80xf32>) -> tensor<64x80xf32>
  %e2 = tensor.empty() : tensor<80x80xf32>
  %d = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%wm : tensor<80x80xf32>) outs(%e2 : tensor<80x80xf32>) {
  ^bb0(%a: f32, %o: f32):
    %s = arith.mulf %a, %two : f32
    linalg.yield %s : f32
  } -> tensor<80x80xf32>
  return %y, %d : tensor<64x80xf32>, tensor<80x80xf32>
}
