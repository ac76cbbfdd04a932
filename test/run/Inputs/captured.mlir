// A generic without tensor inputs whose body reads a scalar constant of the
// function (torch.arange(4, dtype=float32) as torch-mlir exports it), then
// used by the next op: the constant must reach the kernel it is fused into.
#map = affine_map<(d0) -> (d0)>
func.func @main(%x: tensor<4xf32> {dyn.name = "x"}) -> tensor<4xf32> {
  %cst = arith.constant 0.5 : f32
  %e = tensor.empty() : tensor<4xf32>
  %r = linalg.generic {indexing_maps = [#map], iterator_types = ["parallel"]} outs(%e : tensor<4xf32>) {
  ^bb0(%o: f32):
    %i = linalg.index 0 : index
    %j = arith.index_cast %i : index to i64
    %f = arith.sitofp %j : i64 to f32
    %a = arith.addf %f, %cst : f32
    linalg.yield %a : f32
  } -> tensor<4xf32>
  %y = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%r, %x : tensor<4xf32>, tensor<4xf32>) outs(%e : tensor<4xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %m = arith.mulf %a, %b : f32
    linalg.yield %m : f32
  } -> tensor<4xf32>
  return %y : tensor<4xf32>
}
