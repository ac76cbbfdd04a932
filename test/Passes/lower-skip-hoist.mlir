// RUN: dyncc-opt %s -dyn-lower-skip | FileCheck %s
// RUN: dyncc-opt %s -dyn-lower-skip=hoist-inputs=false | FileCheck %s --check-prefix=OFF

// Input projections (docs/skim.md): where every action moves to the next
// position, a contraction of the step input with values defined outside the
// loop is computed for every position the loop can visit (min(S, budget)
// rows) before it, and the step reads its row; contractions that read the
// state, that see linalg.index, and loops that jump, stop or reread keep
// theirs in the step.

#x = affine_map<(d0, d1, d2) -> (d0, d2)>
#w = affine_map<(d0, d1, d2) -> (d1, d2)>
#o = affine_map<(d0, d1, d2) -> (d0, d1)>

// CHECK-LABEL: func.func @hoisted(
// CHECK-SAME: %[[SEQ:[^:]*]]: tensor<6x4xf32>, %[[H0:[^:]*]]: tensor<3xf32>, %[[W:[^:]*]]: tensor<3x4xf32>
// CHECK: %[[E:.*]] = tensor.empty() : tensor<6x3xf32>
// CHECK: %[[F:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[E]] : tensor<6x3xf32>)
// CHECK: %[[ALL:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[SEQ]], %[[W]] : tensor<6x4xf32>, tensor<3x4xf32>) outs(%[[F]] : tensor<6x3xf32>)
// CHECK: scf.while
// CHECK: } do {
// CHECK: %[[PT:.*]] = tensor.from_elements
// CHECK: scf.index_switch
// CHECK: case 0 {
// CHECK: linalg.generic {{.*}} ins(%[[PT]] : tensor<1xi32>) outs(%{{.*}} : tensor<1x3xf32>)
// CHECK: tensor.extract %[[ALL]][
// CHECK-NOT: tensor<1x4xf32>
// CHECK: case 1 {
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %[[W]] : tensor<1x3xf32>, tensor<3x4xf32>)
// CHECK: case 2 {
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %[[W]] : tensor<1x4xf32>, tensor<3x4xf32>)
// CHECK: linalg.index 1
// CHECK: default {
// OFF-LABEL: func.func @hoisted(
// OFF-NOT: tensor<6x3xf32>
// OFF: scf.while
func.func @hoisted(%seq: tensor<6x4xf32>, %h0: tensor<3xf32>, %w: tensor<3x4xf32>) -> tensor<3xf32> {
  %r = dyn.skip %seq init(%h0 : tensor<3xf32>) budget 10 actions [#dyn.action<read>, #dyn.action<skim>, #dyn.action<partial>] : tensor<6x4xf32> -> tensor<3xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<4xf32>, %h: tensor<3xf32>):
    %a = arith.constant 0 : index
    dyn.decide %a
  }
  {
  // W x: hoisted.
  ^bb0(%pos: index, %x: tensor<4xf32>, %h: tensor<3xf32>):
    %z = arith.constant 0.0 : f32
    %e = tensor.expand_shape %x [[0, 1]] output_shape [1, 4] : tensor<4xf32> into tensor<1x4xf32>
    %i = tensor.empty() : tensor<1x3xf32>
    %f = linalg.fill ins(%z : f32) outs(%i : tensor<1x3xf32>) -> tensor<1x3xf32>
    %m = linalg.generic {indexing_maps = [#x, #w, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%e, %w : tensor<1x4xf32>, tensor<3x4xf32>) outs(%f : tensor<1x3xf32>) {
    ^bb0(%a: f32, %b: f32, %c: f32):
      %p = arith.mulf %a, %b : f32
      %s = arith.addf %c, %p : f32
      linalg.yield %s : f32
    } -> tensor<1x3xf32>
    %n = tensor.collapse_shape %m [[0, 1]] : tensor<1x3xf32> into tensor<3xf32>
    dyn.yield %n : tensor<3xf32>
  },
  {
  // A contraction of the state (h as [1, 3] against W's rows): stays.
  ^bb0(%pos: index, %x: tensor<4xf32>, %h: tensor<3xf32>):
    %z = arith.constant 0.0 : f32
    %e = tensor.expand_shape %h [[0, 1]] output_shape [1, 3] : tensor<3xf32> into tensor<1x3xf32>
    %i = tensor.empty() : tensor<1x4xf32>
    %f = linalg.fill ins(%z : f32) outs(%i : tensor<1x4xf32>) -> tensor<1x4xf32>
    %m = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d2, d1)>, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%e, %w : tensor<1x3xf32>, tensor<3x4xf32>) outs(%f : tensor<1x4xf32>) {
    ^bb0(%a: f32, %b: f32, %c: f32):
      %p = arith.mulf %a, %b : f32
      %s = arith.addf %c, %p : f32
      linalg.yield %s : f32
    } -> tensor<1x4xf32>
    %n = tensor.extract_slice %m[0, 0] [1, 3] [1, 1] : tensor<1x4xf32> to tensor<3xf32>
    dyn.yield %n : tensor<3xf32>
  },
  {
  // The body sees the index of W's row: stays.
  ^bb0(%pos: index, %x: tensor<4xf32>, %h: tensor<3xf32>):
    %z = arith.constant 0.0 : f32
    %e = tensor.expand_shape %x [[0, 1]] output_shape [1, 4] : tensor<4xf32> into tensor<1x4xf32>
    %i = tensor.empty() : tensor<1x3xf32>
    %f = linalg.fill ins(%z : f32) outs(%i : tensor<1x3xf32>) -> tensor<1x3xf32>
    %m = linalg.generic {indexing_maps = [#x, #w, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%e, %w : tensor<1x4xf32>, tensor<3x4xf32>) outs(%f : tensor<1x3xf32>) {
    ^bb0(%a: f32, %b: f32, %c: f32):
      %k = linalg.index 1 : index
      %ki = arith.index_cast %k : index to i32
      %kf = arith.sitofp %ki : i32 to f32
      %p = arith.mulf %a, %b : f32
      %q = arith.mulf %p, %kf : f32
      %s = arith.addf %c, %q : f32
      linalg.yield %s : f32
    } -> tensor<1x3xf32>
    %n = tensor.collapse_shape %m [[0, 1]] : tensor<1x3xf32> into tensor<3xf32>
    dyn.yield %n : tensor<3xf32>
  }
  return %r : tensor<3xf32>
}

