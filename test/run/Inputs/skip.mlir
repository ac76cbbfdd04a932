// A toy skimming loop: decide = how many step inputs exceed 0.4; read adds the
// step to the state, skip copies it, jump_to goes to the next step of class 3.
func.func @skim(%seq: tensor<6x2xf32>, %cls: tensor<6xi32>, %h0: tensor<2xf32>) -> tensor<2xf32> {
  %r = dyn.skip %seq classes %cls : tensor<6xi32> init(%h0 : tensor<2xf32>) budget 8 actions [#dyn.action<read>, #dyn.action<skip>, #dyn.action<jump_to, targets = [3]>, #dyn.action<stop>] : tensor<6x2xf32> -> tensor<2xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<2xf32>, %h: tensor<2xf32>):
    %e = tensor.empty() : tensor<i32>
    %zi = arith.constant 0 : i32
    %f = linalg.fill ins(%zi : i32) outs(%e : tensor<i32>) -> tensor<i32>
    %a = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> ()>], iterator_types = ["reduction"]} ins(%x : tensor<2xf32>) outs(%f : tensor<i32>) {
    ^bb0(%v: f32, %o: i32):
      %z = arith.constant 0.4 : f32
      %c1 = arith.constant 1 : i32
      %c0 = arith.constant 0 : i32
      %p = arith.cmpf ogt, %v, %z : f32
      %s = arith.select %p, %c1, %c0 : i32
      %r = arith.addi %o, %s : i32
      linalg.yield %r : i32
    } -> tensor<i32>
    %c0i = arith.constant 0 : index
    %v = tensor.extract %a[] : tensor<i32>
    %ai = arith.index_cast %v : i32 to index
    dyn.decide %ai
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
  }
  return %r : tensor<2xf32>
}
