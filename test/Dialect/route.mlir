// RUN: dyncc-opt %s | FileCheck %s
// RUN: dyncc-opt %s | dyncc-opt | FileCheck %s
// RUN: dyncc-opt %s -mlir-print-op-generic | dyncc-opt | FileCheck %s

// Every routing strategy of survey Table 2, capacity with both priorities,
// dropless, unbounded, local groups, renormalisation and balanced hashing.

func.func private @ffn(tensor<?x16xf32>, tensor<16x64xf32>, tensor<64x16xf32>) -> tensor<?x16xf32>

// CHECK-LABEL: func @top_k
func.func @top_k(%x: tensor<32x16xf32>, %g: tensor<32x8xf32>, %w1: tensor<8x16x64xf32>, %w2: tensor<8x64x16xf32>) -> tensor<32x16xf32> {
  // CHECK: dyn.route top_k %{{.*}}, %{{.*}} experts(%{{.*}}, %{{.*}} : tensor<8x16x64xf32>, tensor<8x64x16xf32>) {k = 3 : i64, num_experts = 8 : i64, renormalize} : tensor<32x16xf32>, tensor<32x8xf32> -> tensor<32x16xf32> {
  // CHECK: ^bb0(%{{.*}}: tensor<?x16xf32>, %{{.*}}: tensor<16x64xf32>, %{{.*}}: tensor<64x16xf32>):
  // CHECK:   dyn.yield %{{.*}} : tensor<?x16xf32>
  %y = dyn.route top_k %x, %g experts(%w1, %w2 : tensor<8x16x64xf32>, tensor<8x64x16xf32>)
      {num_experts = 8 : i64, k = 3 : i64, renormalize}
      : tensor<32x16xf32>, tensor<32x8xf32> -> tensor<32x16xf32> {
  ^bb0(%t: tensor<?x16xf32>, %a: tensor<16x64xf32>, %b: tensor<64x16xf32>):
    %h = func.call @ffn(%t, %a, %b) : (tensor<?x16xf32>, tensor<16x64xf32>, tensor<64x16xf32>) -> tensor<?x16xf32>
    dyn.yield %h : tensor<?x16xf32>
  }
  return %y : tensor<32x16xf32>
}

