// Attention over padded sequences in PyTorch's SDPA form
// (attention-padding.test): scores q kt plus a mask per batch element over
// the keys (0 for a token, -inf for padding), softmax, the rows whose every
// key is masked zeroed by a second reduction over the keys, then the value
// product; one attention kernel.
#s3 = affine_map<(b, i, j) -> (b, i, j)>
#m3 = affine_map<(b, i, j) -> (b, j)>
#r3 = affine_map<(b, i, j) -> (b, i)>
func.func @sdpa_padded(%q: tensor<3x64x8xf32>, %kt: tensor<3x8x64xf32>, %mask: tensor<3x64xf32>,
                       %v: tensor<3x64x16xf32>) -> tensor<3x64x16xf32> {
  %cst = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %true = arith.constant true
  %e = tensor.empty() : tensor<3x64x64xf32>
  %z = linalg.fill ins(%cst : f32) outs(%e : tensor<3x64x64xf32>) -> tensor<3x64x64xf32>
  %s0 = linalg.batch_matmul ins(%q, %kt : tensor<3x64x8xf32>, tensor<3x8x64xf32>) outs(%z : tensor<3x64x64xf32>) -> tensor<3x64x64xf32>
  %s = linalg.generic {indexing_maps = [#s3, #m3, #s3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%s0, %mask : tensor<3x64x64xf32>, tensor<3x64xf32>) outs(%e : tensor<3x64x64xf32>) {
  ^bb0(%a: f32, %m: f32, %out: f32):
    %r = arith.addf %a, %m : f32
    linalg.yield %r : f32
  } -> tensor<3x64x64xf32>
  %p = linalg.softmax dimension(2) ins(%s : tensor<3x64x64xf32>) outs(%e : tensor<3x64x64xf32>) -> tensor<3x64x64xf32>
  %eb = tensor.empty() : tensor<3x64x64xi1>
  %masked = linalg.generic {indexing_maps = [#s3, #s3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%s : tensor<3x64x64xf32>) outs(%eb : tensor<3x64x64xi1>) {
  ^bb0(%in: f32, %out: i1):
    %c = arith.cmpf oeq, %in, %ninf : f32
    linalg.yield %c : i1
  } -> tensor<3x64x64xi1>
  %er = tensor.empty() : tensor<3x64xi1>
  %t = linalg.fill ins(%true : i1) outs(%er : tensor<3x64xi1>) -> tensor<3x64xi1>
  %all = linalg.generic {indexing_maps = [#s3, #r3], iterator_types = ["parallel", "parallel", "reduction"]} ins(%masked : tensor<3x64x64xi1>) outs(%t : tensor<3x64xi1>) {
  ^bb0(%in: i1, %out: i1):
    %a = arith.andi %in, %out : i1
    linalg.yield %a : i1
  } -> tensor<3x64xi1>
  %pz = linalg.generic {indexing_maps = [#r3, #s3, #s3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%all, %p : tensor<3x64xi1>, tensor<3x64x64xf32>) outs(%e : tensor<3x64x64xf32>) {
  ^bb0(%a: i1, %in: f32, %out: f32):
    %r = arith.select %a, %cst, %in : f32
    linalg.yield %r : f32
  } -> tensor<3x64x64xf32>
  %e2 = tensor.empty() : tensor<3x64x16xf32>
  %z2 = linalg.fill ins(%cst : f32) outs(%e2 : tensor<3x64x16xf32>) -> tensor<3x64x16xf32>
  %o = linalg.batch_matmul ins(%pz, %v : tensor<3x64x64xf32>, tensor<3x64x16xf32>) outs(%z2 : tensor<3x64x16xf32>) -> tensor<3x64x16xf32>
  return %o : tensor<3x64x16xf32>
}
