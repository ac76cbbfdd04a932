// An embedding lookup (a gather from a table by token ids) that two stages
// of one kernel read: a row mean and the centering that subtracts it, the
// start of a layer norm (shared-gather.test).
#id = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (i)>
func.func @embed(%table: tensor<50x64xf32>, %ids: tensor<8xi32>) -> tensor<8x64xf32> {
  %zero = arith.constant 0.0 : f32
  %n = arith.constant 64.0 : f32
  %e = tensor.empty() : tensor<8x64xf32>
  %g = linalg.generic {indexing_maps = [#row, #id], iterator_types = ["parallel", "parallel"]} ins(%ids : tensor<8xi32>) outs(%e : tensor<8x64xf32>) {
  ^bb0(%t: i32, %o: f32):
    %ti = arith.index_cast %t : i32 to index
    %j = linalg.index 1 : index
    %v = tensor.extract %table[%ti, %j] : tensor<50x64xf32>
    linalg.yield %v : f32
  } -> tensor<8x64xf32>
  %er = tensor.empty() : tensor<8xf32>
  %zr = linalg.fill ins(%zero : f32) outs(%er : tensor<8xf32>) -> tensor<8xf32>
  %sum = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]} ins(%g : tensor<8x64xf32>) outs(%zr : tensor<8xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %s = arith.addf %a, %acc : f32
    linalg.yield %s : f32
  } -> tensor<8xf32>
  %c = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel"]} ins(%g, %sum : tensor<8x64xf32>, tensor<8xf32>) outs(%e : tensor<8x64xf32>) {
  ^bb0(%a: f32, %s: f32, %o: f32):
    %m = arith.divf %s, %n : f32
    %r = arith.subf %a, %m : f32
    linalg.yield %r : f32
  } -> tensor<8x64xf32>
  return %c : tensor<8x64xf32>
}
