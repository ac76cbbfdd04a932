// PyTorch's SDPA at batch > 1 as torch-mlir gives it (attention.test): the
// scores of batch x heads as one batched matmul over [6, ...], expanded to
// [2, 3, ...] for the softmax and the mask (per batch element, the same for
// every head), collapsed back for the value product. Kernel formation merges
// the split dimensions again (MergeSplitDims) and forms one attention kernel
// that reads the mask at (head row floordiv 3, query, key).
#s4 = affine_map<(b, h, i, j) -> (b, h, i, j)>
#m4 = affine_map<(b, h, i, j) -> (b, i, j)>
#r4 = affine_map<(b, h, i, j) -> (b, h, i)>
func.func @sdpa(%q: tensor<6x21x8xf32>, %kt: tensor<6x8x19xf32>, %mask: tensor<2x21x19xf32>,
                %v: tensor<6x19x16xf32>) -> tensor<6x21x16xf32> {
  %cst = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %true = arith.constant true
  %e3 = tensor.empty() : tensor<6x21x19xf32>
  %z = linalg.fill ins(%cst : f32) outs(%e3 : tensor<6x21x19xf32>) -> tensor<6x21x19xf32>
  %s0 = linalg.batch_matmul ins(%q, %kt : tensor<6x21x8xf32>, tensor<6x8x19xf32>) outs(%z : tensor<6x21x19xf32>) -> tensor<6x21x19xf32>
  %s4 = tensor.expand_shape %s0 [[0, 1], [2], [3]] output_shape [2, 3, 21, 19] : tensor<6x21x19xf32> into tensor<2x3x21x19xf32>
  %e = tensor.empty() : tensor<2x3x21x19xf32>
  %s = linalg.generic {indexing_maps = [#s4, #m4, #s4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%s4, %mask : tensor<2x3x21x19xf32>, tensor<2x21x19xf32>) outs(%e : tensor<2x3x21x19xf32>) {
  ^bb0(%a: f32, %m: f32, %out: f32):
    %r = arith.addf %a, %m : f32
    linalg.yield %r : f32
  } -> tensor<2x3x21x19xf32>
  %p = linalg.softmax dimension(3) ins(%s : tensor<2x3x21x19xf32>) outs(%e : tensor<2x3x21x19xf32>) -> tensor<2x3x21x19xf32>
  %eb = tensor.empty() : tensor<2x3x21x19xi1>
  %masked = linalg.generic {indexing_maps = [#s4, #s4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%s : tensor<2x3x21x19xf32>) outs(%eb : tensor<2x3x21x19xi1>) {
  ^bb0(%in: f32, %out: i1):
    %c = arith.cmpf oeq, %in, %ninf : f32
    linalg.yield %c : i1
  } -> tensor<2x3x21x19xi1>
  %er = tensor.empty() : tensor<2x3x21xi1>
  %t = linalg.fill ins(%true : i1) outs(%er : tensor<2x3x21xi1>) -> tensor<2x3x21xi1>
  %all = linalg.generic {indexing_maps = [#s4, #r4], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%masked : tensor<2x3x21x19xi1>) outs(%t : tensor<2x3x21xi1>) {
  ^bb0(%in: i1, %out: i1):
    %a = arith.andi %in, %out : i1
    linalg.yield %a : i1
  } -> tensor<2x3x21xi1>
  %pz = linalg.generic {indexing_maps = [#r4, #s4, #s4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%all, %p : tensor<2x3x21xi1>, tensor<2x3x21x19xf32>) outs(%e : tensor<2x3x21x19xf32>) {
  ^bb0(%a: i1, %in: f32, %out: f32):
    %r = arith.select %a, %cst, %in : f32
    linalg.yield %r : f32
  } -> tensor<2x3x21x19xf32>
  %p3 = tensor.collapse_shape %pz [[0, 1], [2], [3]] : tensor<2x3x21x19xf32> into tensor<6x21x19xf32>
  %e2 = tensor.empty() : tensor<6x21x16xf32>
  %z2 = linalg.fill ins(%cst : f32) outs(%e2 : tensor<6x21x16xf32>) -> tensor<6x21x16xf32>
  %o = linalg.batch_matmul ins(%p3, %v : tensor<6x21x19xf32>, tensor<6x19x16xf32>) outs(%z2 : tensor<6x21x16xf32>) -> tensor<6x21x16xf32>
  return %o : tensor<6x21x16xf32>
}
