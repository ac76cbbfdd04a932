// A Skip RNN: verified, but not compiled into a library yet.
func.func @skim(%seq: tensor<4x2xf32>, %h0: tensor<2xf32>) -> tensor<2xf32> {
  %r = dyn.skip %seq init(%h0 : tensor<2xf32>) budget 4 actions [#dyn.action<read>, #dyn.action<skip>] : tensor<4x2xf32> -> tensor<2xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<2xf32>, %h: tensor<2xf32>):
    %a = arith.constant 0 : index
    dyn.decide %a
  }
  {
  ^bb0(%pos: index, %x: tensor<2xf32>, %h: tensor<2xf32>):
    dyn.yield %x : tensor<2xf32>
  },
  {
  }
  return %r : tensor<2xf32>
}
