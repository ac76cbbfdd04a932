"""Writes the hostile and careless inputs of test/dyncc/hardening.test.

  hostile.py KIND > file        (MLIR text)
  hostile.py KIND file          (weights files: binary)

Each KIND reproduces one report of the hardening issue: inputs that used to
crash, hang or exhaust memory, or were silently accepted. Generated rather
than checked in, because several are megabytes of nesting.
"""
import json
import struct
import sys

MATMUL = """func.func @m(%x: tensor<{m}x{k}xf32>, %w: tensor<{k}x{n}xf32>) -> tensor<{m}x{n}xf32> {{
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<{m}x{n}xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<{m}x{n}xf32>) -> tensor<{m}x{n}xf32>
  %r = linalg.matmul ins(%x, %w : tensor<{m}x{k}xf32>, tensor<{k}x{n}xf32>) outs(%f : tensor<{m}x{n}xf32>) -> tensor<{m}x{n}xf32>
  return %r : tensor<{m}x{n}xf32>
}}
"""


def relu(args, results="tensor<4xf32>", body="%x"):
    """A one-op model with the given argument list and result attributes."""
    return f"""func.func @m({args}) -> {results} {{
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4xf32>
  %r = linalg.generic {{indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>], iterator_types = ["parallel"]}} ins({body} : tensor<4xf32>) outs(%e : tensor<4xf32>) {{
  ^bb0(%a: f32, %o: f32):
    %m = arith.maximumf %a, %z : f32
    linalg.yield %m : f32
  }} -> tensor<4xf32>
  return %r : tensor<4xf32>
}}
"""


def nested_if(depth):
    lines = ["func.func @m(%c: i1, %x: tensor<4xf32>) -> tensor<4xf32> {"]
    for _ in range(depth):
        lines.append("scf.if %c {")
    lines += ["}" for _ in range(depth)]
    lines += ["return %x : tensor<4xf32>", "}"]
    return "\n".join(lines) + "\n"


def nested_exit_if(depth):
    t = "tensor<1x2xf32>"
    crit = '#dyn.entropy<threshold = #dyn.param<"theta" = 0.3>>'
    out = [f"func.func @m(%l: {t}) -> {t} {{"]
    for i in range(depth):
        out.append(f"%r{i} = dyn.exit_if %l criterion {crit} layer {i + 1} : {t} {{")
    out.append(f"dyn.yield %l : {t}")
    for i in reversed(range(depth)):
        out.append("}")
        if i > 0:
            out.append(f"dyn.yield %r{i} : {t}")
    out += [f"return %r0 : {t}", "}"]
    return "\n".join(out) + "\n"


def jump_to(targets, budget=64):
    """A Structural Jump-LSTM skip loop whose jump_to names `targets` classes."""
    ts = ", ".join(str(i) for i in range(targets))
    return f"""func.func @m(%seq: tensor<20x8xf32>, %h0: tensor<16xf32>, %cls: tensor<20xi32>) -> tensor<16xf32> {{
  %r = dyn.skip %seq classes %cls : tensor<20xi32> init(%h0 : tensor<16xf32>) budget {budget} actions [#dyn.action<read>, #dyn.action<jump_to, targets = [{ts}]>] : tensor<20x8xf32> -> tensor<16xf32>
  decide {{
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    %a = arith.constant 1 : index
    dyn.decide %a
  }}
  {{
  ^bb0(%pos: index, %x: tensor<8xf32>, %h: tensor<16xf32>):
    dyn.yield %h : tensor<16xf32>
  }},
  {{
  }}
  return %r : tensor<16xf32>
}}
"""


