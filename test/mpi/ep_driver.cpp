// ep_driver.cpp - runs a model library made by `dyncc compile --shared` under
// MPI, one process per rank: the expert-parallel tests (test/mpi/check_ep.py)
// and the W1-by-ranks bench (bench/w1_ranks.py) drive it.
//
//   mpirun -np R dynrt-ep-driver --lib libm.so --model m --weights m.safetensors
//       --input x.npy [--input gate.npy ...] --cases N --out DIR
//       [--timeout-ms T] [--repeat K] [--stall-rank r --stall-ms S]
//       [--lib-for-rank r other.so --model-for-rank r other]
//
// Each --input holds N cases ([N, ...] of the model's input, .npy of
// little-endian f4/i4/i8 as the model's dtype). Rank r runs cases r, r + R,
// ... (N must be a multiple of R), every rank the same number of runs. An
// expert-parallel model (desc->num_ranks > 0) gets a communicator over
// MPI_COMM_WORLD (libdynrt_mpi); any other model runs alone on each rank.
// Outputs are poisoned before every run (NaN, 0x5a bytes for integers, junk
// in the route report). For case c it writes DIR/case<c>.out<o>.bin (the
// raw output o) and, per route op, DIR/case<c>.route<i>.{assignment,
// tokens,dropped}.bin (int32 [T*K], uint64 [E], uint64 [1]). Prints one
// line per rank: "rank r/R: runs n, <ms> ms per run, exchange <bytes> bytes
// <ms> ms, route stats <tokens per expert...>". A failed create or run
// prints "rank r: <what> failed: <CODE>: <message>" and exits 3 (create)
// or 4 (run) without finalizing MPI (a peer may be gone).
//
// --stall-rank r: rank r sleeps S ms before its first run, so the other
// ranks' exchanges time out (the stuck-rank test). --kill-rank r: rank r
// dies by SIGKILL before its first run (the killed-rank test; Open MPI's
// mpirun needs --enable-recovery to let the others live and report).
// --lib-for-rank r: rank r loads another library (the ranks-disagree test).
// "{rank}" in --weights is replaced by the rank (a weights file per rank).
#include "runtime/dynrt.h"
#include "runtime/mpi/dynrt_mpi.h"

#include <mpi.h>

#include <dlfcn.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

// The C API of the loaded library (its own copy of libdynrt).
struct Api {
  dynrt_status_t (*create)(const dynrt_model_desc_t *,
                           const dynrt_model_options_t *, const char *,
                           dynrt_model_t **);
  dynrt_status_t (*runEx)(dynrt_model_t *, const void *const *, void *const *,
                          dynrt_run_report_t *);
  dynrt_status_t (*routeStats)(const dynrt_model_t *, int32_t, uint64_t *,
                               size_t, uint64_t *);
  dynrt_status_t (*stats)(const dynrt_model_t *, dynrt_model_stats_t *);
  void (*destroy)(dynrt_model_t *);
  void (*optionsInit)(dynrt_model_options_t *);
  const char *(*message)(dynrt_status_t);
  dynrt_status_code_t (*code)(dynrt_status_t);
  const char *(*codeName)(dynrt_status_code_t);
  void (*free)(dynrt_status_t);
};

int rank = 0, size = 1;

[[noreturn]] void die(int code, const std::string &what) {
  std::fprintf(stderr, "rank %d: %s\n", rank, what.c_str());
  std::fflush(stderr);
  std::fflush(stdout);
  _exit(code);
}

template <typename T> void sym(void *lib, const char *name, T &out) {
  out = reinterpret_cast<T>(dlsym(lib, name));
  if (!out)
    die(2, std::string("no symbol ") + name);
}

size_t dtypeSize(dynrt_dtype_t t) {
  switch (t) {
  case DYNRT_F64:
  case DYNRT_I64:
    return 8;
  case DYNRT_F32:
  case DYNRT_I32:
    return 4;
  default:
    return 1;
  }
}

const char *npyDescr(dynrt_dtype_t t) {
  switch (t) {
  case DYNRT_F32:
    return "'<f4'";
  case DYNRT_I32:
    return "'<i4'";
  case DYNRT_I64:
    return "'<i8'";
  case DYNRT_F64:
    return "'<f8'";
  default:
    return "?";
  }
}

size_t elements(const dynrt_param_spec_t &s) {
  size_t n = 1;
  for (int d = 0; d < s.rank; ++d)
    n *= static_cast<size_t>(s.shape[d]);
  return n;
}

