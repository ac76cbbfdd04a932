// Skip.cpp - config and argument checks of the dyn.skip step builtin
// (DYNRT_BUILTIN_SKIP_STEP); the step itself runs in Model.cpp.
#include "runtime/Skip.h"

#include "runtime/Config.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace {
constexpr int64_t kMaxInt32 = std::numeric_limits<int32_t>::max();

bool readInt(const double *config, int index, const char *name, int64_t lo,
             int64_t hi, int32_t &out, std::string &error) {
  return dynrt::readConfigInt(config, index, "skip", name, lo, hi, out, error);
}
} // namespace

bool dynrt::parseSkipConfig(const double *config, int32_t count,
                            SkipConfig &out, std::string &error) {
  if (!config || count != DYNRT_SKIP_CFG_COUNT) {
    error = fmt::format("skip config has {} entries, expected {}",
                        config ? count : 0, int(DYNRT_SKIP_CFG_COUNT));
    return false;
  }
  SkipConfig c;
  if (!readInt(config, DYNRT_SKIP_CFG_SKIP, "skip", 0, kMaxInt32, c.skip,
               error) ||
      !readInt(config, DYNRT_SKIP_CFG_BUDGET, "budget", 1, kMaxInt32, c.budget,
               error) ||
      !readInt(config, DYNRT_SKIP_CFG_LENGTH, "sequence length", 1, kMaxInt32,
               c.length, error) ||
      !readInt(config, DYNRT_SKIP_CFG_ACTIONS, "actions", 1, kMaxInt32,
               c.actions, error))
    return false;
  out = c;
  return true;
}

bool dynrt::checkSkipArgs(const dynrt_param_spec_t *args, int32_t numArgs,
                          std::string &error) {
  if (numArgs != 1 || !args) {
    error = fmt::format("the skip step takes 1 argument (the step, [3] i32), "
                        "got {}",
                        numArgs);
    return false;
  }
  const dynrt_param_spec_t &step = args[0];
  if (step.dtype != DYNRT_I32 || step.rank != 1 || step.shape[0] != 3) {
    std::string shape = "[";
    for (int32_t d = 0; d < step.rank && d < DYNRT_MAX_RANK; ++d)
      shape += (d ? ", " : "") + std::to_string(step.shape[d]);
    shape += "]";
    error = fmt::format("the step argument '{}' must be [3] I32, got {} {}",
                        step.name ? step.name : "?",
                        step.rank < 0 || step.rank > DYNRT_MAX_RANK
                            ? fmt::format("rank {}", step.rank)
                            : shape,
                        dynrt_dtype_name(step.dtype));
    return false;
  }
  return true;
}

bool dynrt::checkSkipDesc(const SkipConfig &config,
                          const dynrt_model_desc_t &desc, std::string &error) {
  if (config.skip >= desc.num_skips) {
    error = fmt::format("it is skip {}, but the model has {} skip(s)",
                        config.skip, desc.num_skips);
    return false;
  }
  const dynrt_skip_desc_t &skip = desc.skips[config.skip];
  if (skip.budget != config.budget || skip.sequence_length != config.length ||
      skip.num_actions != config.actions) {
    error = fmt::format("budget {}, sequence length {}, {} actions, but skip "
                        "{} ('{}') declares {}, {} and {}",
                        config.budget, config.length, config.actions,
                        config.skip, skip.name ? skip.name : "?", skip.budget,
                        skip.sequence_length, skip.num_actions);
    return false;
  }
  return true;
}
