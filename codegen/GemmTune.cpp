//===- GemmTune.cpp - timing GEMM schedules on the host (--tune) ----------===//
//
// The candidates of a shape are the schedules buildGemm can build: the
// Tiled path with the target's register micro-tiles, B packed or read in
// place, and for few rows the Stream or Dot path. Each is JIT-compiled for
// the compile's target (which --tune requires to be this machine) and timed
// on random operands with every core: the best of at least 5 runs and
// 30 ms. The default choice (chooseGemmTiling) is timed too and keeps its
// place unless a candidate beats it by 3% (noise must not flip a schedule).
//
// The cache is a text file, one shape per line:
//   <cpu model> (<cores> cores) TAB <target> TAB <shape> TAB <tiling> TAB <GFLOP/s> TAB <default GFLOP/s>
// <shape> = "b<batch> m<M> n<N> k<K> t<transposeB>[ bf16]",
// <tiling> = "<path> <vw> <vectors> <rows> <blockRows> <packB>".
//
//===----------------------------------------------------------------------===//

#include "codegen/GemmKernel.h"
#include "codegen/HalideTarget.h"
#include "codegen/Tuning.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace Halide;

namespace dyncc::codegen {

namespace {

struct Entry {
  GemmTiling tiling;
  double gflops = 0, defaultGflops = 0;
  bool timed = false; // in this process
};

struct State {
  std::mutex mutex;
  bool enabled = false;
  std::string path, cpu;
  std::map<std::string, Entry> entries; // key: target TAB shape (this CPU)
  std::vector<std::string> otherLines;  // other CPUs' entries, kept as is
  std::vector<std::string> report;
  bool dirty = false;
  /// --panel-tiling: the tiling every GEMM on a weight in panels asks for.
  std::optional<GemmTiling> panelForced;
  /// --tune-record: GEMMs on weights in panels timed in the model
  /// (dyncc.tune), by shape; stored under the target they are built for.
  std::map<std::string, Entry> panelRecords;
};

State &state() {
  static State s;
  return s;
}

std::string shapeKey(const GemmShape &s) {
  return "b" + std::to_string(s.batch) + " m" + std::to_string(s.M) + " n" +
         std::to_string(s.N) + " k" + std::to_string(s.K) + " t" +
         std::to_string(s.transposeB ? 1 : 0) + (s.bf16 ? " bf16" : "") +
         (s.bPanels ? " panels" : "");
}

const char *pathName(GemmPath p) {
  switch (p) {
  case GemmPath::Tiled:
    return "tiled";
  case GemmPath::Stream:
    return "stream";
  case GemmPath::Dot:
    return "dot";
  default:
    return "auto";
  }
}

bool parsePath(const std::string &s, GemmPath &p) {
  if (s == "tiled")
    p = GemmPath::Tiled;
  else if (s == "stream")
    p = GemmPath::Stream;
  else if (s == "dot")
    p = GemmPath::Dot;
  else
    return false;
  return true;
}

// "<path> <vw> <vectors> <rows> <blockRows> <packB>" (tilingText).
bool parseTiling(const std::string &text, GemmTiling &t) {
  std::vector<std::string> f;
  std::istringstream in(text);
  for (std::string w; in >> w;)
    f.push_back(w);
  if (f.size() != 6 || !parsePath(f[0], t.path))
    return false;
  try {
    t.vectorWidth = std::stoi(f[1]);
    t.vectors = std::stoi(f[2]);
    t.rows = std::stoi(f[3]);
    t.blockRows = std::stoi(f[4]);
    t.packB = std::stoi(f[5]);
  } catch (const std::exception &) {
    return false;
  }
  return true;
}

// A cache line's fields from `at` on: the tiling, its GFLOP/s and the
// default's.
bool parseEntry(const std::vector<std::string> &f, size_t at, Entry &e) {
  if (f.size() < at + 3 || !parseTiling(f[at], e.tiling))
    return false;
  try {
    e.gflops = std::stod(f[at + 1]);
    e.defaultGflops = std::stod(f[at + 2]);
  } catch (const std::exception &) {
    return false;
  }
  return true;
}

std::string tilingText(const GemmTiling &t) {
  return std::string(pathName(t.path)) + " " + std::to_string(t.vectorWidth) +
         " " + std::to_string(t.vectors) + " " + std::to_string(t.rows) + " " +
         std::to_string(t.blockRows) + " " + std::to_string(t.packB);
}

std::vector<std::string> split(const std::string &line, char sep) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, sep))
    out.push_back(field);
  return out;
}

