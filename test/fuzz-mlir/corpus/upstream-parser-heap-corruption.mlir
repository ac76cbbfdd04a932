
// Every action of survey Table 1, in the combination each method uses.

func.func private @cell(index, tensor<8xf32>, tensor<16xf32>) -> tensor<16xf32>
func.func private @choose(index, tensor<8xf32>, tensor<16xf32>) -> index
func.func private @distance(index, tensor<8xf32>, tensor<16xf32>) -> i64

// CHECK-LABEL: func @lstm_jump
// CHECK: dyn.skip %{{.*}} init(%{{.*}} : tensor<16xf32>) budget 64 actions [#dyn.action<read>, #dyn.action<jump>, #dyn.action<stop>] : tensor<20x8xf32> -> tensor<16xf32> decide {
func.func @lstm_jump(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 64 actions [#dyn.action<read>, #dyn.action<jump>, #dyn.action<stop>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = func.call @choose(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> index
    %k = func.call @distance(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> i64
    dyn.decide %a jump %k
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %n = func.call @cell(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> tensor<16xf32>
    dyn.yield %n : tensor<16xf32>
  },
  {
  },
  {
  }
  return %r : tensor<16xf32>
}

// CHECK-LABEL: func @skip_rnn
// CHECK: dyn.skip %{{.*}} init(%{{.*}} : tensor<16xf32>) budget 64 actions [#dyn.action<read>, #dyn.action<skip>] : tensor<20x8xf32> -> tensor<16xf32> decide {
func.func @skip_rnn(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 64 actions [#dyn.action<read>, #dyn.action<skip>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = func.call @choose(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %n = func.call @cell(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> tensor<16xf32>
    dyn.yield %n : tensor<16xf32>
  },
  {
  }
  return %r : tensor<16xf32>
}

// CHECK-LABEL: func @reasonet
// CHECK: dyn.skip %{{.*}} init(%{{.*}} : tensor<16xf32>) budget 64 actions [#dyn.action<read>, #dyn.action<stop>] : tensor<20x8xf32> -> tensor<16xf32> decide {
func.func @reasonet(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 64 actions [#dyn.action<read>, #dyn.action<stop>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = func.call @choose(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %n = func.call @cell(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> tensor<16xf32>
    dyn.yield %n : tensor<16xf32>
  },
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %n = func.call @cell(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> tensor<16xf32>
    dyn.yield %n : tensor<16xf32>
  }
  return %r : tensor<16xf32>
}

// CHECK-LABEL: func @rim
// CHECK: dyn.skip %{{.*}} init(%{{.*}} : tensor<16xf32>) budget 64 actions [#dyn.action<read>, #dyn.action<skip>, #dyn.action<stop>] : tensor<20x8xf32> -> tensor<16xf32> decide {
func.func @rim(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 64 actions [#dyn.action<read>, #dyn.action<skip>, #dyn.action<stop>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = func.call @choose(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %n = func.call @cell(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> tensor<16xf32>
    dyn.yield %n : tensor<16xf32>
  },
  {
  },
  {
  }
  return %r : tensor<16xf32>
}

// CHECK-LABEL: func @yu2018
// CHECK: dyn.skip %{{.*}} init(%{{.*}} : tensor<16xf32>) budget 100 actions [#dyn.action<read>, #dyn.action<reread>, #dyn.action<jump>, #dyn.action<stop>] : tensor<20x8xf32> -> tensor<16xf32> decide {
func.func @yu2018(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 100 actions [#dyn.action<read>, #dyn.action<reread>, #dyn.action<jump>, #dyn.action<stop>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = func.call @choose(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> index
    %k = func.call @distance(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> i64
    dyn.decide %a jump %k
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %n = func.call @cell(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> tensor<16xf32>
    dyn.yield %n : tensor<16xf32>
  },
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %n = func.call @cell(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> tensor<16xf32>
    dyn.yield %n : tensor<16xf32>
  },
  {
  },
  {
  }
  return %r : tensor<16xf32>
}

// CHECK-LABEL: func @lstm_shuttle
// CHECK: dyn.skip %{{.*}} init(%{{.*}} : tensor<16xf32>) budget 40 actions [#dyn.action<read>, #dyn.action<shuttle>] : tensor<20x8xf32> -> tensor<16xf32> decide {
func.func @lstm_shuttle(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 40 actions [#dyn.action<read>, #dyn.action<shuttle>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = func.call @choose(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> index
    %k = func.call @distance(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> i64
    dyn.decide %a jump %k
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %n = func.call @cell(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> tensor<16xf32>
    dyn.yield %n : tensor<16xf32>
  },
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %n = func.call @cell(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> tensor<16xf32>
    dyn.yield %n : tensor<16xf32>
  }
  return %r : tensor<16xf32>
}

// CHECK-LABEL: func @structural_jump
// CHECK: dyn.skip %{{.*}} classes %{{.*}} : tensor<20xi32> init(%{{.*}} : tensor<16xf32>) budget 64 actions [#dyn.action<read>, #dyn.action<jump_to, targets = [1]>, #dyn.action<jump_to, targets = [2]>, #dyn.action<jump_to>] : tensor<20x8xf32> -> tensor<16xf32> decide {
func.func @structural_jump(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>, %cls: tensor<20xi32>) -> tensor<16xf32> {
  %r = dyn.skip %seq classes %cls : tensor<20xi32> init(%h0 : tensor<16xf32>) budget 64 actions [#dyn.action<read>, #dyn.action<jump_to, targets = [1]>, #dyn.action<jump_to, targets = [2]>, #dyn.action<jump_to>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = func.call @choose(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %n = func.call @cell(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> tensor<16xf32>
    dyn.yield %n : tensor<16xf32>
  },
  {
  },
  {
  },
  {
  }
  return %r : tensor<16xf32>
}

// CHECK-LABEL: func @vcrnn
// CHECK: dyn.skip %{{.*}} init(%{{.*}} : tensor<16xf32>) budget 64 actions [#dyn.action<partial>] : tensor<20x8xf32> -> tensor<16xf32> decide {
func.func @vcrnn(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 64 actions [#dyn.action<partial>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = func.call @choose(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h.: tensor<16xf32>):
    %n = func.call @cell(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> tensor<16xf32>
    dyn.yield %n : tensor<16xf32>
  }
  return %r : tensor<16xf32>
}

// CHECK-LABEL: func @skim_rnn
// CHECK: dyn.skip %{{.*}} init(%{{.*}} : tensor<16xf32>) budget 64 actions [#dyn.action<read>, #dyn.action<skim>] : tensor<20x8xf32> -> tensor<16xf32> decide {
func.func @skim_rnn(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 64 actions [#dyn.action<read>, #dyn.action<skim>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = funccall @choose(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %n = func.call @cell(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> tensor<16xf32>
    dyn.yield %n : tensor<16xf32>
  },
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %n = func.call @cell(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> tensor<16xf32>
    dyn.yield %n : tensor<16xf32>
  }
  return %r : tensor<16xf32>
}

// CHECK-LABEL: func @hm_rnn
// CHECK: dyn.skip %{{.*}} init(%{{.*}} : tensor<16xf32>) budget 64 actions [#dyn.action<read>, #dyn.action<skip>, #dyn.action<flush>] : tensor<20x8xf32> -> tensor<16xf32> decide {
func.func @hm_rnn(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budgeth64 actions [#dyn.action<read>, #dyn.action<skip>, #dyn.action<flush>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = func.call @choose(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %n = func.call @cell(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> tensor<16xf32>
    dyn.yield %n : tensor<16xf32>
  },
  {
  },
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %n = func.call @cell(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> tensor<16xf32>
    dyn.yield %n : tensor<16xf32>
  }
  return %r : tensor<16xf32>
}

// CHECK-LABEL: func @fhrnn
// CHECK: dyn.skip %{{.*}} init(%{{.*}} : tensor<16xf32>) budget 64 actions [#dyn.action<read>, #dyn.action<upper>] : tensor<20x8xf32> -> tensor<16xf32> decide {
func.func @fhrnn(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>) -> tensor<16xf32> {
  %r = dyn.skip %seq init(%h0 : tensor<16xf32>) budget 64 actions [#dyn.action<read>, #dyn.action<upper>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = func.call @choose(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %n = func.call @cell(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> tensor<16xf32>
    dyn.yield %n : tensor<16xf32>
  },
  {
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %n = func.call @cell(%pos, %x, %h) : (index, tensor<8xf32>, tensor<16xf32>) -> tensor<16xf32>
    dyn.yield %n : tensor<16xf32>
  }
  return %r : tensor<16xf32>
}