// RUN: dyncc-opt %s -dyn-collect-params -dyn-batch-buckets="buckets=1,2,4" | FileCheck %s
// RUN: not dyncc-opt %s -dyn-batch-buckets="buckets=2,1" 2>&1 | FileCheck %s --check-prefix=ORDER

// A per-sample model with one exit point becomes a function of 4 samples:
// the input gains the sample dimension, the count and the threshold become
// arguments, the exit layers a result. Each of the two stages is an
// scf.index_switch over the 3 buckets (and a default for "every sample
// exited") whose cases run the stage batched to 1, 2 and 4 samples, then the
// stage's compaction step; the first stage carries the input to the second.

// CHECK: module attributes {dyn.batch_buckets = array<i32: 1, 2, 4>, dyn.batch_stages = 2 : i32
// CHECK: func.func private @m_batch_init(tensor<1xi32>) -> tensor<12xi32> attributes {dyn.builtin = 3 : i32, dyn.config = array<f64: 0.000000e+00, 0.000000e+00, 4.000000e+00, 2.000000e+00
// CHECK: func.func private @m_batch_step0(tensor<4xi1>, tensor<12xi32>) -> tensor<12xi32> attributes {dyn.builtin = 3 : i32, dyn.config = array<f64: 1.000000e+00, 0.000000e+00
// CHECK: func.func private @m_batch_step1(tensor<4xi1>, tensor<12xi32>) -> tensor<12xi32>
// CHECK-LABEL: func.func @m(
// CHECK-SAME: %[[W:[^:]*]]: tensor<4x3xf32> {dyn.weight = "w"}, %[[X:[^:]*]]: tensor<4x1x4xf32> {dyn.name = "x"}, %[[N:[^:]*]]: tensor<1xi32> {dyn.batch_count}, %{{.*}}: tensor<1xf32> {dyn.param = "theta"})
// CHECK-SAME: -> (tensor<4x1x3xf32>, tensor<4xi32> {dyn.name = "exit_layer"})
// CHECK: %[[ST:.*]] = call @m_batch_init(%[[N]])
// CHECK: %[[K:.*]] = tensor.extract %[[ST]][%c1{{.*}}] : tensor<12xi32>
// CHECK: %[[S1:.*]]:4 = scf.index_switch %{{.*}} -> tensor<12xi32>, tensor<4x3xf32>, tensor<4xi32>, tensor<4x1x4xf32>
// CHECK: case 0 {
// CHECK:   tensor.extract_slice %[[X]][0, 0, 0] [1, 1, 4] [1, 1, 1] : tensor<4x1x4xf32> to tensor<1x1x4xf32>
// CHECK:   linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "reduction"]{{.*}} outs(%{{.*}} : tensor<1x1x3xf32>)
// CHECK:   math.log
// CHECK:   func.call @m_batch_step0(%{{.*}}, %[[ST]])
// CHECK: case 1 {
// CHECK:   tensor.extract_slice %[[X]][0, 0, 0] [2, 1, 4] [1, 1, 1] : tensor<4x1x4xf32> to tensor<2x1x4xf32>
// CHECK: case 2 {
// CHECK-NOT: tensor.extract_slice
// CHECK:   outs(%{{.*}} : tensor<4x1x3xf32>)
// CHECK: default {
// CHECK:   scf.yield %[[ST]]
// CHECK: %[[S2:.*]]:3 = scf.index_switch %{{.*}} -> tensor<12xi32>, tensor<4x3xf32>, tensor<4xi32>
// CHECK: case 0 {
// CHECK:   tensor.extract_slice %[[S1]]#3[0, 0, 0] [1, 1, 4]
// CHECK:   math.exp
// CHECK:   func.call @m_batch_step1(%{{.*}}, %[[S1]]#0)
// CHECK: %[[Z:.*]] = tensor.expand_shape %[[S2]]#1 {{\[}}[0], [1, 2]] {{.*}} into tensor<4x1x3xf32>
// CHECK: return %[[Z]], %[[S2]]#2

// ORDER: error: --batch-buckets must be ascending positive sizes, got 2,1

func.func @m(%x: tensor<1x4xf32> {dyn.name = "x"}, %w: tensor<4x3xf32> {dyn.weight = "w"}) -> tensor<1x3xf32> {
  %e = tensor.empty() : tensor<1x3xf32>
  %c0 = arith.constant 0.0 : f32
  %f = linalg.fill ins(%c0 : f32) outs(%e : tensor<1x3xf32>) -> tensor<1x3xf32>
  %z1 = linalg.matmul ins(%x, %w : tensor<1x4xf32>, tensor<4x3xf32>) outs(%f : tensor<1x3xf32>) -> tensor<1x3xf32>
  %r = dyn.exit_if %z1 criterion #dyn.entropy<threshold = #dyn.param<"theta" = 0.5>> layer 1 : tensor<1x3xf32> {
    %e2 = tensor.empty() : tensor<1x4xf32>
    %h = linalg.exp ins(%x : tensor<1x4xf32>) outs(%e2 : tensor<1x4xf32>) -> tensor<1x4xf32>
    %z2 = linalg.matmul ins(%h, %w : tensor<1x4xf32>, tensor<4x3xf32>) outs(%f : tensor<1x3xf32>) -> tensor<1x3xf32>
    dyn.yield %z2 : tensor<1x3xf32>
  }
  return %r : tensor<1x3xf32>
}