// CHECK-LABEL: func @switch_capacity
func.func @switch_capacity(%x: tensor<32x16xf32>, %g: tensor<32x8xf32>, %w1: tensor<8x16x64xf32>, %w2: tensor<8x64x16xf32>) -> tensor<32x16xf32> {
  // CHECK: dyn.route switch {{.*}}capacity_factor = 1.250000e+00 : f64{{.*}}priority = #dyn.priority<score>
  %y = dyn.route switch %x, %g experts(%w1, %w2 : tensor<8x16x64xf32>, tensor<8x64x16xf32>)
      {num_experts = 8 : i64, capacity_factor = 1.25 : f64, priority = #dyn.priority<score>}
      : tensor<32x16xf32>, tensor<32x8xf32> -> tensor<32x16xf32> {
  ^bb0(%t: tensor<?x16xf32>, %a: tensor<16x64xf32>, %b: tensor<64x16xf32>):
    %h = func.call @ffn(%t, %a, %b) : (tensor<?x16xf32>, tensor<16x64xf32>, tensor<64x16xf32>) -> tensor<?x16xf32>
    dyn.yield %h : tensor<?x16xf32>
  }
  return %y : tensor<32x16xf32>
}

// GShard: top-2, random second expert, capacity, local group dispatching.
// CHECK-LABEL: func @gshard
func.func @gshard(%x: tensor<32x16xf32>, %g: tensor<32x8xf32>, %w1: tensor<8x16x64xf32>, %w2: tensor<8x64x16xf32>) -> tensor<32x16xf32> {
  // CHECK: dyn.route gshard {{.*}}{capacity_factor = 2.000000e+00 : f64, groups = 4 : i64, num_experts = 8 : i64, priority = #dyn.priority<token_order>, seed = 42 : i64}
  %y = dyn.route gshard %x, %g experts(%w1, %w2 : tensor<8x16x64xf32>, tensor<8x64x16xf32>)
      {num_experts = 8 : i64, capacity_factor = 2.0 : f64, groups = 4 : i64, seed = 42 : i64, priority = #dyn.priority<token_order>}
      : tensor<32x16xf32>, tensor<32x8xf32> -> tensor<32x16xf32> {
  ^bb0(%t: tensor<?x16xf32>, %a: tensor<16x64xf32>, %b: tensor<64x16xf32>):
    %h = func.call @ffn(%t, %a, %b) : (tensor<?x16xf32>, tensor<16x64xf32>, tensor<64x16xf32>) -> tensor<?x16xf32>
    dyn.yield %h : tensor<?x16xf32>
  }
  return %y : tensor<32x16xf32>
}

// BASE: balanced assignment, exactly T/E tokens per expert.
// CHECK-LABEL: func @base
func.func @base(%x: tensor<32x16xf32>, %g: tensor<32x8xf32>, %w1: tensor<8x16x64xf32>, %w2: tensor<8x64x16xf32>) -> tensor<32x16xf32> {
  // CHECK: dyn.route base {{.*}}{num_experts = 8 : i64}
  %y = dyn.route base %x, %g experts(%w1, %w2 : tensor<8x16x64xf32>, tensor<8x64x16xf32>)
      {num_experts = 8 : i64}
      : tensor<32x16xf32>, tensor<32x8xf32> -> tensor<32x16xf32> {
  ^bb0(%t: tensor<?x16xf32>, %a: tensor<16x64xf32>, %b: tensor<64x16xf32>):
    %h = func.call @ffn(%t, %a, %b) : (tensor<?x16xf32>, tensor<16x64xf32>, tensor<64x16xf32>) -> tensor<?x16xf32>
    dyn.yield %h : tensor<?x16xf32>
  }
  return %y : tensor<32x16xf32>
}

// M6-T: 2 prototypes of 4 experts, top-1 in each; dropless dispatch.
// CHECK-LABEL: func @k_top1_dropless
func.func @k_top1_dropless(%x: tensor<32x16xf32>, %g: tensor<32x8xf32>, %w1: tensor<8x16x64xf32>, %w2: tensor<8x64x16xf32>) -> tensor<32x16xf32> {
  // CHECK: dyn.route k_top1 {{.*}}{dropless_block = 16 : i64, k = 2 : i64, num_experts = 8 : i64}
  %y = dyn.route k_top1 %x, %g experts(%w1, %w2 : tensor<8x16x64xf32>, tensor<8x64x16xf32>)
      {num_experts = 8 : i64, k = 2 : i64, dropless_block = 16 : i64}
      : tensor<32x16xf32>, tensor<32x8xf32> -> tensor<32x16xf32> {
  ^bb0(%t: tensor<?x16xf32>, %a: tensor<16x64xf32>, %b: tensor<64x16xf32>):
    %h = func.call @ffn(%t, %a, %b) : (tensor<?x16xf32>, tensor<16x64xf32>, tensor<64x16xf32>) -> tensor<?x16xf32>
    dyn.yield %h : tensor<?x16xf32>
  }
  return %y : tensor<32x16xf32>
}

// DTS-gate: temperature softmax and a threshold; an expert without
// parameters (the identity) shows that the body is any region.
// CHECK-LABEL: func @dense_to_sparse
func.func @dense_to_sparse(%x: tensor<32x16xf32>, %g: tensor<32x4xf32>) -> tensor<32x16xf32> {
  // CHECK: dyn.route dense_to_sparse %{{.*}}, %{{.*}} {num_experts = 4 : i64, temperature = 5.000000e-01 : f64, threshold = 1.000000e-01 : f64}
  // CHECK: ^bb0(%[[T:.*]]: tensor<?x16xf32>):
  // CHECK:   dyn.yield %[[T]] : tensor<?x16xf32>
  %y = dyn.route dense_to_sparse %x, %g {num_experts = 4 : i64, temperature = 0.5 : f64, threshold = 0.1 : f64}
      : tensor<32x16xf32>, tensor<32x4xf32> -> tensor<32x16xf32> {
  ^bb0(%t: tensor<?x16xf32>):
    dyn.yield %t : tensor<?x16xf32>
  }
  return %y : tensor<32x16xf32>
}

// Hash layers: id mod E, and a balanced-hash table.
// CHECK-LABEL: func @hash
func.func @hash(%x: tensor<32x16xf32>, %ids: tensor<32xi64>, %table: tensor<1000xi32>, %w1: tensor<8x16x64xf32>, %w2: tensor<8x64x16xf32>) -> tensor<32x16xf32> {
  // CHECK: dyn.route hash %{{.*}}, %{{.*}} experts(
  // CHECK: dyn.route hash %{{.*}}, %{{.*}} table %{{.*}} : tensor<1000xi32> experts(
  %y = dyn.route hash %x, %ids experts(%w1, %w2 : tensor<8x16x64xf32>, tensor<8x64x16xf32>)
      {num_experts = 8 : i64} : tensor<32x16xf32>, tensor<32xi64> -> tensor<32x16xf32> {
  ^bb0(%t: tensor<?x16xf32>, %a: tensor<16x64xf32>, %b: tensor<64x16xf32>):
    %h = func.call @ffn(%t, %a, %b) : (tensor<?x16xf32>, tensor<16x64xf32>, tensor<64x16xf32>) -> tensor<?x16xf32>
    dyn.yield %h : tensor<?x16xf32>
  }
  %z = dyn.route hash %y, %ids table %table : tensor<1000xi32> experts(%w1, %w2 : tensor<8x16x64xf32>, tensor<8x64x16xf32>)
      {num_experts = 8 : i64} : tensor<32x16xf32>, tensor<32xi64> -> tensor<32x16xf32> {
  ^bb0(%t: tensor<?x16xf32>, %a: tensor<16x64xf32>, %b: tensor<64x16xf32>):
    %h = func.call @ffn(%t, %a, %b) : (tensor<?x16xf32>, tensor<16x64xf32>, tensor<64x16xf32>) -> tensor<?x16xf32>
    dyn.yield %h : tensor<?x16xf32>
  }
  return %z : tensor<32x16xf32>
}

// THOR: one random expert per token at inference.
// CHECK-LABEL: func @random
func.func @random(%x: tensor<32x16xf32>, %g: tensor<32x8xf32>, %w1: tensor<8x16x64xf32>, %w2: tensor<8x64x16xf32>) -> tensor<32x16xf32> {
  // CHECK: dyn.route random {{.*}}{num_experts = 8 : i64, seed = 7 : i64}
  %y = dyn.route random %x, %g experts(%w1, %w2 : tensor<8x16x64xf32>, tensor<8x64x16xf32>)
      {num_experts = 8 : i64, seed = 7 : i64}
      : tensor<32x16xf32>, tensor<32x8xf32> -> tensor<32x16xf32> {
  ^bb0(%t: tensor<?x16xf32>, %a: tensor<16x64xf32>, %b: tensor<64x16xf32>):
    %h = func.call @ffn(%t, %a, %b) : (tensor<?x16xf32>, tensor<16x64xf32>, tensor<64x16xf32>) -> tensor<?x16xf32>
    dyn.yield %h : tensor<?x16xf32>
  }
  return %y : tensor<32x16xf32>
}
