//===- Tuning.h - dyncc compile --tune: GEMM schedules timed on the host -===//
//
// Neutral interface (no Halide, no MLIR types): the driver turns tuning on,
// codegen's GEMM builder asks for the tuned tiling of each shape.
//
// With tuning on, every GEMM shape a compile meets is looked up in a cache
// file keyed by the CPU model, the Halide target and the shape; a shape not
// there is timed on this machine under each candidate schedule (the paths,
// register micro-tiles and packing the builder knows), and the fastest is
// used and stored. Later compiles with --tune on the same CPU reuse it.
//
//===----------------------------------------------------------------------===//

#ifndef DYNCC_CODEGEN_TUNING_H
#define DYNCC_CODEGEN_TUNING_H

#include <string>
#include <vector>

namespace dyncc::codegen {

/// $DYNCC_TUNE_CACHE, else $XDG_CACHE_HOME/dyncc/gemm-tuning.tsv, else
/// ~/.cache/dyncc/gemm-tuning.tsv.
std::string defaultTuningCachePath();

/// Turns tuning on for this process, reading the cache at `cachePath` (a
/// missing file is an empty cache). False with a message when the file
/// exists but cannot be read or is malformed.
bool enableGemmTuning(const std::string &cachePath, std::string &error);

/// What tuning did so far: one line per shape ("tuned" or "cached", the
/// schedule, its GFLOP/s and the default's), and writes the cache back if
/// anything was timed. False with a message when the cache cannot be
/// written.
bool finishGemmTuning(std::vector<std::string> &lines, std::string &error);

/// dyncc compile --panel-tiling=RxV[/B]: every GEMM on a weight kept in
/// panels asks for micro-tiles of R rows x V vectors and B rows per task
/// (0 or none: automatic), with or without tuning on: dyncc.tune builds
/// its candidates so. False with a message on a malformed text.
bool setPanelTiling(const std::string &text, std::string &error);

/// dyncc compile --tune-record=FILE (tuning on): tilings of GEMMs on
/// weights in panels that dyncc.tune timed in the model, one per line:
/// "<shape> panels TAB <tiling> TAB <GFLOP/s> TAB <default GFLOP/s>" (the
/// cache's fields without the machine's): the compile uses them and
/// stores them in the cache under the target each GEMM is built for.
/// False with a message when the file cannot be read or is malformed.
bool recordPanelTunings(const std::string &path, std::string &error);

/// The CPU's model name ("" if unknown): part of every cache key.
std::string hostCpuModel();

} // namespace dyncc::codegen

#endif // DYNCC_CODEGEN_TUNING_H
