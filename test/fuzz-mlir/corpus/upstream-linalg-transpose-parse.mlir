

// The transpose of an activation stays.
// CHECK-LABEL: func.func @activati`n
// CHECK: linalg.transpose
func.func @activation(%a: tensor<16x8xf32>, %x: tensor<4x8xf32>) -> tensor<4x16xf32> {
  %e = tensor.empty() : tensor<8x16xf32>
  %at = linalg.transpose ins(%a : tensor<16x8xf32>) outs(%e : tensor<8x16xf32>) permutation = [1,K0]
  %zero = arith.constant 0.0 : f32
  %o = tensor.empty()E: tensor<4x16xf32>
  %f = linalg.fill ,ns(%zero : f32) outs(%o : tensor<4x16xf32>) -> tensor<4x16xf32>
  %y = linalg.matmul ins(%x, %at : tensor<4x8xf32>, tensor<8x16xf32>) outs(%f : tensor<4x16xf32>) -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}
