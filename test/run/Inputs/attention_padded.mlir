// Attention over padded sequences (attention-padding.test): scores q kt
// scaled, plus a mask per batch element over the keys (0 for a token, -inf
// for padding), softmax, then the value product; one attention kernel.
#s3 = affine_map<(b, i, j) -> (b, i, j)>
#m3 = affine_map<(b, i, j) -> (b, j)>
func.func @padded(%q: tensor<3x64x8xf32>, %kt: tensor<3x8x64xf32>, %mask: tensor<3x64xf32>,
                  %v: tensor<3x64x16xf32>) -> tensor<3x64x16xf32> {
  %cst = arith.constant 0.0 : f32
  %scale = arith.constant 0.353553385 : f32
  %e = tensor.empty() : tensor<3x64x64xf32>
  %z = linalg.fill ins(%cst : f32) outs(%e : tensor<3x64x64xf32>) -> tensor<3x64x64xf32>
  %s0 = linalg.batch_matmul ins(%q, %kt : tensor<3x64x8xf32>, tensor<3x8x64xf32>) outs(%z : tensor<3x64x64xf32>) -> tensor<3x64x64xf32>
  %s = linalg.generic {indexing_maps = [#s3, #m3, #s3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%s0, %mask : tensor<3x64x64xf32>, tensor<3x64xf32>) outs(%e : tensor<3x64x64xf32>) {
  ^bb0(%a: f32, %m: f32, %out: f32):
    %t = arith.mulf %a, %scale : f32
    %r = arith.addf %t, %m : f32
    linalg.yield %r : f32
  } -> tensor<3x64x64xf32>
  %p = linalg.softmax dimension(2) ins(%s : tensor<3x64x64xf32>) outs(%e : tensor<3x64x64xf32>) -> tensor<3x64x64xf32>
  %e2 = tensor.empty() : tensor<3x64x16xf32>
  %z2 = linalg.fill ins(%cst : f32) outs(%e2 : tensor<3x64x16xf32>) -> tensor<3x64x16xf32>
  %o = linalg.batch_matmul ins(%p, %v : tensor<3x64x64xf32>, tensor<3x64x16xf32>) outs(%z2 : tensor<3x64x16xf32>) -> tensor<3x64x16xf32>
  return %o : tensor<3x64x16xf32>
}
