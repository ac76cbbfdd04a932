// RUN: dyncc-opt %s -split-input-file -verify-diagnostics

// One case per verifier rule of dyn.exit_if.

func.func @rank(%l: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error @+1 {{sample-level exit expects logits of rank 2 ([batch, classes]), got 'tensor<2xf32>'}}
  %r = dyn.exit_if %l criterion #dyn.entropy<threshold = #dyn.param<"t" = 0.3>> layer 1 : tensor<2xf32> {
    dyn.yield %l : tensor<2xf32>
  }
  return %r : tensor<2xf32>
}

// -----

func.func @token_rank(%l: tensor<1x2xf32>, %h: tensor<1x4x8xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{token-level exit expects logits of rank 3 ([batch, seq, classes])}}
  %r = dyn.exit_if %l hidden %h : tensor<1x4x8xf32> criterion #dyn.entropy<threshold = #dyn.param<"t" = 0.3>> layer 1 granularity token : tensor<1x2xf32> {
  ^bb0(%f: tensor<1x4x8xf32>):
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @dynamic(%l: tensor<?x2xf32>) -> tensor<?x2xf32> {
  // expected-error @+1 {{logits must have a static shape}}
  %r = dyn.exit_if %l criterion #dyn.entropy<threshold = #dyn.param<"t" = 0.3>> layer 1 : tensor<?x2xf32> {
    dyn.yield %l : tensor<?x2xf32>
  }
  return %r : tensor<?x2xf32>
}

// -----

func.func @layer(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{layer must be >= 1, got 0}}
  %r = dyn.exit_if %l criterion #dyn.entropy<threshold = #dyn.param<"t" = 0.3>> layer 0 : tensor<1x2xf32> {
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @entropy_negative(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{entropy threshold 't' = -0.1 is outside [0, inf]}}
  %r = dyn.exit_if %l criterion #dyn.entropy<threshold = #dyn.param<"t" = -0.1>> layer 1 : tensor<1x2xf32> {
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @entropy_vector(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{entropy threshold 't' must be a single value, not a vector}}
  %r = dyn.exit_if %l criterion #dyn.entropy<threshold = #dyn.param<"t" = [0.1, 0.2]>> layer 1 : tensor<1x2xf32> {
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @probability_above_one(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{probability threshold 'tau' = 1.5 is outside [0, 1]}}
  %r = dyn.exit_if %l criterion #dyn.max_prob<temperature = 1.0 : f64, threshold = #dyn.param<"tau" = 1.5>> layer 1 : tensor<1x2xf32> {
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @temperature(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{temperature = 0 must be a positive, normal f32 and finite}}
  %r = dyn.exit_if %l criterion #dyn.max_prob<temperature = 0.0 : f64, threshold = #dyn.param<"tau" = 0.5>> layer 1 : tensor<1x2xf32> {
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

// A temperature that is not a normal f32 used to reach Halide as a
// division by zero.
func.func @temperature_denormal(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{temperature = 1e-320 must be a positive, normal f32 and finite}}
  %r = dyn.exit_if %l criterion #dyn.max_prob<temperature = 1.0e-320 : f64, threshold = #dyn.param<"tau" = 0.5>> layer 1 : tensor<1x2xf32> {
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @patience_zero(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{patience 'k' = 0 must be an integer >= 1}}
  %r = dyn.exit_if %l criterion #dyn.patience<k = #dyn.param<"k" = 0>> layer 1 : tensor<1x2xf32> {
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @patience_fraction(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{patience 'k' = 2.5 must be an integer >= 1}}
  %r = dyn.exit_if %l criterion #dyn.patience<k = #dyn.param<"k" = 2.5>> layer 1 : tensor<1x2xf32> {
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @votes_negative(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{vote threshold 'v' = -1 is outside [0, inf]}}
  %r = dyn.exit_if %l criterion #dyn.votes<threshold = #dyn.param<"v" = -1>> layer 1 : tensor<1x2xf32> {
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @score_threshold(%l: tensor<1x2xf32>, %s: tensor<1xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{score threshold 's' = 2 is outside [0, 1]}}
  %r = dyn.exit_if %l score %s : tensor<1xf32> criterion #dyn.learned_score<threshold = #dyn.param<"s" = 2>> layer 1 : tensor<1x2xf32> {
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @per_class_count(%l: tensor<1x3xf32>) -> tensor<1x3xf32> {
  // expected-error @+1 {{per-class thresholds 'c' has 2 values but the classifier has 3 classes}}
  %r = dyn.exit_if %l criterion #dyn.per_class<thresholds = #dyn.param<"c" = [0.5, 0.5]>> layer 1 : tensor<1x3xf32> {
    dyn.yield %l : tensor<1x3xf32>
  }
  return %r : tensor<1x3xf32>
}