// The data of an .npy file (version 1 or 2 header), checked to be `descr`
// and `bytes` long.
std::vector<char> readNpy(const std::string &path, const char *descr,
                          size_t bytes) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    die(2, "cannot open " + path);
  std::vector<char> all((std::istreambuf_iterator<char>(f)),
                        std::istreambuf_iterator<char>());
  if (all.size() < 12 || std::memcmp(all.data(), "\x93NUMPY", 6) != 0)
    die(2, path + " is not an .npy file");
  size_t headerLen, start;
  if (all[6] == 1) {
    headerLen = (unsigned char)all[8] | ((unsigned char)all[9] << 8);
    start = 10;
  } else {
    headerLen = 0;
    for (int i = 0; i < 4; ++i)
      headerLen |= size_t((unsigned char)all[8 + i]) << (8 * i);
    start = 12;
  }
  std::string header(all.data() + start, headerLen);
  if (header.find(descr) == std::string::npos ||
      header.find("'fortran_order': False") == std::string::npos)
    die(2, path + ": expected C-order " + descr + " data, header " + header);
  size_t offset = start + headerLen;
  if (all.size() - offset != bytes)
    die(2, path + ": " + std::to_string(all.size() - offset) +
               " data bytes, expected " + std::to_string(bytes));
  return std::vector<char>(all.begin() + offset, all.end());
}

