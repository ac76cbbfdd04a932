// Mixture of experts inside an early-exit model (batch 2, 4 tokens each):
// every layer is h = h + Switch-MoE(h) over the 8 token rows, then a
// classifier on the mean token; after layer 1 a sample whose calibrated
// confidence passes theta exits. Layer 2's route op runs only when some
// sample is still active. test/run/moe-exit.test checks it against numpy.

func.func private @moe_layer(%h: tensor<2x4x8xf32>, %wg: tensor<8x4xf32>,
                             %w1: tensor<4x8x16xf32>, %w2: tensor<4x16x8xf32>) -> tensor<2x4x8xf32> {
  %zero = arith.constant 0.0 : f32
  %rows = tensor.collapse_shape %h [[0, 1], [2]] : tensor<2x4x8xf32> into tensor<8x8xf32>
  %eg = tensor.empty() : tensor<8x4xf32>
  %g0 = linalg.fill ins(%zero : f32) outs(%eg : tensor<8x4xf32>) -> tensor<8x4xf32>
  %gate = linalg.matmul ins(%rows, %wg : tensor<8x8xf32>, tensor<8x4xf32>) outs(%g0 : tensor<8x4xf32>) -> tensor<8x4xf32>
  %y = dyn.route switch %rows, %gate experts(%w1, %w2 : tensor<4x8x16xf32>, tensor<4x16x8xf32>)
      {num_experts = 4 : i64} : tensor<8x8xf32>, tensor<8x4xf32> -> tensor<8x8xf32> {
  ^bb0(%t: tensor<?x8xf32>, %a: tensor<8x16xf32>, %b: tensor<16x8xf32>):
    %c0 = arith.constant 0 : index
    %n = tensor.dim %t, %c0 : tensor<?x8xf32>
    %z = arith.constant 0.0 : f32
    %e1 = tensor.empty(%n) : tensor<?x16xf32>
    %f1 = linalg.fill ins(%z : f32) outs(%e1 : tensor<?x16xf32>) -> tensor<?x16xf32>
    %m1 = linalg.matmul ins(%t, %a : tensor<?x8xf32>, tensor<8x16xf32>) outs(%f1 : tensor<?x16xf32>) -> tensor<?x16xf32>
    %r1 = linalg.max ins(%m1, %f1 : tensor<?x16xf32>, tensor<?x16xf32>) outs(%e1 : tensor<?x16xf32>) -> tensor<?x16xf32>
    %e2 = tensor.empty(%n) : tensor<?x8xf32>
    %f2 = linalg.fill ins(%z : f32) outs(%e2 : tensor<?x8xf32>) -> tensor<?x8xf32>
    %m2 = linalg.matmul ins(%r1, %b : tensor<?x16xf32>, tensor<16x8xf32>) outs(%f2 : tensor<?x8xf32>) -> tensor<?x8xf32>
    dyn.yield %m2 : tensor<?x8xf32>
  }
  %er = tensor.empty() : tensor<8x8xf32>
  %sum = linalg.add ins(%rows, %y : tensor<8x8xf32>, tensor<8x8xf32>) outs(%er : tensor<8x8xf32>) -> tensor<8x8xf32>
  %out = tensor.expand_shape %sum [[0, 1], [2]] output_shape [2, 4, 8] : tensor<8x8xf32> into tensor<2x4x8xf32>
  return %out : tensor<2x4x8xf32>
}

func.func private @classify(%h: tensor<2x4x8xf32>, %wc: tensor<8x3xf32>) -> tensor<2x3xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x8xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<2x8xf32>) -> tensor<2x8xf32>
  %sum = linalg.reduce ins(%h : tensor<2x4x8xf32>) outs(%z : tensor<2x8xf32>) dimensions = [1]
    (%in: f32, %a: f32) {
      %s = arith.addf %in, %a : f32
      linalg.yield %s : f32
    }
  %el = tensor.empty() : tensor<2x3xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%el : tensor<2x3xf32>) -> tensor<2x3xf32>
  %l = linalg.matmul ins(%sum, %wc : tensor<2x8xf32>, tensor<8x3xf32>) outs(%acc : tensor<2x3xf32>) -> tensor<2x3xf32>
  return %l : tensor<2x3xf32>
}

func.func @moe_exit(%x: tensor<2x4x8xf32> {dyn.name = "x"},
                    %wg1: tensor<8x4xf32> {dyn.weight = "l1.gate"},
                    %w11: tensor<4x8x16xf32> {dyn.weight = "l1.w1"},
                    %w12: tensor<4x16x8xf32> {dyn.weight = "l1.w2"},
                    %wc1: tensor<8x3xf32> {dyn.weight = "l1.cls"},
                    %wg2: tensor<8x4xf32> {dyn.weight = "l2.gate"},
                    %w21: tensor<4x8x16xf32> {dyn.weight = "l2.w1"},
                    %w22: tensor<4x16x8xf32> {dyn.weight = "l2.w2"},
                    %wc2: tensor<8x3xf32> {dyn.weight = "l2.cls"}) -> tensor<2x3xf32> {
  %h1 = func.call @moe_layer(%x, %wg1, %w11, %w12) : (tensor<2x4x8xf32>, tensor<8x4xf32>, tensor<4x8x16xf32>, tensor<4x16x8xf32>) -> tensor<2x4x8xf32>
  %l1 = func.call @classify(%h1, %wc1) : (tensor<2x4x8xf32>, tensor<8x3xf32>) -> tensor<2x3xf32>
  %r = dyn.exit_if %l1 criterion #dyn.max_prob<temperature = 1.0 : f64, threshold = #dyn.param<"theta" = 0.9>>
      layer 1 : tensor<2x3xf32> {
    %h2 = func.call @moe_layer(%h1, %wg2, %w21, %w22) : (tensor<2x4x8xf32>, tensor<8x4xf32>, tensor<4x8x16xf32>, tensor<4x16x8xf32>) -> tensor<2x4x8xf32>
    %l2 = func.call @classify(%h2, %wc2) : (tensor<2x4x8xf32>, tensor<8x3xf32>) -> tensor<2x3xf32>
    dyn.yield %l2 : tensor<2x3xf32>
  }
  return %r : tensor<2x3xf32>
}
