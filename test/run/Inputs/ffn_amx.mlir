// A transformer's feed-forward block on 40 tokens (amx.test): y = GELU(x
// W1^T + b1) W2^T + b2 + x, W1 [256, 128] and W2 [128, 256] ([out, in]:
// with --precision=bf16 both kept as bf16 pairs in panels), the bias, the
// GELU (erf) and the residual fused into the GEMMs' epilogues.
#a = affine_map<(m, n, k) -> (m, k)>
#b = affine_map<(m, n, k) -> (n, k)>
#c = affine_map<(m, n, k) -> (m, n)>
#id = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (j)>
func.func @ffn(%x: tensor<40x128xf32> {dyn.name = "x"},
               %w1: tensor<256x128xf32> {dyn.weight = "w1"}, %b1: tensor<256xf32> {dyn.weight = "b1"},
               %w2: tensor<128x256xf32> {dyn.weight = "w2"}, %b2: tensor<128xf32> {dyn.weight = "b2"})
    -> tensor<40x128xf32> {
  %z = arith.constant 0.0 : f32
  %half = arith.constant 0.5 : f32
  %one = arith.constant 1.0 : f32
  %rsqrt2 = arith.constant 0.70710678118654752 : f32
  %e256 = tensor.empty() : tensor<40x256xf32>
  %f256 = linalg.fill ins(%z : f32) outs(%e256 : tensor<40x256xf32>) -> tensor<40x256xf32>
  %h = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w1 : tensor<40x128xf32>, tensor<256x128xf32>) outs(%f256 : tensor<40x256xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %t = arith.mulf %p, %q : f32
    %s = arith.addf %o, %t : f32
    linalg.yield %s : f32
  } -> tensor<40x256xf32>
  %g = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel"]} ins(%h, %b1 : tensor<40x256xf32>, tensor<256xf32>) outs(%e256 : tensor<40x256xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %t = arith.addf %p, %q : f32
    %u = arith.mulf %t, %rsqrt2 : f32
    %v = math.erf %u : f32
    %w = arith.addf %v, %one : f32
    %hx = arith.mulf %t, %half : f32
    %r = arith.mulf %hx, %w : f32
    linalg.yield %r : f32
  } -> tensor<40x256xf32>
  %e128 = tensor.empty() : tensor<40x128xf32>
  %f128 = linalg.fill ins(%z : f32) outs(%e128 : tensor<40x128xf32>) -> tensor<40x128xf32>
  %y = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "reduction"]} ins(%g, %w2 : tensor<40x256xf32>, tensor<128x256xf32>) outs(%f128 : tensor<40x128xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %t = arith.mulf %p, %q : f32
    %s = arith.addf %o, %t : f32
    linalg.yield %s : f32
  } -> tensor<40x128xf32>
  %out = linalg.generic {indexing_maps = [#id, #row, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%y, %b2, %x : tensor<40x128xf32>, tensor<128xf32>, tensor<40x128xf32>) outs(%e128 : tensor<40x128xf32>) {
  ^bb0(%p: f32, %q: f32, %r: f32, %o: f32):
    %t = arith.addf %p, %q : f32
    %u = arith.addf %t, %r : f32
    linalg.yield %u : f32
  } -> tensor<40x128xf32>
  return %out : tensor<40x128xf32>
}
