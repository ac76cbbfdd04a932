// A cascade of complete models (CascadeBERT): the small model classifies
// first; when its temperature-calibrated confidence passes theta the large
// model never runs, else the large model classifies the same input (values
// from outside an exit region are visible inside it).

func.func private @mean_tokens(%x: tensor<1x6x8xf32>) -> tensor<1x8xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x8xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<1x8xf32>) -> tensor<1x8xf32>
  %sum = linalg.reduce ins(%x : tensor<1x6x8xf32>) outs(%z : tensor<1x8xf32>) dimensions = [1]
    (%in: f32, %a: f32) {
      %s = arith.addf %in, %a : f32
      linalg.yield %s : f32
    }
  %mean = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                          iterator_types = ["parallel", "parallel"]}
      ins(%sum : tensor<1x8xf32>) outs(%e : tensor<1x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %n = arith.constant 6.0 : f32
    %m = arith.divf %a, %n : f32
    linalg.yield %m : f32
  } -> tensor<1x8xf32>
  return %mean : tensor<1x8xf32>
}

func.func private @classify(%h: tensor<1x8xf32>, %w: tensor<8x3xf32>) -> tensor<1x3xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x3xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<1x3xf32>) -> tensor<1x3xf32>
  %l = linalg.matmul ins(%h, %w : tensor<1x8xf32>, tensor<8x3xf32>) outs(%acc : tensor<1x3xf32>) -> tensor<1x3xf32>
  return %l : tensor<1x3xf32>
}

// The small model: mean of the tokens, then a linear classifier.
func.func private @small(%x: tensor<1x6x8xf32>, %w: tensor<8x3xf32>) -> tensor<1x3xf32> {
  %m = func.call @mean_tokens(%x) : (tensor<1x6x8xf32>) -> tensor<1x8xf32>
  %l = func.call @classify(%m, %w) : (tensor<1x8xf32>, tensor<8x3xf32>) -> tensor<1x3xf32>
  return %l : tensor<1x3xf32>
}

// The large model: a tanh layer over every token first.
func.func private @large(%x: tensor<1x6x8xf32>, %w1: tensor<8x8xf32>, %w: tensor<8x3xf32>) -> tensor<1x3xf32> {
  %zero = arith.constant 0.0 : f32
  %rows = tensor.collapse_shape %x [[0, 1], [2]] : tensor<1x6x8xf32> into tensor<6x8xf32>
  %e = tensor.empty() : tensor<6x8xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<6x8xf32>) -> tensor<6x8xf32>
  %mm = linalg.matmul ins(%rows, %w1 : tensor<6x8xf32>, tensor<8x8xf32>) outs(%acc : tensor<6x8xf32>) -> tensor<6x8xf32>
  %t = linalg.tanh ins(%mm : tensor<6x8xf32>) outs(%e : tensor<6x8xf32>) -> tensor<6x8xf32>
  %h = tensor.expand_shape %t [[0, 1], [2]] output_shape [1, 6, 8] : tensor<6x8xf32> into tensor<1x6x8xf32>
  %m = func.call @mean_tokens(%h) : (tensor<1x6x8xf32>) -> tensor<1x8xf32>
  %l = func.call @classify(%m, %w) : (tensor<1x8xf32>, tensor<8x3xf32>) -> tensor<1x3xf32>
  return %l : tensor<1x3xf32>
}

func.func @cascade(%x: tensor<1x6x8xf32> {dyn.name = "x"},
                   %ws: tensor<8x3xf32> {dyn.weight = "small.w"},
                   %w1: tensor<8x8xf32> {dyn.weight = "large.w1"},
                   %wl: tensor<8x3xf32> {dyn.weight = "large.w"}) -> tensor<1x3xf32> {
  %ls = func.call @small(%x, %ws) : (tensor<1x6x8xf32>, tensor<8x3xf32>) -> tensor<1x3xf32>
  %r = dyn.exit_if %ls criterion #dyn.max_prob<temperature = 1.5 : f64, threshold = #dyn.param<"theta" = 0.8>>
      layer 1 : tensor<1x3xf32> {
    %ll = func.call @large(%x, %w1, %wl) : (tensor<1x6x8xf32>, tensor<8x8xf32>, tensor<8x3xf32>) -> tensor<1x3xf32>
    dyn.yield %ll : tensor<1x3xf32>
  }
  return %r : tensor<1x3xf32>
}