// A budget under S: the loop visits its first `budget` positions only.
// CHECK-LABEL: func.func @budget(
// CHECK: %[[FIRST:.*]] = tensor.extract_slice %arg0[0, 0] [2, 4] [1, 1] : tensor<6x4xf32> to tensor<2x4xf32>
// CHECK: linalg.generic {{.*}} ins(%[[FIRST]], %arg2 : tensor<2x4xf32>, tensor<3x4xf32>) outs(%{{.*}} : tensor<2x3xf32>)
// CHECK: scf.while
func.func @budget(%seq: tensor<6x4xf32>, %h0: tensor<3xf32>, %w: tensor<3x4xf32>) -> tensor<3xf32> {
  %r = dyn.skip %seq init(%h0 : tensor<3xf32>) budget 2 actions [#dyn.action<read>] : tensor<6x4xf32> -> tensor<3xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<4xf32>, %h: tensor<3xf32>):
    %a = arith.constant 0 : index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<4xf32>, %h: tensor<3xf32>):
    %z = arith.constant 0.0 : f32
    %e = tensor.expand_shape %x [[0, 1]] output_shape [1, 4] : tensor<4xf32> into tensor<1x4xf32>
    %i = tensor.empty() : tensor<1x3xf32>
    %f = linalg.fill ins(%z : f32) outs(%i : tensor<1x3xf32>) -> tensor<1x3xf32>
    %m = linalg.generic {indexing_maps = [#x, #w, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%e, %w : tensor<1x4xf32>, tensor<3x4xf32>) outs(%f : tensor<1x3xf32>) {
    ^bb0(%a: f32, %b: f32, %c: f32):
      %p = arith.mulf %a, %b : f32
      %s = arith.addf %c, %p : f32
      linalg.yield %s : f32
    } -> tensor<1x3xf32>
    %n = tensor.collapse_shape %m [[0, 1]] : tensor<1x3xf32> into tensor<3xf32>
    dyn.yield %n : tensor<3xf32>
  }
  return %r : tensor<3xf32>
}

