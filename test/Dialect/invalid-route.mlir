// RUN: dyncc-opt %s -split-input-file -verify-diagnostics

// One case per verifier rule of dyn.route.

func.func @input_rank(%x: tensor<8x2x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{input must be a static [tokens, features] tensor, got 'tensor<8x2x16xf32>'}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 1 : i64} : tensor<8x2x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @num_experts(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{num_experts must be >= 1, got 0}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 0 : i64, k = 1 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @hash_gate(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{hash routing takes the token ids as gate, an integer tensor of shape [8], got 'tensor<8x4xf32>'}}
  %y = dyn.route hash %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @gate_type(%x: tensor<8x16xf32>, %g: tensor<8xi64>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{strategy top_k takes gate logits, a float tensor [tokens, experts], got 'tensor<8xi64>'}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 1 : i64} : tensor<8x16xf32>, tensor<8xi64> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @gate_rows(%x: tensor<8x16xf32>, %g: tensor<6x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{gate has 6 rows but the input has 8 tokens}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 1 : i64} : tensor<8x16xf32>, tensor<6x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @gate_experts(%x: tensor<8x16xf32>, %g: tensor<8x5xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{gate scores 5 experts but num_experts = 4}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 1 : i64} : tensor<8x16xf32>, tensor<8x5xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @table_without_hash(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %t: tensor<100xi32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{'table' operand only applies to hash routing}}
  %y = dyn.route top_k %x, %g table %t : tensor<100xi32> experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 1 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @table_rank(%x: tensor<8x16xf32>, %g: tensor<8xi64>, %t: tensor<10x10xi32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{hash table must be a static rank-1 tensor mapping token ids to experts, got 'tensor<10x10xi32>'}}
  %y = dyn.route hash %x, %g table %t : tensor<10x10xi32> experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64} : tensor<8x16xf32>, tensor<8xi64> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @top_k_needs_k(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{strategy top_k needs k}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @k_zero(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{k must be >= 1, got 0}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 0 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @k_too_large(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{k = 5 exceeds the number of experts (4)}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 5 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @k_top1_divides(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{k_top1 splits the 4 experts into k = 3 prototypes; k must divide num_experts}}
  %y = dyn.route k_top1 %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 3 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @switch_k(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{strategy switch routes to 1 expert(s) per token; k = 2 is not allowed}}
  %y = dyn.route switch %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 2 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @gshard_one_expert(%x: tensor<8x16xf32>, %g: tensor<8x1xf32>, %w0: tensor<1x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{gshard routes to 2 experts per token but num_experts = 1}}
  %y = dyn.route gshard %x, %g experts(%w0 : tensor<1x16x16xf32>) {num_experts = 1 : i64, seed = 1 : i64} : tensor<8x16xf32>, tensor<8x1xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @dts_k(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{dense_to_sparse visits every expert above the threshold; k is not used}}
  %y = dyn.route dense_to_sparse %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 2 : i64, temperature = 1.0 : f64, threshold = 0.1 : f64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @dts_needs_temperature(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{dense_to_sparse needs temperature and threshold}}
  %y = dyn.route dense_to_sparse %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, threshold = 0.1 : f64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @temperature_elsewhere(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{temperature and threshold only apply to strategy dense_to_sparse}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 1 : i64, temperature = 1.0 : f64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @temperature_zero(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{temperature = 0 must be a positive, normal f32 and finite}}
  %y = dyn.route dense_to_sparse %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, temperature = 0.0 : f64, threshold = 0.1 : f64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @threshold_range(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{threshold = 1 is outside [0, 1)}}
  %y = dyn.route dense_to_sparse %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, temperature = 1.0 : f64, threshold = 1.0 : f64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @random_needs_seed(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{strategy random draws at random and needs a seed}}
  %y = dyn.route random %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @seed_elsewhere(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{seed only applies to strategies gshard and random}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 1 : i64, seed = 3 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @capacity_and_dropless(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{capacity_factor and dropless_block exclude each other}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 1 : i64, capacity_factor = 1.0 : f64, dropless_block = 4 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @capacity_zero(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{capacity_factor must be positive and finite, got 0}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 1 : i64, capacity_factor = 0.0 : f64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @capacity_negative(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{capacity_factor must be positive and finite, got -1.25}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 1 : i64, capacity_factor = -1.25 : f64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @dropless_block(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{dropless_block must be >= 1, got 0}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 1 : i64, dropless_block = 0 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @priority_without_capacity(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{priority only applies with a capacity_factor}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 1 : i64, priority = #dyn.priority<score>} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @base_capacity(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{base assigns exactly tokens / experts per expert; capacity_factor and dropless_block do not apply}}
  %y = dyn.route base %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, capacity_factor = 1.0 : f64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @base_uneven(%x: tensor<6x16xf32>, %g: tensor<6x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<6x16xf32> {
  // expected-error @+1 {{base needs the 6 tokens to split evenly over 4 experts}}
  %y = dyn.route base %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64} : tensor<6x16xf32>, tensor<6x4xf32> -> tensor<6x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<6x16xf32>
}

// -----

func.func @groups(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{groups = 3 must be >= 1 and divide the 8 tokens}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 1 : i64, groups = 3 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @param_leading_dim(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<3x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{expert parameter #0 must have a leading dimension of 4 (one slice per expert), got 'tensor<3x16x16xf32>'}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<3x16x16xf32>) {num_experts = 4 : i64, k = 1 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @result_shape(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<4x16xf32> {
  // expected-error @+1 {{result must be [8, features] of 'f32', got 'tensor<4x16xf32>'}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 1 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<4x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p0: tensor<16x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<4x16xf32>
}

// -----

func.func @body_arg_count(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{expert body must take 2 argument(s) (the routed tokens, then one slice of each expert parameter), but takes 1}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 1 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>):
    dyn.yield %r : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @body_tokens_static(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{expert body argument #0 must be 'tensor<?x16xf32>' (the routed tokens, then one slice of each expert parameter), but is 'tensor<2x16xf32>'}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 1 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<2x16xf32>, %p: tensor<16x16xf32>):
    %c = tensor.cast %r : tensor<2x16xf32> to tensor<?x16xf32>
    dyn.yield %c : tensor<?x16xf32>
  }
  return %y : tensor<8x16xf32>
}

// -----

func.func @body_yield(%x: tensor<8x16xf32>, %g: tensor<8x4xf32>, %w0: tensor<4x16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{expert body must yield ('tensor<?x16xf32>') but yields ('tensor<?x8xf32>')}}
  %y = dyn.route top_k %x, %g experts(%w0 : tensor<4x16x16xf32>) {num_experts = 4 : i64, k = 1 : i64} : tensor<8x16xf32>, tensor<8x4xf32> -> tensor<8x16xf32> {
  ^bb0(%r: tensor<?x16xf32>, %p: tensor<16x16xf32>):
    %e = tensor.extract_slice %r[0, 0] [2, 8] [1, 1] : tensor<?x16xf32> to tensor<2x8xf32>
    %c = tensor.cast %e : tensor<2x8xf32> to tensor<?x8xf32>
    dyn.yield %c : tensor<?x8xf32>
  }
  return %y : tensor<8x16xf32>
}
