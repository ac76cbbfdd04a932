func.func @m(%x: tensor<4xf32>, %y: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %r = linalg.broadcast ins(%x : tensor<4xf32>) outs(%y : tensor<4x8xf32>) dimensions = [9, 1]
  return %r : tensor<4x8xf32>
}
