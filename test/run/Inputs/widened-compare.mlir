// Comparisons of float32 values widened to float64 (torch-mlir tests its
// attention scores for -inf so): 1 where x == 0.1 in float64 (no float32
// is), 2 where x == -inf, 4 where x is NaN, 8 where x < 0.5 (widened-compare.test).
func.func @t(%x: tensor<8xf32> {dyn.name = "x"}) -> tensor<8xf32> {
  %e = tensor.empty() : tensor<8xf32>
  %tenth = arith.constant 0.1 : f64
  %ninf = arith.constant 0xFFF0000000000000 : f64
  %half = arith.constant 0.5 : f64
  %zero = arith.constant 0.0 : f32
  %c1 = arith.constant 1.0 : f32
  %c2 = arith.constant 2.0 : f32
  %c4 = arith.constant 4.0 : f32
  %c8 = arith.constant 8.0 : f32
  %r = linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>], iterator_types = ["parallel"]} ins(%x : tensor<8xf32>) outs(%e : tensor<8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %w = arith.extf %a : f32 to f64
    %p1 = arith.cmpf oeq, %w, %tenth : f64
    %p2 = arith.cmpf oeq, %w, %ninf : f64
    %p3 = arith.cmpf uno, %w, %w : f64
    %p4 = arith.cmpf olt, %w, %half : f64
    %s1 = arith.select %p1, %c1, %zero : f32
    %s2 = arith.select %p2, %c2, %zero : f32
    %s3 = arith.select %p3, %c4, %zero : f32
    %s4 = arith.select %p4, %c8, %zero : f32
    %t1 = arith.addf %s1, %s2 : f32
    %t2 = arith.addf %t1, %s3 : f32
    %t3 = arith.addf %t2, %s4 : f32
    linalg.yield %t3 : f32
  } -> tensor<8xf32>
  return %r : tensor<8xf32>
}
