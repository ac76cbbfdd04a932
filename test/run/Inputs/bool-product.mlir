// Bools widened inside a product and a sum (an attention mask as Hugging
// Face builds it): Halide 14 failed on the cast ("narrow a 1-bit type").
// out[i] = sum_j [v[j] != 1] * [a[i] >= a[j]].
#m1 = affine_map<(d0) -> (d0)>
#m2 = affine_map<(d0, d1) -> (d0)>
#m3 = affine_map<(d0, d1) -> (d1)>
#m4 = affine_map<(d0, d1) -> (d0, d1)>
func.func @main(%a: tensor<16xi64>, %v: tensor<16xi64>) -> tensor<16xi64> {
  %c1 = arith.constant 1 : i64
  %c0 = arith.constant 0 : i64
  %e1 = tensor.empty() : tensor<16xi1>
  %e64 = tensor.empty() : tensor<16xi64>
  %9 = linalg.generic {indexing_maps = [#m1, #m1], iterator_types = ["parallel"]} ins(%v : tensor<16xi64>) outs(%e1 : tensor<16xi1>) {
  ^bb0(%in: i64, %out: i1):
    %15 = arith.cmpi ne, %in, %c1 : i64
    linalg.yield %15 : i1
  } -> tensor<16xi1>
  %10 = linalg.generic {indexing_maps = [#m1, #m1], iterator_types = ["parallel"]} ins(%9 : tensor<16xi1>) outs(%e64 : tensor<16xi64>) {
  ^bb0(%in: i1, %out: i64):
    %15 = arith.extui %in : i1 to i64
    linalg.yield %15 : i64
  } -> tensor<16xi64>
  %e2 = tensor.empty() : tensor<16x16xi1>
  %e3 = tensor.empty() : tensor<16x16xi64>
  %11 = linalg.generic {indexing_maps = [#m2, #m3, #m4], iterator_types = ["parallel", "parallel"]} ins(%a, %a : tensor<16xi64>, tensor<16xi64>) outs(%e2 : tensor<16x16xi1>) {
  ^bb0(%in: i64, %in_2: i64, %out: i1):
    %15 = arith.cmpi sge, %in, %in_2 : i64
    linalg.yield %15 : i1
  } -> tensor<16x16xi1>
  %12 = linalg.generic {indexing_maps = [#m4, #m4], iterator_types = ["parallel", "parallel"]} ins(%11 : tensor<16x16xi1>) outs(%e3 : tensor<16x16xi64>) {
  ^bb0(%in: i1, %out: i64):
    %15 = arith.extui %in : i1 to i64
    linalg.yield %15 : i64
  } -> tensor<16x16xi64>
  %13 = linalg.generic {indexing_maps = [#m3, #m4, #m4], iterator_types = ["parallel", "parallel"]} ins(%10, %12 : tensor<16xi64>, tensor<16x16xi64>) outs(%e3 : tensor<16x16xi64>) {
  ^bb0(%in: i64, %in_2: i64, %out: i64):
    %15 = arith.muli %in, %in_2 : i64
    linalg.yield %15 : i64
  } -> tensor<16x16xi64>
  %f = linalg.fill ins(%c0 : i64) outs(%e64 : tensor<16xi64>) -> tensor<16xi64>
  %14 = linalg.generic {indexing_maps = [#m4, #m2], iterator_types = ["parallel", "reduction"]} ins(%13 : tensor<16x16xi64>) outs(%f : tensor<16xi64>) {
  ^bb0(%in: i64, %out: i64):
    %15 = arith.addi %in, %out : i64
    linalg.yield %15 : i64
  } -> tensor<16xi64>
  return %14 : tensor<16xi64>
}