// A loop that may jump visits positions out of order or not at all: W x
// stays in the step.
// CHECK-LABEL: func.func @jumps(
// CHECK-NOT: tensor<6x3xf32>
// CHECK: scf.while
// CHECK: case 0 {
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %arg2 : tensor<1x4xf32>, tensor<3x4xf32>)
func.func @jumps(%seq: tensor<6x4xf32>, %h0: tensor<3xf32>, %w: tensor<3x4xf32>) -> tensor<3xf32> {
  %r = dyn.skip %seq init(%h0 : tensor<3xf32>) budget 10 actions [#dyn.action<read>, #dyn.action<jump>] : tensor<6x4xf32> -> tensor<3xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<4xf32>, %h: tensor<3xf32>):
    %a = arith.constant 0 : index
    %k = arith.constant 2 : i64
    dyn.decide %a jump %k
  }
  {
  ^bb0(%pos: index, %x: tensor<4xf32>, %h: tensor<3xf32>):
    %z = arith.constant 0.0 : f32
    %e = tensor.expand_shape %x [[0, 1]] output_shape [1, 4] : tensor<4xf32> into tensor<1x4xf32>
    %i = tensor.empty() : tensor<1x3xf32>
    %f = linalg.fill ins(%z : f32) outs(%i : tensor<1x3xf32>) -> tensor<1x3xf32>
    %m = linalg.generic {indexing_maps = [#x, #w, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%e, %w : tensor<1x4xf32>, tensor<3x4xf32>) outs(%f : tensor<1x3xf32>) {
    ^bb0(%a: f32, %b: f32, %c: f32):
      %p = arith.mulf %a, %b : f32
      %s = arith.addf %c, %p : f32
      linalg.yield %s : f32
    } -> tensor<1x3xf32>
    %n = tensor.collapse_shape %m [[0, 1]] : tensor<1x3xf32> into tensor<3xf32>
    dyn.yield %n : tensor<3xf32>
  },
  {
  }
  return %r : tensor<3xf32>
}

// Rows that would not fit the 64 MiB the loop's tables may hold (20000 x
// 1024 floats, 78 MiB) stay in the step.
// CHECK-LABEL: func.func @too_big(
// CHECK-NOT: tensor<20000x1024xf32>
// CHECK: scf.while
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %arg2 : tensor<1x4xf32>, tensor<1024x4xf32>)
func.func @too_big(%seq: tensor<20000x4xf32>, %h0: tensor<1024xf32>, %w: tensor<1024x4xf32>) -> tensor<1024xf32> {
  %r = dyn.skip %seq init(%h0 : tensor<1024xf32>) budget 20000 actions [#dyn.action<read>] : tensor<20000x4xf32> -> tensor<1024xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<4xf32>, %h: tensor<1024xf32>):
    %a = arith.constant 0 : index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<4xf32>, %h: tensor<1024xf32>):
    %z = arith.constant 0.0 : f32
    %e = tensor.expand_shape %x [[0, 1]] output_shape [1, 4] : tensor<4xf32> into tensor<1x4xf32>
    %i = tensor.empty() : tensor<1x1024xf32>
    %f = linalg.fill ins(%z : f32) outs(%i : tensor<1x1024xf32>) -> tensor<1x1024xf32>
    %m = linalg.generic {indexing_maps = [#x, #w, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%e, %w : tensor<1x4xf32>, tensor<1024x4xf32>) outs(%f : tensor<1x1024xf32>) {
    ^bb0(%a: f32, %b: f32, %c: f32):
      %p = arith.mulf %a, %b : f32
      %s = arith.addf %c, %p : f32
      linalg.yield %s : f32
    } -> tensor<1x1024xf32>
    %n = tensor.collapse_shape %m [[0, 1]] : tensor<1x1024xf32> into tensor<1024xf32>
    dyn.yield %n : tensor<1024xf32>
  }
  return %r : tensor<1024xf32>
}
