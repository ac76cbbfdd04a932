// NpyTest.cpp - tests of the .npy reader and writer: round trips for every
// dtype, numpy's exact byte layout, files written by numpy itself, and one
// test per malformed-file rule.
#include "TestUtil.h"

#include "runtime/Npy.h"

#include <fmt/format.h>

#include <cstring>

using namespace dynrt;
using namespace dynrt::test;

namespace {

class NpyTest : public TempDirTest {
protected:
  // A .npy image with `dict` as header text, padded like numpy pads.
  static std::string npyImage(const std::string &dict, const std::string &data,
                              int major = 1) {
    size_t lengthSize = major == 1 ? 2 : 4;
    size_t unpadded = 8 + lengthSize + dict.size() + 1;
    size_t padded = dict.size() + 1 + (64 - unpadded % 64);
    std::string out = "\x93NUMPY";
    out += static_cast<char>(major);
    out += '\0';
    appendLittleEndian(out, padded, static_cast<int>(lengthSize));
    out += dict;
    out.append(padded - dict.size() - 1, ' ');
    out += '\n';
    return out + data;
  }

  // Writes `bytes` and checks that reading them fails with `code`, naming
  // the file and mentioning `needle`.
  void expectReadFails(const std::string &bytes, dynrt_status_code_t code,
                       const std::string &needle) {
    std::string file = path("bad.npy");
    writeFile(file, bytes);
    NpyArray array;
    EXPECT_TRUE(failsWith(readNpy(file, array), code, {file, needle}));
  }

