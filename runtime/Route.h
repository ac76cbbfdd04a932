// Route.h - the token-to-expert assignment of dyn.route (docs/moe.md), the
// runtime builtin DYNRT_BUILTIN_ROUTE_ASSIGN: config parsing, argument
// checks and the assignment itself, for Model.cpp and the tests.
#ifndef DYNRT_ROUTE_H
#define DYNRT_ROUTE_H

#include "runtime/dynrt.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

struct halide_buffer_t;

namespace dynrt {

enum class RouteStrategy : int32_t {
  TopK = 0,
  Switch = 1,
  GShard = 2,
  Base = 3,
  KTop1 = 4,
  DenseToSparse = 5,
  Hash = 6,
  Random = 7,
};

// "top_k", "switch", ...; "?" outside the enum.
const char *routeStrategyName(RouteStrategy strategy);

// The DYNRT_ROUTE_CFG_* entries, checked and converted.
struct RouteConfig {
  int32_t route = 0;
  RouteStrategy strategy = RouteStrategy::TopK;
  int64_t tokens = 0;   // T
  int64_t experts = 0;  // E
  int64_t perToken = 0; // K
  int64_t k = 0;
  int64_t capacity = 0; // C, 0: none
  int64_t groups = 1;   // G
  bool scorePriority = false;
  int64_t block = 0; // dropless block, 0: not dropless
  uint64_t seed = 0;
  double temperature = 1.0;
  double threshold = 0.0;
  bool renormalize = false;
  bool hasTable = false;
  int64_t slots = 0;  // S
  int64_t blocks = 0; // NB

  bool dropless() const { return block > 0; }
  // Arguments: gate, [table], slot_token, tok_slot, tok_weight,
  // [block_expert].
  int32_t numArgs() const { return 4 + hasTable + dropless(); }
};

// Parses `config` (DYNRT_ROUTE_CFG_COUNT doubles) and checks it on its own
// (ranges, the strategy's K, the slot count of the mode). On failure returns
// false with a message in `error`.
bool parseRouteConfig(const double *config, int32_t count, RouteConfig &out,
                      std::string &error);

// Checks the builtin's argument specs against a parsed config: count, dtypes
// and shapes (see DYNRT_BUILTIN_ROUTE_ASSIGN in dynrt.h).
bool checkRouteArgs(const RouteConfig &config, const dynrt_param_spec_t *args,
                    int32_t numArgs, std::string &error);

// What one assignment did (the per-run statistics of docs/moe.md).
struct RouteStats {
  std::vector<uint64_t> tokensPerExpert; // [E]: kept pairs per expert
  uint64_t dropped = 0;                  // pairs dropped over capacity
  // [T * K]: expert e when kept, -2 - e when dropped, -1 for no choice.
  std::vector<int32_t> assignment;
};

// Scratch memory of routeAssign, reusable across calls (one per run: it is
// not thread-safe), so that repeated calls do not allocate.
struct RouteWorkspace {
  std::vector<int32_t> expert; // [T * K]: chosen expert, -1 none
  std::vector<float> weight;   // [T * K]
  std::vector<int64_t> row;    // [T * K]: dispatch row, -1 dropped / none
  std::vector<float> scores;   // [E]: one token's scores
  std::vector<float> probs;    // [E]
  std::vector<int32_t> order;  // [max(E, T)]: sort scratch
  std::vector<int64_t> counts; // per expert (and group)
  std::vector<double> price;   // auction
  std::vector<std::vector<std::pair<double, int32_t>>> holders;
  std::vector<int32_t> queue;
};

// Runs the assignment on `args` (as dynrt_invoke_kernel builds them: gate,
// [table], slot_token, tok_slot, tok_weight, [block_expert]; dense,
// row-major). Checks the config and the buffers first and then writes every
// output element. Returns false with a message in `error` (the outputs then
// hold "empty" values: -1 and 0) when the config or the buffers are
// inconsistent or the input is invalid (a hash id outside the table, a NaN
// logit). `stats` may be NULL; `workspace` may be NULL (a temporary one).
bool routeAssign(const double *config, int32_t numConfig,
                 halide_buffer_t *const *args, int32_t numArgs,
                 RouteStats *stats, RouteWorkspace *workspace,
                 std::string &error);

// The SplitMix64 hash of docs/moe.md: the final z for token t.
uint64_t routeRandomBits(uint64_t seed, int64_t token);

} // namespace dynrt

#endif // DYNRT_ROUTE_H
