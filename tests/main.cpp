// The test runner (doctest). Test suites are CTest labels: unit, gradcheck, oracle, gpu, slow.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "core/context.h"

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  return context.run();
}