// Seconds of one call of `p` into `out`: the best of >= 5 runs and 30 ms.
double timePipeline(Pipeline &p, Buffer<float> &out) {
  p.realize(out); // warm-up (and the JIT's first-call work)
  double best = 1e30, total = 0;
  for (int i = 0; i < 5 || (total < 0.03 && i < 200); ++i) {
    auto t0 = std::chrono::steady_clock::now();
    p.realize(out);
    double s = std::chrono::duration<double>(
                   std::chrono::steady_clock::now() - t0)
                   .count();
    best = std::min(best, s);
    total += s;
  }
  return best;
}

// The schedules worth timing for `shape` (the default first).
std::vector<GemmTiling> candidates(const GemmShape &shape,
                                   const Target &target) {
  std::vector<GemmTiling> out{chooseGemmTiling(shape, target)};
  auto add = [&](GemmTiling requested) {
    GemmTiling t = chooseGemmTiling(shape, target, requested);
    for (const GemmTiling &o : out)
      if (tilingText(o) == tilingText(t))
        return;
    out.push_back(t);
  };
  // The first three micro-tiles of the automatic choice, and on AVX-512
  // two shapes it does not consider (taller and wider).
  std::vector<MicroTile> tiles = microTiles(target);
  tiles.resize(std::min<size_t>(tiles.size(), 3));
  if (target.has_feature(Target::AVX512))
    tiles.insert(tiles.end(), {{kMaxTileRows, 2}, {4, 6}});
  for (auto [rows, vectors] : tiles)
    for (int pack : {0, 1}) {
      if (shape.transposeB && !pack)
        continue; // a transposed B is always packed
      GemmTiling t;
      t.path = GemmPath::Tiled;
      t.rows = rows;
      t.vectors = vectors;
      t.packB = pack;
      add(t);
    }
  // The default's tile with other rows per task: all of M in one (each
  // panel of B packed once) and half the default's (twice the tasks, for a
  // machine whose cores the default leaves idle).
  const GemmTiling first = out.front();
  if (first.path == GemmPath::Tiled)
    for (int blockRows : {shape.M, first.blockRows / 2}) {
      if (blockRows < first.rows)
        continue;
      GemmTiling t;
      t.path = GemmPath::Tiled;
      t.rows = first.rows;
      t.vectors = first.vectors;
      t.packB = first.packB;
      t.blockRows = blockRows;
      add(t);
    }
  if (shape.M <= 8) {
    GemmTiling t;
    t.path = shape.transposeB ? GemmPath::Dot : GemmPath::Stream;
    add(t);
  }
  return out;
}

// Times every candidate; the winner and both rates.
Entry tune(const GemmShape &shape, const Target &target) {
  const bool batched = shape.batch > 0;
  std::vector<int> aDims{shape.K, shape.M}, cDims{shape.N, shape.M};
  std::vector<int> bDims = shape.transposeB ? std::vector<int>{shape.K, shape.N}
                                            : std::vector<int>{shape.N, shape.K};
  if (batched) {
    aDims.push_back(shape.batch);
    bDims.push_back(shape.batch);
    cDims.push_back(shape.batch);
  }
  Buffer<float> a(aDims), b(bDims), c(cDims);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  a.for_each_value([&](float &v) { v = dist(rng); });
  b.for_each_value([&](float &v) { v = dist(rng); });
  const double flop = 2.0 * shape.M * shape.N * shape.K *
                      std::max(1, shape.batch);

  Entry best;
  double bestSeconds = 1e30, defaultSeconds = 0;
  std::vector<GemmTiling> list = candidates(shape, target);
  for (size_t i = 0; i < list.size(); ++i) {
    ImageParam A(Float(32), (int)aDims.size(), "tune_a"),
        B(Float(32), (int)bDims.size(), "tune_b");
    A.set(a);
    B.set(b);
    Func g = buildGemm(shape, A, B, {}, target, "tune_gemm", list[i]);
    Pipeline p(g);
    // A bf16 candidate runs with AVX512-BF16 as in the library.
    p.compile_jit(list[i].bf16 ? Target(bf16KernelTarget(target.to_string()))
                               : target);
    double s = timePipeline(p, c);
    if (i == 0)
      defaultSeconds = s;
    // The default keeps its place unless beaten by 3%.
    if (i == 0 || s < bestSeconds * 0.97) {
      bestSeconds = s;
      best.tiling = list[i];
    }
  }
  best.gflops = flop / bestSeconds * 1e-9;
  best.defaultGflops = flop / defaultSeconds * 1e-9;
  best.timed = true;
  return best;
}

