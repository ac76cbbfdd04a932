func.func @m(%x: tensor<4611686018427387904x4xf32>, %w: tensor<4x4xf32>) -> tensor<4611686018427387904x4xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4611686018427387904x4xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<4611686018427387904x4xf32>) -> tensor<4611686018427387904x4xf32>
  %r = linalg.matmul ins(%x, %w : tensor<4611686018427387904x4xf32>, tensor<4x4xf32>) outs(%f : tensor<4611686018427387904x4xf32>) -> tensor<4611686018427387904x4xf32>
  return %r : tensor<4611686018427387904x4xf32>
}