  NpyArray roundTrip(const NpyArray &array, const std::string &name) {
    std::string file = path(name);
    EXPECT_TRUE(succeeds(writeNpy(file, array)));
    std::string bytes = readFileBytes(file);
    // Data starts on a 64-byte boundary, as numpy writes it.
    size_t headerLength = static_cast<uint8_t>(bytes.at(8)) |
                          static_cast<uint8_t>(bytes.at(9)) << 8;
    EXPECT_EQ((10 + headerLength) % 64, 0u);
    EXPECT_EQ(bytes.size(), 10 + headerLength + array.bytes.size());
    NpyArray back;
    EXPECT_TRUE(succeeds(readNpy(file, back)));
    return back;
  }
};

NpyArray makeArray(dynrt_dtype_t dtype, std::vector<int64_t> shape) {
  NpyArray array;
  array.dtype = dtype;
  array.shape = std::move(shape);
  size_t count = 1;
  for (int64_t dim : array.shape)
    count *= static_cast<size_t>(dim);
  array.bytes.resize(count * dynrt_dtype_size(dtype));
  for (size_t i = 0; i < array.bytes.size(); ++i)
    array.bytes[i] = static_cast<uint8_t>(i * 37 + 11);
  if (dtype == DYNRT_BOOL)
    for (size_t i = 0; i < array.bytes.size(); ++i)
      array.bytes[i] = i % 3 == 0;
  return array;
}

TEST_F(NpyTest, RoundTripEveryDtype) {
  for (dynrt_dtype_t dtype :
       {DYNRT_F32, DYNRT_F64, DYNRT_F16, DYNRT_I8, DYNRT_U8, DYNRT_I16,
        DYNRT_I32, DYNRT_I64, DYNRT_BOOL}) {
    SCOPED_TRACE(dynrt_dtype_name(dtype));
    NpyArray array = makeArray(dtype, {2, 3});
    NpyArray back =
        roundTrip(array, fmt::format("{}.npy", dynrt_dtype_name(dtype)));
    EXPECT_EQ(back.dtype, array.dtype);
    EXPECT_EQ(back.shape, array.shape);
    EXPECT_EQ(back.bytes, array.bytes);
  }
}

TEST_F(NpyTest, RoundTripScalar) {
  NpyArray array = makeArray(DYNRT_F64, {});
  NpyArray back = roundTrip(array, "scalar.npy");
  EXPECT_TRUE(back.shape.empty());
  EXPECT_EQ(back.bytes, array.bytes);
  EXPECT_NE(readFileBytes(path("scalar.npy")).find("'shape': (),"),
            std::string::npos);
}

TEST_F(NpyTest, RoundTrip1D) {
  NpyArray array = makeArray(DYNRT_I32, {5});
  NpyArray back = roundTrip(array, "vector.npy");
  EXPECT_EQ(back.shape, (std::vector<int64_t>{5}));
  EXPECT_EQ(back.bytes, array.bytes);
  EXPECT_NE(readFileBytes(path("vector.npy")).find("'shape': (5,),"),
            std::string::npos);
}

TEST_F(NpyTest, RoundTrip3D) {
  NpyArray array = makeArray(DYNRT_F32, {2, 3, 4});
  NpyArray back = roundTrip(array, "cube.npy");
  EXPECT_EQ(back.shape, (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(back.bytes, array.bytes);
}

TEST_F(NpyTest, RoundTripEmpty) {
  NpyArray array = makeArray(DYNRT_I64, {0, 3});
  NpyArray back = roundTrip(array, "empty.npy");
  EXPECT_EQ(back.shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(back.bytes.empty());
}

TEST_F(NpyTest, WritesNumpysExactBytes) {
  // What numpy 1.24 writes for np.save(f, np.zeros((2, 3), np.float32)).
  std::string expected = std::string("\x93NUMPY\x01\x00\x76\x00", 10) +
                         "{'descr': '<f4', 'fortran_order': False, "
                         "'shape': (2, 3), }" +
                         std::string(58, ' ') + "\n" + std::string(24, '\0');
  NpyArray array;
  array.dtype = DYNRT_F32;
  array.shape = {2, 3};
  array.bytes.assign(24, 0);
  ASSERT_TRUE(succeeds(writeNpy(path("zeros.npy"), array)));
  EXPECT_EQ(readFileBytes(path("zeros.npy")), expected);
}

TEST_F(NpyTest, ReadsVersions2And3) {
  std::string data(12, '\x01');
  for (int major : {2, 3}) {
    SCOPED_TRACE(major);
    std::string file = path(fmt::format("v{}.npy", major));
    writeFile(file, npyImage("{'descr': '<i4', 'fortran_order': False, "
                             "'shape': (3,), }",
                             data, major));
    NpyArray array;
    ASSERT_TRUE(succeeds(readNpy(file, array)));
    EXPECT_EQ(array.dtype, DYNRT_I32);
    EXPECT_EQ(array.shape, (std::vector<int64_t>{3}));
    EXPECT_EQ(array.bytes.size(), 12u);
  }
}

TEST_F(NpyTest, ReadsOtherKeyOrderAndQuotes) {
  std::string file = path("reordered.npy");
  writeFile(file, npyImage(R"({"shape": (2L, 1L), "fortran_order": False,)"
                           R"( "descr": "|u1"})",
                           "ab"));
  NpyArray array;
  ASSERT_TRUE(succeeds(readNpy(file, array)));
  EXPECT_EQ(array.dtype, DYNRT_U8);
  EXPECT_EQ(array.shape, (std::vector<int64_t>{2, 1}));
}

TEST_F(NpyTest, MissingFileIsNotFound) {
  NpyArray array;
  std::string file = path("absent.npy");
  EXPECT_TRUE(failsWith(readNpy(file, array), DYNRT_NOT_FOUND, {file}));
}

TEST_F(NpyTest, BadMagic) {
  expectReadFails("\x93NUMPZ\x01\x00\x00\x00", DYNRT_DATA_LOSS, "bad magic");
  expectReadFails("", DYNRT_DATA_LOSS, "bad magic");
}

TEST_F(NpyTest, TruncatedPreamble) {
  expectReadFails(std::string("\x93NUMPY\x01\x00\x76", 9), DYNRT_DATA_LOSS,
                  "truncated header");
}

TEST_F(NpyTest, TruncatedHeader) {
  std::string image = npyImage(
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", "");
  expectReadFails(image.substr(0, 40), DYNRT_DATA_LOSS, "truncated header");
}

TEST_F(NpyTest, UnsupportedVersion) {
  expectReadFails(npyImage("{'descr': '<f4', 'fortran_order': False, "
                           "'shape': (), }",
                           "abcd", 4),
                  DYNRT_INVALID_ARGUMENT, "version 4.0");
}

TEST_F(NpyTest, MalformedDict) {
  expectReadFails(npyImage("{'descr': '<f4', 'fortran_order': False}", ""),
                  DYNRT_DATA_LOSS, "lacks 'shape'");
  expectReadFails(npyImage("{'descr': '<f4', 'fortran_order': False, "
                           "'shape': (3), }",
                           std::string(12, 'x')),
                  DYNRT_DATA_LOSS, "not a tuple");
  expectReadFails(npyImage("{'descr': '<f4', 'fortran_order': False, "
                           "'shape': (-3,), }",
                           std::string(12, 'x')),
                  DYNRT_DATA_LOSS, "non-negative");
  expectReadFails(npyImage("descr='<f4'", ""), DYNRT_DATA_LOSS,
                  "not a Python dict");
  expectReadFails(npyImage("{'descr': [('a', '<f4')], 'fortran_order': "
                           "False, 'shape': (1,), }",
                           "abcd"),
                  DYNRT_DATA_LOSS, "structured");
}

TEST_F(NpyTest, UnsupportedDescr) {
  expectReadFails(npyImage("{'descr': '<c8', 'fortran_order': False, "
                           "'shape': (1,), }",
                           std::string(8, 'x')),
                  DYNRT_INVALID_ARGUMENT, "unsupported descr '<c8'");
}

TEST_F(NpyTest, BigEndian) {
  expectReadFails(npyImage("{'descr': '>f4', 'fortran_order': False, "
                           "'shape': (1,), }",
                           std::string(4, 'x')),
                  DYNRT_INVALID_ARGUMENT, "big-endian");
}

TEST_F(NpyTest, FortranOrder) {
  expectReadFails(npyImage("{'descr': '<f4', 'fortran_order': True, "
                           "'shape': (2, 2), }",
                           std::string(16, 'x')),
                  DYNRT_INVALID_ARGUMENT, "fortran_order");
}

TEST_F(NpyTest, DataShorterThanShape) {
  expectReadFails(npyImage("{'descr': '<f4', 'fortran_order': False, "
                           "'shape': (2, 3), }",
                           std::string(20, 'x')),
                  DYNRT_DATA_LOSS,
                  "data is 20 bytes but '<f4' [2, 3] needs 24");
}

TEST_F(NpyTest, DataLongerThanShape) {
  expectReadFails(npyImage("{'descr': '<f4', 'fortran_order': False, "
                           "'shape': (2, 3), }",
                           std::string(28, 'x')),
                  DYNRT_DATA_LOSS, "data is 28 bytes");
}

TEST_F(NpyTest, ShapeOverflow) {
  expectReadFails(npyImage("{'descr': '<f4', 'fortran_order': False, "
                           "'shape': (4611686018427387904, 8), }",
                           ""),
                  DYNRT_DATA_LOSS, "overflows");
}

// Hostile files: every one a status with a short message, never a crash or
// a huge allocation.

TEST_F(NpyTest, HeaderLengthOverTheLimit) {
  std::string image("\x93NUMPY\x02\x00", 8);
  appendLittleEndian(image, 0xffffffff, 4);
  expectReadFails(image + "{}", DYNRT_DATA_LOSS,
                  "header length 4294967295 is larger than the 1 MiB limit");
}

TEST_F(NpyTest, HeaderLengthBeyondTheFile) {
  std::string image("\x93NUMPY\x02\x00", 8);
  appendLittleEndian(image, 1000, 4);
  expectReadFails(image + "{'descr'", DYNRT_DATA_LOSS,
                  "header length 1000 but only 8 bytes follow");
}

TEST_F(NpyTest, ShapeProductOverflow) {
  // 2^62 * 4 floats: 2^66 bytes wraps around to 0.
  expectReadFails(npyImage("{'descr': '<f4', 'fortran_order': False, "
                           "'shape': (4611686018427387904, 4), }",
                           ""),
                  DYNRT_DATA_LOSS,
                  "the byte size of shape [4611686018427387904, 4] overflows");
}

TEST_F(NpyTest, DimensionBeyondInt64) {
  expectReadFails(npyImage("{'descr': '<f4', 'fortran_order': False, "
                           "'shape': (99999999999999999999,), }",
                           ""),
                  DYNRT_DATA_LOSS, "does not fit in 64 bits");
}

TEST_F(NpyTest, TooManyDimensions) {
  std::string shape;
  for (int i = 0; i < 65; ++i)
    shape += "1, ";
  expectReadFails(npyImage("{'descr': '<f4', 'fortran_order': False, "
                           "'shape': (" +
                               shape + "), }",
                           "abcd"),
                  DYNRT_DATA_LOSS, "more than 64 dimensions");
}

TEST_F(NpyTest, PyTorchZipIsNotANpyFile) {
  expectReadFails(std::string("PK\x03\x04\x00\x00\x08\x08\x00\x00", 10),
                  DYNRT_DATA_LOSS, "not a .npy file (bad magic)");
}

TEST_F(NpyTest, MessagesNeverDumpTheFilesText) {
  std::string big(100000, 'k');
  for (const std::string &dict :
       {"{'" + big + "': 1}",
        "{'descr': '<" + big + "', 'fortran_order': False, 'shape': (), }"}) {
    NpyArray array;
    std::string image = npyImage(dict, "", 2);
    dynrt_status_t status =
        parseNpy(reinterpret_cast<const uint8_t *>(image.data()), image.size(),
                 "mem", array);
    StatusPtr owned(status);
    ASSERT_NE(status, nullptr);
    std::string message = dynrt_status_message(status);
    EXPECT_LT(message.size(), 300u) << message.substr(0, 300);
    EXPECT_NE(message.find("kkk..."), std::string::npos) << message;
  }
}

TEST_F(NpyTest, ParsesFromMemory) {
  std::string image =
      npyImage("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
               std::string("\x01\x00\x00\x00\x02\x00\x00\x00", 8));
  NpyArray array;
  ASSERT_TRUE(succeeds(parseNpy(reinterpret_cast<const uint8_t *>(image.data()),
                                image.size(), "mem", array)));
  EXPECT_EQ(array.dtype, DYNRT_I32);
  EXPECT_EQ(array.shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(array.bytes.size(), 8u);
  EXPECT_TRUE(failsWith(parseNpy(nullptr, 0, "mem", array), DYNRT_DATA_LOSS,
                        {"'mem'", "bad magic"}));
}

TEST_F(NpyTest, WriteRejectsSizeMismatch) {
  NpyArray array = makeArray(DYNRT_F32, {2, 3});
  array.bytes.pop_back();
  std::string file = path("short.npy");
  EXPECT_TRUE(failsWith(writeNpy(file, array), DYNRT_INVALID_ARGUMENT,
                        {file, "23 bytes"}));
  EXPECT_FALSE(std::filesystem::exists(file));
}

TEST_F(NpyTest, WriteRejectsBf16) {
  NpyArray array = makeArray(DYNRT_BF16, {2});
  EXPECT_TRUE(failsWith(writeNpy(path("bf16.npy"), array),
                        DYNRT_INVALID_ARGUMENT, {"BF16"}));
}

TEST_F(NpyTest, WriteReplacesWholeAndLeavesNoTemporaryFiles) {
  std::string file = path("out.npy");
  ASSERT_TRUE(succeeds(writeNpy(file, makeArray(DYNRT_F32, {100}))));
  NpyArray smaller = makeArray(DYNRT_I8, {3});
  ASSERT_TRUE(succeeds(writeNpy(file, smaller)));
  NpyArray back;
  ASSERT_TRUE(succeeds(readNpy(file, back)));
  EXPECT_EQ(back.bytes, smaller.bytes);
  // A failed write leaves the previous file as it was.
  NpyArray bad = smaller;
  bad.bytes.push_back(0);
  EXPECT_TRUE(failsWith(writeNpy(file, bad), DYNRT_INVALID_ARGUMENT, {file}));
  ASSERT_TRUE(succeeds(readNpy(file, back)));
  EXPECT_EQ(back.bytes, smaller.bytes);
  size_t entries = 0;
  for (const auto &entry : std::filesystem::directory_iterator(dir)) {
    (void)entry;
    ++entries;
  }
  EXPECT_EQ(entries, 1u);
}

TEST_F(NpyTest, WriteIntoMissingDirectoryFails) {
  std::string file = path("no/such/dir/out.npy");
  EXPECT_TRUE(failsWith(writeNpy(file, makeArray(DYNRT_F32, {1})),
                        DYNRT_UNAVAILABLE, {file}));
}

// Files written by numpy itself, and files we write read back by numpy.
TEST_F(NpyTest, InteroperatesWithNumpy) {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 with numpy is not available";

  NpyArray ours = makeArray(DYNRT_I16, {2, 2, 3});
  ASSERT_TRUE(succeeds(writeNpy(path("ours.npy"), ours)));

  // The directory comes from mkdtemp: no quotes in it.
  std::string script = fmt::format(R"(
import numpy as np
d = '{}'
np.save(d + '/f4.npy', np.arange(6, dtype=np.float32).reshape(2, 3) / 4)
np.save(d + '/f8.npy', np.float64(2.5))
np.save(d + '/i8.npy', np.array([-1, 2**40], dtype=np.int64))
np.save(d + '/b1.npy', np.array([True, False, True]))
np.save(d + '/u1.npy', np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
np.save(d + '/fortran.npy', np.asfortranarray(np.ones((2, 3), np.float32)))
np.save(d + '/big.npy', np.ones(3, dtype='>f4'))
ours = np.load(d + '/ours.npy')
assert ours.dtype == np.int16 and ours.shape == (2, 2, 3), ours
expected = ((np.arange(24) * 37 + 11) % 256).astype(np.uint8)
assert (ours.reshape(-1).view(np.uint8) == expected).all(), ours
)",
                                   dir.string());
  writeFile(path("gen.py"), script);
  ASSERT_EQ(
      std::system(fmt::format("/usr/bin/python3 '{}'", path("gen.py")).c_str()),
      0);

  NpyArray array;
  ASSERT_TRUE(succeeds(readNpy(path("f4.npy"), array)));
  EXPECT_EQ(array.dtype, DYNRT_F32);
  EXPECT_EQ(array.shape, (std::vector<int64_t>{2, 3}));
  ASSERT_EQ(array.bytes.size(), 24u);
  float f4[6];
  std::memcpy(f4, array.bytes.data(), sizeof(f4));
  EXPECT_EQ(f4[5], 1.25f);

  ASSERT_TRUE(succeeds(readNpy(path("f8.npy"), array)));
  EXPECT_EQ(array.dtype, DYNRT_F64);
  EXPECT_TRUE(array.shape.empty());
  double f8;
  std::memcpy(&f8, array.bytes.data(), sizeof(f8));
  EXPECT_EQ(f8, 2.5);

  ASSERT_TRUE(succeeds(readNpy(path("i8.npy"), array)));
  EXPECT_EQ(array.dtype, DYNRT_I64);
  EXPECT_EQ(array.shape, (std::vector<int64_t>{2}));
  int64_t i8[2];
  std::memcpy(i8, array.bytes.data(), sizeof(i8));
  EXPECT_EQ(i8[0], -1);
  EXPECT_EQ(i8[1], int64_t(1) << 40);

  ASSERT_TRUE(succeeds(readNpy(path("b1.npy"), array)));
  EXPECT_EQ(array.dtype, DYNRT_BOOL);
  EXPECT_EQ(array.bytes, (std::vector<uint8_t>{1, 0, 1}));

  ASSERT_TRUE(succeeds(readNpy(path("u1.npy"), array)));
  EXPECT_EQ(array.dtype, DYNRT_U8);
  EXPECT_EQ(array.shape, (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(array.bytes[23], 23);

  EXPECT_TRUE(failsWith(readNpy(path("fortran.npy"), array),
                        DYNRT_INVALID_ARGUMENT, {"fortran_order"}));
  EXPECT_TRUE(failsWith(readNpy(path("big.npy"), array), DYNRT_INVALID_ARGUMENT,
                        {"big-endian"}));
}

} // namespace
