// RUN: dyncc-opt %s -dyn-legalize-import -split-input-file | FileCheck %s

// A reduction keeping a unit dimension (torch-mlir's keepdim sums): the
// output is collapsed, the result expanded back.
// CHECK-LABEL: func.func @keepdim
// CHECK: %[[E:.*]] = tensor.empty() : tensor<2x3xf32>
// CHECK: %[[F:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[E]] : tensor<2x3xf32>)
// CHECK: %[[R:.*]] = linalg.generic {{.*}} outs(%[[F]] : tensor<2x3xf32>)
// CHECK: tensor.expand_shape %[[R]] {{\[}}[0], [1, 2]] output_shape [2, 3, 1]
func.func @keepdim(%x: tensor<2x3x4xf32>) -> tensor<2x3x1xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x3x1xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<2x3x1xf32>) -> tensor<2x3x1xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>,
                                        affine_map<(d0, d1, d2) -> (d0, d1, 0)>],
                       iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x : tensor<2x3x4xf32>) outs(%f : tensor<2x3x1xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %in, %acc : f32
    linalg.yield %s : f32
  } -> tensor<2x3x1xf32>
  return %r : tensor<2x3x1xf32>
}

// -----

// nn.Linear: the transpose of a weight folds into the matmul's map (W is
// read at (n, k)); splat constants become fills.
// CHECK: affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-LABEL: func.func @linear
// CHECK-NOT: linalg.transpose
// CHECK-NOT: arith.constant dense
// CHECK: linalg.fill
// CHECK: linalg.generic {{.*}} ins(%arg1, %arg0 : tensor<4x8xf32>, tensor<16x8xf32>)
func.func @linear(%w: tensor<16x8xf32> {dyn.weight = "fc.weight"}, %x: tensor<4x8xf32>) -> tensor<4x16xf32> {
  %e = tensor.empty() : tensor<8x16xf32>
  %wt = linalg.transpose ins(%w : tensor<16x8xf32>) outs(%e : tensor<8x16xf32>) permutation = [1, 0]
  %zero = arith.constant dense<0.0> : tensor<4x16xf32>
  %y = linalg.matmul ins(%x, %wt : tensor<4x8xf32>, tensor<8x16xf32>) outs(%zero : tensor<4x16xf32>) -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}

// -----

// Inside an exit_if region (the layers after an exit point, once inlined)
// the weight's transpose folds too: left there, it copied the weight on
// every run (the exported W2 encoder ran 3.7x slower than written by hand).
// CHECK-LABEL: func.func @in_region
// CHECK: dyn.exit_if
// CHECK-NOT: linalg.transpose
// CHECK: linalg.generic {{.*}} ins(%arg1, %arg0 : tensor<1x8xf32>, tensor<3x8xf32>)
func.func @in_region(%w: tensor<3x8xf32> {dyn.weight = "fc.weight"}, %x: tensor<1x8xf32>, %z: tensor<1x3xf32>) -> tensor<1x3xf32> {
  %r = dyn.exit_if %z criterion #dyn.entropy<threshold = #dyn.param<"theta" = 0.5>> layer 1 : tensor<1x3xf32> {
    %e = tensor.empty() : tensor<8x3xf32>
    %wt = linalg.transpose ins(%w : tensor<3x8xf32>) outs(%e : tensor<8x3xf32>) permutation = [1, 0]
    %zero = arith.constant 0.0 : f32
    %o = tensor.empty() : tensor<1x3xf32>
    %f = linalg.fill ins(%zero : f32) outs(%o : tensor<1x3xf32>) -> tensor<1x3xf32>
    %y = linalg.matmul ins(%x, %wt : tensor<1x8xf32>, tensor<8x3xf32>) outs(%f : tensor<1x3xf32>) -> tensor<1x3xf32>
    dyn.yield %y : tensor<1x3xf32>
  }
  return %r : tensor<1x3xf32>
}

// -----

// The transpose of an activation stays.
// CHECK-LABEL: func.func @activation
// CHECK: linalg.transpose
func.func @activation(%a: tensor<16x8xf32>, %x: tensor<4x8xf32>) -> tensor<4x16xf32> {
  %e = tensor.empty() : tensor<8x16xf32>
  %at = linalg.transpose ins(%a : tensor<16x8xf32>) outs(%e : tensor<8x16xf32>) permutation = [1, 0]
  %zero = arith.constant 0.0 : f32
  %o = tensor.empty() : tensor<4x16xf32>
  %f = linalg.fill ins(%zero : f32) outs(%o : tensor<4x16xf32>) -> tensor<4x16xf32>
  %y = linalg.matmul ins(%x, %at : tensor<4x8xf32>, tensor<8x16xf32>) outs(%f : tensor<4x16xf32>) -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}

// -----

