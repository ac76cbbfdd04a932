// RUN: dyncc-opt %s -split-input-file -dyn-lower-route | FileCheck %s

// Capacity: C = ceil(1.0 * 2 * 16 / 4) = 8 slots per expert. The assignment
// is a builtin declaration carrying its settings; the dispatch gathers rows
// of %x; the body is batched over the 4 experts (the matmuls read the
// [E, ...] weights with the expert as batch index); the combine reads the
// expert outputs at each token's slots. Every batched op that computes rows
// from rows also reads the slot table (dyn.row_mask: the rows no token
// occupies may be left unwritten); the fills do not.

// CHECK-LABEL: func.func private @capacity_route0(tensor<16x4xf32>) -> (tensor<32xi32>, tensor<16x2xi32>, tensor<16x2xf32>)
// CHECK-SAME: dyn.builtin = 1 : i32
// CHECK-SAME: dyn.config = array<f64: 0.000000e+00, 0.000000e+00, 1.600000e+01, 4.000000e+00, 2.000000e+00, 2.000000e+00, 8.000000e+00, 1.000000e+00,
// CHECK-SAME: dyn.kernel = "builtin"
// CHECK-LABEL: func.func @capacity(
// CHECK: %[[A:.*]]:3 = call @capacity_route0(%{{.*}})
// CHECK: %[[SLOTS:.*]] = tensor.expand_shape %[[A]]#0 {{\[\[}}0, 1]] output_shape [4, 8]
// CHECK: %[[XD:.*]] = linalg.generic {{.*}} ins(%[[SLOTS]] : tensor<4x8xi32>) outs(%{{.*}} : tensor<4x8x8xf32>)
// CHECK: tensor.extract %arg0[
// CHECK: arith.cmpi sge
// CHECK: arith.select
// CHECK: %[[H:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[XD]], %arg2, %[[SLOTS]] : tensor<4x8x8xf32>, tensor<4x8x12xf32>, tensor<4x8xi32>)
// CHECK-SAME: attrs = {dyn.row_mask = 2 : i64}
// CHECK: linalg.generic {{.*}} ins(%[[H]], %arg3, %[[SLOTS]] : tensor<4x8x12xf32>, tensor<4x12xf32>, tensor<4x8xi32>)
// CHECK-SAME: attrs = {dyn.row_mask = 2 : i64}
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %arg4, %[[SLOTS]] : tensor<4x8x12xf32>, tensor<4x12x8xf32>, tensor<4x8xi32>)
// CHECK-SAME: attrs = {dyn.row_mask = 2 : i64}
// CHECK: %[[FLAT:.*]] = tensor.collapse_shape %{{.*}} {{\[\[}}0, 1], [2]] : tensor<4x8x8xf32> into tensor<32x8xf32>
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[A]]#1, %[[A]]#2 : tensor<16x2xi32>, tensor<16x2xf32>)
// CHECK: tensor.extract %[[FLAT]]
// CHECK-NOT: dyn.route

func.func @capacity(%x: tensor<16x8xf32>, %logits: tensor<16x4xf32>, %w1: tensor<4x8x12xf32> {dyn.weight = "w1"}, %b1: tensor<4x12xf32> {dyn.weight = "b1"}, %w2: tensor<4x12x8xf32> {dyn.weight = "w2"}) -> tensor<16x8xf32> {
  %y = dyn.route top_k %x, %logits experts(%w1, %b1, %w2 : tensor<4x8x12xf32>, tensor<4x12xf32>, tensor<4x12x8xf32>)
      {num_experts = 4 : i64, k = 2 : i64, capacity_factor = 1.0 : f64}
      : tensor<16x8xf32>, tensor<16x4xf32> -> tensor<16x8xf32> {
  ^bb0(%t: tensor<?x8xf32>, %a: tensor<8x12xf32>, %ba: tensor<12xf32>, %b: tensor<12x8xf32>):
    %c0 = arith.constant 0 : index
    %n = tensor.dim %t, %c0 : tensor<?x8xf32>
    %zero = arith.constant 0.0 : f32
    %e1 = tensor.empty(%n) : tensor<?x12xf32>
    %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<?x12xf32>) -> tensor<?x12xf32>
    %h = linalg.matmul ins(%t, %a : tensor<?x8xf32>, tensor<8x12xf32>) outs(%f1 : tensor<?x12xf32>) -> tensor<?x12xf32>
    %g = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]} ins(%h, %ba : tensor<?x12xf32>, tensor<12xf32>) outs(%e1 : tensor<?x12xf32>) {
    ^bb0(%v: f32, %bias: f32, %o: f32):
      %u = arith.addf %v, %bias : f32
      %r = arith.maximumf %u, %zero : f32
      linalg.yield %r : f32
    } -> tensor<?x12xf32>
    %e2 = tensor.empty(%n) : tensor<?x8xf32>
    %f2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<?x8xf32>) -> tensor<?x8xf32>
    %o = linalg.matmul ins(%g, %b : tensor<?x12xf32>, tensor<12x8xf32>) outs(%f2 : tensor<?x8xf32>) -> tensor<?x8xf32>
    dyn.yield %o : tensor<?x8xf32>
  }
  return %y : tensor<16x8xf32>
}

// -----

// Dropless, block 4: 16 * 2 + 4 * 3 = 44 rows, 11 blocks. The body reads the
// weights of block b's expert through the block_expert table.