def call_bomb(levels):
    """Each function calls the next twice: 2^levels calls once inlined."""
    out = []
    for i in range(levels):
        nxt = f"f{i + 1}"
        if i == levels - 1:
            out.append(f"func.func private @f{i}(%x: tensor<4xf32>) -> tensor<4xf32> {{ return %x : tensor<4xf32> }}")
        else:
            out.append(f"""func.func private @f{i}(%x: tensor<4xf32>) -> tensor<4xf32> {{
  %a = func.call @{nxt}(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %b = func.call @{nxt}(%a) : (tensor<4xf32>) -> tensor<4xf32>
  return %b : tensor<4xf32>
}}""")
    out.append("""func.func @m(%x: tensor<4xf32>) -> tensor<4xf32> {
  %r = func.call @f0(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %r : tensor<4xf32>
}""")
    return "\n".join(out) + "\n"


def safetensors(tensors):
    """A safetensors file of float32 tensors {name: shape} (zeros)."""
    header, offset = {}, 0
    for name, shape in tensors.items():
        n = 4
        for d in shape:
            n *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"\0" * offset


# The weights of examples/embed/mlp.mlir, right and wrong.
MLP = {"fc1.weight": [8, 16], "fc1.bias": [16], "fc2.weight": [16, 3]}

KINDS = {
    "weights-wrong-shape": lambda: safetensors({**MLP, "fc2.weight": [3, 16]}),
    "weights-missing": lambda: safetensors({k: v for k, v in MLP.items() if k != "fc1.bias"}),
    "weights-extra": lambda: safetensors({**MLP, "fc3.weight": [2, 2]}),
    # A PyTorch checkpoint is a zip file: its first 8 bytes as a length.
    "weights-pt": lambda: b"PK\x03\x04" + b"\0" * 60,
    "nested-if": lambda: nested_if(5000),
    "nested-attr": lambda: "func.func @m() attributes {a = " + "[" * 100000 + "]" * 100000 + "} { return }\n",
    "nested-tuple": lambda: "func.func private @m(" + "tuple<" * 50000 + "i1" + ">" * 50000 + ")\n",
    "nested-exit-if": lambda: nested_exit_if(2000),
    "call-bomb": lambda: call_bomb(30),
    "jump-targets": lambda: jump_to(targets=100000),
    "huge-budget": lambda: jump_to(targets=1, budget=2 ** 63 - 1),
    "recursion": lambda: """func.func private @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %r = func.call @f(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %r : tensor<4xf32>
}
func.func @m(%x: tensor<4xf32>) -> tensor<4xf32> {
  %r = func.call @f(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %r : tensor<4xf32>
}
""",
    "zero-matmul": lambda: MATMUL.format(m=4, k=0, n=8),
    "huge-shape": lambda: MATMUL.format(m=2 ** 62, k=4, n=4),
    "dynamic-shape": lambda: """func.func @m(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %x, %c0 : tensor<?x4xf32>
  %e = tensor.empty(%n) : tensor<?x4xf32>
  %r = linalg.copy ins(%x : tensor<?x4xf32>) outs(%e : tensor<?x4xf32>) -> tensor<?x4xf32>
  return %r : tensor<?x4xf32>
}
""",
    "injected-name": lambda: relu('%x: tensor<4xf32> {dyn.name = "x */ #error injected /*"}',
                                  '(tensor<4xf32> {dyn.name = "y */ #error injected /*"})'),
    "keyword-name": lambda: relu('%x: tensor<4xf32> {dyn.name = "int"}'),
    "reserved-name": lambda: relu('%x: tensor<4xf32> {dyn.name = "model"}'),
    "duplicate-name": lambda: relu('%x: tensor<4xf32> {dyn.name = "v"}',
                                   '(tensor<4xf32> {dyn.name = "v"})'),
    "misspelt-weight": lambda: relu('%x: tensor<4xf32> {dyn.wieght = "w"}'),
    "non-string-weight": lambda: relu('%x: tensor<4xf32> {dyn.weight = 3}'),
}

if __name__ == "__main__":
    out = KINDS[sys.argv[1]]()
    if isinstance(out, bytes):
        with open(sys.argv[2], "wb") as f:
            f.write(out)
    else:
        sys.stdout.write(out)