void writeFile(const std::string &path, const void *data, size_t bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(static_cast<const char *>(data), bytes);
  if (!f)
    die(2, "cannot write " + path);
}

} // namespace

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::string libPath, model, weights, outDir;
  std::vector<std::string> inputs;
  std::map<int, std::string> libForRank, modelForRank;
  int cases = 0, repeat = 1, stallRank = -1, stallMs = 0, timeoutMs = 20000;
  int killRank = -1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc)
        die(2, "missing value after " + a);
      return argv[++i];
    };
    if (a == "--lib")
      libPath = next();
    else if (a == "--model")
      model = next();
    else if (a == "--weights")
      weights = next();
    else if (a == "--input")
      inputs.push_back(next());
    else if (a == "--cases")
      cases = std::atoi(next().c_str());
    else if (a == "--out")
      outDir = next();
    else if (a == "--repeat")
      repeat = std::atoi(next().c_str());
    else if (a == "--timeout-ms")
      timeoutMs = std::atoi(next().c_str());
    else if (a == "--stall-rank")
      stallRank = std::atoi(next().c_str());
    else if (a == "--stall-ms")
      stallMs = std::atoi(next().c_str());
    else if (a == "--kill-rank")
      killRank = std::atoi(next().c_str());
    else if (a == "--lib-for-rank") {
      int r = std::atoi(next().c_str());
      libForRank[r] = next();
    } else if (a == "--model-for-rank") {
      int r = std::atoi(next().c_str());
      modelForRank[r] = next();
    } else
      die(2, "unknown argument " + a);
  }
  if (libForRank.count(rank))
    libPath = libForRank[rank];
  if (modelForRank.count(rank))
    model = modelForRank[rank];
  if (libPath.empty() || model.empty() || cases < 1 || repeat < 1)
    die(2, "usage: see test/mpi/ep_driver.cpp");
  if (cases % size != 0)
    die(2, std::to_string(cases) + " cases do not split over " +
               std::to_string(size) + " ranks");

  void *lib = dlopen(libPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    die(2, std::string("dlopen: ") + dlerror());
  Api api;
  sym(lib, "dynrt_model_create_from_file", api.create);
  sym(lib, "dynrt_model_run_ex", api.runEx);
  sym(lib, "dynrt_model_route_stats", api.routeStats);
  sym(lib, "dynrt_model_stats", api.stats);
  sym(lib, "dynrt_model_destroy", api.destroy);
  sym(lib, "dynrt_model_options_initialize", api.optionsInit);
  sym(lib, "dynrt_status_message", api.message);
  sym(lib, "dynrt_status_code", api.code);
  sym(lib, "dynrt_status_code_name", api.codeName);
  sym(lib, "dynrt_status_free", api.free);
  auto *desc = static_cast<const dynrt_model_desc_t *>(
      dlsym(lib, (model + "_desc").c_str()));
  if (!desc)
    die(2, "no descriptor " + model + "_desc in " + libPath);
  auto failed = [&](int code, const char *what, dynrt_status_t st) {
    std::string text = std::string(what) + " failed: " +
                       api.codeName(api.code(st)) + ": " + api.message(st);
    api.free(st);
    die(code, text);
  };

  dynrt_comm_t *comm = nullptr;
  if (desc->num_ranks > 0)
    if (dynrt_status_t st =
            dynrt_mpi_comm_create(MPI_COMM_WORLD, timeoutMs, &comm)) {
      std::string text = std::string("communicator failed: ") +
                         dynrt_status_message(st);
      dynrt_status_free(st);
      die(3, text);
    }
  dynrt_model_options_t options;
  api.optionsInit(&options);
  options.num_threads = 1; // ranks share the machine's cores
  options.comm = comm;
  // "{rank}" in the weights path: a file per rank (its experts' shards).
  if (size_t at = weights.find("{rank}"); at != std::string::npos)
    weights.replace(at, 6, std::to_string(rank));
  dynrt_model_t *m = nullptr;
  if (dynrt_status_t st = api.create(desc, &options,
                                     weights.empty() ? nullptr
                                                     : weights.c_str(),
                                     &m))
    failed(3, "create", st);

  // Inputs: N cases each; outputs and reports of one run.
  if ((int)inputs.size() != desc->num_inputs)
    die(2, "the model has " + std::to_string(desc->num_inputs) +
               " inputs, got " + std::to_string(inputs.size()));
  std::vector<std::vector<char>> in(desc->num_inputs);
  for (int i = 0; i < desc->num_inputs; ++i) {
    const dynrt_param_spec_t &s = desc->inputs[i];
    in[i] = readNpy(inputs[i], npyDescr(s.dtype),
                    size_t(cases) * elements(s) * dtypeSize(s.dtype));
  }
  std::vector<std::vector<char>> out(desc->num_outputs);
  for (int o = 0; o < desc->num_outputs; ++o)
    out[o].resize(elements(desc->outputs[o]) * dtypeSize(desc->outputs[o].dtype));
  std::vector<dynrt_route_report_t> routes(desc->num_routes);
  std::vector<std::vector<uint64_t>> tokens(desc->num_routes);
  std::vector<std::vector<int32_t>> assignment(desc->num_routes);
  for (int r = 0; r < desc->num_routes; ++r) {
    const dynrt_route_desc_t &rd = desc->routes[r];
    tokens[r].resize(rd.num_experts);
    assignment[r].resize(size_t(rd.num_tokens) * rd.experts_per_token);
  }

  double seconds = 0;
  int runs = 0;
  for (int c = rank; c < cases; c += size) {
    std::vector<const void *> inPtrs(desc->num_inputs);
    for (int i = 0; i < desc->num_inputs; ++i) {
      const dynrt_param_spec_t &s = desc->inputs[i];
      inPtrs[i] = in[i].data() + size_t(c) * elements(s) * dtypeSize(s.dtype);
    }
    for (int k = 0; k < repeat; ++k) {
      std::vector<void *> outPtrs(desc->num_outputs);
      for (int o = 0; o < desc->num_outputs; ++o) {
        if (desc->outputs[o].dtype == DYNRT_F32) {
          auto *f = reinterpret_cast<float *>(out[o].data());
          std::fill(f, f + out[o].size() / 4, std::nanf(""));
        } else {
          std::memset(out[o].data(), 0x5a, out[o].size());
        }
        outPtrs[o] = out[o].data();
      }
      for (int r = 0; r < desc->num_routes; ++r) {
        std::fill(tokens[r].begin(), tokens[r].end(), 0xdeadbeefull);
        std::fill(assignment[r].begin(), assignment[r].end(), 12345);
        routes[r] = dynrt_route_report_t{};
        routes[r].dropped = 777;
        routes[r].tokens_per_expert = tokens[r].data();
        routes[r].assignment = assignment[r].data();
      }
      dynrt_run_report_t report{};
      report.num_routes = desc->num_routes;
      report.routes = routes.data();
      MPI_Barrier(MPI_COMM_WORLD);
      if (rank == stallRank && c == rank && k == 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(stallMs));
      if (rank == killRank)
        raise(SIGKILL);
      auto start = std::chrono::steady_clock::now();
      if (dynrt_status_t st = api.runEx(m, inPtrs.data(), outPtrs.data(),
                                        &report))
        failed(4, ("run of case " + std::to_string(c)).c_str(), st);
      seconds += std::chrono::duration<double>(
                     std::chrono::steady_clock::now() - start)
                     .count();
      ++runs;
    }
    if (outDir.empty())
      continue;
    std::string base = outDir + "/case" + std::to_string(c);
    for (int o = 0; o < desc->num_outputs; ++o)
      writeFile(base + ".out" + std::to_string(o) + ".bin", out[o].data(),
                out[o].size());
    for (int r = 0; r < desc->num_routes; ++r) {
      std::string rb = base + ".route" + std::to_string(r);
      writeFile(rb + ".assignment.bin", assignment[r].data(),
                assignment[r].size() * 4);
      writeFile(rb + ".tokens.bin", tokens[r].data(), tokens[r].size() * 8);
      writeFile(rb + ".dropped.bin", &routes[r].dropped, 8);
    }
  }

  dynrt_model_stats_t stats{};
  if (dynrt_status_t st = api.stats(m, &stats))
    failed(4, "stats", st);
  std::string routeText;
  for (int r = 0; r < desc->num_routes; ++r) {
    std::vector<uint64_t> sum(desc->routes[r].num_experts);
    uint64_t dropped = 0;
    if (dynrt_status_t st =
            api.routeStats(m, r, sum.data(), sum.size(), &dropped))
      failed(4, "route stats", st);
    routeText += " route" + std::to_string(r) + " [";
    for (size_t e = 0; e < sum.size(); ++e)
      routeText += (e ? " " : "") + std::to_string(sum[e]);
    routeText += "] dropped " + std::to_string(dropped);
  }
  // Ordered output: one rank after the other.
  for (int r = 0; r < size; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    if (r == rank)
      std::printf("rank %d/%d: runs %d, %.4f ms per run, exchange %llu bytes "
                  "%.4f ms per run,%s\n",
                  rank, size, runs, 1e3 * seconds / runs,
                  (unsigned long long)stats.exchange_bytes,
                  1e3 * stats.exchange_seconds / runs, routeText.c_str());
    std::fflush(stdout);
  }
  api.destroy(m);
  dynrt_mpi_comm_release(comm);
  MPI_Finalize();
  return 0;
}
