// A matmul whose epilogues kernel formation fuses into the GEMM: BERT's
// GELU (erf of x / sqrt(2)) and tanh(2 x + 1) (gelu-tanh-nan.test).
func.func @m(%x: tensor<64x32xf32> {dyn.name = "x"}, %w: tensor<32x64xf32> {dyn.name = "w"}) -> (tensor<64x64xf32>, tensor<64x64xf32>) {
  %z = arith.constant 0.0 : f32
  %half = arith.constant 0.5 : f32
  %one = arith.constant 1.0 : f32
  %two = arith.constant 2.0 : f32
  %sqrt2 = arith.constant 1.41421354 : f32
  %e = tensor.empty() : tensor<64x64xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<64x64xf32>) -> tensor<64x64xf32>
  %mm = linalg.matmul ins(%x, %w : tensor<64x32xf32>, tensor<32x64xf32>) outs(%f : tensor<64x64xf32>) -> tensor<64x64xf32>
  %g = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]} ins(%mm : tensor<64x64xf32>) outs(%e : tensor<64x64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %s = arith.divf %a, %sqrt2 : f32
    %r = math.erf %s : f32
    %p = arith.addf %r, %one : f32
    %h = arith.mulf %p, %half : f32
    %y = arith.mulf %a, %h : f32
    linalg.yield %y : f32
  } -> tensor<64x64xf32>
  %t = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]} ins(%mm : tensor<64x64xf32>) outs(%e : tensor<64x64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %d = arith.mulf %a, %two : f32
    %s = arith.addf %d, %one : f32
    %y = math.tanh %s : f32
    linalg.yield %y : f32
  } -> tensor<64x64xf32>
  return %g, %t : tensor<64x64xf32>, tensor<64x64xf32>
}
