// nn.Linear on a [B, S, D] input as torch.export hands it over (the
// attention output projection of a BERT at batch 8): the transposed weight
// copied per batch element, then linalg.batch_matmul, then the bias
// (batched-linear.test).
#bcast = affine_map<(b, k, n) -> (k, n)>
#id3 = affine_map<(b, s, n) -> (b, s, n)>
#col3 = affine_map<(b, s, n) -> (n)>
func.func @proj(%x: tensor<2x64x64xf32> {dyn.name = "x"}, %w: tensor<128x64xf32> {dyn.weight = "w"},
                %bias: tensor<128xf32> {dyn.weight = "b"}) -> tensor<2x64x128xf32> {
  %z = arith.constant 0.0 : f32
  %et = tensor.empty() : tensor<64x128xf32>
  %wt = linalg.transpose ins(%w : tensor<128x64xf32>) outs(%et : tensor<64x128xf32>) permutation = [1, 0]
  %eb = tensor.empty() : tensor<2x64x128xf32>
  %wb = linalg.generic {indexing_maps = [#bcast, #id3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%wt : tensor<64x128xf32>) outs(%eb : tensor<2x64x128xf32>) {
  ^bb0(%in: f32, %o: f32):
    linalg.yield %in : f32
  } -> tensor<2x64x128xf32>
  %ey = tensor.empty() : tensor<2x64x128xf32>
  %f = linalg.fill ins(%z : f32) outs(%ey : tensor<2x64x128xf32>) -> tensor<2x64x128xf32>
  %y = linalg.batch_matmul ins(%x, %wb : tensor<2x64x64xf32>, tensor<2x64x128xf32>) outs(%f : tensor<2x64x128xf32>) -> tensor<2x64x128xf32>
  %r = linalg.generic {indexing_maps = [#id3, #col3, #id3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%y, %bias : tensor<2x64x128xf32>, tensor<128xf32>) outs(%ey : tensor<2x64x128xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %s = arith.addf %a, %c : f32
    linalg.yield %s : f32
  } -> tensor<2x64x128xf32>
  return %r : tensor<2x64x128xf32>
}
