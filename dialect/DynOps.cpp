//===- DynOps.cpp - verifiers of the dyn ops ------------------------------===//
//
// Every rule here names the operand, attribute or region it rejects, so that
// a model author can fix the model from the message alone.
//
//===----------------------------------------------------------------------===//

#include "dialect/DynDialect.h"
#include "dialect/DynUtils.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"

#include <fmt/format.h>

#include <limits>

#include <cmath>

using namespace mlir;
using namespace dyncc::dyn;

/// The most target classes of one jump_to action.
static constexpr size_t kMaxJumpTargets = 1024;

#define GET_OP_CLASSES
#include "dialect/DynOps.cpp.inc"

namespace {

std::optional<double> asDouble(std::optional<llvm::APFloat> value) {
  if (!value)
    return std::nullopt;
  return value->convertToDouble();
}

/// `type` with its leading dimension dropped.
RankedTensorType dropLeadingDim(RankedTensorType type) {
  return RankedTensorType::get(type.getShape().drop_front(),
                               type.getElementType());
}

/// Checks that `region`'s single block takes exactly `expected` arguments.
LogicalResult verifyBlockArgs(Operation *op, Region &region,
                              StringRef regionName, TypeRange expected,
                              StringRef signature) {
  Block &block = region.front();
  if (block.getNumArguments() != expected.size())
    return op->emitOpError()
           << regionName << " must take " << expected.size()
           << " argument(s) " << signature << ", but takes "
           << block.getNumArguments();
  for (auto [i, arg, want] :
       llvm::enumerate(block.getArguments(), expected)) {
    if (arg.getType() != want)
      return op->emitOpError()
             << regionName << " argument #" << i << " must be " << want
             << " " << signature << ", but is " << arg.getType();
  }
  return success();
}

/// Checks that `region` ends with a dyn.yield of exactly `expected` types.
LogicalResult verifyYield(Operation *op, Region &region, StringRef regionName,
                          TypeRange expected) {
  auto yield = dyn_cast<YieldOp>(region.front().getTerminator());
  if (!yield)
    return op->emitOpError() << regionName << " must end with dyn.yield";
  if (yield.getValues().getTypes() != expected) {
    InFlightDiagnostic diag = op->emitOpError()
                              << regionName << " must yield (";
    llvm::interleaveComma(expected, diag);
    diag << ") but yields (";
    llvm::interleaveComma(yield.getValues().getTypes(), diag);
    return diag << ")";
  }
  return success();
}

} // namespace

//===----------------------------------------------------------------------===//
// ExitIfOp
//===----------------------------------------------------------------------===//

ExitIfOp ExitIfOp::getPreviousInChain() {
  return dyn_cast_or_null<ExitIfOp>((*this)->getParentOp());
}

