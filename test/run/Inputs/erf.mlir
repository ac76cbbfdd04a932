// erf of every element (erf.test).
func.func @t(%x: tensor<2048xf32> {dyn.name = "x"}) -> tensor<2048xf32> {
  %e = tensor.empty() : tensor<2048xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>], iterator_types = ["parallel"]} ins(%x : tensor<2048xf32>) outs(%e : tensor<2048xf32>) {
  ^bb0(%a: f32, %o: f32):
    %t = math.erf %a : f32
    linalg.yield %t : f32
  } -> tensor<2048xf32>
  return %r : tensor<2048xf32>
}
