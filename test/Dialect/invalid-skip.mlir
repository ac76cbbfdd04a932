// RUN: dyncc-opt %s -split-input-file -verify-diagnostics

// One case per verifier rule of dyn.skip (and its terminators).

func.func @dynamic_sequence(%seq: tensor<?x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  // expected-error @+1 {{sequence must be a static tensor [steps, ...] with at least one step, got 'tensor<?x8xf32>'}}
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 10 actions [#dyn.action<read>] : tensor<?x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = arith.constant 0 : index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    dyn.yield %h : tensor<16xf32>
  }
  return %r : tensor<16xf32>
}

// -----

func.func @no_budget(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  // expected-error @+1 {{needs a step budget ('budget N'): without one a backward jump or a re-read can loop forever}}
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) actions [#dyn.action<read>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = arith.constant 0 : index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    dyn.yield %h : tensor<16xf32>
  }
  return %r : tensor<16xf32>
}

// -----

func.func @zero_budget(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  // expected-error @+1 {{budget must be in [1, 2147483647], got 0}}
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 0 actions [#dyn.action<read>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = arith.constant 0 : index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    dyn.yield %h : tensor<16xf32>
  }
  return %r : tensor<16xf32>
}

// -----

func.func @no_actions(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  // expected-error @+1 {{needs at least one action}}
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 10 actions [] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = arith.constant 0 : index
    dyn.decide %a
  }
  
  return %r : tensor<16xf32>
}

// -----

func.func @region_count(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  // expected-error @+1 {{has 2 action(s) but 1 action region(s); give one region per action (empty to copy the state)}}
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 10 actions [#dyn.action<read>, #dyn.action<skip>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = arith.constant 0 : index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    dyn.yield %h : tensor<16xf32>
  }
  return %r : tensor<16xf32>
}

// -----

func.func @targets_elsewhere(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  // expected-error @+1 {{action #0 (read) takes no targets; only jump_to does}}
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 10 actions [#dyn.action<read, targets = [1]>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = arith.constant 0 : index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    dyn.yield %h : tensor<16xf32>
  }
  return %r : tensor<16xf32>
}

// -----

func.func @jump_to_needs_classes(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  // expected-error @+1 {{jump_to needs the 'classes' operand (the class of every step)}}
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 10 actions [#dyn.action<read>, #dyn.action<jump_to, targets = [1]>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = arith.constant 0 : index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    dyn.yield %h : tensor<16xf32>
  },
  {
  }
  return %r : tensor<16xf32>
}

// -----

func.func @classes_shape(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>, %c: tensor<19xi32>) -> tensor<16xf32> {
  // expected-error @+1 {{classes must have one value per step ([20]), got 'tensor<19xi32>'}}
  %r = dyn.skip %seq classes %c : tensor<19xi32> init(%h0 : tensor<16xf32>) budget 10 actions [#dyn.action<read>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = arith.constant 0 : index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    dyn.yield %h : tensor<16xf32>
  }
  return %r : tensor<16xf32>
}

// -----

func.func @results(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<8xf32> {
  // expected-error @+1 {{results must have the types of the initial state}}
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 10 actions [#dyn.action<read>] : tensor<20x8xf32> -> tensor<8xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = arith.constant 0 : index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    dyn.yield %h : tensor<16xf32>
  }
  return %r : tensor<8xf32>
}

// -----

func.func @decide_args(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  // expected-error @+1 {{decide region argument #1 must be 'tensor<8xf32>' (pos: index, step input, state...), but is 'tensor<20x8xf32>'}}
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 10 actions [#dyn.action<read>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<20x8xf32>, %h: tensor<16xf32>):
    %a = arith.constant 0 : index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    dyn.yield %h : tensor<16xf32>
  }
  return %r : tensor<16xf32>
}

// -----

func.func @decide_terminator(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  // expected-error @+1 {{decide region must end with dyn.decide}}
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 10 actions [#dyn.action<read>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    dyn.yield
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    dyn.yield %h : tensor<16xf32>
  }
  return %r : tensor<16xf32>
}

// -----

func.func @read_needs_region(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  // expected-error @+1 {{action #0 (read) computes a new state and needs a region}}
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 10 actions [#dyn.action<read>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = arith.constant 0 : index
    dyn.decide %a
  }
  {
  }
  return %r : tensor<16xf32>
}

// -----

func.func @skip_copies(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  // expected-error @+1 {{action #1 (skip) copies the state; its region must be empty}}
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 10 actions [#dyn.action<read>, #dyn.action<skip>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = arith.constant 0 : index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    dyn.yield %h : tensor<16xf32>
  },
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    dyn.yield %h : tensor<16xf32>
  }
  return %r : tensor<16xf32>
}

// -----

func.func @action_args(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  // expected-error @+1 {{action #0 (read) must take 3 argument(s) (pos: index, step input, state...), but takes 2}}
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 10 actions [#dyn.action<read>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = arith.constant 0 : index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %h: tensor<16xf32>):
    dyn.yield %h : tensor<16xf32>
  }
  return %r : tensor<16xf32>
}

// -----

func.func @action_yield(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  // expected-error @+1 {{action #0 (read) must yield ('tensor<16xf32>') but yields ('tensor<8xf32>')}}
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 10 actions [#dyn.action<read>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = arith.constant 0 : index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    dyn.yield %x : tensor<8xf32>
  }
  return %r : tensor<16xf32>
}

// -----

func.func @jump_needs_amount(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  // expected-error @+1 {{has a jump or shuttle action, so dyn.decide must give the amount ('dyn.decide %a jump %n')}}
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 10 actions [#dyn.action<read>, #dyn.action<shuttle>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = arith.constant 0 : index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    dyn.yield %h : tensor<16xf32>
  },
  {
  }
  return %r : tensor<16xf32>
}

// -----

func.func @decide_outside_skip(%a: index) {
  // expected-error @+1 {{'dyn.decide' op expects parent op 'dyn.skip'}}
  dyn.decide %a
}

// -----

func.func @yield_outside(%a: index) {
  // expected-error @+1 {{'dyn.yield' op expects parent op to be one of 'dyn.exit_if, dyn.route, dyn.skip'}}
  dyn.yield
}
