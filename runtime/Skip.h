// Skip.h - the step builtin of dyn.skip (docs/skim.md),
// DYNRT_BUILTIN_SKIP_STEP: config parsing and argument checks, for Model.cpp
// (which keeps the per-run step counts, the trace and the statistics) and the
// tests.
#ifndef DYNRT_SKIP_H
#define DYNRT_SKIP_H

#include "runtime/dynrt.h"

#include <cstdint>
#include <string>

namespace dynrt {

// The DYNRT_SKIP_CFG_* entries, checked and converted.
struct SkipConfig {
  int32_t skip = 0;    // index into desc->skips
  int32_t budget = 0;  // B >= 1
  int32_t length = 0;  // S >= 1
  int32_t actions = 0; // >= 1
};

// Parses `config` (DYNRT_SKIP_CFG_COUNT doubles): every entry an integer,
// the skip index >= 0, budget, length and actions >= 1. On failure returns
// false with a message in `error`.
bool parseSkipConfig(const double *config, int32_t count, SkipConfig &out,
                     std::string &error);

// Checks the builtin's argument specs: exactly one, the step, [3] i32.
bool checkSkipArgs(const dynrt_param_spec_t *args, int32_t numArgs,
                   std::string &error);

// Checks a parsed config against the model's skip table (the index and the
// budget, length and actions of desc->skips[config.skip]).
bool checkSkipDesc(const SkipConfig &config, const dynrt_model_desc_t &desc,
                   std::string &error);

} // namespace dynrt

#endif // DYNRT_SKIP_H
