// Weights that reach their GEMMs through a view changing their last two
// dimensions (pack-weights.test): the runtime would arrange panels by the
// weight's own shape, so they stay as they are. we [128, 64] is read as
// two experts' [64, 64] ([E, in, out]); wc [2, 64, 64] is read as one
// linear layer's [128, 64] ([out, in]). wd [2, 64, 128], read unviewed as
// experts' weights, is kept in panels.
#ba = affine_map<(b, m, n, k) -> (b, m, k)>
#bb = affine_map<(b, m, n, k) -> (b, k, n)>
#bc = affine_map<(b, m, n, k) -> (b, m, n)>
#a = affine_map<(m, n, k) -> (m, k)>
#b = affine_map<(m, n, k) -> (n, k)>
#c = affine_map<(m, n, k) -> (m, n)>
func.func @view(%x: tensor<2x32x64xf32> {dyn.name = "x"}, %y: tensor<32x64xf32> {dyn.name = "y"},
                %we: tensor<128x64xf32> {dyn.weight = "we"}, %wc: tensor<2x64x64xf32> {dyn.weight = "wc"},
                %wd: tensor<2x64x128xf32> {dyn.weight = "wd"})
    -> (tensor<2x32x64xf32>, tensor<32x128xf32>, tensor<2x32x128xf32>) {
  %z = arith.constant 0.0 : f32
  %v = tensor.expand_shape %we [[0, 1], [2]] output_shape [2, 64, 64] : tensor<128x64xf32> into tensor<2x64x64xf32>
  %eb = tensor.empty() : tensor<2x32x64xf32>
  %fb = linalg.fill ins(%z : f32) outs(%eb : tensor<2x32x64xf32>) -> tensor<2x32x64xf32>
  %o1 = linalg.generic {indexing_maps = [#ba, #bb, #bc], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%x, %v : tensor<2x32x64xf32>, tensor<2x64x64xf32>) outs(%fb : tensor<2x32x64xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %t = arith.mulf %p, %q : f32
    %s = arith.addf %o, %t : f32
    linalg.yield %s : f32
  } -> tensor<2x32x64xf32>
  %c = tensor.collapse_shape %wc [[0, 1], [2]] : tensor<2x64x64xf32> into tensor<128x64xf32>
  %e2 = tensor.empty() : tensor<32x128xf32>
  %f2 = linalg.fill ins(%z : f32) outs(%e2 : tensor<32x128xf32>) -> tensor<32x128xf32>
  %o2 = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "reduction"]} ins(%y, %c : tensor<32x64xf32>, tensor<128x64xf32>) outs(%f2 : tensor<32x128xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %t = arith.mulf %p, %q : f32
    %s = arith.addf %o, %t : f32
    linalg.yield %s : f32
  } -> tensor<32x128xf32>
  %e3 = tensor.empty() : tensor<2x32x128xf32>
  %f3 = linalg.fill ins(%z : f32) outs(%e3 : tensor<2x32x128xf32>) -> tensor<2x32x128xf32>
  %o3 = linalg.generic {indexing_maps = [#ba, #bb, #bc], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%x, %wd : tensor<2x32x64xf32>, tensor<2x64x128xf32>) outs(%f3 : tensor<2x32x128xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %t = arith.mulf %p, %q : f32
    %s = arith.addf %o, %t : f32
    linalg.yield %s : f32
  } -> tensor<2x32x128xf32>
  return %o1, %o2, %o3 : tensor<2x32x64xf32>, tensor<32x128xf32>, tensor<2x32x128xf32>
}
