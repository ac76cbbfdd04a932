//===- KernelIR.cpp - element types of KernelIR ---------------------------===//

#include "codegen/KernelIR.h"

namespace dyncc::kir {

int AffineDim::loop() const {
  int found = -1;
  for (size_t l = 0; l < coeffs.size(); ++l) {
    if (coeffs[l] == 0)
      continue;
    if (coeffs[l] != 1 || found >= 0)
      return -1;
    found = static_cast<int>(l);
  }
  return offset == 0 && divisor == 1 && modulus == 0 ? found : -1;
}

int64_t elemSize(ElemType type) {
  switch (type) {
  case ElemType::F32:
  case ElemType::I32:
    return 4;
  case ElemType::F64:
  case ElemType::I64:
    return 8;
  case ElemType::I16:
  case ElemType::BF16:
    return 2;
  case ElemType::I1:
  case ElemType::I8:
    return 1;
  }
  return 0;
}

const char *elemTypeName(ElemType type) {
  switch (type) {
  case ElemType::F32:
    return "f32";
  case ElemType::F64:
    return "f64";
  case ElemType::I1:
    return "i1";
  case ElemType::I8:
    return "i8";
  case ElemType::I16:
    return "i16";
  case ElemType::I32:
    return "i32";
  case ElemType::I64:
    return "i64";
  case ElemType::BF16:
    return "bf16";
  }
  return "?";
}

} // namespace dyncc::kir
