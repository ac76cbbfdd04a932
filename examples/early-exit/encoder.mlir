// A two-layer classifier with an internal classifier after layer 1 and an
// entropy exit (DeeBERT): if the first classifier is confident enough, the
// second layer never runs. Weights are function arguments here; binding them
// from a safetensors file comes with the end-to-end compilation.
//
//   dyncc compile examples/early-exit/encoder.mlir --emit=mlir -o -

func.func private @layer(%x: tensor<1x16xf32>, %w: tensor<16x16xf32>, %b: tensor<16xf32>) -> tensor<1x16xf32> {
  %zero = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<1x16xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<1x16xf32>) -> tensor<1x16xf32>
  %mm = linalg.matmul ins(%x, %w : tensor<1x16xf32>, tensor<16x16xf32>) outs(%acc : tensor<1x16xf32>) -> tensor<1x16xf32>
  %bias = linalg.broadcast ins(%b : tensor<16xf32>) outs(%init : tensor<1x16xf32>) dimensions = [0]
  %sum = linalg.add ins(%mm, %bias : tensor<1x16xf32>, tensor<1x16xf32>) outs(%init : tensor<1x16xf32>) -> tensor<1x16xf32>
  %relu = linalg.max ins(%sum, %acc : tensor<1x16xf32>, tensor<1x16xf32>) outs(%init : tensor<1x16xf32>) -> tensor<1x16xf32>
  return %relu : tensor<1x16xf32>
}

func.func private @head(%h: tensor<1x16xf32>, %w: tensor<16x2xf32>) -> tensor<1x2xf32> {
  %zero = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<1x2xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<1x2xf32>) -> tensor<1x2xf32>
  %logits = linalg.matmul ins(%h, %w : tensor<1x16xf32>, tensor<16x2xf32>) outs(%acc : tensor<1x2xf32>) -> tensor<1x2xf32>
  return %logits : tensor<1x2xf32>
}

func.func @classify(%x: tensor<1x16xf32>,
                    %w1: tensor<16x16xf32>, %b1: tensor<16xf32>, %c1: tensor<16x2xf32>,
                    %w2: tensor<16x16xf32>, %b2: tensor<16xf32>, %c2: tensor<16x2xf32>) -> tensor<1x2xf32> {
  %h1 = func.call @layer(%x, %w1, %b1) : (tensor<1x16xf32>, tensor<16x16xf32>, tensor<16xf32>) -> tensor<1x16xf32>
  %l1 = func.call @head(%h1, %c1) : (tensor<1x16xf32>, tensor<16x2xf32>) -> tensor<1x2xf32>
  %out = dyn.exit_if %l1 criterion #dyn.entropy<threshold = #dyn.param<"theta" = 0.3>> layer 1 : tensor<1x2xf32> {
    %h2 = func.call @layer(%h1, %w2, %b2) : (tensor<1x16xf32>, tensor<16x16xf32>, tensor<16xf32>) -> tensor<1x16xf32>
    %l2 = func.call @head(%h2, %c2) : (tensor<1x16xf32>, tensor<16x2xf32>) -> tensor<1x2xf32>
    dyn.yield %l2 : tensor<1x2xf32>
  }
  return %out : tensor<1x2xf32>
}