LogicalResult ExitIfOp::verify() {
  RankedTensorType logits = getLogits().getType();
  bool token = isTokenLevel();
  int64_t wantRank = token ? 3 : 2;
  if (logits.getRank() != wantRank)
    return emitOpError() << (token ? "token" : "sample")
                         << "-level exit expects logits of rank " << wantRank
                         << (token ? " ([batch, seq, classes])"
                                   : " ([batch, classes])")
                         << ", got " << logits;
  if (!logits.hasStaticShape())
    return emitOpError() << "logits must have a static shape, got " << logits;
  int64_t numClasses = logits.getShape().back();
  if (numClasses < 1)
    return emitOpError() << "logits must have at least one class";
  if (getLayer() < 1)
    return emitOpError() << "layer must be >= 1, got " << getLayer();

  // The per-sample (or per-token) prefix every side operand must share.
  ArrayRef<int64_t> prefix = logits.getShape().drop_back();

  bool learned = isa<LearnedScoreCriterionAttr>(getCriterion());
  if (learned && !getScore())
    return emitOpError()
           << "criterion learned_score needs the 'score' operand (the exit "
              "head's output)";
  if (!learned && getScore())
    return emitOpError() << "'score' operand is only used by criterion "
                            "learned_score, not "
                         << criterionName(getCriterion());
  if (Value score = getScore()) {
    auto scoreType = cast<RankedTensorType>(score.getType());
    ArrayRef<int64_t> shape = scoreType.getShape();
    bool ok = shape == prefix ||
              (shape.drop_back() == prefix && shape.back() == 1);
    if (!ok)
      return emitOpError() << "score must have one value per "
                           << (token ? "token" : "sample") << " (shape ["
                           << prefix << "] or [" << prefix << ", 1]), got "
                           << scoreType;
  }

  if (token && !getHidden())
    return emitOpError() << "token-level exit needs the 'hidden' operand (the "
                            "layer output whose exited tokens are frozen)";
  if (!token && getHidden())
    return emitOpError()
           << "'hidden' operand is only used by token-level exit";
  if (Value hidden = getHidden()) {
    auto hiddenType = cast<RankedTensorType>(hidden.getType());
    if (hiddenType.getRank() != 3 ||
        hiddenType.getShape().drop_back() != prefix)
      return emitOpError() << "hidden must be [batch, seq, features] with the "
                              "batch and seq of the logits ["
                           << prefix << "], got " << hiddenType;
  }

  if (auto err = checkCriterionDomain(getCriterion(), numClasses))
    return emitOpError() << *err;

  if (ExitIfOp prev = getPreviousInChain()) {
    if (getLayer() <= prev.getLayer())
      return emitOpError() << "layer " << getLayer()
                           << " must be greater than the layer of the "
                              "enclosing exit point ("
                           << prev.getLayer() << ")";
    if (criterionName(prev.getCriterion()) != criterionName(getCriterion()))
      return emitOpError() << "criterion " << criterionName(getCriterion())
                           << " differs from the criterion of its chain ("
                           << criterionName(prev.getCriterion()) << ")";
    if (prev.getGranularity() != getGranularity())
      return emitOpError() << "granularity differs from the enclosing exit "
                              "point's; one chain exits either samples or "
                              "tokens";
  }
  return success();
}

LogicalResult ExitIfOp::verifyRegions() {
  SmallVector<Type> args;
  if (Value hidden = getHidden())
    args.push_back(hidden.getType());
  if (failed(verifyBlockArgs(*this, getBody(), "region", args,
                             isTokenLevel()
                                 ? "(the frozen hidden state)"
                                 : "(sample-level exit takes none)")))
    return failure();
  return verifyYield(*this, getBody(), "region", {getLogits().getType()});
}

//===----------------------------------------------------------------------===//
// RouteOp
//===----------------------------------------------------------------------===//

int64_t RouteOp::getExpertsPerToken() {
  switch (getStrategy()) {
  case RoutingStrategy::top_k:
  case RoutingStrategy::k_top1:
    return getK().value_or(1);
  case RoutingStrategy::gshard:
    return 2;
  case RoutingStrategy::dense_to_sparse:
    return getNumExperts();
  case RoutingStrategy::switch_:
  case RoutingStrategy::base:
  case RoutingStrategy::hash:
  case RoutingStrategy::random:
    return 1;
  }
  llvm_unreachable("unknown routing strategy");
}

