// The test runner (doctest). Test suites are CTest labels: unit, gradcheck, oracle, gpu, slow.
//
// Tests that cannot run here skip themselves with doctest::skip (GPU tests without a GPU). So that CTest
// shows them as skipped rather than hiding or passing them: listings include them (CTest registers every
// test), and a run in which no selected test ran prints "[mpncov] SKIPPED: <reason>", which CTest's
// SKIP_REGULAR_EXPRESSION (CMakeLists.txt) reports as "Skipped".
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstring>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "core/blas_setup.h"
#include "core/context.h"

namespace {

struct SkipReporter : doctest::IReporter {
  explicit SkipReporter(const doctest::ContextOptions& options) : out(options.cout) {}

  void test_case_skipped(const doctest::TestCaseData& tc) override {
    if (tc.m_skip) reasons.insert(tc.m_description && *tc.m_description ? tc.m_description : "marked to skip");
  }
  void test_run_end(const doctest::TestRunStats& stats) override {
    if (!out || stats.numTestCasesPassingFilters > 0) return;
    *out << "[mpncov] SKIPPED:";
    if (reasons.empty()) *out << " no test case matches the selection";
    for (const std::string& r : reasons) *out << " " << r << (r == *reasons.rbegin() ? "" : ";");
    *out << std::endl;
  }

  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}

  std::ostream* out;
  std::set<std::string> reasons;
};

REGISTER_LISTENER("mpncov-skips", 1, SkipReporter);

bool lists_cases(const char* arg) {
  return std::strstr(arg, "list-test-cases") || std::strncmp(arg, "-ltc", 4) == 0 ||
         std::strncmp(arg, "--ltc", 5) == 0;
}
bool lists_suites(const char* arg) {
  return std::strstr(arg, "list-test-suites") || std::strncmp(arg, "-lts", 4) == 0 ||
         std::strncmp(arg, "--lts", 5) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  mpncov::select_blas_kernels(argv);
  bool listing = false, suites = false;
  for (int i = 1; i < argc; ++i) {
    suites = suites || lists_suites(argv[i]);
    listing = listing || suites || lists_cases(argv[i]);
  }
  // CTest's label discovery runs "--test-case=NAME --list-test-suites" with NAME unescaped, and doctest
  // splits filters at commas: escape them there, so that a test whose name has a comma keeps its label.
  std::vector<std::string> args(argv, argv + argc);
  const std::string filter = "--test-case=";
  for (std::string& a : args) {
    if (!suites || a.compare(0, filter.size(), filter) != 0) continue;
    std::string escaped;
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i] == '\\' && i + 1 < a.size()) {  // already escaped: keep the pair
        escaped += a.substr(i++, 2);
        continue;
      }
      if (a[i] == ',' && i >= filter.size()) escaped += '\\';
      escaped += a[i];
    }
    a = escaped;
  }
  std::vector<const char*> pointers;
  for (const std::string& a : args) pointers.push_back(a.c_str());
  doctest::Context context(argc, pointers.data());
  if (listing) context.setOption("no-skip", true);
  return context.run();
}
