// StatusTest.cpp - tests of statuses and element types.
#include "TestUtil.h"

using namespace dynrt;
using namespace dynrt::test;

namespace {

TEST(StatusTest, NullIsOk) {
  EXPECT_EQ(dynrt_status_code(nullptr), DYNRT_OK);
  EXPECT_STREQ(dynrt_status_message(nullptr), "");
  dynrt_status_free(nullptr);
}

TEST(StatusTest, MakeStatusFormats) {
  StatusPtr status(makeStatus(DYNRT_OUT_OF_RANGE, "index {} of {}", 7, 3));
  ASSERT_TRUE(status);
  EXPECT_EQ(dynrt_status_code(status.get()), DYNRT_OUT_OF_RANGE);
  EXPECT_STREQ(dynrt_status_message(status.get()), "index 7 of 3");
  StatusPtr plain(makeStatus(DYNRT_INTERNAL, std::string("plain {}")));
  EXPECT_STREQ(dynrt_status_message(plain.get()), "plain {}");
}

TEST(StatusTest, OkCodeNeverMakesAnErrorLookLikeSuccess) {
  StatusPtr status(makeStatus(DYNRT_OK, std::string("oops")));
  ASSERT_TRUE(status);
  EXPECT_EQ(dynrt_status_code(status.get()), DYNRT_INTERNAL);
}

TEST(StatusTest, GuardExceptionsTurnsThrowsIntoStatuses) {
  EXPECT_TRUE(failsWith(guardExceptions([]() -> dynrt_status_t {
                          throw std::runtime_error("boom");
                        }),
                        DYNRT_INTERNAL, {"boom"}));
  EXPECT_TRUE(failsWith(
      guardExceptions([]() -> dynrt_status_t { throw std::bad_alloc(); }),
      DYNRT_RESOURCE_EXHAUSTED, {}));
}

TEST(StatusTest, CodeNames) {
  EXPECT_STREQ(dynrt_status_code_name(DYNRT_OK), "OK");
  EXPECT_STREQ(dynrt_status_code_name(DYNRT_DATA_LOSS), "DATA_LOSS");
  EXPECT_STREQ(dynrt_status_code_name(DYNRT_INTERNAL), "INTERNAL");
  EXPECT_STREQ(dynrt_status_code_name(static_cast<dynrt_status_code_t>(99)),
               "UNKNOWN");
}

TEST(DtypeTest, NamesAndSizes) {
  struct Expected {
    dynrt_dtype_t dtype;
    const char *name;
    size_t size;
  };
  for (Expected e : {Expected{DYNRT_F32, "F32", 4},
                     {DYNRT_F64, "F64", 8},
                     {DYNRT_F16, "F16", 2},
                     {DYNRT_BF16, "BF16", 2},
                     {DYNRT_I8, "I8", 1},
                     {DYNRT_U8, "U8", 1},
                     {DYNRT_I16, "I16", 2},
                     {DYNRT_I32, "I32", 4},
                     {DYNRT_I64, "I64", 8},
                     {DYNRT_BOOL, "BOOL", 1}}) {
    EXPECT_STREQ(dynrt_dtype_name(e.dtype), e.name);
    EXPECT_EQ(dynrt_dtype_size(e.dtype), e.size) << e.name;
  }
  EXPECT_EQ(dynrt_dtype_size(static_cast<dynrt_dtype_t>(42)), 0u);
  EXPECT_STREQ(dynrt_dtype_name(static_cast<dynrt_dtype_t>(42)), "UNKNOWN");
}

} // namespace
