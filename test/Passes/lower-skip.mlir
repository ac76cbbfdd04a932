// RUN: dyncc-opt %s -dyn-lower-skip | FileCheck %s

// The loop carries (pos, steps, stop, state); the condition is
// 0 <= pos < S && steps < budget && !stop; each step gathers the input at
// pos, decides, calls the step builtin (trace, range check) and switches on
// the action: read -> pos + 1 with the region's state, skip -> pos + 1 with
// the state unchanged, jump -> pos + max(amount, 1), shuttle -> pos + amount,
// reread -> pos, stop -> the stop flag.

// CHECK-LABEL: func.func private @skim_skip0_step(tensor<3xi32>)
// CHECK-SAME: dyn.builtin = 2 : i32, dyn.config = array<f64: 0.000000e+00, 1.000000e+01, 4.000000e+00, 6.000000e+00>
// CHECK-LABEL: func.func @skim(
// CHECK: %[[R:.*]]:4 = scf.while (%[[P:.*]] = %{{.*}}, %[[N:.*]] = %{{.*}}, %[[S:.*]] = %false, %[[H:.*]] = %arg1) : (index, index, i1, tensor<2xf32>)
// CHECK: arith.cmpi sge
// CHECK: arith.cmpi slt
// CHECK: arith.cmpi slt
// CHECK: scf.condition
// CHECK: } do {
// CHECK: %[[PT:.*]] = tensor.from_elements
// CHECK: linalg.generic {{.*}} ins(%[[PT]] : tensor<1xi32>)
// CHECK: tensor.extract %arg0[
// CHECK: %[[STEP:.*]] = tensor.from_elements %{{.*}}, %{{.*}}, %{{.*}} : tensor<3xi32>
// CHECK: call @skim_skip0_step(%[[STEP]])
// CHECK: scf.index_switch
// CHECK: case 0 {
// CHECK: linalg.add
// CHECK: arith.addi
// CHECK: case 1 {
// CHECK: arith.addi
// CHECK: case 2 {
// CHECK: arith.maxsi
// CHECK: arith.addi
// CHECK: case 3 {
// CHECK: arith.index_cast
// CHECK: arith.addi
// CHECK: case 4 {
// CHECK: linalg.add
// CHECK: case 5 {
// CHECK: %true
// CHECK: default {
// CHECK: return %[[R]]#3
func.func @skim(%seq: tensor<4x2xf32>, %h0: tensor<2xf32>) -> tensor<2xf32> {
  %r = dyn.skip %seq init(%h0 : tensor<2xf32>) budget 10 actions [#dyn.action<read>, #dyn.action<skip>, #dyn.action<jump>, #dyn.action<shuttle>, #dyn.action<reread>, #dyn.action<stop>] : tensor<4x2xf32> -> tensor<2xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<2xf32>, %h: tensor<2xf32>):
    %a = arith.constant 0 : index
    %k = arith.constant 2 : i64
    dyn.decide %a jump %k
  }
  {
  ^bb0(%pos: index, %x: tensor<2xf32>, %h: tensor<2xf32>):
    %e = tensor.empty() : tensor<2xf32>
    %n = linalg.add ins(%x, %h : tensor<2xf32>, tensor<2xf32>) outs(%e : tensor<2xf32>) -> tensor<2xf32>
    dyn.yield %n : tensor<2xf32>
  },
  {
  },
  {
  },
  {
  },
  {
  ^bb0(%pos: index, %x: tensor<2xf32>, %h: tensor<2xf32>):
    %e = tensor.empty() : tensor<2xf32>
    %n = linalg.add ins(%x, %h : tensor<2xf32>, tensor<2xf32>) outs(%e : tensor<2xf32>) -> tensor<2xf32>
    dyn.yield %n : tensor<2xf32>
  },
  {
  }
  return %r : tensor<2xf32>
}