// -----

func.func @per_class_range(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{per-class threshold 'c' = -0.5 is outside [0, 1]}}
  %r = dyn.exit_if %l criterion #dyn.per_class<thresholds = #dyn.param<"c" = [0.5, -0.5]>> layer 1 : tensor<1x2xf32> {
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @score_missing(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{criterion learned_score needs the 'score' operand}}
  %r = dyn.exit_if %l criterion #dyn.learned_score<threshold = #dyn.param<"s" = 0.5>> layer 1 : tensor<1x2xf32> {
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @score_unused(%l: tensor<1x2xf32>, %s: tensor<1xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{'score' operand is only used by criterion learned_score, not entropy}}
  %r = dyn.exit_if %l score %s : tensor<1xf32> criterion #dyn.entropy<threshold = #dyn.param<"t" = 0.3>> layer 1 : tensor<1x2xf32> {
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @score_shape(%l: tensor<2x2xf32>, %s: tensor<3xf32>) -> tensor<2x2xf32> {
  // expected-error @+1 {{score must have one value per sample (shape [2] or [2, 1]), got 'tensor<3xf32>'}}
  %r = dyn.exit_if %l score %s : tensor<3xf32> criterion #dyn.learned_score<threshold = #dyn.param<"s" = 0.5>> layer 1 : tensor<2x2xf32> {
    dyn.yield %l : tensor<2x2xf32>
  }
  return %r : tensor<2x2xf32>
}

// -----

func.func @hidden_missing(%l: tensor<1x4x2xf32>) -> tensor<1x4x2xf32> {
  // expected-error @+1 {{token-level exit needs the 'hidden' operand}}
  %r = dyn.exit_if %l criterion #dyn.entropy<threshold = #dyn.param<"t" = 0.3>> layer 1 granularity token : tensor<1x4x2xf32> {
    dyn.yield %l : tensor<1x4x2xf32>
  }
  return %r : tensor<1x4x2xf32>
}

// -----

func.func @hidden_unused(%l: tensor<1x2xf32>, %h: tensor<1x4x8xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{'hidden' operand is only used by token-level exit}}
  %r = dyn.exit_if %l hidden %h : tensor<1x4x8xf32> criterion #dyn.entropy<threshold = #dyn.param<"t" = 0.3>> layer 1 : tensor<1x2xf32> {
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @hidden_shape(%l: tensor<1x4x2xf32>, %h: tensor<1x5x8xf32>) -> tensor<1x4x2xf32> {
  // expected-error @+1 {{hidden must be [batch, seq, features] with the batch and seq of the logits [1, 4], got 'tensor<1x5x8xf32>'}}
  %r = dyn.exit_if %l hidden %h : tensor<1x5x8xf32> criterion #dyn.entropy<threshold = #dyn.param<"t" = 0.3>> layer 1 granularity token : tensor<1x4x2xf32> {
  ^bb0(%f: tensor<1x5x8xf32>):
    dyn.yield %l : tensor<1x4x2xf32>
  }
  return %r : tensor<1x4x2xf32>
}

