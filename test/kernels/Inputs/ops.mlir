// Single ops of docs/ops.md, one public function each (see KernelsTest.cpp).

func.func @elementwise_add(%a: tensor<6x20xf32>, %b: tensor<6x20xf32>) -> tensor<6x20xf32> {
  %e = tensor.empty() : tensor<6x20xf32>
  %r = linalg.add ins(%a, %b : tensor<6x20xf32>, tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

func.func @elementwise_sub(%a: tensor<6x20xf32>, %b: tensor<6x20xf32>) -> tensor<6x20xf32> {
  %e = tensor.empty() : tensor<6x20xf32>
  %r = linalg.sub ins(%a, %b : tensor<6x20xf32>, tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

func.func @elementwise_mul(%a: tensor<6x20xf32>, %b: tensor<6x20xf32>) -> tensor<6x20xf32> {
  %e = tensor.empty() : tensor<6x20xf32>
  %r = linalg.mul ins(%a, %b : tensor<6x20xf32>, tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

func.func @elementwise_div(%a: tensor<6x20xf32>, %b: tensor<6x20xf32>) -> tensor<6x20xf32> {
  %one = arith.constant 3.0 : f32
  %eb = tensor.empty() : tensor<6x20xf32>
  %bb = linalg.fill ins(%one : f32) outs(%eb : tensor<6x20xf32>) -> tensor<6x20xf32>
  %b2 = linalg.add ins(%b, %bb : tensor<6x20xf32>, tensor<6x20xf32>) outs(%eb : tensor<6x20xf32>) -> tensor<6x20xf32>
  %e = tensor.empty() : tensor<6x20xf32>
  %r = linalg.div ins(%a, %b2 : tensor<6x20xf32>, tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

func.func @elementwise_max(%a: tensor<6x20xf32>, %b: tensor<6x20xf32>) -> tensor<6x20xf32> {
  %e = tensor.empty() : tensor<6x20xf32>
  %r = linalg.max ins(%a, %b : tensor<6x20xf32>, tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

func.func @elementwise_min(%a: tensor<6x20xf32>, %b: tensor<6x20xf32>) -> tensor<6x20xf32> {
  %e = tensor.empty() : tensor<6x20xf32>
  %r = linalg.min ins(%a, %b : tensor<6x20xf32>, tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

func.func @elementwise_powf(%a: tensor<6x20xf32>, %b: tensor<6x20xf32>) -> tensor<6x20xf32> {
  %eb = tensor.empty() : tensor<6x20xf32>
  %a2 = linalg.abs ins(%a : tensor<6x20xf32>) outs(%eb : tensor<6x20xf32>) -> tensor<6x20xf32>
  %e = tensor.empty() : tensor<6x20xf32>
  %r = linalg.powf ins(%a2, %b : tensor<6x20xf32>, tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

func.func @unary_exp(%a: tensor<6x20xf32>) -> tensor<6x20xf32> {
  %e = tensor.empty() : tensor<6x20xf32>
  %r = linalg.exp ins(%a : tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

func.func @unary_tanh(%a: tensor<6x20xf32>) -> tensor<6x20xf32> {
  %e = tensor.empty() : tensor<6x20xf32>
  %r = linalg.tanh ins(%a : tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

func.func @unary_abs(%a: tensor<6x20xf32>) -> tensor<6x20xf32> {
  %e = tensor.empty() : tensor<6x20xf32>
  %r = linalg.abs ins(%a : tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

func.func @unary_negf(%a: tensor<6x20xf32>) -> tensor<6x20xf32> {
  %e = tensor.empty() : tensor<6x20xf32>
  %r = linalg.negf ins(%a : tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

func.func @unary_erf(%a: tensor<6x20xf32>) -> tensor<6x20xf32> {
  %e = tensor.empty() : tensor<6x20xf32>
  %r = linalg.erf ins(%a : tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

func.func @unary_square(%a: tensor<6x20xf32>) -> tensor<6x20xf32> {
  %e = tensor.empty() : tensor<6x20xf32>
  %r = linalg.square ins(%a : tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

func.func @unary_log(%a: tensor<6x20xf32>) -> tensor<6x20xf32> {
  %e = tensor.empty() : tensor<6x20xf32>
  %p = linalg.abs ins(%a : tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  %c = arith.constant 0.5 : f32
  %e2 = tensor.empty() : tensor<6x20xf32>
  %h = linalg.fill ins(%c : f32) outs(%e2 : tensor<6x20xf32>) -> tensor<6x20xf32>
  %q = linalg.add ins(%p, %h : tensor<6x20xf32>, tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  %r = linalg.log ins(%q : tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

func.func @unary_sqrt(%a: tensor<6x20xf32>) -> tensor<6x20xf32> {
  %e = tensor.empty() : tensor<6x20xf32>
  %p = linalg.abs ins(%a : tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  %c = arith.constant 0.5 : f32
  %e2 = tensor.empty() : tensor<6x20xf32>
  %h = linalg.fill ins(%c : f32) outs(%e2 : tensor<6x20xf32>) -> tensor<6x20xf32>
  %q = linalg.add ins(%p, %h : tensor<6x20xf32>, tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  %r = linalg.sqrt ins(%q : tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

func.func @unary_rsqrt(%a: tensor<6x20xf32>) -> tensor<6x20xf32> {
  %e = tensor.empty() : tensor<6x20xf32>
  %p = linalg.abs ins(%a : tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  %c = arith.constant 0.5 : f32
  %e2 = tensor.empty() : tensor<6x20xf32>
  %h = linalg.fill ins(%c : f32) outs(%e2 : tensor<6x20xf32>) -> tensor<6x20xf32>
  %q = linalg.add ins(%p, %h : tensor<6x20xf32>, tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  %r = linalg.rsqrt ins(%q : tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

func.func @unary_reciprocal(%a: tensor<6x20xf32>) -> tensor<6x20xf32> {
  %e = tensor.empty() : tensor<6x20xf32>
  %p = linalg.abs ins(%a : tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  %c = arith.constant 0.5 : f32
  %e2 = tensor.empty() : tensor<6x20xf32>
  %h = linalg.fill ins(%c : f32) outs(%e2 : tensor<6x20xf32>) -> tensor<6x20xf32>
  %q = linalg.add ins(%p, %h : tensor<6x20xf32>, tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  %r = linalg.reciprocal ins(%q : tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

func.func @matmul(%a: tensor<5x33xf32>, %b: tensor<33x19xf32>) -> tensor<5x19xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<5x19xf32>
  %acc = linalg.fill ins(%z : f32) outs(%e : tensor<5x19xf32>) -> tensor<5x19xf32>
  %r = linalg.matmul ins(%a, %b : tensor<5x33xf32>, tensor<33x19xf32>) outs(%acc : tensor<5x19xf32>) -> tensor<5x19xf32>
  return %r : tensor<5x19xf32>
}

// Accumulates into a non-zero init.
func.func @matmul_accumulate(%a: tensor<4x8xf32>, %b: tensor<8x20xf32>, %c: tensor<4x20xf32>) -> tensor<4x20xf32> {
  %r = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x20xf32>) outs(%c : tensor<4x20xf32>) -> tensor<4x20xf32>
  return %r : tensor<4x20xf32>
}

func.func @matmul_transpose_b(%a: tensor<7x16xf32>, %b: tensor<24x16xf32>) -> tensor<7x24xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<7x24xf32>
  %acc = linalg.fill ins(%z : f32) outs(%e : tensor<7x24xf32>) -> tensor<7x24xf32>
  %r = linalg.matmul_transpose_b ins(%a, %b : tensor<7x16xf32>, tensor<24x16xf32>) outs(%acc : tensor<7x24xf32>) -> tensor<7x24xf32>
  return %r : tensor<7x24xf32>
}

func.func @batch_matmul(%a: tensor<3x5x9xf32>, %b: tensor<3x9x17xf32>) -> tensor<3x5x17xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<3x5x17xf32>
  %acc = linalg.fill ins(%z : f32) outs(%e : tensor<3x5x17xf32>) -> tensor<3x5x17xf32>
  %r = linalg.batch_matmul ins(%a, %b : tensor<3x5x9xf32>, tensor<3x9x17xf32>) outs(%acc : tensor<3x5x17xf32>) -> tensor<3x5x17xf32>
  return %r : tensor<3x5x17xf32>
}

func.func @linear_bias_relu(%x: tensor<6x32xf32>, %w: tensor<32x40xf32>, %b: tensor<40xf32>) -> tensor<6x40xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<6x40xf32>
  %acc = linalg.fill ins(%z : f32) outs(%e : tensor<6x40xf32>) -> tensor<6x40xf32>
  %mm = linalg.matmul ins(%x, %w : tensor<6x32xf32>, tensor<32x40xf32>) outs(%acc : tensor<6x40xf32>) -> tensor<6x40xf32>
  %bb = linalg.broadcast ins(%b : tensor<40xf32>) outs(%e : tensor<6x40xf32>) dimensions = [0]
  %s = linalg.add ins(%mm, %bb : tensor<6x40xf32>, tensor<6x40xf32>) outs(%e : tensor<6x40xf32>) -> tensor<6x40xf32>
  %r = linalg.max ins(%s, %acc : tensor<6x40xf32>, tensor<6x40xf32>) outs(%e : tensor<6x40xf32>) -> tensor<6x40xf32>
  return %r : tensor<6x40xf32>
}

func.func @broadcast_transpose(%v: tensor<20xf32>, %m: tensor<20x6xf32>) -> tensor<6x20xf32> {
  %e = tensor.empty() : tensor<6x20xf32>
  %bv = linalg.broadcast ins(%v : tensor<20xf32>) outs(%e : tensor<6x20xf32>) dimensions = [0]
  %t = linalg.transpose ins(%m : tensor<20x6xf32>) outs(%e : tensor<6x20xf32>) permutation = [1, 0]
  %r = linalg.mul ins(%bv, %t : tensor<6x20xf32>, tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

func.func @reduce_sum_max(%x: tensor<6x20xf32>) -> (tensor<6xf32>, tensor<20xf32>) {
  %z = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %e6 = tensor.empty() : tensor<6xf32>
  %e20 = tensor.empty() : tensor<20xf32>
  %i6 = linalg.fill ins(%z : f32) outs(%e6 : tensor<6xf32>) -> tensor<6xf32>
  %i20 = linalg.fill ins(%ninf : f32) outs(%e20 : tensor<20xf32>) -> tensor<20xf32>
  %sum = linalg.reduce ins(%x : tensor<6x20xf32>) outs(%i6 : tensor<6xf32>) dimensions = [1]
    (%in: f32, %acc: f32) {
      %s = arith.addf %in, %acc : f32
      linalg.yield %s : f32
    }
  %max = linalg.reduce ins(%x : tensor<6x20xf32>) outs(%i20 : tensor<20xf32>) dimensions = [0]
    (%in: f32, %acc: f32) {
      %m = arith.maximumf %in, %acc : f32
      linalg.yield %m : f32
    }
  return %sum, %max : tensor<6xf32>, tensor<20xf32>
}

func.func @softmax(%x: tensor<6x20xf32>) -> tensor<6x20xf32> {
  %e = tensor.empty() : tensor<6x20xf32>
  %r = linalg.softmax dimension(1) ins(%x : tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

#map_rows = affine_map<(d0, d1) -> (d0, d1)>
#map_row = affine_map<(d0, d1) -> (d0)>
#map_col = affine_map<(d0, d1) -> (d1)>

func.func @gelu_sigmoid(%x: tensor<6x20xf32>) -> (tensor<6x20xf32>, tensor<6x20xf32>) {
  %e = tensor.empty() : tensor<6x20xf32>
  %g = linalg.generic {indexing_maps = [#map_rows, #map_rows], iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) {
  ^bb0(%a: f32, %o: f32):
    %half = arith.constant 0.5 : f32
    %one = arith.constant 1.0 : f32
    %rs2 = arith.constant 0.70710678 : f32
    %t = arith.mulf %a, %rs2 : f32
    %er = math.erf %t : f32
    %p = arith.addf %er, %one : f32
    %h = arith.mulf %a, %half : f32
    %y = arith.mulf %h, %p : f32
    linalg.yield %y : f32
  } -> tensor<6x20xf32>
  %s = linalg.generic {indexing_maps = [#map_rows, #map_rows], iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) {
  ^bb0(%a: f32, %o: f32):
    %one = arith.constant 1.0 : f32
    %n = arith.negf %a : f32
    %ex = math.exp %n : f32
    %d = arith.addf %ex, %one : f32
    %y = arith.divf %one, %d : f32
    linalg.yield %y : f32
  } -> tensor<6x20xf32>
  return %g, %s : tensor<6x20xf32>, tensor<6x20xf32>
}

func.func @layer_norm(%x: tensor<6x20xf32>, %gamma: tensor<20xf32>, %beta: tensor<20xf32>) -> tensor<6x20xf32> {
  %z = arith.constant 0.0 : f32
  %n = arith.constant 20.0 : f32
  %eps = arith.constant 1.0e-5 : f32
  %e = tensor.empty() : tensor<6x20xf32>
  %er = tensor.empty() : tensor<6xf32>
  %zr = linalg.fill ins(%z : f32) outs(%er : tensor<6xf32>) -> tensor<6xf32>
  %sum = linalg.generic {indexing_maps = [#map_rows, #map_row], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<6x20xf32>) outs(%zr : tensor<6xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %t = arith.addf %a, %acc : f32
    linalg.yield %t : f32
  } -> tensor<6xf32>
  %c = linalg.generic {indexing_maps = [#map_rows, #map_row, #map_rows], iterator_types = ["parallel", "parallel"]}
      ins(%x, %sum : tensor<6x20xf32>, tensor<6xf32>) outs(%e : tensor<6x20xf32>) {
  ^bb0(%a: f32, %s: f32, %o: f32):
    %m = arith.divf %s, %n : f32
    %d = arith.subf %a, %m : f32
    linalg.yield %d : f32
  } -> tensor<6x20xf32>
  %var = linalg.generic {indexing_maps = [#map_rows, #map_row], iterator_types = ["parallel", "reduction"]}
      ins(%c : tensor<6x20xf32>) outs(%zr : tensor<6xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %sq = arith.mulf %a, %a : f32
    %t = arith.addf %sq, %acc : f32
    linalg.yield %t : f32
  } -> tensor<6xf32>
  %y = linalg.generic {indexing_maps = [#map_rows, #map_row, #map_col, #map_col, #map_rows], iterator_types = ["parallel", "parallel"]}
      ins(%c, %var, %gamma, %beta : tensor<6x20xf32>, tensor<6xf32>, tensor<20xf32>, tensor<20xf32>) outs(%e : tensor<6x20xf32>) {
  ^bb0(%a: f32, %v: f32, %g: f32, %b: f32, %o: f32):
    %m = arith.divf %v, %n : f32
    %ve = arith.addf %m, %eps : f32
    %r = math.rsqrt %ve : f32
    %s = arith.mulf %a, %r : f32
    %sg = arith.mulf %s, %g : f32
    %out = arith.addf %sg, %b : f32
    linalg.yield %out : f32
  } -> tensor<6x20xf32>
  return %y : tensor<6x20xf32>
}

// Argmax: a reduction with two outputs (value, index).
func.func @argmax(%x: tensor<6x20xf32>) -> tensor<6xi64> {
  %ninf = arith.constant 0xFF800000 : f32
  %zi = arith.constant 0 : i64
  %ev = tensor.empty() : tensor<6xf32>
  %ei = tensor.empty() : tensor<6xi64>
  %iv = linalg.fill ins(%ninf : f32) outs(%ev : tensor<6xf32>) -> tensor<6xf32>
  %ii = linalg.fill ins(%zi : i64) outs(%ei : tensor<6xi64>) -> tensor<6xi64>
  %r:2 = linalg.generic {indexing_maps = [#map_rows, #map_row, #map_row], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<6x20xf32>) outs(%iv, %ii : tensor<6xf32>, tensor<6xi64>) {
  ^bb0(%a: f32, %best: f32, %at: i64):
    %j = linalg.index 1 : index
    %ji = arith.index_cast %j : index to i64
    %gt = arith.cmpf ogt, %a, %best : f32
    %nb = arith.select %gt, %a, %best : f32
    %na = arith.select %gt, %ji, %at : i64
    linalg.yield %nb, %na : f32, i64
  } -> (tensor<6xf32>, tensor<6xi64>)
  return %r#1 : tensor<6xi64>
}

// Embedding lookup: a gather with data-dependent indices.
func.func @embedding(%ids: tensor<5xi64>, %table: tensor<8x12xf32>) -> tensor<5x12xf32> {
  %e = tensor.empty() : tensor<5x12xf32>
  %r = linalg.generic {indexing_maps = [#map_row, #map_rows], iterator_types = ["parallel", "parallel"]}
      ins(%ids : tensor<5xi64>) outs(%e : tensor<5x12xf32>) {
  ^bb0(%id: i64, %o: f32):
    %j = linalg.index 1 : index
    %row = arith.index_cast %id : i64 to index
    %v = tensor.extract %table[%row, %j] : tensor<8x12xf32>
    linalg.yield %v : f32
  } -> tensor<5x12xf32>
  return %r : tensor<5x12xf32>
}

// Reshapes between kernels are views.
func.func @reshape(%x: tensor<6x20xf32>) -> tensor<3x40xf32> {
  %e = tensor.empty() : tensor<6x20xf32>
  %t = linalg.tanh ins(%x : tensor<6x20xf32>) outs(%e : tensor<6x20xf32>) -> tensor<6x20xf32>
  %f = tensor.collapse_shape %t [[0, 1]] : tensor<6x20xf32> into tensor<120xf32>
  %g = tensor.expand_shape %f [[0, 1]] output_shape [3, 40] : tensor<120xf32> into tensor<3x40xf32>
  %e2 = tensor.empty() : tensor<3x40xf32>
  %r = linalg.exp ins(%g : tensor<3x40xf32>) outs(%e2 : tensor<3x40xf32>) -> tensor<3x40xf32>
  return %r : tensor<3x40xf32>
}

func.func @extract_slice(%x: tensor<6x20xf32>) -> (tensor<3x7xf32>, tensor<9xf32>) {
  %s = tensor.extract_slice %x[1, 2] [3, 7] [2, 2] : tensor<6x20xf32> to tensor<3x7xf32>
  %r = tensor.extract_slice %x[4, 5] [1, 9] [1, 1] : tensor<6x20xf32> to tensor<9xf32>
  return %s, %r : tensor<3x7xf32>, tensor<9xf32>
}

func.func @insert_slice(%x: tensor<6x20xf32>, %y: tensor<2x5xf32>) -> tensor<6x20xf32> {
  %r = tensor.insert_slice %y into %x[3, 4] [2, 5] [1, 3] : tensor<2x5xf32> into tensor<6x20xf32>
  return %r : tensor<6x20xf32>
}

func.func @concat(%a: tensor<6x3xf32>, %b: tensor<6x20xf32>, %c: tensor<6x1xf32>) -> tensor<6x24xf32> {
  %r = tensor.concat dim(1) %a, %b, %c : (tensor<6x3xf32>, tensor<6x20xf32>, tensor<6x1xf32>) -> tensor<6x24xf32>
  return %r : tensor<6x24xf32>
}

// Slices that keep a dimension's start but not its length (the first token).
func.func @slice_prefix(%x: tensor<8x16xf32>) -> (tensor<1x16xf32>, tensor<8x4xf32>) {
  %s = tensor.extract_slice %x[0, 0] [1, 16] [1, 1] : tensor<8x16xf32> to tensor<1x16xf32>
  %t = tensor.extract_slice %x[0, 0] [8, 4] [1, 1] : tensor<8x16xf32> to tensor<8x4xf32>
  return %s, %t : tensor<1x16xf32>, tensor<8x4xf32>
}

// Row sums along contiguous rows, in vectors of partial sums (EmitHalide's
// innerSumWidth): a torch-mlir layer norm's statistics (the variance summed
// in f64) over rows in parallel blocks, a sum per (block, row) of a rank-3
// input whose outer loop is split into tasks with a partial last one, and a
// large elementwise stage whose rows are shared out the same way.
func.func @row_stats(%x: tensor<256x128xf32>) -> (tensor<256xf32>, tensor<256xf32>) {
  %z = arith.constant 0.0 : f32
  %zd = arith.constant 0.0 : f64
  %n = arith.constant 128.0 : f32
  %er = tensor.empty() : tensor<256xf32>
  %erd = tensor.empty() : tensor<256xf64>
  %zr = linalg.fill ins(%z : f32) outs(%er : tensor<256xf32>) -> tensor<256xf32>
  %zrd = linalg.fill ins(%zd : f64) outs(%erd : tensor<256xf64>) -> tensor<256xf64>
  %sum = linalg.generic {indexing_maps = [#map_rows, #map_row], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<256x128xf32>) outs(%zr : tensor<256xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %t = arith.addf %a, %acc : f32
    linalg.yield %t : f32
  } -> tensor<256xf32>
  %var = linalg.generic {indexing_maps = [#map_rows, #map_row, #map_row], iterator_types = ["parallel", "reduction"]}
      ins(%x, %sum : tensor<256x128xf32>, tensor<256xf32>) outs(%zrd : tensor<256xf64>) {
  ^bb0(%a: f32, %s: f32, %acc: f64):
    %m = arith.divf %s, %n : f32
    %d = arith.subf %a, %m : f32
    %dd = arith.extf %d : f32 to f64
    %sq = arith.mulf %dd, %dd : f64
    %t = arith.addf %acc, %sq : f64
    linalg.yield %t : f64
  } -> tensor<256xf64>
  %vf = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]}
      ins(%var : tensor<256xf64>) outs(%er : tensor<256xf32>) {
  ^bb0(%a: f64, %o: f32):
    %t = arith.truncf %a : f64 to f32
    linalg.yield %t : f32
  } -> tensor<256xf32>
  return %sum, %vf : tensor<256xf32>, tensor<256xf32>
}

func.func @row_sums_3d(%x: tensor<70x6x96xf32>, %y: tensor<100x300xf32>) -> (tensor<70x6xf32>, tensor<100x300xf32>) {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<70x6xf32>
  %zr = linalg.fill ins(%z : f32) outs(%e : tensor<70x6xf32>) -> tensor<70x6xf32>
  %sum = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x : tensor<70x6x96xf32>) outs(%zr : tensor<70x6xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %ex = math.exp %a : f32
    %t = arith.addf %acc, %ex : f32
    linalg.yield %t : f32
  } -> tensor<70x6xf32>
  %ey = tensor.empty() : tensor<100x300xf32>
  %sq = linalg.generic {indexing_maps = [#map_rows, #map_rows], iterator_types = ["parallel", "parallel"]}
      ins(%y : tensor<100x300xf32>) outs(%ey : tensor<100x300xf32>) {
  ^bb0(%a: f32, %o: f32):
    %t = arith.mulf %a, %a : f32
    linalg.yield %t : f32
  } -> tensor<100x300xf32>
  return %sum, %sq : tensor<70x6xf32>, tensor<100x300xf32>
}

// Row sums of a kernel output whose rows do not divide into the parallel
// blocks (100 rows, blocks of 13): the last block is partial.
func.func @row_sums_tail(%x: tensor<100x192xf32>) -> tensor<100xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<100xf32>
  %zr = linalg.fill ins(%z : f32) outs(%e : tensor<100xf32>) -> tensor<100xf32>
  %sum = linalg.generic {indexing_maps = [#map_rows, #map_row], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<100x192xf32>) outs(%zr : tensor<100xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %t = arith.addf %a, %acc : f32
    linalg.yield %t : f32
  } -> tensor<100xf32>
  return %sum : tensor<100xf32>
}
