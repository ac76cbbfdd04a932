// A Switch layer on f64 tokens: verified, but compiled for f32 only.
func.func @moe(%x: tensor<8x16xf64>, %g: tensor<8x4xf32>) -> tensor<8x16xf64> {
  %y = dyn.route switch %x, %g {num_experts = 4 : i64, capacity_factor = 1.25 : f64} : tensor<8x16xf64>, tensor<8x4xf32> -> tensor<8x16xf64> {
  ^bb0(%t: tensor<?x16xf64>):
    dyn.yield %t : tensor<?x16xf64>
  }
  return %y : tensor<8x16xf64>
}
