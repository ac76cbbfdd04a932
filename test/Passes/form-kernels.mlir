// RUN: dyncc-opt %s -split-input-file -dyn-form-kernels -cse -verify-diagnostics | FileCheck %s

// A linear layer with bias and ReLU is one gemm kernel (the bias broadcast
// and the zero fill are pulled in); softmax is one reduction kernel.

// CHECK-LABEL: func.func private @mlp_kernel0
// CHECK-SAME: (%{{.*}}: tensor<4x8xf32>, %{{.*}}: tensor<8x16xf32>, %{{.*}}: tensor<16xf32>) -> tensor<4x16xf32> attributes {dyn.kernel = "gemm"}
// CHECK-COUNT-5: linalg.generic
// CHECK-NOT: linalg.generic
// CHECK: return
// CHECK-LABEL: func.func private @mlp_kernel1
// CHECK-SAME: (%{{.*}}: tensor<4x16xf32>) -> tensor<4x16xf32> attributes {dyn.kernel = "reduction"}
// CHECK: arith.maxnumf
// CHECK: math.exp
// CHECK: arith.addf
// CHECK: arith.divf
// CHECK: return
// CHECK-LABEL: func.func @mlp
// CHECK-NEXT: %[[H:.*]] = call @mlp_kernel0(%arg0, %arg1, %arg2)
// CHECK-NEXT: %[[P:.*]] = call @mlp_kernel1(%[[H]])
// CHECK-NEXT: return %[[P]]
func.func @mlp(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>, %b: tensor<16xf32>) -> tensor<4x16xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %mm = linalg.matmul ins(%x, %w : tensor<4x8xf32>, tensor<8x16xf32>) outs(%acc : tensor<4x16xf32>) -> tensor<4x16xf32>
  %bb = linalg.broadcast ins(%b : tensor<16xf32>) outs(%e : tensor<4x16xf32>) dimensions = [0]
  %s = linalg.add ins(%mm, %bb : tensor<4x16xf32>, tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %r = linalg.max ins(%s, %acc : tensor<4x16xf32>, tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %sm = linalg.softmax dimension(1) ins(%r : tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  return %sm : tensor<4x16xf32>
}

// -----

// Layer norm (mean, centered, variance, normalize) is one reduction kernel.
// The residual add before it has no producer kernel and is pulled in too.

// CHECK-LABEL: func.func private @layer_norm_kernel0
// CHECK-SAME: attributes {dyn.kernel = "reduction"}
// CHECK: math.rsqrt
// CHECK-LABEL: func.func @layer_norm
// CHECK-NEXT: call @layer_norm_kernel0
// CHECK-NEXT: return
#row = affine_map<(d0, d1) -> (d0, d1)>
#red = affine_map<(d0, d1) -> (d0)>
func.func @layer_norm(%x: tensor<4x8xf32>, %y: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %zero = arith.constant 0.0 : f32
  %n = arith.constant 8.0 : f32
  %eps = arith.constant 1.0e-5 : f32
  %e = tensor.empty() : tensor<4x8xf32>
  %er = tensor.empty() : tensor<4xf32>
  %res = linalg.add ins(%x, %y : tensor<4x8xf32>, tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
  %z = linalg.fill ins(%zero : f32) outs(%er : tensor<4xf32>) -> tensor<4xf32>
  %sum = linalg.generic {indexing_maps = [#row, #red], iterator_types = ["parallel", "reduction"]}
      ins(%res : tensor<4x8xf32>) outs(%z : tensor<4xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %t = arith.addf %a, %acc : f32
    linalg.yield %t : f32
  } -> tensor<4xf32>
  %centered = linalg.generic {indexing_maps = [#row, #red, #row], iterator_types = ["parallel", "parallel"]}
      ins(%res, %sum : tensor<4x8xf32>, tensor<4xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%a: f32, %s: f32, %o: f32):
    %m = arith.divf %s, %n : f32
    %c = arith.subf %a, %m : f32
    linalg.yield %c : f32
  } -> tensor<4x8xf32>
  %var = linalg.generic {indexing_maps = [#row, #red], iterator_types = ["parallel", "reduction"]}
      ins(%centered : tensor<4x8xf32>) outs(%z : tensor<4xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %sq = arith.mulf %a, %a : f32
    %t = arith.addf %sq, %acc : f32
    linalg.yield %t : f32
  } -> tensor<4xf32>
  %out = linalg.generic {indexing_maps = [#row, #red, #row], iterator_types = ["parallel", "parallel"]}
      ins(%centered, %var : tensor<4x8xf32>, tensor<4xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%c: f32, %v: f32, %o: f32):
    %m = arith.divf %v, %n : f32
    %ve = arith.addf %m, %eps : f32
    %r = math.rsqrt %ve : f32
    %y2 = arith.mulf %c, %r : f32
    linalg.yield %y2 : f32
  } -> tensor<4x8xf32>
  return %out : tensor<4x8xf32>
}

// -----

// A value used after the kernel (the residual) becomes a second output of
// the kernel that computes it; kernels never recompute.

// CHECK-LABEL: func.func private @residual_kernel0
// CHECK-SAME: -> (tensor<4x8xf32>, tensor<4x8xf32>) attributes {dyn.kernel = "gemm"}
// CHECK-LABEL: func.func @residual
// CHECK: %[[K:.*]]:2 = call @residual_kernel0
// CHECK: return %[[K]]#0, %[[K]]#1
func.func @residual(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x8xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
  %mm = linalg.matmul ins(%x, %w : tensor<4x8xf32>, tensor<8x8xf32>) outs(%acc : tensor<4x8xf32>) -> tensor<4x8xf32>
  %s = linalg.add ins(%mm, %x : tensor<4x8xf32>, tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
  return %mm, %s : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// Kernels form inside the regions of dyn ops too (the layers after an exit).

// CHECK-LABEL: func.func private @exit_kernel0
// CHECK-SAME: attributes {dyn.kernel = "elementwise"}
// CHECK-LABEL: func.func @exit
// CHECK: dyn.exit_if
// CHECK: %[[T:.*]] = func.call @exit_kernel0
// CHECK-NEXT: %[[E:.*]] = tensor.expand_shape %[[T]]
// CHECK-NEXT: dyn.yield %[[E]]
func.func @exit(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %r = dyn.exit_if %l criterion #dyn.entropy<threshold = #dyn.param<"t" = 0.3>> layer 1 : tensor<1x2xf32> {
    %e = tensor.empty() : tensor<1x2xf32>
    %t = linalg.tanh ins(%l : tensor<1x2xf32>) outs(%e : tensor<1x2xf32>) -> tensor<1x2xf32>
    dyn.yield %t : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @unsupported(%x: tensor<4x8xf32>) -> tensor<6x8xf32> {
  %zero = arith.constant 0.0 : f32
  // expected-error @+1 {{unsupported op 'tensor.pad' (see docs/ops.md for the accepted ops)}}
  %p = tensor.pad %x low[1, 0] high[1, 0] {
  ^bb0(%i: index, %j: index):
    tensor.yield %zero : f32
  } : tensor<4x8xf32> to tensor<6x8xf32>
  return %p : tensor<6x8xf32>
}

// -----

#id = affine_map<(d0) -> (d0)>
func.func @unsupported_body(%x: tensor<4xf32>) -> tensor<4xf32> {
  %e = tensor.empty() : tensor<4xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%x : tensor<4xf32>) outs(%e : tensor<4xf32>) {
  ^bb0(%a: f32, %o: f32):
    // expected-error @+1 {{unsupported op 'math.atan' in a kernel body (see docs/ops.md)}}
    %s = math.atan %a : f32
    linalg.yield %s : f32
  } -> tensor<4xf32>
  return %r : tensor<4xf32>
}

// -----

// A GEMM whose result gains a unit dimension before its activation (torch's
// batch of 1): size-1 loops are dropped from every op first, the reshape
// folds away, and the activation joins the GEMM's kernel.

// CHECK-LABEL: func.func private @unit_kernel0
// CHECK-SAME: -> tensor<4x16xf32> attributes {dyn.kernel = "gemm"}
// CHECK: math.tanh
// CHECK-NOT: func.func private @unit_kernel1
// CHECK-LABEL: func.func @unit
// CHECK: %[[K:.*]] = call @unit_kernel0
// CHECK-NEXT: %[[R:.*]] = tensor.expand_shape %[[K]]
// CHECK-NEXT: return %[[R]]
func.func @unit(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>) -> tensor<1x4x16xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %mm = linalg.matmul ins(%x, %w : tensor<4x8xf32>, tensor<8x16xf32>) outs(%acc : tensor<4x16xf32>) -> tensor<4x16xf32>
  %r = tensor.expand_shape %mm [[0, 1], [2]] output_shape [1, 4, 16] : tensor<4x16xf32> into tensor<1x4x16xf32>
  %e3 = tensor.empty() : tensor<1x4x16xf32>
  %t = linalg.tanh ins(%r : tensor<1x4x16xf32>) outs(%e3 : tensor<1x4x16xf32>) -> tensor<1x4x16xf32>
  return %t : tensor<1x4x16xf32>
}

// -----

// A two-input generic that yields an input unchanged (the shape of a
// contraction, not its body) is no GEMM; MLIR 19's contraction check would
// dereference the op defining the yielded value and crash.

// CHECK-LABEL: func.func private @pick_kernel0
// CHECK-SAME: attributes {dyn.kernel = "reduction"}
func.func @pick(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>) -> tensor<4x16xf32> {
  %e = tensor.empty() : tensor<4x16xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, j, k) -> (i, k)>, affine_map<(i, j, k) -> (k, j)>, affine_map<(i, j, k) -> (i, j)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%a, %b : tensor<4x8xf32>, tensor<8x16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    linalg.yield %x : f32
  } -> tensor<4x16xf32>
  return %r : tensor<4x16xf32>
}

// -----

// Attention: the scores' contraction, the softmax that alone reads them and
// the value product that alone reads the softmax become one kernel, called
// where the value product was.
// CHECK-LABEL: func.func private @attention_kernel0
// CHECK-SAME: -> tensor<2x8x4xf32> attributes {dyn.kernel = "attention"}
// CHECK: arith.mulf
// CHECK: math.exp
// CHECK: arith.divf
// CHECK: arith.mulf
// CHECK: return
// CHECK-NOT: func.func private @attention_kernel1
// CHECK-LABEL: func.func @attention
// CHECK-NEXT: %[[O:.*]] = call @attention_kernel0
// CHECK-NEXT: return %[[O]]
func.func @attention(%q: tensor<2x8x4xf32>, %kt: tensor<2x4x8xf32>, %v: tensor<2x8x4xf32>) -> tensor<2x8x4xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x8x8xf32>
  %z = linalg.fill ins(%cst : f32) outs(%e : tensor<2x8x8xf32>) -> tensor<2x8x8xf32>
  %s = linalg.batch_matmul ins(%q, %kt : tensor<2x8x4xf32>, tensor<2x4x8xf32>) outs(%z : tensor<2x8x8xf32>) -> tensor<2x8x8xf32>
  %p = linalg.softmax dimension(2) ins(%s : tensor<2x8x8xf32>) outs(%e : tensor<2x8x8xf32>) -> tensor<2x8x8xf32>
  %e2 = tensor.empty() : tensor<2x8x4xf32>
  %z2 = linalg.fill ins(%cst : f32) outs(%e2 : tensor<2x8x4xf32>) -> tensor<2x8x4xf32>
  %o = linalg.batch_matmul ins(%p, %v : tensor<2x8x8xf32>, tensor<2x8x4xf32>) outs(%z2 : tensor<2x8x4xf32>) -> tensor<2x8x4xf32>
  return %o : tensor<2x8x4xf32>
}

// -----

// The probabilities are a result too: three kernels (the scores are stored).
// CHECK-LABEL: func.func private @probs_kernel0
// CHECK-SAME: attributes {dyn.kernel = "gemm"}
// CHECK-LABEL: func.func private @probs_kernel1
// CHECK-SAME: attributes {dyn.kernel = "reduction"}
// CHECK-LABEL: func.func private @probs_kernel2
// CHECK-SAME: attributes {dyn.kernel = "gemm"}
// CHECK-LABEL: func.func @probs
func.func @probs(%q: tensor<2x8x4xf32>, %kt: tensor<2x4x8xf32>, %v: tensor<2x8x4xf32>) -> (tensor<2x8x4xf32>, tensor<2x8x8xf32>) {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x8x8xf32>
  %z = linalg.fill ins(%cst : f32) outs(%e : tensor<2x8x8xf32>) -> tensor<2x8x8xf32>
  %s = linalg.batch_matmul ins(%q, %kt : tensor<2x8x4xf32>, tensor<2x4x8xf32>) outs(%z : tensor<2x8x8xf32>) -> tensor<2x8x8xf32>
  %p = linalg.softmax dimension(2) ins(%s : tensor<2x8x8xf32>) outs(%e : tensor<2x8x8xf32>) -> tensor<2x8x8xf32>
  %e2 = tensor.empty() : tensor<2x8x4xf32>
  %z2 = linalg.fill ins(%cst : f32) outs(%e2 : tensor<2x8x4xf32>) -> tensor<2x8x4xf32>
  %o = linalg.batch_matmul ins(%p, %v : tensor<2x8x8xf32>, tensor<2x8x4xf32>) outs(%z2 : tensor<2x8x4xf32>) -> tensor<2x8x4xf32>
  return %o, %p : tensor<2x8x4xf32>, tensor<2x8x8xf32>
}

// -----

// PyTorch's SDPA: a second reduction kernel reads the scores and the
// softmax to zero the rows whose every key is masked; all of it is still
// one attention kernel.
// CHECK-LABEL: func.func private @sdpa_kernel0
// CHECK-SAME: attributes {dyn.kernel = "attention"}
// CHECK: math.exp
// CHECK: arith.andi
// CHECK: arith.select
// CHECK-NOT: func.func private @sdpa_kernel1
// CHECK-LABEL: func.func @sdpa
// CHECK-NEXT: %[[O:.*]] = call @sdpa_kernel0
// CHECK-NEXT: return %[[O]]
#s3 = affine_map<(b, i, j) -> (b, i, j)>
#r3 = affine_map<(b, i, j) -> (b, i)>
func.func @sdpa(%q: tensor<2x8x4xf32>, %kt: tensor<2x4x8xf32>, %v: tensor<2x8x4xf32>) -> tensor<2x8x4xf32> {
  %cst = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %true = arith.constant true
  %e = tensor.empty() : tensor<2x8x8xf32>
  %z = linalg.fill ins(%cst : f32) outs(%e : tensor<2x8x8xf32>) -> tensor<2x8x8xf32>
  %s = linalg.batch_matmul ins(%q, %kt : tensor<2x8x4xf32>, tensor<2x4x8xf32>) outs(%z : tensor<2x8x8xf32>) -> tensor<2x8x8xf32>
  %p = linalg.softmax dimension(2) ins(%s : tensor<2x8x8xf32>) outs(%e : tensor<2x8x8xf32>) -> tensor<2x8x8xf32>
  %eb = tensor.empty() : tensor<2x8x8xi1>
  %masked = linalg.generic {indexing_maps = [#s3, #s3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%s : tensor<2x8x8xf32>) outs(%eb : tensor<2x8x8xi1>) {
  ^bb0(%in: f32, %out: i1):
    %c = arith.cmpf oeq, %in, %ninf : f32
    linalg.yield %c : i1
  } -> tensor<2x8x8xi1>
  %er = tensor.empty() : tensor<2x8xi1>
  %t = linalg.fill ins(%true : i1) outs(%er : tensor<2x8xi1>) -> tensor<2x8xi1>
  %all = linalg.generic {indexing_maps = [#s3, #r3], iterator_types = ["parallel", "parallel", "reduction"]} ins(%masked : tensor<2x8x8xi1>) outs(%t : tensor<2x8xi1>) {
  ^bb0(%in: i1, %out: i1):
    %a = arith.andi %in, %out : i1
    linalg.yield %a : i1
  } -> tensor<2x8xi1>
  %pz = linalg.generic {indexing_maps = [#r3, #s3, #s3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%all, %p : tensor<2x8xi1>, tensor<2x8x8xf32>) outs(%e : tensor<2x8x8xf32>) {
  ^bb0(%a: i1, %in: f32, %out: f32):
    %r = arith.select %a, %cst, %in : f32
    linalg.yield %r : f32
  } -> tensor<2x8x8xf32>
  %e2 = tensor.empty() : tensor<2x8x4xf32>
  %z2 = linalg.fill ins(%cst : f32) outs(%e2 : tensor<2x8x4xf32>) -> tensor<2x8x4xf32>
  %o = linalg.batch_matmul ins(%pz, %v : tensor<2x8x8xf32>, tensor<2x8x4xf32>) outs(%z2 : tensor<2x8x4xf32>) -> tensor<2x8x4xf32>
  return %o : tensor<2x8x4xf32>
}

// -----

// Batch > 1 as torch-mlir gives SDPA: [batch x heads, ...] matmuls, the
// softmax over [batch, heads, ...] between reshapes, a mask per batch
// element. The split dimensions are merged again (MergeSplitDims): the mask
// is read at (row floordiv heads, query, key), the reshapes fold, and the
// three parts become one attention kernel.
// CHECK-DAG: #[[MASK:.*]] = affine_map<(d0, d1, d2) -> (d0 floordiv 3, d1, d2)>
// CHECK-LABEL: func.func private @sdpa_batched_kernel0
// CHECK-SAME: (%{{.*}}: tensor<6x4x2xf32>, %{{.*}}: tensor<6x2x5xf32>, %{{.*}}: tensor<2x4x5xf32>, %{{.*}}: tensor<6x5x2xf32>) -> tensor<6x4x2xf32> attributes {dyn.kernel = "attention"}
// CHECK: indexing_maps = [#{{.*}}, #[[MASK]], #{{.*}}]
// CHECK: math.exp
// CHECK-NOT: func.func private @sdpa_batched_kernel1
// CHECK-LABEL: func.func @sdpa_batched
// CHECK-NEXT: %[[O:.*]] = call @sdpa_batched_kernel0
// CHECK-NEXT: return %[[O]]
#s4 = affine_map<(b, h, i, j) -> (b, h, i, j)>
#m4 = affine_map<(b, h, i, j) -> (b, i, j)>
func.func @sdpa_batched(%q: tensor<6x4x2xf32>, %kt: tensor<6x2x5xf32>, %mask: tensor<2x4x5xf32>, %v: tensor<6x5x2xf32>) -> tensor<6x4x2xf32> {
  %cst = arith.constant 0.0 : f32
  %e3 = tensor.empty() : tensor<6x4x5xf32>
  %z = linalg.fill ins(%cst : f32) outs(%e3 : tensor<6x4x5xf32>) -> tensor<6x4x5xf32>
  %s0 = linalg.batch_matmul ins(%q, %kt : tensor<6x4x2xf32>, tensor<6x2x5xf32>) outs(%z : tensor<6x4x5xf32>) -> tensor<6x4x5xf32>
  %s4 = tensor.expand_shape %s0 [[0, 1], [2], [3]] output_shape [2, 3, 4, 5] : tensor<6x4x5xf32> into tensor<2x3x4x5xf32>
  %e = tensor.empty() : tensor<2x3x4x5xf32>
  %s = linalg.generic {indexing_maps = [#s4, #m4, #s4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%s4, %mask : tensor<2x3x4x5xf32>, tensor<2x4x5xf32>) outs(%e : tensor<2x3x4x5xf32>) {
  ^bb0(%a: f32, %m: f32, %out: f32):
    %r = arith.addf %a, %m : f32
    linalg.yield %r : f32
  } -> tensor<2x3x4x5xf32>
  %p = linalg.softmax dimension(3) ins(%s : tensor<2x3x4x5xf32>) outs(%e : tensor<2x3x4x5xf32>) -> tensor<2x3x4x5xf32>
  %p3 = tensor.collapse_shape %p [[0, 1], [2], [3]] : tensor<2x3x4x5xf32> into tensor<6x4x5xf32>
  %e2 = tensor.empty() : tensor<6x4x2xf32>
  %z2 = linalg.fill ins(%cst : f32) outs(%e2 : tensor<6x4x2xf32>) -> tensor<6x4x2xf32>
  %o = linalg.batch_matmul ins(%p3, %v : tensor<6x4x5xf32>, tensor<6x5x2xf32>) outs(%z2 : tensor<6x4x2xf32>) -> tensor<6x4x2xf32>
  return %o : tensor<6x4x2xf32>
}

// -----

// A contraction whose other operand holds only the outer of the split
// dimensions (per-expert weights of [experts x capacity] rows) keeps the
// split: its operands stay plain loops for the GEMM path.
// CHECK-LABEL: func.func private @split_contraction_kernel0
// CHECK-SAME: (%{{.*}}: tensor<2x3x4x8xf32>, %{{.*}}: tensor<2x8x5xf32>) -> tensor<2x3x4x5xf32>
// CHECK-LABEL: func.func @split_contraction
// CHECK: tensor.expand_shape
#xa = affine_map<(b, h, i, j, k) -> (b, h, i, k)>
#wb = affine_map<(b, h, i, j, k) -> (b, k, j)>
#oc = affine_map<(b, h, i, j, k) -> (b, h, i, j)>
func.func @split_contraction(%x: tensor<6x4x8xf32>, %w: tensor<2x8x5xf32>) -> tensor<2x3x4x5xf32> {
  %cst = arith.constant 0.0 : f32
  %x4 = tensor.expand_shape %x [[0, 1], [2], [3]] output_shape [2, 3, 4, 8] : tensor<6x4x8xf32> into tensor<2x3x4x8xf32>
  %e = tensor.empty() : tensor<2x3x4x5xf32>
  %z = linalg.fill ins(%cst : f32) outs(%e : tensor<2x3x4x5xf32>) -> tensor<2x3x4x5xf32>
  %o = linalg.generic {indexing_maps = [#xa, #wb, #oc], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%x4, %w : tensor<2x3x4x8xf32>, tensor<2x8x5xf32>) outs(%z : tensor<2x3x4x5xf32>) {
  ^bb0(%a: f32, %b: f32, %out: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %out, %m : f32
    linalg.yield %r : f32
  } -> tensor<2x3x4x5xf32>
  return %o : tensor<2x3x4x5xf32>
}

// -----

// A skimming step's state update: the new first units (an elementwise op)
// and the rest of the old state (a slice) are concatenated. The
// concatenation reads its pieces with gathers; it joins the kernel of the
// elementwise piece and pulls the slice in: one kernel for both states.
// CHECK-LABEL: func.func private @skim_update_kernel0
// CHECK-SAME: (%{{.*}}: tensor<8xf32>, %{{.*}}: tensor<4xf32>, %{{.*}}: tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>) attributes {dyn.kernel = "elementwise"}
// CHECK-LABEL: func.func @skim_update
// CHECK-NEXT: %[[K:.*]]:2 = call @skim_update_kernel0(%arg0, %arg1, %arg2)
// CHECK-NEXT: return %[[K]]#0, %[[K]]#1
func.func @skim_update(%h: tensor<8xf32>, %x: tensor<4xf32>, %c: tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>) {
  %e = tensor.empty() : tensor<4xf32>
  %hs = tensor.extract_slice %h[0] [4] [1] : tensor<8xf32> to tensor<4xf32>
  %n = linalg.add ins(%hs, %x : tensor<4xf32>, tensor<4xf32>) outs(%e : tensor<4xf32>) -> tensor<4xf32>
  %t = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%n : tensor<4xf32>) outs(%e : tensor<4xf32>) {
  ^bb0(%a: f32, %o: f32):
    %y = math.tanh %a : f32
    linalg.yield %y : f32
  } -> tensor<4xf32>
  %hr = tensor.extract_slice %h[4] [4] [1] : tensor<8xf32> to tensor<4xf32>
  %h2 = tensor.concat dim(0) %t, %hr : (tensor<4xf32>, tensor<4xf32>) -> tensor<8xf32>
  %cr = tensor.extract_slice %c[4] [4] [1] : tensor<8xf32> to tensor<4xf32>
  %c2 = tensor.concat dim(0) %n, %cr : (tensor<4xf32>, tensor<4xf32>) -> tensor<8xf32>
  return %h2, %c2 : tensor<8xf32>, tensor<8xf32>
}

// -----

// A concatenation of a contraction's result is not its epilogue (it reads
// the result with a gather): two kernels.
// CHECK-LABEL: func.func private @concat_gemm_kernel0
// CHECK-SAME: attributes {dyn.kernel = "gemm"}
// CHECK-LABEL: func.func private @concat_gemm_kernel1
// CHECK-SAME: attributes {dyn.kernel = "elementwise"}
// CHECK-LABEL: func.func @concat_gemm
// CHECK-NEXT: %[[G:.*]] = call @concat_gemm_kernel0
// CHECK-NEXT: %[[C:.*]] = call @concat_gemm_kernel1(%[[G]], %arg0)
// CHECK-NEXT: return %[[C]]
func.func @concat_gemm(%x: tensor<2x8xf32>, %w: tensor<8x8xf32>) -> tensor<4x8xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x8xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<2x8xf32>) -> tensor<2x8xf32>
  %mm = linalg.matmul ins(%x, %w : tensor<2x8xf32>, tensor<8x8xf32>) outs(%acc : tensor<2x8xf32>) -> tensor<2x8xf32>
  %c = tensor.concat dim(0) %mm, %x : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<4x8xf32>
  return %c : tensor<4x8xf32>
}

// -----

// A decision on a handful of logits (a skim step's actions): the argmax
// joins the kernel of the GEMV that computes them, one call instead of two.
// CHECK-LABEL: func.func private @decide_kernel0
// CHECK-SAME: (%{{.*}}: tensor<2x8xf32>, %{{.*}}: tensor<8xf32>) -> tensor<i64> attributes {dyn.kernel = "gemm"}
// CHECK-LABEL: func.func @decide
// CHECK-NEXT: %[[K:.*]] = call @decide_kernel0(%arg1, %arg0)
// CHECK-NEXT: return %[[K]]
func.func @decide(%x: tensor<8xf32>, %w: tensor<2x8xf32>) -> tensor<i64> {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %c0 = arith.constant 0 : i64
  %e = tensor.empty() : tensor<2xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<2xf32>) -> tensor<2xf32>
  %l = linalg.matvec ins(%w, %x : tensor<2x8xf32>, tensor<8xf32>) outs(%acc : tensor<2xf32>) -> tensor<2xf32>
  %ei = tensor.empty() : tensor<i64>
  %i0 = linalg.fill ins(%c0 : i64) outs(%ei : tensor<i64>) -> tensor<i64>
  %ef = tensor.empty() : tensor<f32>
  %m0 = linalg.fill ins(%ninf : f32) outs(%ef : tensor<f32>) -> tensor<f32>
  %r:2 = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> ()>, affine_map<(d0) -> ()>], iterator_types = ["reduction"]} ins(%l : tensor<2xf32>) outs(%m0, %i0 : tensor<f32>, tensor<i64>) {
  ^bb0(%in: f32, %m: f32, %i: i64):
    %idx = linalg.index 0 : index
    %ii = arith.index_cast %idx : index to i64
    %mx = arith.maximumf %in, %m : f32
    %gt = arith.cmpf ogt, %in, %m : f32
    %sel = arith.select %gt, %ii, %i : i64
    linalg.yield %mx, %sel : f32, i64
  } -> (tensor<f32>, tensor<i64>)
  return %r#1 : tensor<i64>
}
