// examples/early-exit/tagger.mlir at batch 3: token-level exit over 3
// sentences of 6 tokens; each token mixes in the mean of its own sentence.

func.func private @layer(%h: tensor<3x6x8xf32>, %w: tensor<8x8xf32>) -> tensor<3x6x8xf32> {
  %zero = arith.constant 0.0 : f32
  %rows = tensor.collapse_shape %h [[0, 1], [2]] : tensor<3x6x8xf32> into tensor<18x8xf32>
  %e = tensor.empty() : tensor<18x8xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<18x8xf32>) -> tensor<18x8xf32>
  %mm = linalg.matmul ins(%rows, %w : tensor<18x8xf32>, tensor<8x8xf32>) outs(%acc : tensor<18x8xf32>) -> tensor<18x8xf32>
  %mm3 = tensor.expand_shape %mm [[0, 1], [2]] output_shape [3, 6, 8] : tensor<18x8xf32> into tensor<3x6x8xf32>
  %er = tensor.empty() : tensor<3x8xf32>
  %zr = linalg.fill ins(%zero : f32) outs(%er : tensor<3x8xf32>) -> tensor<3x8xf32>
  %sum = linalg.reduce ins(%h : tensor<3x6x8xf32>) outs(%zr : tensor<3x8xf32>) dimensions = [1]
    (%in: f32, %a: f32) {
      %s = arith.addf %in, %a : f32
      linalg.yield %s : f32
    }
  %e3 = tensor.empty() : tensor<3x6x8xf32>
  %mix = linalg.generic {indexing_maps = [affine_map<(b, i, j) -> (b, i, j)>, affine_map<(b, i, j) -> (b, j)>, affine_map<(b, i, j) -> (b, i, j)>],
                         iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%mm3, %sum : tensor<3x6x8xf32>, tensor<3x8xf32>) outs(%e3 : tensor<3x6x8xf32>) {
  ^bb0(%a: f32, %m: f32, %o: f32):
    %sixth = arith.constant 0.1666667 : f32
    %ms = arith.mulf %m, %sixth : f32
    %t = arith.addf %a, %ms : f32
    %y = math.tanh %t : f32
    linalg.yield %y : f32
  } -> tensor<3x6x8xf32>
  return %mix : tensor<3x6x8xf32>
}

func.func private @tagger(%h: tensor<3x6x8xf32>, %c: tensor<8x3xf32>) -> tensor<3x6x3xf32> {
  %zero = arith.constant 0.0 : f32
  %rows = tensor.collapse_shape %h [[0, 1], [2]] : tensor<3x6x8xf32> into tensor<18x8xf32>
  %e = tensor.empty() : tensor<18x3xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<18x3xf32>) -> tensor<18x3xf32>
  %l = linalg.matmul ins(%rows, %c : tensor<18x8xf32>, tensor<8x3xf32>) outs(%acc : tensor<18x3xf32>) -> tensor<18x3xf32>
  %out = tensor.expand_shape %l [[0, 1], [2]] output_shape [3, 6, 3] : tensor<18x3xf32> into tensor<3x6x3xf32>
  return %out : tensor<3x6x3xf32>
}

func.func @tag(%x: tensor<3x6x8xf32> {dyn.name = "x"},
               %w1: tensor<8x8xf32> {dyn.weight = "w1"}, %c1: tensor<8x3xf32> {dyn.weight = "c1"},
               %w2: tensor<8x8xf32> {dyn.weight = "w2"}, %c2: tensor<8x3xf32> {dyn.weight = "c2"},
               %w3: tensor<8x8xf32> {dyn.weight = "w3"}, %c3: tensor<8x3xf32> {dyn.weight = "c3"}) -> tensor<3x6x3xf32> {
  %h1 = func.call @layer(%x, %w1) : (tensor<3x6x8xf32>, tensor<8x8xf32>) -> tensor<3x6x8xf32>
  %l1 = func.call @tagger(%h1, %c1) : (tensor<3x6x8xf32>, tensor<8x3xf32>) -> tensor<3x6x3xf32>
  %r = dyn.exit_if %l1 hidden %h1 : tensor<3x6x8xf32>
      criterion #dyn.max_prob<temperature = 1.0 : f64, threshold = #dyn.param<"tau" = 0.9>>
      layer 1 granularity token : tensor<3x6x3xf32> {
  ^bb0(%f1: tensor<3x6x8xf32>):
    %h2 = func.call @layer(%f1, %w2) : (tensor<3x6x8xf32>, tensor<8x8xf32>) -> tensor<3x6x8xf32>
    %l2 = func.call @tagger(%h2, %c2) : (tensor<3x6x8xf32>, tensor<8x3xf32>) -> tensor<3x6x3xf32>
    %r2 = dyn.exit_if %l2 hidden %h2 : tensor<3x6x8xf32>
        criterion #dyn.max_prob<temperature = 1.0 : f64, threshold = #dyn.param<"tau" = 0.9>>
        layer 2 granularity token : tensor<3x6x3xf32> {
    ^bb0(%f2: tensor<3x6x8xf32>):
      %h3 = func.call @layer(%f2, %w3) : (tensor<3x6x8xf32>, tensor<8x8xf32>) -> tensor<3x6x8xf32>
      %l3 = func.call @tagger(%h3, %c3) : (tensor<3x6x8xf32>, tensor<8x3xf32>) -> tensor<3x6x3xf32>
      dyn.yield %l3 : tensor<3x6x3xf32>
    }
    dyn.yield %r2 : tensor<3x6x3xf32>
  }
  return %r : tensor<3x6x3xf32>
}
