// PyTorch's SDPA with an additive mask (attention.test): scores q kt + mask,
// softmax, and the rows whose every key is masked (-inf) zeroed by a second
// reduction, then the value product; one attention kernel.
#s3 = affine_map<(b, i, j) -> (b, i, j)>
#r3 = affine_map<(b, i, j) -> (b, i)>
func.func @sdpa(%q: tensor<2x24x8xf32>, %kt: tensor<2x8x19xf32>, %mask: tensor<2x24x19xf32>,
                %v: tensor<2x19x16xf32>) -> tensor<2x24x16xf32> {
  %cst = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %true = arith.constant true
  %e = tensor.empty() : tensor<2x24x19xf32>
  %z = linalg.fill ins(%cst : f32) outs(%e : tensor<2x24x19xf32>) -> tensor<2x24x19xf32>
  %s0 = linalg.batch_matmul ins(%q, %kt : tensor<2x24x8xf32>, tensor<2x8x19xf32>) outs(%z : tensor<2x24x19xf32>) -> tensor<2x24x19xf32>
  %s = linalg.generic {indexing_maps = [#s3, #s3, #s3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%s0, %mask : tensor<2x24x19xf32>, tensor<2x24x19xf32>) outs(%e : tensor<2x24x19xf32>) {
  ^bb0(%a: f32, %m: f32, %out: f32):
    %r = arith.addf %a, %m : f32
    linalg.yield %r : f32
  } -> tensor<2x24x19xf32>
  %p = linalg.softmax dimension(2) ins(%s : tensor<2x24x19xf32>) outs(%e : tensor<2x24x19xf32>) -> tensor<2x24x19xf32>
  %eb = tensor.empty() : tensor<2x24x19xi1>
  %masked = linalg.generic {indexing_maps = [#s3, #s3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%s : tensor<2x24x19xf32>) outs(%eb : tensor<2x24x19xi1>) {
  ^bb0(%in: f32, %out: i1):
    %c = arith.cmpf oeq, %in, %ninf : f32
    linalg.yield %c : i1
  } -> tensor<2x24x19xi1>
  %er = tensor.empty() : tensor<2x24xi1>
  %t = linalg.fill ins(%true : i1) outs(%er : tensor<2x24xi1>) -> tensor<2x24xi1>
  %all = linalg.generic {indexing_maps = [#s3, #r3], iterator_types = ["parallel", "parallel", "reduction"]} ins(%masked : tensor<2x24x19xi1>) outs(%t : tensor<2x24xi1>) {
  ^bb0(%in: i1, %out: i1):
    %a = arith.andi %in, %out : i1
    linalg.yield %a : i1
  } -> tensor<2x24xi1>
  %pz = linalg.generic {indexing_maps = [#r3, #s3, #s3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%all, %p : tensor<2x24xi1>, tensor<2x24x19xf32>) outs(%e : tensor<2x24x19xf32>) {
  ^bb0(%a: i1, %in: f32, %out: f32):
    %r = arith.select %a, %cst, %in : f32
    linalg.yield %r : f32
  } -> tensor<2x24x19xf32>
  %e2 = tensor.empty() : tensor<2x24x16xf32>
  %z2 = linalg.fill ins(%cst : f32) outs(%e2 : tensor<2x24x16xf32>) -> tensor<2x24x16xf32>
  %o = linalg.batch_matmul ins(%pz, %v : tensor<2x24x19xf32>, tensor<2x19x16xf32>) outs(%z2 : tensor<2x24x16xf32>) -> tensor<2x24x16xf32>
  return %o : tensor<2x24x16xf32>
}
