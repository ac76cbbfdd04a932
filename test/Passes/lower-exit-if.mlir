// RUN: dyncc-opt %s -split-input-file -dyn-lower-exit-if | FileCheck %s

// One exit point: the criterion, "every sample exited", an scf.if whose
// then-branch yields the logits and layer 1, whose else-branch runs the rest
// and merges per sample; the threshold becomes a dyn.param argument and the
// exit layers a result.

// CHECK-LABEL: func.func @entropy(
// CHECK-SAME: %[[Z1:[^:]*]]: tensor<2x3xf32>, %[[Z2:[^:]*]]: tensor<2x3xf32>, %[[T:.*]]: tensor<1xf32> {dyn.param = "theta"})
// CHECK-SAME: -> (tensor<2x3xf32>, tensor<2xi32> {dyn.name = "exit_layer"})
// CHECK: math.log
// CHECK: arith.cmpf olt
// CHECK: %[[ALL:.*]] = linalg.generic {{.*}}iterator_types = ["reduction"]{{.*}} outs(%{{.*}} : tensor<i1>)
// CHECK: %[[C:.*]] = tensor.extract %[[ALL]][] : tensor<i1>
// CHECK: %[[IF:.*]]:2 = scf.if %[[C]] -> (tensor<2x3xf32>, tensor<2xi32>) {
// CHECK:   linalg.fill ins(%c1_i32
// CHECK:   scf.yield %[[Z1]], %{{.*}} : tensor<2x3xf32>, tensor<2xi32>
// CHECK: } else {
// CHECK:   linalg.fill ins(%c2_i32
// CHECK:   arith.select
// CHECK:   scf.yield
// CHECK: return %[[IF]]#0, %[[IF]]#1
func.func @entropy(%z1: tensor<2x3xf32>, %z2: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %r = dyn.exit_if %z1 criterion #dyn.entropy<threshold = #dyn.param<"theta" = 0.3>> layer 1 : tensor<2x3xf32> {
    dyn.yield %z2 : tensor<2x3xf32>
  }
  return %r : tensor<2x3xf32>
}

// -----

// A patience chain: the counter of the first exit point is 0, the next one
// compares argmaxes; the inner exit point lives in the else-branch and its
// layers flow out through both scf.if ops.

// CHECK-LABEL: func.func @patience(
// CHECK-SAME: %{{.*}}: tensor<1xf32> {dyn.param = "k"})
// CHECK: scf.if
// CHECK: } else {
// CHECK:   arith.cmpi eq
// CHECK:   scf.if
// CHECK:   } else {
// CHECK:     linalg.fill ins(%c3_i32
func.func @patience(%z1: tensor<1x2xf32>, %z2: tensor<1x2xf32>, %z3: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %r = dyn.exit_if %z1 criterion #dyn.patience<k = #dyn.param<"k" = 1>> layer 1 : tensor<1x2xf32> {
    %i = dyn.exit_if %z2 criterion #dyn.patience<k = #dyn.param<"k" = 1>> layer 2 : tensor<1x2xf32> {
      dyn.yield %z3 : tensor<1x2xf32>
    }
    dyn.yield %i : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

// The learned score is compared with its threshold; per-class thresholds are
// a vector parameter read at the predicted class.

// CHECK-LABEL: func.func @learned(
// CHECK-SAME: %{{.*}}: tensor<1xf32> {dyn.param = "lte"})
// CHECK: arith.cmpf ogt
func.func @learned(%z1: tensor<1x2xf32>, %s: tensor<1x1xf32>, %z2: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %r = dyn.exit_if %z1 score %s : tensor<1x1xf32> criterion #dyn.learned_score<threshold = #dyn.param<"lte" = 0.5>> layer 1 : tensor<1x2xf32> {
    dyn.yield %z2 : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// CHECK-LABEL: func.func @per_class(
// CHECK-SAME: %{{.*}}: tensor<3xf32> {dyn.param = "rank"})
// CHECK: tensor.extract %{{.*}}[%{{.*}}] : tensor<3xf32>
func.func @per_class(%z1: tensor<1x3xf32>, %z2: tensor<1x3xf32>) -> tensor<1x3xf32> {
  %r = dyn.exit_if %z1 criterion #dyn.per_class<thresholds = #dyn.param<"rank" = [0.9, 0.5, 0.7]>> layer 1 : tensor<1x3xf32> {
    dyn.yield %z2 : tensor<1x3xf32>
  }
  return %r : tensor<1x3xf32>
}