// tensor.pad becomes a fill and an insert_slice; fpowi with a constant
// exponent becomes multiplications.
// CHECK-LABEL: func.func @pad_pow
// CHECK-NOT: tensor.pad
// CHECK: %[[F:.*]] = linalg.fill
// CHECK: tensor.insert_slice %{{.*}} into %[[F]][0, 1] [2, 4] [1, 1]
// CHECK-NOT: math.fpowi
// CHECK: arith.mulf
// CHECK: arith.mulf
func.func @pad_pow(%x: tensor<2x4xf32>) -> tensor<2x6xf32> {
  %c0 = arith.constant 0.0 : f32
  %p = tensor.pad %x low[0, 1] high[0, 1] {
  ^bb0(%i: index, %j: index):
    tensor.yield %c0 : f32
  } : tensor<2x4xf32> to tensor<2x6xf32>
  %e = tensor.empty() : tensor<2x6xf32>
  %three = arith.constant 3 : i32
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%p : tensor<2x6xf32>) outs(%e : tensor<2x6xf32>) {
  ^bb0(%in: f32, %out: f32):
    %c = math.fpowi %in, %three : f32, i32
    linalg.yield %c : f32
  } -> tensor<2x6xf32>
  return %r : tensor<2x6xf32>
}

// -----

// A loop with constant bounds is unrolled; its slices get constant offsets.
// CHECK-LABEL: func.func @loop
// CHECK-NOT: scf.for
// CHECK: tensor.extract_slice %arg0[0, 0] [1, 4]
// CHECK: tensor.extract_slice %arg0[1, 0] [1, 4]
// CHECK: tensor.extract_slice %arg0[2, 0] [1, 4]
func.func @loop(%x: tensor<3x4xf32>, %init: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %r = scf.for %i = %c0 to %c3 step %c1 iter_args(%acc = %init) -> (tensor<1x4xf32>) {
    %s = tensor.extract_slice %x[%i, 0] [1, 4] [1, 1] : tensor<3x4xf32> to tensor<1x4xf32>
    %a = linalg.add ins(%s, %acc : tensor<1x4xf32>, tensor<1x4xf32>) outs(%acc : tensor<1x4xf32>) -> tensor<1x4xf32>
    scf.yield %a : tensor<1x4xf32>
  }
  return %r : tensor<1x4xf32>
}

// -----

// nn.Linear on [B, S, D] as torch.export gives it: the transposed weight
// copied per batch element and a batch_matmul become one matmul of the B * S
// rows, which reads the weight itself (its transpose folded), the result
// expanded back. A batch_matmul of two batched operands stays.
// CHECK-LABEL: func.func @batched_linear
// CHECK-NOT: linalg.batch_matmul
// CHECK: %[[X:.*]] = tensor.collapse_shape %arg1 {{\[}}[0, 1], [2]] : tensor<2x4x8xf32> into tensor<8x8xf32>
// CHECK: %[[Y:.*]] = linalg.generic {{.*}} ins(%[[X]], %arg0 : tensor<8x8xf32>, tensor<16x8xf32>)
// CHECK: tensor.expand_shape %[[Y]] {{\[}}[0, 1], [2]] output_shape [2, 4, 16]
// CHECK-LABEL: func.func @batched_both
// CHECK: linalg.batch_matmul
func.func @batched_linear(%w: tensor<16x8xf32> {dyn.weight = "fc.weight"}, %x: tensor<2x4x8xf32>) -> tensor<2x4x16xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<8x16xf32>
  %wt = linalg.transpose ins(%w : tensor<16x8xf32>) outs(%e : tensor<8x16xf32>) permutation = [1, 0]
  %eb = tensor.empty() : tensor<2x8x16xf32>
  %wb = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>],
                        iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%wt : tensor<8x16xf32>) outs(%eb : tensor<2x8x16xf32>) {
  ^bb0(%in: f32, %o: f32):
    linalg.yield %in : f32
  } -> tensor<2x8x16xf32>
  %ey = tensor.empty() : tensor<2x4x16xf32>
  %f = linalg.fill ins(%zero : f32) outs(%ey : tensor<2x4x16xf32>) -> tensor<2x4x16xf32>
  %y = linalg.batch_matmul ins(%x, %wb : tensor<2x4x8xf32>, tensor<2x8x16xf32>) outs(%f : tensor<2x4x16xf32>) -> tensor<2x4x16xf32>
  return %y : tensor<2x4x16xf32>
}
func.func @batched_both(%a: tensor<2x4x8xf32>, %b: tensor<2x8x16xf32>) -> tensor<2x4x16xf32> {
  %zero = arith.constant 0.0 : f32
  %ey = tensor.empty() : tensor<2x4x16xf32>
  %f = linalg.fill ins(%zero : f32) outs(%ey : tensor<2x4x16xf32>) -> tensor<2x4x16xf32>
  %y = linalg.batch_matmul ins(%a, %b : tensor<2x4x8xf32>, tensor<2x8x16xf32>) outs(%f : tensor<2x4x16xf32>) -> tensor<2x4x16xf32>
  return %y : tensor<2x4x16xf32>
}