bool isDefault(const GemmTiling &t) {
  return t.path == GemmPath::Auto && t.vectorWidth == 0 && t.vectors == 0 &&
         t.rows == 0 && t.blockRows == 0 && t.packB < 0;
}

} // namespace

std::string hostCpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      std::string model = colon == std::string::npos ? "" : line.substr(colon + 1);
      model.erase(0, model.find_first_not_of(" \t"));
      std::replace(model.begin(), model.end(), '\t', ' ');
      return model;
    }
  return "";
}

std::string defaultTuningCachePath() {
  if (const char *p = std::getenv("DYNCC_TUNE_CACHE"); p && *p)
    return p;
  std::string base;
  if (const char *x = std::getenv("XDG_CACHE_HOME"); x && *x)
    base = x;
  else if (const char *h = std::getenv("HOME"); h && *h)
    base = std::string(h) + "/.cache";
  else
    base = "/tmp";
  return base + "/dyncc/gemm-tuning.tsv";
}

bool enableGemmTuning(const std::string &cachePath, std::string &error) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.enabled = true;
  s.path = cachePath;
  // The CPU model and the cores the kernels are timed and scheduled on
  // (the default rows per task follow the cores).
  s.cpu = hostCpuModel() + " (" +
          std::to_string(scheduleMachine(hostKernelTarget()).cores) +
          " cores)";
  s.entries.clear();
  s.otherLines.clear();
  std::ifstream in(cachePath);
  if (!in)
    return true; // no cache yet
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line[0] == '#')
      continue;
    std::vector<std::string> f = split(line, '\t');
    Entry e;
    if (f.size() != 6 || !parseEntry(f, 3, e)) {
      error = cachePath + ":" + std::to_string(number) +
              ": not a tuning entry (delete the file to start afresh)";
      return false;
    }
    if (f[0] == s.cpu)
      s.entries[f[1] + "\t" + f[2]] = e;
    else
      s.otherLines.push_back(line);
  }
  return true;
}

std::optional<GemmTiling> tunedGemmTiling(const GemmShape &shape,
                                          const Target &target,
                                          const GemmTiling &requested,
                                          bool report) {
  State &s = state();
  if (!isDefault(requested))
    return std::nullopt;
  std::lock_guard<std::mutex> lock(s.mutex);
  // A GEMM on a weight in panels is never timed alone (the candidates'
  // order there is not the model's: docs/codegen.md, --tune): the tiling
  // --panel-tiling asks for (dyncc.tune's candidates), else one that
  // dyncc.tune timed in the model (--tune-record, which replaces what the
  // cache held, else the cache), else the automatic one.
  if (shape.bPanels && s.panelForced)
    return s.panelForced;
  if (!s.enabled)
    return std::nullopt;
  std::string key = target.to_string() + "\t" + shapeKey(shape);
  auto it = s.entries.find(key);
  if (shape.bPanels) {
    auto recorded = s.panelRecords.find(shapeKey(shape));
    if (recorded != s.panelRecords.end()) {
      it = s.entries.insert_or_assign(key, recorded->second).first;
      s.dirty = true;
    } else if (it == s.entries.end()) {
      return std::nullopt;
    }
  }
  if (it == s.entries.end()) {
    it = s.entries.emplace(key, tune(shape, target)).first;
    s.dirty = true;
  }
  const Entry &e = it->second;
  if (!report)
    return e.tiling;
  char rates[96];
  std::snprintf(rates, sizeof rates, "%.1f GFLOP/s (default %.1f)", e.gflops,
                e.defaultGflops);
  s.report.push_back(std::string(e.timed ? "tuned " : "cached ") +
                     shapeKey(shape) + ": " +
                     describeGemmTiling(chooseGemmTiling(shape, target, e.tiling)) + ", " +
                     rates + (shape.bPanels ? " in the model" : ""));
  return e.tiling;
}

