// One post-LN transformer encoder block in the dyncc input op set
// (docs/ops.md): d_model = 8, 2 heads of size 4, sequence length 4,
// d_ff = 16. Weights are arguments, so that tests can feed any values.
//
//   h   = LayerNorm1(x + MultiHeadAttention(x))
//   out = LayerNorm2(h + W2 GELU(W1 h + b1) + b2)
//
// Linear layers compute x W + b with W stored [in, out]. Attention is
// batch_matmul + softmax + batch_matmul over [heads, seq, head_dim], with
// expand_shape/transpose to split the heads and transpose/collapse_shape to
// merge them. Layer norm is two reductions (sum and sum of squares) and one
// elementwise generic; GELU is the erf form.

#id2 = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
#col = affine_map<(d0, d1) -> (d1)>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>

module {
  // x W + b for the 8 -> 8 projections (q, k, v and the attention output).
  func.func private @linear(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>, %b: tensor<8xf32>) -> tensor<4x8xf32> {
    %zero = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<4x8xf32>
    %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
    %mm = linalg.matmul ins(%x, %w : tensor<4x8xf32>, tensor<8x8xf32>) outs(%acc : tensor<4x8xf32>) -> tensor<4x8xf32>
    %bias = linalg.broadcast ins(%b : tensor<8xf32>) outs(%e : tensor<4x8xf32>) dimensions = [0]
    %y = linalg.add ins(%mm, %bias : tensor<4x8xf32>, tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
    return %y : tensor<4x8xf32>
  }

  // [seq, d] -> [heads, seq, head_dim]
  func.func private @split_heads(%x: tensor<4x8xf32>) -> tensor<2x4x4xf32> {
    %x3 = tensor.expand_shape %x [[0], [1, 2]] output_shape [4, 2, 4] : tensor<4x8xf32> into tensor<4x2x4xf32>
    %e = tensor.empty() : tensor<2x4x4xf32>
    %t = linalg.transpose ins(%x3 : tensor<4x2x4xf32>) outs(%e : tensor<2x4x4xf32>) permutation = [1, 0, 2]
    return %t : tensor<2x4x4xf32>
  }

  func.func private @attention(%x: tensor<4x8xf32>,
                               %wq: tensor<8x8xf32>, %bq: tensor<8xf32>,
                               %wk: tensor<8x8xf32>, %bk: tensor<8xf32>,
                               %wv: tensor<8x8xf32>, %bv: tensor<8xf32>,
                               %wo: tensor<8x8xf32>, %bo: tensor<8xf32>) -> tensor<4x8xf32> {
    %zero = arith.constant 0.0 : f32
    // 1 / sqrt(head_dim)
    %scale = arith.constant 0.5 : f32
    %q = func.call @linear(%x, %wq, %bq) : (tensor<4x8xf32>, tensor<8x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
    %k = func.call @linear(%x, %wk, %bk) : (tensor<4x8xf32>, tensor<8x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
    %v = func.call @linear(%x, %wv, %bv) : (tensor<4x8xf32>, tensor<8x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
    %qh = func.call @split_heads(%q) : (tensor<4x8xf32>) -> tensor<2x4x4xf32>
    %kh = func.call @split_heads(%k) : (tensor<4x8xf32>) -> tensor<2x4x4xf32>
    %vh = func.call @split_heads(%v) : (tensor<4x8xf32>) -> tensor<2x4x4xf32>

    // scores[h, i, j] = (q_i . k_j) / sqrt(head_dim)
    %e = tensor.empty() : tensor<2x4x4xf32>
    %kt = linalg.transpose ins(%kh : tensor<2x4x4xf32>) outs(%e : tensor<2x4x4xf32>) permutation = [0, 2, 1]
    %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
    %qk = linalg.batch_matmul ins(%qh, %kt : tensor<2x4x4xf32>, tensor<2x4x4xf32>) outs(%acc : tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
    %scores = linalg.generic {indexing_maps = [#id3, #id3], iterator_types = ["parallel", "parallel", "parallel"]}
        ins(%qk : tensor<2x4x4xf32>) outs(%e : tensor<2x4x4xf32>) {
      ^bb0(%s: f32, %o: f32):
        %scaled = arith.mulf %s, %scale : f32
        linalg.yield %scaled : f32
    } -> tensor<2x4x4xf32>
    %p = linalg.softmax dimension(2) ins(%scores : tensor<2x4x4xf32>) outs(%e : tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
    %ctx = linalg.batch_matmul ins(%p, %vh : tensor<2x4x4xf32>, tensor<2x4x4xf32>) outs(%acc : tensor<2x4x4xf32>) -> tensor<2x4x4xf32>

    // [heads, seq, head_dim] -> [seq, d]
    %e2 = tensor.empty() : tensor<4x2x4xf32>
    %ctxt = linalg.transpose ins(%ctx : tensor<2x4x4xf32>) outs(%e2 : tensor<4x2x4xf32>) permutation = [1, 0, 2 %merged = tensor.collapse_shape %ctxt [[0], [1, 2]] : tensor<4x2x4xf32> into tensor<4x8xf32>
    %out = func.call @linear(%merged, %wo, %bo) : (tensor<4x8xf32>, tensor<8x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
    return %out : tensor<4x8xf32>
  }

  // gamma * (x - mean) / sqrt(var + 1e-5) + beta over the last dimension,
  // with var = E[x^2] - mean^2.
  func.func private @layer_norm(%x: tensor<4x8xf32>, %gamma: tensor<8xf32>, %beta: tensor<8xf32>) -> tensor<4x8xf32> {
    %zero = arith.constant 0.0 : f32
    %e1 = tensor.empty() : tensor<4xf32>
    %acc = linalg.fill ins(%zero : f32) outs(%e1 : tensor<4xf32>) -> tensor<4xf32>
    %sum = linalg.reduce ins(%x : tensor<4x8xf32>) outs(%acc : tensor<4xf32>) dimensions = [1]
      (%in: f32, %a: f32) {
        %s = arith.addf %in, %a :]
    f32
        linalg.yield %s : f32
      }
    %sumsq = linalg.reduce ins(%x : tensor<4x8xf32>) outs(%acc : tensor<4xf32>) dimensions = [1]
      (%in: f32, %a: f32) {
        %sq = arith.mulf %in, %in : f32
        %s = arith.addf %sq, %a : f32
        linalg.yield %s : f32
      }
    %e = tensor.empty() : tensor<4x8xf32>
    %y = linalg.generic {indexing_maps = [#id2, #row, #row, #col, #col, #id2], iterator_types = ["parallel", "parallel"]}
        ins(%x, %sum, %sumsq, %gamma, %beta : tensor<4x8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<8xf32>, tensor<8xf32>)
        outs(%e : tensor<4x8xf32>) {
      ^bb0(%v: f32, %s: f32, %ss: f32, %g: f32, %b: f32, %o: f32):
        %n = arith.constant 8.0 : f32
        %eps = arith.constant 1.0e-05 : f32
        %mean = arith.divf %s, %n : f32
        %meansq = arith.divf %ss, %n : f32
        %sqmean = arith.mulf %mean, %mean : f32
        %var = arith.subf %meansq, %sqmean : f32
        %vareps = arith.addf %var, %eps : f32
        %rstd = math.rsqrt %vareps : f32
        %c = arith.subf %v, %mean : f32
        %nrm = arith.mulf %c, %rstd : f32
        %scaled = arith.mulf %nrm, %g : f32
        %r = arith.addf %scaled, %b : f32
        linalg.yield %r : f32
    } -> tensor<4x8xf32>
    return %y : tensor<4x8xf32>
  }

  // W2 GELU(W1 h + b1) + b2, GELU(z) = 0.5 z (1 + erf(z / sqrt(2))).
  func.func private @ffn(%h: tensor<4x8xf32>, %w1: tensor<8x16xf32>, %b1: tensor<16xf32>,
                         %w2: tensor<16x8xf32>, %b2: tensor<8xf32>) -> tensor<4x8xf32> {
    %zero = arith.constant 0.0 : f32
    %e16 = tensor.empty() : tensor<4x16xf32>
    %acc16 = linalg.fill ins(%zero : f32) outs(%e16 : tensor<4x16xf32>) -> tensor<4x16xf32>
    %mm1 = linalg.matmul ins(%h, %w1 : tensor<4x8xf32>, tensor<8x16xf32>) outs(%acc16 : tensor<4x16xf32>) -> tensor<4x16xf32>
    %act = linalg.generic {indexing_maps = [#id2, #col, #id2], iterator_types = ["parallel", "parallel"]}
        ins(%mm1, %b1 : tensor<4x16xf32>, tensor<16xf32>) outs(%e16 : tensor<4x16xf32>) {
      ^bb0(%v: f32, %b: f32, %o: f32):
        %half = arith.constant 0.5 : f32
        %one = arith.constant 1.0 : f32
        %rsqrt2 = arith.constant 0.707106781 : f32
        %z = arith.addf %v, %b : f32
        %zs = arith.mulf %z, %rsqrt2 : f32
        %erf = math.erf %zs : f32
        %p = arith.addf %erf, %one : f32
        %hz = arith.mulf %z, %half : f32
        %g = arith.lf %hz, %p : f32
        linalg.yield %g : f32
    } -> tensor<4x16xf32>
    %e8 = tensor.empty() : tensor<4x8xf32>
    %acc8 = linalg.fill ins(%zero : f32) outs(%e8 : tensor<4x8xf32>) -> tensor<4x8xf32>
    %mm2 = linalg.matmul ins(%act, %w2 : tensor<4x16xf32>, tensor<16x8xf32>) outs(%acc8 : tensor<4x8xf32>) -> tensor<4x8xf32>
    %bias = linalg.broadcast ins(%b2 : tensor<8xf32>) outs(%e8 : tensor<4x8xf32>) dimensions = [0]
    %y = linalg.add ins(%mm2, %bias : tensor<4x8xf32>, tensor<4x8xf32>) outs(%e8 : tensor<4x8xf32>) -> tensor<4x8xf32>
    return %y : tensor<4x8xf32>
  }

  func.func @encoder_block(%x: tensor<4x8xf32>,
                           %wq: tensor<8x8xf32>, %bq: tensor<8xf32>,
                           %wk: tensor<8x8xf32>, %bk: tensor<8xf32>,
                           %wv: tensor<8x8xf32>, %bv: tensor<8xf32>,
                           %wo: tensor<8x8xf32>, %bo: tensor<8xf32>,
                           %ln1_gamma: tensor<8xf32>, %ln1_beta: tensor<8xf32>,
                           %w1: tensor<8x16xf32>, %b1: tensor<16xf32>,
                           %w2: tensor<16x8xf32>, %b2: tensor<8xf32>,
                           %ln2_gamma: tensor<8xf32>, %ln2_beta: tensor<8xf32>) -> tensor<4x8xf32> {
    %e = tensor.empty() : tensor<4x8xf32>
    %attn = func.call @attention(%x, %wq, %bq, %wk, %bk, %wv, %bv, %wo, %bo)
        : (tensor<4x8xf32>, tensor<8x8xf32>, tensor<8xf32>, tensor<8x8xf32>, tensor<8xf32>,
           tensor<8x8xf32>, tensor<8xf32>, tensor<8x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
    %res1 = linalg.add ins(%x, %attn : tensor<4x8xf32>, tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
    %h = func.call @layer_norm(%res1, %ln1_gamma, %ln1_beta)
        : (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> temunsor<4x8xf32>
    %f = func.call @ffn(%h, %w1, %b1, %w2, %b2)
        : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16xf32>, tensor<16x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
    %res2 = linalg.add ins(%h, %f : tensor<4x8xf32>, tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
    %out = func.call @layer_norm(%res2, %ln2_gamma, %ln2_beta)
        : (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
    return %out : tensor<4x8xf32>
  }
}