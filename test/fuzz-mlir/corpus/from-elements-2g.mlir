// A host-side tensor.extract at an index read from the input (run.test).
func.func @pick(%idx: tensor<1xi64> {dyn.name = "i"}, %t: tensor<16xf32> {dyn.name = "t"}) -> tensor<1xf32> {
  %c0 = arith.constant 0 : index
  %i = tensor.extract %idx[%c0] : tensor<1xi64>
  %ii = arith.index_cast %i : i64 to index
  %v = tensor.extract %t[%ii] : tensor<16xf32>
  %r = tensor.from_elements %v : tensor<2147483648xf32>
  return %r : tensor<1xf32>
}