func.func @classify(%l1: tensor<1x2xf32>, %l2: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %r = dyn.exit_if %l1 criterion #dyn.entropy<threshold = #dyn.param<"theta" = 0.3>> layer 1 : tensor<1x2xf32> {
    dyn.yield %l2 : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}
