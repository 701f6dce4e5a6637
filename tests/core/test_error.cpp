// Error locations name the source file from the repository's root, not the build machine's checkout.
#include <doctest/doctest.h>

#include "core/error.h"

TEST_SUITE("unit") {

TEST_CASE("errors: the location is a repository-relative path") {
  std::string message;
  try {
    MPNCOV_CHECK(1 + 1 == 3, "arithmetic is broken");
  } catch (const mpncov::Error& e) {
    message = e.what();
  }
  CHECK(message.find("arithmetic is broken [tests/core/test_error.cpp:") == 0);
  CHECK(message.find("..") == std::string::npos);
}

}  // TEST_SUITE