bool setPanelTiling(const std::string &text, std::string &error) {
  // RxV[/B]
  int rows = 0, vectors = 0, blockRows = 0;
  char x = 0, slash = 0, extra = 0;
  int n = std::sscanf(text.c_str(), "%d%c%d%c%d%c", &rows, &x, &vectors,
                      &slash, &blockRows, &extra);
  if (!((n == 3 && x == 'x') || (n == 5 && x == 'x' && slash == '/')) ||
      rows < 1 || vectors < 1 || blockRows < 0) {
    error = "--panel-tiling: '" + text +
            "' is not ROWSxVECTORS[/ROWS_PER_TASK] (e.g. 8x2 or 4x4/128)";
    return false;
  }
  GemmTiling t;
  t.path = GemmPath::Tiled;
  t.rows = rows;
  t.vectors = vectors;
  t.blockRows = blockRows;
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.panelForced = t;
  return true;
}

bool recordPanelTunings(const std::string &path, std::string &error) {
  std::ifstream in(path);
  if (!in) {
    error = "cannot read the --tune-record file " + path;
    return false;
  }
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.empty() || line[0] == '#')
      continue;
    std::vector<std::string> f = split(line, '\t');
    Entry e;
    if (f.size() != 4 || f[0].size() <= 7 ||
        f[0].compare(f[0].size() - 7, 7, " panels") != 0 ||
        !parseEntry(f, 1, e) || e.tiling.path != GemmPath::Tiled) {
      error = path + ":" + std::to_string(number) +
              ": not '<shape> panels TAB tiled <vw> <vectors> <rows> "
              "<blockRows> <packB> TAB <GFLOP/s> TAB <default GFLOP/s>'";
      return false;
    }
    s.panelRecords[f[0]] = e;
  }
  return true;
}

bool finishGemmTuning(std::vector<std::string> &lines, std::string &error) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  lines = s.report;
  if (!s.enabled || !s.dirty)
    return true;
  // Written next to the cache and renamed over it: a reader never sees
  // half a file.
  std::string dir = s.path.substr(0, s.path.find_last_of('/'));
  if (!dir.empty() && dir != s.path) {
    std::string partial;
    for (const std::string &part : split(dir, '/')) {
      partial += part + "/";
      ::mkdir(partial.c_str(), 0755);
    }
  }
  std::string tmp = s.path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp);
    out << "# dyncc compile --tune: GEMM schedules timed on this machine "
           "(codegen/GemmTune.cpp)\n";
    for (const std::string &line : s.otherLines)
      out << line << "\n";
    for (const auto &[key, e] : s.entries) {
      char rates[64];
      std::snprintf(rates, sizeof rates, "%.1f\t%.1f", e.gflops,
                    e.defaultGflops);
      out << s.cpu << "\t" << key << "\t" << tilingText(e.tiling) << "\t"
          << rates << "\n";
    }
    if (!out) {
      error = "cannot write the tuning cache " + tmp;
      std::remove(tmp.c_str());
      return false;
    }
  }
  if (std::rename(tmp.c_str(), s.path.c_str()) != 0) {
    error = "cannot replace the tuning cache " + s.path;
    std::remove(tmp.c_str());
    return false;
  }
  s.dirty = false;
  return true;
}

} // namespace dyncc::codegen
