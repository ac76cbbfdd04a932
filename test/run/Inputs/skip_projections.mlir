// A skimming loop whose cells project the step input three ways: the decision
// D x and the read cell's W x as linalg.matvec, the skim cell's V x as
// linalg.matmul(V, x[:, None]); the budget (7) stops it before the end of
// the sequence (9). run/skip-projections.test.
#in = affine_map<(d0) -> (d0)>
#out = affine_map<(d0) -> ()>
#e = affine_map<(d0) -> (d0)>
func.func @main(%seq: tensor<9x5xf32>, %h0: tensor<4xf32>, %w: tensor<4x5xf32>, %u: tensor<4x4xf32>, %v: tensor<4x5xf32>, %d: tensor<2x5xf32>) -> tensor<4xf32> {
  %r = dyn.skip %seq init(%h0 : tensor<4xf32>) budget 7 actions [#dyn.action<read>, #dyn.action<skim>] : tensor<9x5xf32> -> tensor<4xf32>
  decide {
  ^bb0(%pos: index, %x: tensor<5xf32>, %h: tensor<4xf32>):
    %z = arith.constant 0.0 : f32
    %c0 = arith.constant 0 : i64
    %ninf = arith.constant 0xFF800000 : f32
    %le = tensor.empty() : tensor<2xf32>
    %lf = linalg.fill ins(%z : f32) outs(%le : tensor<2xf32>) -> tensor<2xf32>
    %l = linalg.matvec ins(%d, %x : tensor<2x5xf32>, tensor<5xf32>) outs(%lf : tensor<2xf32>) -> tensor<2xf32>
    %ie = tensor.empty() : tensor<i64>
    %if = linalg.fill ins(%c0 : i64) outs(%ie : tensor<i64>) -> tensor<i64>
    %me = tensor.empty() : tensor<f32>
    %mf = linalg.fill ins(%ninf : f32) outs(%me : tensor<f32>) -> tensor<f32>
    %am:2 = linalg.generic {indexing_maps = [#in, #out, #out], iterator_types = ["reduction"]} ins(%l : tensor<2xf32>) outs(%mf, %if : tensor<f32>, tensor<i64>) {
    ^bb0(%a: f32, %m: f32, %i: i64):
      %k = linalg.index 0 : index
      %ki = arith.index_cast %k : index to i64
      %mx = arith.maximumf %a, %m : f32
      %gt = arith.cmpf ogt, %a, %m : f32
      %s = arith.select %gt, %ki, %i : i64
      linalg.yield %mx, %s : f32, i64
    } -> (tensor<f32>, tensor<i64>)
    %a = tensor.extract %am#1[] : tensor<i64>
    %ai = arith.index_cast %a : i64 to index
    dyn.decide %ai
  }
  {
  // read: h = tanh(W x + U h)
  ^bb0(%pos: index, %x: tensor<5xf32>, %h: tensor<4xf32>):
    %z = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<4xf32>
    %f = linalg.fill ins(%z : f32) outs(%e : tensor<4xf32>) -> tensor<4xf32>
    %wx = linalg.matvec ins(%w, %x : tensor<4x5xf32>, tensor<5xf32>) outs(%f : tensor<4xf32>) -> tensor<4xf32>
    %uh = linalg.matvec ins(%u, %h : tensor<4x4xf32>, tensor<4xf32>) outs(%f : tensor<4xf32>) -> tensor<4xf32>
    %n = linalg.generic {indexing_maps = [#e, #e, #e], iterator_types = ["parallel"]} ins(%wx, %uh : tensor<4xf32>, tensor<4xf32>) outs(%e : tensor<4xf32>) {
    ^bb0(%p: f32, %q: f32, %o: f32):
      %s = arith.addf %p, %q : f32
      %t = math.tanh %s : f32
      linalg.yield %t : f32
    } -> tensor<4xf32>
    dyn.yield %n : tensor<4xf32>
  },
  {
  // skim: h = h + 0.5 V x, V x as a matmul with x as a column
  ^bb0(%pos: index, %x: tensor<5xf32>, %h: tensor<4xf32>):
    %z = arith.constant 0.0 : f32
    %half = arith.constant 0.5 : f32
    %xc = tensor.expand_shape %x [[0, 1]] output_shape [5, 1] : tensor<5xf32> into tensor<5x1xf32>
    %ce = tensor.empty() : tensor<4x1xf32>
    %cf = linalg.fill ins(%z : f32) outs(%ce : tensor<4x1xf32>) -> tensor<4x1xf32>
    %vx = linalg.matmul ins(%v, %xc : tensor<4x5xf32>, tensor<5x1xf32>) outs(%cf : tensor<4x1xf32>) -> tensor<4x1xf32>
    %vv = tensor.collapse_shape %vx [[0, 1]] : tensor<4x1xf32> into tensor<4xf32>
    %e = tensor.empty() : tensor<4xf32>
    %n = linalg.generic {indexing_maps = [#e, #e, #e], iterator_types = ["parallel"]} ins(%h, %vv : tensor<4xf32>, tensor<4xf32>) outs(%e : tensor<4xf32>) {
    ^bb0(%p: f32, %q: f32, %o: f32):
      %m = arith.mulf %q, %half : f32
      %s = arith.addf %p, %m : f32
      linalg.yield %s : f32
    } -> tensor<4xf32>
    dyn.yield %n : tensor<4xf32>
  }
  return %r : tensor<4xf32>
}
