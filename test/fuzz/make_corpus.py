#!/usr/bin/env python3
"""Writes the seed corpora of the libdynrt fuzz targets (test/fuzz/corpus/):
valid files and every hostile-input reproducer, each kept small. Larger
reproducers (a 200,000-deep shape, a 40,000-tensor header, a 1 MiB .npy
header) are synthesized by the targets themselves (dynrtFuzzLargeInput) for
the replay ctests. Crash inputs a fuzzer finds are added next to these by
hand, named crash-<what>. Rerun after changing a seed:

    python3 test/fuzz/make_corpus.py
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def safetensors(header, data=b"", length=None):
    if isinstance(header, (dict, list)):
        header = json.dumps(header)
    if isinstance(header, str):
        header = header.encode()
    n = len(header) if length is None else length
    return struct.pack("<Q", n) + header + data


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def nested(depth):
    return "[" * depth + "1" + "]" * depth


def safetensors_seeds():
    valid_header = {
        "w": entry("F32", [2, 3], 0, 24),
        "b": entry("F64", [3], 24, 48),
        "ids": entry("I64", [2], 48, 64),
        "mask": entry("BOOL", [4], 64, 68),
        "scale": entry("BF16", [], 68, 70),
        "empty": entry("I32", [0, 4], 70, 70),
        "__metadata__": {"format": "pt"},
    }
    valid = safetensors(valid_header, bytes(range(70)))
    seeds = {
        "valid": valid,
        "valid-empty-header": safetensors("{}"),
        "valid-padded": safetensors('{"a": {"dtype": "U8", "shape": [1], '
                                    '"data_offsets": [0, 1]}}    ', b"x"),
        "deep-shape": safetensors('{"w": {"dtype": "F32", "shape": ' +
                                  nested(5000) + ', "data_offsets": [0, 4]}}',
                                  b"abcd"),
        "deep-offsets": safetensors('{"w": {"dtype": "F32", "shape": [1], '
                                    '"data_offsets": ' + nested(5000) + "}}",
                                    b"abcd"),
        "deep-unclosed": safetensors('{"w": {"x": ' + "[" * 5000),
        "deep-entry": safetensors('{"w": ' + nested(5000) + "}"),
        "deep-metadata": safetensors('{"__metadata__": {"k": ' + nested(5000)
                                     + "}}"),
        "deep-objects": safetensors("{" + '"a": {' * 5000 + "}" * 5001),
        # The start of a torch.save zip: a length of 578,712,552,184,433,488.
        "pt-zip": b"PK\x03\x04\x00\x00\x08\x08\x00\x00archive/data.pkl" +
                  bytes(64),
        "huge-length": safetensors("{}", length=1 << 40),
        "length-beyond-file": safetensors("{}", length=100),
        "not-a-brace": safetensors(" {}"),
        "header-array": safetensors("[1, 2]"),
        "zero-length": safetensors(b"", b"abcd"),
        "overflow-shape": safetensors({"w": entry("F32", [2**62, 4], 0, 0)}),
        "overflow-shape-squared": safetensors(
            {"w": entry("F32", [2**62, 2**62], 0, 0)}),
        "dim-beyond-int64": safetensors({"w": entry("U8", [2**64 - 1], 0, 0)}),
        "dim-beyond-uint64": safetensors('{"w": {"dtype": "U8", "shape": '
                                         '[18446744073709551616], '
                                         '"data_offsets": [0, 0]}}'),
        "dim-negative": safetensors({"w": entry("U8", [-1], 0, 0)}),
        "dim-float": safetensors({"w": entry("U8", [1.5], 0, 0)}),
        "rank-9": safetensors({"w": entry("U8", [1] * 9, 0, 1)}, b"a"),
        "offsets-beyond-data": safetensors({"w": entry("U8", [8], 0, 8)},
                                           b"abcd"),
        "offsets-max": safetensors({"w": entry("U8", [1], 2**64 - 2,
                                               2**64 - 1)}, b"a"),
        "offsets-reversed": safetensors({"w": entry("U8", [0], 4, 0)},
                                        b"abcd"),
        "offsets-three": safetensors('{"w": {"dtype": "U8", "shape": [1], '
                                     '"data_offsets": [0, 1, 2]}}', b"ab"),
        "overlap": safetensors({"a": entry("U8", [2], 0, 2),
                                "b": entry("U8", [2], 1, 3)}, b"abc"),
        "size-mismatch": safetensors({"w": entry("F32", [2], 0, 4)}, b"abcd"),
        "unknown-dtype": safetensors({"w": entry("F8_E4M3", [1], 0, 1)},
                                     b"a"),
        "dtype-not-string": safetensors('{"w": {"dtype": 4, "shape": [1], '
                                        '"data_offsets": [0, 1]}}', b"a"),
        "missing-fields": safetensors('{"w": {}}'),
        "dup-tensor": safetensors('{"w": {"dtype": "U8", "shape": [1], '
                                  '"data_offsets": [0, 1]}, "w": {"dtype": '
                                  '"U8", "shape": [1], "data_offsets": [1, '
                                  '2]}}', b"ab"),
        "dup-field": safetensors('{"w": {"dtype": "U8", "dtype": "U8", '
                                 '"shape": [1], "data_offsets": [0, 1]}}',
                                 b"a"),
        "dup-metadata": safetensors('{"__metadata__": {"a": "1", "a": "2"}}'),
        "metadata-twice": safetensors('{"__metadata__": {}, '
                                      '"__metadata__": {}}'),
        "metadata-not-strings": safetensors('{"__metadata__": {"a": 1}}'),
        "name-nul": safetensors('{"a\\u0000b": {"dtype": "U8", "shape": [1], '
                                '"data_offsets": [0, 1]}}', b"a"),
        "name-long": safetensors({"n" * 5000: entry("X", [1], 0, 1)}, b"a"),
        "bad-json": safetensors('{"w": {"dtype": "F32",'),
        "bad-json-long-token": safetensors('{"w": ' + "t" * 5000 + "}"),
        "invalid-utf8": safetensors(b'{"w\xff": {}}'),
        "truncated-5-bytes": valid[:5],
        "truncated-header": valid[:40],
        "truncated-data": valid[:-20],
        "empty": b"",
    }
    for name, data in seeds.items():
        write("safetensors", name, data)


def npy(d, data=b"", major=1):
    d = d.encode() if isinstance(d, str) else d
    length_size = 2 if major == 1 else 4
    unpadded = 8 + length_size + len(d) + 1
    padded = len(d) + 1 + (64 - unpadded % 64)
    header = d + b" " * (padded - len(d) - 1) + b"\n"
    fmt = "<H" if major == 1 else "<I"
    return (b"\x93NUMPY" + bytes([major, 0]) + struct.pack(fmt, padded) +
            header + data)


def npy_dict(descr, shape, fortran=False):
    return "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, "True" if fortran else "False", shape)


def npy_seeds():
    valid = npy(npy_dict("<f4", "(2, 3)"), bytes(24))
    seeds = {
        "valid-f4": valid,
        "valid-v2": npy(npy_dict("<i8", "(2,)"), bytes(16), major=2),
        "valid-v3": npy(npy_dict("|u1", "(3,)"), b"abc", major=3),
        "valid-scalar": npy(npy_dict("<f8", "()"), bytes(8)),
        "valid-empty": npy(npy_dict("|b1", "(0, 5)")),
        "valid-other-order": npy("{\"shape\": (1,), \"fortran_order\": False, "
                                 "\"descr\": \"<i4\"}", bytes(4)),
        "bad-magic": b"\x93NUMPZ\x01\x00\x00\x00",
        "pt-zip": b"PK\x03\x04\x00\x00\x08\x08\x00\x00",
        "empty": b"",
        "truncated-preamble": b"\x93NUMPY\x01\x00\x76",
        "truncated-header": valid[:40],
        "truncated-data": valid[:-4],
        "huge-header-length": b"\x93NUMPY\x02\x00\xff\xff\xff\xff{}",
        "header-beyond-file": b"\x93NUMPY\x02\x00\xe8\x03\x00\x00{'descr'",
        "version-4": npy(npy_dict("<f4", "()"), bytes(4), major=4),
        "overflow-shape": npy(npy_dict("<f4", "(4611686018427387904, 4)")),
        "dim-beyond-int64": npy(npy_dict("<f4", "(99999999999999999999,)")),
        "too-many-dims": npy(npy_dict("<f4", "(" + "1, " * 65 + ")"),
                             bytes(4)),
        "negative-dim": npy(npy_dict("<f4", "(-3,)")),
        "not-a-tuple": npy(npy_dict("<f4", "(3)"), bytes(12)),
        "fortran": npy(npy_dict("<f4", "(2, 2)", fortran=True), bytes(16)),
        "big-endian": npy(npy_dict(">f4", "(1,)"), bytes(4)),
        "structured": npy("{'descr': [('a', '<f4')], 'fortran_order': False, "
                          "'shape': (1,), }", bytes(4)),
        "unknown-key": npy("{'descr': '<f4', 'x': 1}"),
        "dup-key": npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': "
                       "False, 'shape': (), }", bytes(4)),
        "long-key": npy("{'" + "k" * 5000 + "': 1}", major=2),
        "unterminated-string": npy("{'descr: '<f4'"),
    }
    for name, data in seeds.items():
        write("npy", name, data)


def capi_input(flags, capacity, rows, weights=None):
    script = b""
    for row in rows:
        script += struct.pack("<4i", *row)
    script += struct.pack("<4i", -1, 0, 0, 0) * (16 - len(rows))
    out = bytes([flags, capacity]) + script
    return out + (weights if weights is not None else b"")


def capi_seeds():
    weights = safetensors({"w": entry("F32", [2], 0, 8)},
                          struct.pack("<2f", 2, 3))
    read3 = [(0, 0, 0, 0), (0, 1, 0, 0), (0, 2, 2, 0)]
    seeds = {
        "run-plain": capi_input(0, 0, read3),
        "run-report": capi_input(1, 6, read3),
        "run-report-small-trace": capi_input(1, 1, read3),
        "set-param": capi_input(3, 6, read3),
        "run-batch": capi_input(4, 1, []),
        "bad-action": capi_input(1, 6, [(0, 0, 7, 0)]),
        "over-budget": capi_input(1, 6, [(1, 0, 0, 0)] * 3),
        "pos-out-of-range": capi_input(1, 6, [(0, 99, 0, 0)]),
        "kernel-out-of-range": capi_input(1, 6, [(2, 0, 0, 0)]),
        "skip-stats-index": capi_input(0x11, 0, read3),
        "weights-given": capi_input(1, 6, read3, weights),
        "weights-wrong-shape": capi_input(1, 6, read3, safetensors(
            {"w": entry("F32", [1], 0, 4)}, bytes(4))),
        "weights-deep": capi_input(0, 0, [], safetensors(
            '{"w": ' + nested(3000) + "}")),
    }
    for name, data in seeds.items():
        write("capi", name, data)


if __name__ == "__main__":
    safetensors_seeds()
    npy_seeds()
    capi_seeds()
