// A two-layer classifier: softmax(relu(x W1 + b1) W2). Weights come from
// mlp.safetensors (make_weights.py), bound by name through dyn.weight.

func.func @mlp(%x: tensor<4x8xf32> {dyn.name = "x"},
               %w1: tensor<8x16xf32> {dyn.weight = "fc1.weight"}, %b1: tensor<16xf32> {dyn.weight = "fc1.bias"},
               %w2: tensor<16x3xf32> {dyn.weight = "fc2.weight"}) -> tensor<4x3xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %acc = linalg.fill ins(%z : f32) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %mm = linalg.matmul ins(%x, %w1 : tensor<4x8xf32>, tensor<8x16xf32>) outs(%acc : tensor<4x16xf32>) -> tensor<4x16xf32>
  %bb = linalg.broadcast ins(%b1 : tensor<16xf32>) outs(%e : tensor<4x16xf32>) dimensions = [0]
  %s = linalg.add ins(%mm, %bb : tensor<4x16xf32>, tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %r = linalg.max ins(%s, %acc : tensor<4x16xf32>, tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %e2 = tensor.empty() : tensor<4x3xf32>
  %acc2 = linalg.fill ins(%z : f32) outs(%e2 : tensor<4x3xf32>) -> tensor<4x3xf32>
  %l = linalg.matmul ins(%r, %w2 : tensor<4x16xf32>, tensor<16x3xf32>) outs(%acc2 : tensor<4x3xf32>) -> tensor<4x3xf32>
  %p = linalg.softmax dimension(1) ins(%l : tensor<4x3xf32>) outs(%e2 : tensor<4x3xf32>) -> tensor<4x3xf32>
  return %p : tensor<4x3xf32>
}
