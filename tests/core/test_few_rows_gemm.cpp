// The few-rows product (core/cpu/few_rows_gemm.cpp): C = alpha A B^T + beta C for 2 to 8 rows against a
// large B, streamed once. It takes exactly those shapes (on a CPU with AVX-512), equals the float64 product
// within float32 rounding with a tail of k past the vector width, rows of B past the groups of three, padded
// rows and both betas, gives each row the same bits whatever the other rows are, and ops::gemm takes it.
#include <cmath>
#include <limits>
#include <vector>

#include "core/cpu/cpu_ops.h"
#include "core/ops.h"
#include "tests/helpers.h"

using namespace mpncov;

namespace {

bool avx512() { return __builtin_cpu_supports("avx512f"); }

std::vector<float> values(int64_t count, uint64_t seed) {
  const Tensor t = test::random_tensor(Shape({count}), DType::F32, seed);
  return std::vector<float>(t.data<float>(), t.data<float>() + count);
}

// max |c - (alpha A B^T + beta c0)| over max |reference|, the reference in double.
double error(const std::vector<float>& c, const std::vector<float>& c0, const std::vector<float>& a,
             const std::vector<float>& b, int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc,
             double alpha, double beta) {
  double worst = 0, scale = 1e-30;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double dot = 0;
      for (int64_t q = 0; q < k; ++q)
        dot += static_cast<double>(a[static_cast<size_t>(i * lda + q)]) * b[static_cast<size_t>(j * ldb + q)];
      const double want = alpha * dot + (beta == 0 ? 0.0 : beta * c0[static_cast<size_t>(i * ldc + j)]);
      const double got = c[static_cast<size_t>(i * ldc + j)];
      worst = std::max(worst, std::isnan(got) ? INFINITY : std::abs(got - want));
      scale = std::max(scale, std::abs(want));
    }
  return worst / scale;
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("few-rows product: takes 2 to 8 rows against a large B, only with AVX-512") {
  const int64_t n = 1100, k = 1000;  // B 4.4 MB
  const std::vector<float> a = values(9 * k, 1), b = values(n * k, 2);
  std::vector<float> c(static_cast<size_t>(9 * n));
  CHECK(cpu::few_rows_gemm(8, n, k, 1, a.data(), k, b.data(), k, 0, c.data(), n) == avx512());
  CHECK(cpu::few_rows_gemm(2, n, k, 1, a.data(), k, b.data(), k, 0, c.data(), n) == avx512());
  CHECK_FALSE(cpu::few_rows_gemm(1, n, k, 1, a.data(), k, b.data(), k, 0, c.data(), n));  // gemv's
  CHECK_FALSE(cpu::few_rows_gemm(9, n, k, 1, a.data(), k, b.data(), k, 0, c.data(), n));
  CHECK_FALSE(cpu::few_rows_gemm(8, 100, k, 1, a.data(), k, b.data(), k, 0, c.data(), n));  // B 0.4 MB
}

TEST_CASE("few-rows product: equals float64 with a k tail, leftover rows of B, padded rows and both betas") {
  if (!avx512()) return;  // the route is not taken here (checked above)
  const int64_t n = 1103, k = 1037, lda = 1040, ldb = 1045, ldc = 1110;  // k % 16 = 13, n % 3 = 2
  const std::vector<float> a = values(8 * lda, 3), b = values(n * ldb, 4), start = values(8 * ldc, 5);
  for (int64_t m = 2; m <= 8; ++m)
    for (double beta : {0.0, 0.5}) {
      CAPTURE(m);
      CAPTURE(beta);
      std::vector<float> c = start;
      // beta 0 must not read C: NaN there stays out of the result.
      if (beta == 0) c.assign(c.size(), std::numeric_limits<float>::quiet_NaN());
      REQUIRE(cpu::few_rows_gemm(m, n, k, 1.5f, a.data(), lda, b.data(), ldb, static_cast<float>(beta), c.data(), ldc));
      CHECK(error(c, start, a, b, m, n, k, lda, ldb, ldc, 1.5, beta) < 1e-5);
      // Columns past n and rows past m untouched.
      bool outside = true;
      for (int64_t i = 0; i < 8; ++i)
        for (int64_t j = 0; j < ldc; ++j)
          if (i >= m || j >= n) {
            const float v = c[static_cast<size_t>(i * ldc + j)];
            outside = outside && (beta == 0 ? std::isnan(v) : v == start[static_cast<size_t>(i * ldc + j)]);
          }
      CHECK(outside);
    }
}

TEST_CASE("few-rows product: a row's result has the same bits whatever the other rows are") {
  if (!avx512()) return;
  const int64_t n = 1000, k = 1200;
  const std::vector<float> a = values(8 * k, 6), b = values(n * k, 7);
  std::vector<float> all(static_cast<size_t>(8 * n)), some(static_cast<size_t>(3 * n)),
      shifted(static_cast<size_t>(2 * n));
  REQUIRE(cpu::few_rows_gemm(8, n, k, 1, a.data(), k, b.data(), k, 0, all.data(), n));
  REQUIRE(cpu::few_rows_gemm(3, n, k, 1, a.data(), k, b.data(), k, 0, some.data(), n));
  REQUIRE(cpu::few_rows_gemm(2, n, k, 1, a.data() + 5 * k, k, b.data(), k, 0, shifted.data(), n));
  CHECK(std::equal(some.begin(), some.end(), all.begin()));
  CHECK(std::equal(shifted.begin(), shifted.end(), all.begin() + 5 * n));
}

TEST_CASE("few-rows product: ops::gemm with a transposed B and a few rows gives the float64 product") {
  const int64_t m = 6, n = 1200, k = 1100;
  const Tensor a = test::random_tensor(Shape({m, k}), DType::F32, 8), b = test::random_tensor(Shape({n, k}), DType::F32, 9);
  Tensor c = Tensor::zeros(Shape({m, n}));
  ops::gemm(false, true, m, n, k, 1.0, {a, 0, k, 0}, {b, 0, k, 0}, 0.0, c, 0, n, 0);
  const Tensor a64 = a.to(DType::F64), b64 = b.to(DType::F64);
  Tensor want = Tensor::zeros(Shape({m, n}), DType::F64);
  ops::gemm(false, true, m, n, k, 1.0, {a64, 0, k, 0}, {b64, 0, k, 0}, 0.0, want, 0, n, 0);
  CHECK(test::max_rel_diff(c, want) < 1e-5);
}
}  // TEST_SUITE