// -----

func.func @region_args_sample(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{region must take 0 argument(s) (sample-level exit takes none), but takes 1}}
  %r = dyn.exit_if %l criterion #dyn.entropy<threshold = #dyn.param<"t" = 0.3>> layer 1 : tensor<1x2xf32> {
  ^bb0(%x: tensor<1x2xf32>):
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @region_args_token(%l: tensor<1x4x2xf32>, %h: tensor<1x4x8xf32>) -> tensor<1x4x2xf32> {
  // expected-error @+1 {{region argument #0 must be 'tensor<1x4x8xf32>' (the frozen hidden state), but is 'tensor<1x4x2xf32>'}}
  %r = dyn.exit_if %l hidden %h : tensor<1x4x8xf32> criterion #dyn.entropy<threshold = #dyn.param<"t" = 0.3>> layer 1 granularity token : tensor<1x4x2xf32> {
  ^bb0(%f: tensor<1x4x2xf32>):
    dyn.yield %l : tensor<1x4x2xf32>
  }
  return %r : tensor<1x4x2xf32>
}

// -----

func.func @yield_type(%l: tensor<1x2xf32>, %o: tensor<1x3xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{region must yield ('tensor<1x2xf32>') but yields ('tensor<1x3xf32>')}}
  %r = dyn.exit_if %l criterion #dyn.entropy<threshold = #dyn.param<"t" = 0.3>> layer 1 : tensor<1x2xf32> {
    dyn.yield %o : tensor<1x3xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @chain_layers(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %r = dyn.exit_if %l criterion #dyn.entropy<threshold = #dyn.param<"t" = 0.3>> layer 2 : tensor<1x2xf32> {
    // expected-error @+1 {{layer 2 must be greater than the layer of the enclosing exit point (2)}}
    %i = dyn.exit_if %l criterion #dyn.entropy<threshold = #dyn.param<"t" = 0.3>> layer 2 : tensor<1x2xf32> {
      dyn.yield %l : tensor<1x2xf32>
    }
    dyn.yield %i : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @chain_criterion(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %r = dyn.exit_if %l criterion #dyn.patience<k = #dyn.param<"k" = 2>> layer 1 : tensor<1x2xf32> {
    // expected-error @+1 {{criterion entropy differs from the criterion of its chain (patience)}}
    %i = dyn.exit_if %l criterion #dyn.entropy<threshold = #dyn.param<"t" = 0.3>> layer 2 : tensor<1x2xf32> {
      dyn.yield %l : tensor<1x2xf32>
    }
    dyn.yield %i : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}

// -----

func.func @chain_granularity(%l: tensor<1x4x2xf32>, %h: tensor<1x4x8xf32>, %ls: tensor<1x2xf32>) -> tensor<1x4x2xf32> {
  %r = dyn.exit_if %l hidden %h : tensor<1x4x8xf32> criterion #dyn.entropy<threshold = #dyn.param<"t" = 0.3>> layer 1 granularity token : tensor<1x4x2xf32> {
  ^bb0(%f: tensor<1x4x8xf32>):
    // expected-error @+1 {{granularity differs from the enclosing exit point's}}
    %i = dyn.exit_if %ls criterion #dyn.entropy<threshold = #dyn.param<"t" = 0.3>> layer 2 : tensor<1x2xf32> {
      dyn.yield %ls : tensor<1x2xf32>
    }
    dyn.yield %l : tensor<1x4x2xf32>
  }
  return %r : tensor<1x4x2xf32>
}

// -----

func.func @not_a_criterion(%l: tensor<1x2xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{attribute 'criterion' failed to satisfy constraint}}
  %r = dyn.exit_if %l criterion #dyn.param<"t" = 0.3> layer 1 : tensor<1x2xf32> {
    dyn.yield %l : tensor<1x2xf32>
  }
  return %r : tensor<1x2xf32>
}
