// Linear layers with [out, in] weights (pack-weights.test): w1 and w2 are
// read only, whole, as the B of GEMMs of 32 rows; w3 has 48 rows (no whole
// panel), w4 is also doubled elementwise, w5 multiplies 4 rows (the Dot
// path): those three stay as they are.
#a = affine_map<(m, n, k) -> (m, k)>
#b = affine_map<(m, n, k) -> (n, k)>
#c = affine_map<(m, n, k) -> (m, n)>
#id = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (j)>
func.func @lin(%x: tensor<32x64xf32> {dyn.name = "x"}, %v: tensor<4x64xf32> {dyn.name = "v"},
               %w1: tensor<128x64xf32> {dyn.weight = "w1"}, %b1: tensor<128xf32> {dyn.weight = "b1"},
               %w2: tensor<64x128xf32> {dyn.weight = "w2"}, %w3: tensor<48x64xf32> {dyn.weight = "w3"},
               %w4: tensor<64x64xf32> {dyn.weight = "w4"}, %w5: tensor<64x64xf32> {dyn.weight = "w5"})
    -> (tensor<32x64xf32>, tensor<32x48xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<4x64xf32>) {
  %z = arith.constant 0.0 : f32
  %two = arith.constant 2.0 : f32
  %e128 = tensor.empty() : tensor<32x128xf32>
  %f128 = linalg.fill ins(%z : f32) outs(%e128 : tensor<32x128xf32>) -> tensor<32x128xf32>
  %h = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w1 : tensor<32x64xf32>, tensor<128x64xf32>) outs(%f128 : tensor<32x128xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %t = arith.mulf %p, %q : f32
    %s = arith.addf %o, %t : f32
    linalg.yield %s : f32
  } -> tensor<32x128xf32>
  %r = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel"]} ins(%h, %b1 : tensor<32x128xf32>, tensor<128xf32>) outs(%e128 : tensor<32x128xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %t = arith.addf %p, %q : f32
    %u = arith.maximumf %t, %z : f32
    linalg.yield %u : f32
  } -> tensor<32x128xf32>
  %e64 = tensor.empty() : tensor<32x64xf32>
  %f64 = linalg.fill ins(%z : f32) outs(%e64 : tensor<32x64xf32>) -> tensor<32x64xf32>
  %y = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "reduction"]} ins(%r, %w2 : tensor<32x128xf32>, tensor<64x128xf32>) outs(%f64 : tensor<32x64xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %t = arith.mulf %p, %q : f32
    %s = arith.addf %o, %t : f32
    linalg.yield %s : f32
  } -> tensor<32x64xf32>
  %e48 = tensor.empty() : tensor<32x48xf32>
  %f48 = linalg.fill ins(%z : f32) outs(%e48 : tensor<32x48xf32>) -> tensor<32x48xf32>
  %y3 = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w3 : tensor<32x64xf32>, tensor<48x64xf32>) outs(%f48 : tensor<32x48xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %t = arith.mulf %p, %q : f32
    %s = arith.addf %o, %t : f32
    linalg.yield %s : f32
  } -> tensor<32x48xf32>
  %y4 = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w4 : tensor<32x64xf32>, tensor<64x64xf32>) outs(%f64 : tensor<32x64xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %t = arith.mulf %p, %q : f32
    %s = arith.addf %o, %t : f32
    linalg.yield %s : f32
  } -> tensor<32x64xf32>
  %e44 = tensor.empty() : tensor<64x64xf32>
  %d4 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%w4 : tensor<64x64xf32>) outs(%e44 : tensor<64x64xf32>) {
  ^bb0(%p: f32, %o: f32):
    %t = arith.mulf %p, %two : f32
    linalg.yield %t : f32
  } -> tensor<64x64xf32>
  %e4 = tensor.empty() : tensor<4x64xf32>
  %f4 = linalg.fill ins(%z : f32) outs(%e4 : tensor<4x64xf32>) -> tensor<4x64xf32>
  %y5 = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "reduction"]} ins(%v, %w5 : tensor<4x64xf32>, tensor<64x64xf32>) outs(%f4 : tensor<4x64xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %t = arith.mulf %p, %q : f32
    %s = arith.addf %o, %t : f32
    linalg.yield %s : f32
  } -> tensor<4x64xf32>
  return %y, %y3, %y4, %d4, %y5 : tensor<32x64xf32>, tensor<32x48xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<4x64xf32>
}
