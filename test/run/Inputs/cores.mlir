// A linear layer with a ReLU (a GEMM of 4 column panels) and its rows'
// sums (a per-row reduction: parallel blocks of rows), large enough for
// both to run in parallel tasks (cores.test).
#id = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (i)>
func.func @m(%x: tensor<100x256xf32> {dyn.name = "x"}, %w: tensor<256x250xf32> {dyn.name = "w"}) -> (tensor<100x250xf32>, tensor<100xf32>) {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<100x250xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<100x250xf32>) -> tensor<100x250xf32>
  %mm = linalg.matmul ins(%x, %w : tensor<100x256xf32>, tensor<256x250xf32>) outs(%f : tensor<100x250xf32>) -> tensor<100x250xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%mm : tensor<100x250xf32>) outs(%e : tensor<100x250xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.maximumf %a, %z : f32
    linalg.yield %m : f32
  } -> tensor<100x250xf32>
  %se = tensor.empty() : tensor<100xf32>
  %sf = linalg.fill ins(%z : f32) outs(%se : tensor<100xf32>) -> tensor<100xf32>
  %s = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]} ins(%x : tensor<100x256xf32>) outs(%sf : tensor<100xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %t = arith.addf %a, %acc : f32
    linalg.yield %t : f32
  } -> tensor<100xf32>
  return %r, %s : tensor<100x250xf32>, tensor<100xf32>
}