// CHECK-LABEL: func.func private @dropless_route0(tensor<16x4xf32>) -> (tensor<44xi32>, tensor<16x2xi32>, tensor<16x2xf32>, tensor<11xi32>)
// CHECK-LABEL: func.func @dropless(
// CHECK: %[[A:.*]]:4 = call @dropless_route0
// CHECK: linalg.generic {{.*}} ins(%[[A]]#3, %{{.*}}, %{{.*}} : tensor<11xi32>, tensor<11x4x8xf32>, tensor<11x4xi32>) outs(%{{.*}} : tensor<11x4x12xf32>) attrs = {dyn.row_mask = 2 : i64}
// CHECK: %[[E:.*]] = arith.index_cast
// CHECK: tensor.extract %arg2[%[[E]], %{{.*}}, %{{.*}}] : tensor<4x8x12xf32>

func.func @dropless(%x: tensor<16x8xf32>, %logits: tensor<16x4xf32>, %w1: tensor<4x8x12xf32> {dyn.weight = "w1"}, %b1: tensor<4x12xf32> {dyn.weight = "b1"}, %w2: tensor<4x12x8xf32> {dyn.weight = "w2"}) -> tensor<16x8xf32> {
  %y = dyn.route top_k %x, %logits experts(%w1, %b1, %w2 : tensor<4x8x12xf32>, tensor<4x12xf32>, tensor<4x12x8xf32>)
      {num_experts = 4 : i64, k = 2 : i64, dropless_block = 4 : i64}
      : tensor<16x8xf32>, tensor<16x4xf32> -> tensor<16x8xf32> {
  ^bb0(%t: tensor<?x8xf32>, %a: tensor<8x12xf32>, %ba: tensor<12xf32>, %b: tensor<12x8xf32>):
    %c0 = arith.constant 0 : index
    %n = tensor.dim %t, %c0 : tensor<?x8xf32>
    %zero = arith.constant 0.0 : f32
    %e1 = tensor.empty(%n) : tensor<?x12xf32>
    %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<?x12xf32>) -> tensor<?x12xf32>
    %h = linalg.matmul ins(%t, %a : tensor<?x8xf32>, tensor<8x12xf32>) outs(%f1 : tensor<?x12xf32>) -> tensor<?x12xf32>
    %g = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]} ins(%h, %ba : tensor<?x12xf32>, tensor<12xf32>) outs(%e1 : tensor<?x12xf32>) {
    ^bb0(%v: f32, %bias: f32, %o: f32):
      %u = arith.addf %v, %bias : f32
      %r = arith.maximumf %u, %zero : f32
      linalg.yield %r : f32
    } -> tensor<?x12xf32>
    %e2 = tensor.empty(%n) : tensor<?x8xf32>
    %f2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<?x8xf32>) -> tensor<?x8xf32>
    %o = linalg.matmul ins(%g, %b : tensor<?x12xf32>, tensor<12x8xf32>) outs(%f2 : tensor<?x8xf32>) -> tensor<?x8xf32>
    dyn.yield %o : tensor<?x8xf32>
  }
  return %y : tensor<16x8xf32>
}

// -----

// Hash routing on i64 token ids through a table: both become i32 first.

// CHECK-LABEL: func.func private @hash_route0(tensor<16xi32>, tensor<10xi32>) -> (tensor<64xi32>, tensor<16x1xi32>, tensor<16x1xf32>)
// CHECK-LABEL: func.func @hash(
// CHECK: arith.trunci %{{.*}} : i64 to i32
// CHECK: arith.extsi %{{.*}} : i16 to i32
// CHECK: call @hash_route0

func.func @hash(%x: tensor<16x8xf32>, %logits: tensor<16xi64>, %table: tensor<10xi16>, %w1: tensor<4x8x12xf32> {dyn.weight = "w1"}, %b1: tensor<4x12xf32> {dyn.weight = "b1"}, %w2: tensor<4x12x8xf32> {dyn.weight = "w2"}) -> tensor<16x8xf32> {
  %y = dyn.route hash %x, %logits table %table : tensor<10xi16> experts(%w1, %b1, %w2 : tensor<4x8x12xf32>, tensor<4x12xf32>, tensor<4x12x8xf32>)
      {num_experts = 4 : i64}
      : tensor<16x8xf32>, tensor<16xi64> -> tensor<16x8xf32> {
  ^bb0(%t: tensor<?x8xf32>, %a: tensor<8x12xf32>, %ba: tensor<12xf32>, %b: tensor<12x8xf32>):
    %c0 = arith.constant 0 : index
    %n = tensor.dim %t, %c0 : tensor<?x8xf32>
    %zero = arith.constant 0.0 : f32
    %e1 = tensor.empty(%n) : tensor<?x12xf32>
    %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<?x12xf32>) -> tensor<?x12xf32>
    %h = linalg.matmul ins(%t, %a : tensor<?x8xf32>, tensor<8x12xf32>) outs(%f1 : tensor<?x12xf32>) -> tensor<?x12xf32>
    %g = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]} ins(%h, %ba : tensor<?x12xf32>, tensor<12xf32>) outs(%e1 : tensor<?x12xf32>) {
    ^bb0(%v: f32, %bias: f32, %o: f32):
      %u = arith.addf %v, %bias : f32
      %r = arith.maximumf %u, %zero : f32
      linalg.yield %r : f32
    } -> tensor<?x12xf32>
    %e2 = tensor.empty(%n) : tensor<?x8xf32>
    %f2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<?x8xf32>) -> tensor<?x8xf32>
    %o = linalg.matmul ins(%g, %b : tensor<?x12xf32>, tensor<12x8xf32>) outs(%f2 : tensor<?x8xf32>) -> tensor<?x8xf32>
    dyn.yield %o : tensor<?x8xf32>
  }
  return %y : tensor<16x8xf32>
}
