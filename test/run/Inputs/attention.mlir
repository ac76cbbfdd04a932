// Scaled dot-product attention over 3 heads: softmax(q kt / sqrt(8)) v.
// The scores, their softmax and the value product form one `attention`
// kernel (FormKernels), computed per block of queries (AttentionKernel.h).
#map = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @attention(%q: tensor<3x20x8xf32>, %kt: tensor<3x8x37xf32>,
                     %v: tensor<3x37x24xf32>) -> tensor<3x20x24xf32> {
  %zero = arith.constant 0.0 : f32
  %scale = arith.constant 0.353553385 : f32
  %se = tensor.empty() : tensor<3x20x37xf32>
  %sz = linalg.fill ins(%zero : f32) outs(%se : tensor<3x20x37xf32>) -> tensor<3x20x37xf32>
  %s = linalg.batch_matmul ins(%q, %kt : tensor<3x20x8xf32>, tensor<3x8x37xf32>)
                           outs(%sz : tensor<3x20x37xf32>) -> tensor<3x20x37xf32>
  %ss = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%s : tensor<3x20x37xf32>) outs(%se : tensor<3x20x37xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.mulf %in, %scale : f32
    linalg.yield %m : f32
  } -> tensor<3x20x37xf32>
  %p = linalg.softmax dimension(2) ins(%ss : tensor<3x20x37xf32>)
                                   outs(%se : tensor<3x20x37xf32>) -> tensor<3x20x37xf32>
  %oe = tensor.empty() : tensor<3x20x24xf32>
  %oz = linalg.fill ins(%zero : f32) outs(%oe : tensor<3x20x24xf32>) -> tensor<3x20x24xf32>
  %o = linalg.batch_matmul ins(%p, %v : tensor<3x20x37xf32>, tensor<3x37x24xf32>)
                           outs(%oz : tensor<3x20x24xf32>) -> tensor<3x20x24xf32>
  return %o : tensor<3x20x24xf32>
}
