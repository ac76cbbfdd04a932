//===- DynAttrs.cpp - attributes and enums of dyn -------------------------===//

#include "dialect/DynDialect.h"
#include "dialect/DynUtils.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

using namespace mlir;
using namespace dyncc::dyn;

#include "dialect/DynEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/DynAttrs.cpp.inc"

void DynDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialect/DynAttrs.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// RuntimeParamAttr: #dyn.param<"name" = 0.5> or #dyn.param<"name" = [1, 2]>
//===----------------------------------------------------------------------===//

/// A float literal, an integer literal or `inf` (the natural "always" or
/// "never" threshold of some criteria).
static ParseResult parseParamValue(AsmParser &parser, double &value) {
  if (succeeded(parser.parseOptionalKeyword("inf"))) {
    value = std::numeric_limits<double>::infinity();
    return success();
  }
  Attribute literal;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseAttribute(literal))
    return failure();
  if (auto f = dyn_cast<FloatAttr>(literal))
    value = f.getValueAsDouble();
  else if (auto i = dyn_cast<IntegerAttr>(literal))
    value = static_cast<double>(i.getValue().getSExtValue());
  else
    return parser.emitError(loc, "expected a number or 'inf'");
  return success();
}

/// The shortest text that parses back to exactly `value` ("0.3", "2",
/// "inf"), which is also what a person would write.
static void printParamValue(AsmPrinter &printer, double value) {
  std::string text = fmt::format("{}", value);
  // MLIR float literals need a '.' before an exponent: 1e-05 -> 1.0e-05.
  size_t exponent = text.find('e');
  if (exponent != std::string::npos && text.find('.') == std::string::npos)
    text.insert(exponent, ".0");
  printer << text;
}

Attribute RuntimeParamAttr::parse(AsmParser &parser, Type) {
  std::string name;
  SmallVector<double> values;
  bool isVector = false;
  if (parser.parseLess() || parser.parseString(&name) || parser.parseEqual())
    return {};
  auto parseOne = [&]() -> ParseResult {
    double v;
    if (parseParamValue(parser, v))
      return failure();
    values.push_back(v);
    return success();
  };
  if (succeeded(parser.parseOptionalLSquare())) {
    isVector = true;
    if (parser.parseCommaSeparatedList(parseOne) || parser.parseRSquare())
      return {};
  } else if (parseOne()) {
    return {};
  }
  if (parser.parseGreater())
    return {};
  MLIRContext *ctx = parser.getContext();
  return parser.getChecked<RuntimeParamAttr>(
      ctx, name, DenseF64ArrayAttr::get(ctx, values), isVector);
}

void RuntimeParamAttr::print(AsmPrinter &printer) const {
  printer << "<\"" << getName() << "\" = ";
  if (getIsVector())
    printer << "[";
  llvm::interleaveComma(getValues(), printer,
                        [&](double v) { printParamValue(printer, v); });
  if (getIsVector())
    printer << "]";
  printer << ">";
}

LogicalResult
RuntimeParamAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                         StringRef name, DenseF64ArrayAttr defaults,
                         bool isVector) {
  ArrayRef<double> values = defaults.asArrayRef();
  if (!isValidParamName(name))
    return emitError() << "runtime parameter name '" << name
                       << "' is not an identifier (letters, digits, '_', "
                          "'.'-separated parts)";
  if (values.empty())
    return emitError() << "runtime parameter '" << name
                       << "' needs at least one default value";
  if (!isVector && values.size() != 1)
    return emitError() << "scalar runtime parameter '" << name
                       << "' must have exactly one value";
  for (double v : values)
    if (std::isnan(v))
      return emitError() << "runtime parameter '" << name
                         << "' has a NaN default";
  return success();
}
