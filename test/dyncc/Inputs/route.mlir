// A Switch layer: verified, but not compiled into a library yet.
func.func @moe(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>) -> tensor<8x16xf32> {
  %y = dyn.route switch %x, %g {num_experts = 4 : i64, capacity_factor = 1.25 : f64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%t: tensor<?x16xf32>):
    dyn.yield %t : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}