LogicalResult RouteOp::verify() {
  RoutingStrategy strategy = getStrategy();
  StringRef strategyName = stringifyRoutingStrategy(strategy);
  RankedTensorType input = getInput().getType();
  if (input.getRank() != 2 || !input.hasStaticShape())
    return emitOpError() << "input must be a static [tokens, features] "
                            "tensor, got "
                         << input;
  int64_t tokens = input.getDimSize(0);
  int64_t experts = getNumExperts();
  if (experts < 1)
    return emitOpError() << "num_experts must be >= 1, got " << experts;

  // Gate: logits [T, E], or token ids [T] for hash routing.
  auto gate = cast<RankedTensorType>(getGate().getType());
  if (strategy == RoutingStrategy::hash) {
    if (!gate.getElementType().isSignlessInteger() || gate.getRank() != 1 ||
        gate.getDimSize(0) != tokens)
      return emitOpError() << "hash routing takes the token ids as gate, an "
                              "integer tensor of shape ["
                           << tokens << "], got " << gate;
  } else {
    if (!isa<FloatType>(gate.getElementType()) || gate.getRank() != 2)
      return emitOpError() << "strategy " << strategyName
                           << " takes gate logits, a float tensor [tokens, "
                              "experts], got "
                           << gate;
    if (gate.getDimSize(0) != tokens)
      return emitOpError() << "gate has " << gate.getDimSize(0)
                           << " rows but the input has " << tokens
                           << " tokens";
    if (gate.getDimSize(1) != experts)
      return emitOpError() << "gate scores " << gate.getDimSize(1)
                           << " experts but num_experts = " << experts;
  }
  if (getTable() && strategy != RoutingStrategy::hash)
    return emitOpError() << "'table' operand only applies to hash routing";
  if (Value table = getTable()) {
    auto tableType = cast<RankedTensorType>(table.getType());
    if (tableType.getRank() != 1 || !tableType.hasStaticShape())
      return emitOpError() << "hash table must be a static rank-1 tensor "
                              "mapping token ids to experts, got "
                           << tableType;
  }

  // k, by strategy.
  std::optional<int64_t> k = getK();
  auto fixedK = [&](int64_t want) -> LogicalResult {
    if (k && *k != want)
      return emitOpError() << "strategy " << strategyName << " routes to "
                           << want << " expert(s) per token; k = " << *k
                           << " is not allowed";
    return success();
  };
  switch (strategy) {
  case RoutingStrategy::top_k:
  case RoutingStrategy::k_top1:
    if (!k)
      return emitOpError() << "strategy " << strategyName << " needs k";
    if (*k < 1)
      return emitOpError() << "k must be >= 1, got " << *k;
    if (*k > experts)
      return emitOpError() << "k = " << *k
                           << " exceeds the number of experts (" << experts
                           << ")";
    if (strategy == RoutingStrategy::k_top1 && experts % *k != 0)
      return emitOpError() << "k_top1 splits the " << experts
                           << " experts into k = " << *k
                           << " prototypes; k must divide num_experts";
    break;
  case RoutingStrategy::gshard:
    if (failed(fixedK(2)))
      return failure();
    if (experts < 2)
      return emitOpError() << "gshard routes to 2 experts per token but "
                              "num_experts = "
                           << experts;
    break;
  case RoutingStrategy::dense_to_sparse:
    if (k)
      return emitOpError() << "dense_to_sparse visits every expert above the "
                              "threshold; k is not used";
    break;
  default:
    if (failed(fixedK(1)))
      return failure();
    break;
  }

  // Strategy-specific attributes.
  bool dts = strategy == RoutingStrategy::dense_to_sparse;
  if (dts && (!getTemperature() || !getThreshold()))
    return emitOpError() << "dense_to_sparse needs temperature and threshold";
  if (!dts && (getTemperature() || getThreshold()))
    return emitOpError() << "temperature and threshold only apply to "
                            "strategy dense_to_sparse";
  if (std::optional<double> t = asDouble(getTemperature()))
    if (!(*t >= std::numeric_limits<float>::min()) ||
        !(*t <= std::numeric_limits<float>::max()))
      return emitOpError() << "temperature = " << fmt::format("{}", *t)
                           << " must be a positive, normal f32 and finite";
  if (std::optional<double> th = asDouble(getThreshold()))
    if (!(*th >= 0.0 && *th < 1.0))
      return emitOpError() << "threshold = " << fmt::format("{}", *th) << " is outside [0, 1)";
  bool seeded = strategy == RoutingStrategy::gshard ||
                strategy == RoutingStrategy::random;
  if (seeded && !getSeed())
    return emitOpError() << "strategy " << strategyName
                         << " draws at random and needs a seed";
  if (!seeded && getSeed())
    return emitOpError() << "seed only applies to strategies gshard and "
                            "random";

  // Capacity.
  std::optional<double> factor = asDouble(getCapacityFactor());
  std::optional<int64_t> block = getDroplessBlock();
  if (factor && block)
    return emitOpError() << "capacity_factor and dropless_block exclude each "
                            "other: capacity drops tokens, dropless keeps all";
  if (factor && (!(*factor > 0.0) || std::isinf(*factor)))
    return emitOpError() << "capacity_factor must be positive and finite, got "
                         << fmt::format("{}", *factor);
  if (block && *block < 1)
    return emitOpError() << "dropless_block must be >= 1, got " << *block;
  if (getPriority() && !factor)
    return emitOpError() << "priority only applies with a capacity_factor";
  if (strategy == RoutingStrategy::base) {
    if (factor || block)
      return emitOpError() << "base assigns exactly tokens / experts per "
                              "expert; capacity_factor and dropless_block "
                              "do not apply";
    if (tokens % experts != 0)
      return emitOpError() << "base needs the " << tokens
                           << " tokens to split evenly over " << experts
                           << " experts";
  }
  if (std::optional<int64_t> groups = getGroups()) {
    if (*groups < 1 || tokens % *groups != 0)
      return emitOpError() << "groups = " << *groups
                           << " must be >= 1 and divide the " << tokens
                           << " tokens";
  }

  // Expert parameters: one slice per expert.
  for (auto [i, param] : llvm::enumerate(getExpertParams())) {
    auto type = dyn_cast<RankedTensorType>(param.getType());
    if (!type || type.getRank() < 1 || type.getDimSize(0) != experts)
      return emitOpError() << "expert parameter #" << i
                           << " must have a leading dimension of "
                           << experts << " (one slice per expert), got "
                           << param.getType();
  }

  RankedTensorType result = getResult().getType();
  if (result.getRank() != 2 || result.getDimSize(0) != tokens ||
      result.getElementType() != input.getElementType())
    return emitOpError() << "result must be [" << tokens
                         << ", features] of " << input.getElementType()
                         << ", got " << result;
  return success();
}

