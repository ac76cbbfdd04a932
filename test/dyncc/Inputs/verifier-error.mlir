func.func @f(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>) -> tensor<8x16xf32> {
  %y = dyn.route top_k %x, %g {num_experts = 4 : i64, k = 5 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}
