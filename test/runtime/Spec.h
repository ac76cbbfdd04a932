//===- Spec.h - tensor specs for hand-built model descriptors ---*- C++ -*-===//
//
// Shared by the runtime's tests (TestUtil.h) and the C API fuzzer
// (test/fuzz/fuzz_capi.cpp), which must not depend on GoogleTest.
//
//===----------------------------------------------------------------------===//

#ifndef DYNCC_TEST_RUNTIME_SPEC_H
#define DYNCC_TEST_RUNTIME_SPEC_H

#include "runtime/dynrt.h"

#include <cstdint>
#include <initializer_list>

namespace dynrt::test {

// What a model expects of one tensor, for hand-built descriptors and binds.
inline dynrt_param_spec_t spec(const char *name, dynrt_dtype_t dtype,
                               std::initializer_list<int64_t> shape) {
  dynrt_param_spec_t s{};
  s.name = name;
  s.dtype = dtype;
  s.rank = static_cast<int32_t>(shape.size());
  int d = 0;
  for (int64_t extent : shape)
    s.shape[d++] = extent;
  return s;
}

} // namespace dynrt::test

#endif // DYNCC_TEST_RUNTIME_SPEC_H
