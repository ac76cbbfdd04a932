// route_assign_driver - runs libdynrt's routing builtin (dynrt::routeAssign,
// runtime/Route.cpp) on one gate read from stdin and writes what it decided
// to stdout, for test/moe/fuzz_assign.py, which compares it with the
// PyTorch assignment of docs/moe.md (dyncc.nn.routing). No compiler
// involved: the assignment alone, on any config.
//
// stdin (little endian):
//   double config[DYNRT_ROUTE_CFG_COUNT]      (DYNRT_ROUTE_CFG_*)
//   int32  T, E, K, V (table entries, 0: none)
//   gate:  T*E float32 logits, or T int32 token ids (hash)
//   table: V int32 (when V > 0)
// stdout:
//   int32 ok; then, when ok: int32 assignment[T*K], uint64
//   tokens_per_expert[E], uint64 dropped, float32 tok_weight[T*K] (the
//   combine weight of each kept pair, 0 otherwise); when not ok: the error
//   message.
#include "runtime/Route.h"

#include <HalideRuntime.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace {

struct Buffer {
  std::vector<halide_dimension_t> dims;
  halide_buffer_t buffer{};
  Buffer(void *host, halide_type_t type, std::vector<int64_t> shape) {
    dims.resize(shape.size());
    int64_t stride = 1;
    for (size_t d = 0; d < shape.size(); ++d) {
      int64_t extent = shape[shape.size() - 1 - d];
      dims[d] = halide_dimension_t{0, static_cast<int32_t>(extent),
                                   static_cast<int32_t>(stride), 0};
      stride *= extent;
    }
    buffer.host = static_cast<uint8_t *>(host);
    buffer.type = type;
    buffer.dimensions = static_cast<int32_t>(shape.size());
    buffer.dim = dims.data();
  }
};

bool readAll(void *data, size_t size, size_t count) {
  return std::fread(data, size, count, stdin) == count;
}

} // namespace

int main() {
  double config[DYNRT_ROUTE_CFG_COUNT];
  int32_t header[4];
  if (!readAll(config, sizeof(double), DYNRT_ROUTE_CFG_COUNT) ||
      !readAll(header, sizeof(int32_t), 4)) {
    std::fprintf(stderr, "route_assign_driver: short input\n");
    return 2;
  }
  const int64_t T = header[0], E = header[1], K = header[2], V = header[3];
  const bool hash = config[DYNRT_ROUTE_CFG_STRATEGY] == 6;
  const int64_t S = static_cast<int64_t>(config[DYNRT_ROUTE_CFG_SLOTS]);
  const int64_t NB = static_cast<int64_t>(config[DYNRT_ROUTE_CFG_BLOCKS]);
  std::vector<float> logits(hash ? 0 : T * E);
  std::vector<int32_t> ids(hash ? T : 0), table(V);
  if ((hash ? !readAll(ids.data(), 4, T) : !readAll(logits.data(), 4, T * E)) ||
      (V > 0 && !readAll(table.data(), 4, V))) {
    std::fprintf(stderr, "route_assign_driver: short input\n");
    return 2;
  }
  std::vector<int32_t> slotToken(S), tokSlot(T * K), blockExpert(NB);
  std::vector<float> tokWeight(T * K);
  const halide_type_t f32(halide_type_float, 32), i32(halide_type_int, 32);
  std::vector<Buffer> buffers;
  buffers.reserve(6);
  if (hash)
    buffers.emplace_back(ids.data(), i32, std::vector<int64_t>{T});
  else
    buffers.emplace_back(logits.data(), f32, std::vector<int64_t>{T, E});
  if (V > 0)
    buffers.emplace_back(table.data(), i32, std::vector<int64_t>{V});
  buffers.emplace_back(slotToken.data(), i32, std::vector<int64_t>{S});
  buffers.emplace_back(tokSlot.data(), i32, std::vector<int64_t>{T, K});
  buffers.emplace_back(tokWeight.data(), f32, std::vector<int64_t>{T, K});
  if (NB > 0)
    buffers.emplace_back(blockExpert.data(), i32, std::vector<int64_t>{NB});
  std::vector<halide_buffer_t *> args;
  for (Buffer &b : buffers)
    args.push_back(&b.buffer);

  dynrt::RouteStats stats;
  std::string error;
  bool ok = dynrt::routeAssign(config, DYNRT_ROUTE_CFG_COUNT, args.data(),
                               static_cast<int32_t>(args.size()), &stats,
                               nullptr, error);
  int32_t status = ok ? 1 : 0;
  std::fwrite(&status, 4, 1, stdout);
  if (!ok) {
    std::fwrite(error.data(), 1, error.size(), stdout);
    return 0;
  }
  uint64_t dropped = stats.dropped;
  std::fwrite(stats.assignment.data(), 4, T * K, stdout);
  std::fwrite(stats.tokensPerExpert.data(), 8, E, stdout);
  std::fwrite(&dropped, 8, 1, stdout);
  std::fwrite(tokWeight.data(), 4, T * K, stdout);
  return 0;
}