LogicalResult RouteOp::verifyRegions() {
  RankedTensorType input = getInput().getType();
  SmallVector<Type> args{RankedTensorType::get(
      {ShapedType::kDynamic, input.getDimSize(1)}, input.getElementType())};
  for (Value param : getExpertParams())
    args.push_back(dropLeadingDim(cast<RankedTensorType>(param.getType())));
  if (failed(verifyBlockArgs(*this, getBody(), "expert body", args,
                             "(the routed tokens, then one slice of each "
                             "expert parameter)")))
    return failure();
  RankedTensorType result = getResult().getType();
  Type rows = RankedTensorType::get({ShapedType::kDynamic, result.getDimSize(1)},
                                    result.getElementType());
  return verifyYield(*this, getBody(), "expert body", {rows});
}

//===----------------------------------------------------------------------===//
// SkipOp
//===----------------------------------------------------------------------===//

namespace {

bool needsRegion(SkipActionKind kind) {
  switch (kind) {
  case SkipActionKind::read:
  case SkipActionKind::skim:
  case SkipActionKind::reread:
  case SkipActionKind::partial:
  case SkipActionKind::flush:
  case SkipActionKind::upper:
    return true;
  default:
    return false;
  }
}

bool movesByAmount(SkipActionKind kind) {
  return kind == SkipActionKind::jump || kind == SkipActionKind::shuttle;
}

} // namespace

RankedTensorType SkipOp::getStepType() {
  return dropLeadingDim(getSequence().getType());
}

