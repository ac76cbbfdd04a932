// The embedding lookup of gather.mlir in a model that opts into clamping
// (dyn.clamp_indices): ids outside the table read its nearest row.
module attributes {dyn.clamp_indices} {
  func.func @embed(%ids: tensor<3xi64> {dyn.name = "ids"}, %table: tensor<5x2xf32> {dyn.weight = "table"}) -> tensor<3x2xf32> {
    %e = tensor.empty() : tensor<3x2xf32>
    %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]} ins(%ids : tensor<3xi64>) outs(%e : tensor<3x2xf32>) {
    ^bb0(%id: i64, %o: f32):
      %j = linalg.index 1 : index
      %i = arith.index_cast %id : i64 to index
      %v = tensor.extract %table[%i, %j] : tensor<5x2xf32>
      linalg.yield %v : f32
    } -> tensor<3x2xf32>
    return %r : tensor<3x2xf32>
  }
}