LogicalResult SkipOp::verify() {
  RankedTensorType seq = getSequence().getType();
  if (seq.getRank() < 1 || !seq.hasStaticShape() || seq.getDimSize(0) < 1)
    return emitOpError() << "sequence must be a static tensor [steps, ...] "
                            "with at least one step, got "
                         << seq;
  int64_t steps = seq.getDimSize(0);
  if (!getBudget())
    return emitOpError() << "needs a step budget ('budget N'): without one a "
                            "backward jump or a re-read can loop forever";
  // The runtime counts steps (and sizes the trace) in int32.
  if (*getBudget() < 1 || *getBudget() > INT32_MAX)
    return emitOpError() << "budget must be in [1, 2147483647], got "
                         << *getBudget();

  ArrayAttr actions = getActions();
  if (actions.empty())
    return emitOpError() << "needs at least one action";
  if (actions.size() != getActionBodies().size())
    return emitOpError() << "has " << actions.size() << " action(s) but "
                         << getActionBodies().size()
                         << " action region(s); give one region per action "
                            "(empty to copy the state)";
  bool jumpsTo = false;
  for (auto [i, attr] : llvm::enumerate(actions.getAsRange<SkipActionAttr>())) {
    bool isJumpTo = attr.getKind() == SkipActionKind::jump_to;
    jumpsTo |= isJumpTo;
    // Each target is one comparison in the lowered step; a class list
    // longer than any vocabulary of token classes is a mistake.
    if (attr.getTargets().size() > kMaxJumpTargets)
      return emitOpError() << "action #" << i << " (jump_to) has "
                           << attr.getTargets().size()
                           << " target classes; at most " << kMaxJumpTargets
                           << " are supported";
    if (!isJumpTo && !attr.getTargets().empty())
      return emitOpError() << "action #" << i << " ("
                           << stringifySkipActionKind(attr.getKind())
                           << ") takes no targets; only jump_to does";
  }
  if (jumpsTo && !getClasses())
    return emitOpError() << "jump_to needs the 'classes' operand (the class of "
                            "every step)";
  if (Value classes = getClasses()) {
    auto type = cast<RankedTensorType>(classes.getType());
    if (type.getRank() != 1 || type.getDimSize(0) != steps)
      return emitOpError() << "classes must have one value per step (["
                           << steps << "]), got " << type;
  }
  if (getResults().getTypes() != getInit().getTypes())
    return emitOpError() << "results must have the types of the initial "
                            "state";
  return success();
}

LogicalResult SkipOp::verifyRegions() {
  SmallVector<Type> args{IndexType::get(getContext()), getStepType()};
  llvm::append_range(args, getInit().getTypes());
  StringRef signature = "(pos: index, step input, state...)";
  if (failed(verifyBlockArgs(*this, getDecide(), "decide region", args,
                             signature)))
    return failure();
  auto decide = dyn_cast<DecideOp>(getDecide().front().getTerminator());
  if (!decide)
    return emitOpError() << "decide region must end with dyn.decide";

  ArrayAttr actions = getActions();
  bool needsAmount = false;
  for (auto [i, attr, region] :
       llvm::enumerate(actions.getAsRange<SkipActionAttr>(),
                       getActionBodies())) {
    SkipActionKind kind = attr.getKind();
    StringRef kindName = stringifySkipActionKind(kind);
    needsAmount |= movesByAmount(kind);
    std::string name = ("action #" + Twine(i) + " (" + kindName + ")").str();
    if (region.empty()) {
      if (needsRegion(kind))
        return emitOpError() << name
                             << " computes a new state and needs a region";
      continue;
    }
    if (kind == SkipActionKind::skip)
      return emitOpError() << name
                           << " copies the state; its region must be empty";
    if (!region.hasOneBlock())
      return emitOpError() << name << " region must have a single block";
    if (failed(verifyBlockArgs(*this, region, name, args, signature)) ||
        failed(verifyYield(*this, region, name, getInit().getTypes())))
      return failure();
  }
  if (needsAmount && !decide.getAmount())
    return emitOpError() << "has a jump or shuttle action, so dyn.decide must "
                            "give the amount ('dyn.decide %a jump %n')";
  return success();
}
