// Every CPU op, float and double, against a naive reference loop on odd and degenerate shapes.
#include <algorithm>
#include <cmath>
#include <random>

#include "tests/helpers.h"

using namespace mpncov;
using mpncov::test::max_rel_diff;
using mpncov::test::random_tensor;

namespace {

double tol(DType dt) { return dt == DType::F32 ? 2e-5 : 1e-12; }

// Naive strided batched GEMM on doubles.
std::vector<double> naive_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                               const std::vector<double>& a, int64_t ao, int64_t lda, int64_t as,
                               const std::vector<double>& b, int64_t bo, int64_t ldb, int64_t bs, double beta,
                               std::vector<double> c, int64_t co, int64_t ldc, int64_t cs, int64_t batch) {
  for (int64_t z = 0; z < batch; ++z)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < k; ++p) {
          const double av = ta ? a[ao + z * as + p * lda + i] : a[ao + z * as + i * lda + p];
          const double bv = tb ? b[bo + z * bs + j * ldb + p] : b[bo + z * bs + p * ldb + j];
          acc += av * bv;
        }
        double& cv = c[co + z * cs + i * ldc + j];
        cv = alpha * acc + (beta == 0 ? 0 : beta * cv);
      }
  return c;
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("ops: gemm with transposes, offsets, leading dimensions, batches, alpha and beta") {
  std::mt19937 rng(7);
  for (DType dt : {DType::F32, DType::F64}) {
    for (int trial = 0; trial < 40; ++trial) {
      std::uniform_int_distribution<int> size(1, 13);
      const int64_t m = size(rng), n = size(rng), k = trial % 10 == 0 ? 0 : size(rng);
      const int64_t batch = trial % 3 + 1;
      const bool ta = trial & 1, tb = (trial >> 1) & 1;
      const double alpha = trial % 4 == 0 ? 1.0 : 0.75, beta = trial % 5 == 0 ? 0.0 : -0.5;
      const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
      const int64_t lda = a_cols + trial % 3, ldb = b_cols + 1, ldc = n + trial % 2;
      const int64_t as = a_rows * lda + 2, bs = b_rows * ldb, cs = m * ldc + 1;
      const int64_t ao = 3, bo = 1, co = 2;
      Tensor a = random_tensor({ao + batch * as + 1}, dt, 1 + trial);
      Tensor b = random_tensor({bo + batch * bs + 1}, dt, 100 + trial);
      Tensor c = random_tensor({co + batch * cs + 1}, dt, 200 + trial);
      if (beta == 0) c.fill(NAN);  // beta = 0 must ignore C entirely
      std::vector<double> expect =
          naive_gemm(ta, tb, m, n, k, alpha, a.to_vector(), ao, lda, as, b.to_vector(), bo, ldb, bs, beta,
                     c.to_vector(), co, ldc, cs, batch);
      ops::gemm(ta, tb, m, n, k, alpha, {a, ao, lda, as}, {b, bo, ldb, bs}, beta, c, co, ldc, cs, batch);
      std::vector<double> got = c.to_vector();
      // Elements outside the C matrices must be untouched (NaN stays NaN there when beta = 0).
      for (size_t i = 0; i < got.size(); ++i) {
        if (std::isnan(expect[i])) {
          CHECK(std::isnan(got[i]));
          got[i] = expect[i] = 0;
        }
      }
      INFO("m=", m, " n=", n, " k=", k, " batch=", batch, " ta=", ta, " tb=", tb);
      CHECK(max_rel_diff(got, expect) < tol(dt) * 10);
    }
  }
}

// Float products run on oneDNN's matmul (core/cpu/matmul_onednn.cpp), one primitive per shape: threads
// running the same shape at once (conv.cpp's split route: one image per thread) need scratchpads of
// their own, or they overwrite each other's packed blocks.
TEST_CASE("ops: float gemm of one shape on several threads at once equals the products one by one") {
  const int64_t m = 96, n = 80, k = 300, tasks = 8;
  const Tensor a = random_tensor({tasks, m, k}, DType::F32, 5), b = random_tensor({tasks, k, n}, DType::F32, 6);
  Tensor together = Tensor::zeros({tasks, m, n}, DType::F32), alone = Tensor::zeros({tasks, m, n}, DType::F32);
  for (int64_t t = 0; t < tasks; ++t)
    ops::gemm(false, false, m, n, k, 1.0, {a, t * m * k, k, 0}, {b, t * k * n, n, 0}, 0.0, alone, t * m * n, n, 0);
  for (int round = 0; round < 10; ++round) {  // a race shows only now and then
    together.fill(0);
#pragma omp parallel for num_threads(4) schedule(static, 1)
    for (int64_t t = 0; t < tasks; ++t)
      ops::gemm(false, false, m, n, k, 1.0, {a, t * m * k, k, 0}, {b, t * k * n, n, 0}, 0.0, together, t * m * n,
                n, 0);
    REQUIRE(together.to_vector() == alone.to_vector());
  }
}

// A single row or column of C goes to gemv (core/cpu/gemm.cpp), cut into blocks over the threads when the
// product is large enough: every transpose, strided vectors (a column of A^T, a column of B), beta = 0 over
// NaN, a batch of two, and an odd length that leaves a short last block.
TEST_CASE("ops: gemm with one row or one column of C (matrix-vector route), cut over the threads") {
  for (DType dt : {DType::F32, DType::F64}) {
    for (int trial = 0; trial < 16; ++trial) {
      const bool row = trial < 8, ta = trial & 1, tb = (trial >> 1) & 1;
      const int64_t m = row ? 1 : 1037, n = row ? 1037 : 1, k = 301, batch = (trial >> 2) % 2 + 1;
      const double alpha = 0.75, beta = trial % 3 == 0 ? 0.0 : -0.5;
      const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
      const int64_t lda = a_cols + 2, ldb = b_cols + 1, ldc = n + 3;
      const int64_t as = a_rows * lda + 5, bs = b_rows * ldb + 1, cs = m * ldc + 2;
      Tensor a = random_tensor({batch * as}, dt, 300 + trial);
      Tensor b = random_tensor({batch * bs}, dt, 400 + trial);
      Tensor c = random_tensor({batch * cs}, dt, 500 + trial);
      if (beta == 0) c.fill(NAN);
      std::vector<double> expect = naive_gemm(ta, tb, m, n, k, alpha, a.to_vector(), 0, lda, as, b.to_vector(), 0,
                                              ldb, bs, beta, c.to_vector(), 0, ldc, cs, batch);
      ops::gemm(ta, tb, m, n, k, alpha, {a, 0, lda, as}, {b, 0, ldb, bs}, beta, c, 0, ldc, cs, batch);
      std::vector<double> got = c.to_vector();
      for (size_t i = 0; i < got.size(); ++i) {
        if (std::isnan(expect[i])) {
          CHECK(std::isnan(got[i]));  // outside C: untouched
          got[i] = expect[i] = 0;
        }
      }
      INFO("m=", m, " n=", n, " batch=", batch, " ta=", ta, " tb=", tb, " beta=", beta);
      CHECK(max_rel_diff(got, expect) < tol(dt) * 10);
    }
  }
}

TEST_CASE("ops: gemm rejects mismatched or out-of-bounds operands") {
  Tensor a = Tensor::zeros({6}), b = Tensor::zeros({6}), c = Tensor::zeros({4});
  CHECK_THROWS_WITH_AS(ops::gemm(false, false, 2, 2, 3, 1, {a, 0, 3, 0}, {b, 0, 2, 0}, 0, c, 0, 2, 4, 2),
                       doctest::Contains("exceeds"), Error);
  CHECK_THROWS_WITH_AS(ops::gemm(false, false, 2, 2, 3, 1, {a, 0, 2, 0}, {b, 0, 2, 0}, 0, c, 0, 2, 0),
                       doctest::Contains("leading dimension"), Error);
  Tensor d = Tensor::zeros({4}, DType::F64);
  CHECK_THROWS_WITH_AS(ops::gemm(false, false, 2, 2, 3, 1, {a, 0, 3, 0}, {b, 0, 2, 0}, 0, d, 0, 2, 0),
                       doctest::Contains("different dtypes"), Error);
  CHECK_THROWS_WITH_AS(ops::matmul(Tensor::zeros({2, 3}), Tensor::zeros({2, 3}), Tensor::zeros({2, 3})),
                       doctest::Contains("do not agree"), Error);
}

TEST_CASE("ops: matmul, 2-D and batched 3-D") {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor a = random_tensor({3, 5, 7}, dt, 1), b = random_tensor({3, 4, 7}, dt, 2);
    Tensor c = Tensor::zeros({3, 5, 4}, dt);
    ops::matmul(a, b, c, false, true);
    std::vector<double> av = a.to_vector(), bv = b.to_vector(), cv = c.to_vector();
    double worst = 0;
    for (int z = 0; z < 3; ++z)
      for (int i = 0; i < 5; ++i)
        for (int j = 0; j < 4; ++j) {
          double acc = 0;
          for (int p = 0; p < 7; ++p) acc += av[z * 35 + i * 7 + p] * bv[z * 28 + j * 7 + p];
          worst = std::max(worst, std::abs(acc - cv[z * 20 + i * 4 + j]));
        }
    CHECK(worst < tol(dt) * 10);
  }
}

TEST_CASE("ops: im2col matches the convolution definition, col2im is its adjoint") {
  struct Case { int64_t c, h, w, kh, kw, sh, sw, ph, pw, dh, dw; };
  const Case cases[] = {{1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1}, {3, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1},
                        {2, 11, 13, 5, 3, 2, 3, 2, 0, 1, 2}, {4, 6, 6, 1, 1, 2, 2, 0, 0, 1, 1},
                        {1, 5, 7, 3, 2, 1, 2, 3, 1, 2, 1}, {2, 2, 2, 3, 3, 1, 1, 1, 1, 1, 1}};
  for (DType dt : {DType::F32, DType::F64}) {
    for (const Case& k : cases) {
      ops::ConvGeometry g;
      g.channels = k.c; g.height = k.h; g.width = k.w; g.kernel_h = k.kh; g.kernel_w = k.kw;
      g.stride_h = k.sh; g.stride_w = k.sw; g.pad_h = k.ph; g.pad_w = k.pw; g.dilation_h = k.dh; g.dilation_w = k.dw;
      const int64_t n = 2, oh = g.out_h(), ow = g.out_w();
      Tensor x = random_tensor({n, k.c, k.h, k.w}, dt, 3);
      Tensor col = Tensor::zeros({n, g.col_rows(), g.col_cols()}, dt);
      ops::im2col(x, g, col);
      std::vector<double> xv = x.to_vector(), cv = col.to_vector();
      double worst = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t c = 0; c < k.c; ++c)
          for (int64_t a = 0; a < k.kh; ++a)
            for (int64_t b = 0; b < k.kw; ++b)
              for (int64_t oy = 0; oy < oh; ++oy)
                for (int64_t ox = 0; ox < ow; ++ox) {
                  const int64_t iy = oy * k.sh - k.ph + a * k.dh, ix = ox * k.sw - k.pw + b * k.dw;
                  const double want = (iy >= 0 && iy < k.h && ix >= 0 && ix < k.w)
                                          ? xv[((i * k.c + c) * k.h + iy) * k.w + ix] : 0.0;
                  const int64_t row = (c * k.kh + a) * k.kw + b;
                  worst = std::max(worst, std::abs(want - cv[(i * g.col_rows() + row) * oh * ow + oy * ow + ox]));
                }
      CHECK(worst == 0.0);
      // Adjoint: <im2col(x), y> == <x, col2im(y)> for random y; col2im accumulates onto z.
      Tensor y = random_tensor(col.shape(), dt, 4);
      Tensor z = random_tensor(x.shape(), dt, 5);
      std::vector<double> z0 = z.to_vector();
      ops::col2im(y, g, z);
      std::vector<double> yv = y.to_vector(), zv = z.to_vector();
      double lhs = 0, rhs = 0;
      for (size_t i = 0; i < yv.size(); ++i) lhs += cv[i] * yv[i];
      for (size_t i = 0; i < zv.size(); ++i) rhs += xv[i] * (zv[i] - z0[i]);
      CHECK(std::abs(lhs - rhs) < tol(dt) * 100 * std::max(1.0, std::abs(lhs)));
    }
  }
  ops::ConvGeometry bad;
  bad.height = 2; bad.width = 2; bad.kernel_h = 5; bad.kernel_w = 5;
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("does not fit"), Error);
}

TEST_CASE("ops: unary maps, in place and out of place") {
  const std::vector<double> in = {-2.5, -1, -0.0, 0.0, 0.25, 1, 3};
  struct M { ops::Unary op; double (*f)(double); };
  const M maps[] = {
      {ops::Unary::Copy, [](double v) { return v; }}, {ops::Unary::Neg, [](double v) { return -v; }},
      {ops::Unary::Abs, [](double v) { return std::abs(v); }},
      {ops::Unary::Sign, [](double v) { return double((v > 0) - (v < 0)); }},
      {ops::Unary::Square, [](double v) { return v * v; }},
      {ops::Unary::Exp, [](double v) { return std::exp(v); }},
      {ops::Unary::Relu, [](double v) { return v > 0 ? v : 0.0; }}};
  for (DType dt : {DType::F32, DType::F64}) {
    for (const M& m : maps) {
      Tensor x = Tensor::from_vector(in, {7}, dt), y = Tensor::empty({7}, dt);
      ops::unary(m.op, x, y);
      std::vector<double> want;
      for (double v : in) want.push_back(m.f(v));
      CHECK(max_rel_diff(y.to_vector(), want) < tol(dt));
      ops::unary(m.op, x, x);  // in place
      CHECK(max_rel_diff(x.to_vector(), want) < tol(dt));
    }
    Tensor p = Tensor::from_vector({0.25, 4, 9, 1e-4}, {4}, dt), q = Tensor::empty({4}, dt);
    ops::unary(ops::Unary::Sqrt, p, q);
    CHECK(max_rel_diff(q.to_vector(), {0.5, 2, 3, 0.01}) < tol(dt));
    ops::unary(ops::Unary::Log, p, q);
    CHECK(max_rel_diff(q.to_vector(), {std::log(0.25), std::log(4.0), std::log(9.0), std::log(1e-4)}) < tol(dt));
    ops::unary(ops::Unary::Reciprocal, p, q);
    CHECK(max_rel_diff(q.to_vector(), {4, 0.25, 1.0 / 9, 1e4}) < tol(dt));
  }
}

TEST_CASE("ops: binary ops with same-shape, scalar and per-channel broadcast") {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor a = random_tensor({3, 5, 2, 7}, dt, 1, 0.5, 2);
    Tensor same = random_tensor({3, 5, 2, 7}, dt, 2, 0.5, 2);
    Tensor scalar = Tensor::from_vector({1.5}, {1}, dt);
    Tensor channel = random_tensor({5}, dt, 3, 0.5, 2);
    std::vector<double> av = a.to_vector();
    const ops::Binary all[] = {ops::Binary::Add, ops::Binary::Sub, ops::Binary::Mul, ops::Binary::Div,
                               ops::Binary::Max, ops::Binary::Min};
    auto f = [](ops::Binary op, double x, double y) {
      switch (op) {
        case ops::Binary::Add: return x + y;
        case ops::Binary::Sub: return x - y;
        case ops::Binary::Mul: return x * y;
        case ops::Binary::Div: return x / y;
        case ops::Binary::Max: return std::max(x, y);
        case ops::Binary::Min: return std::min(x, y);
      }
      return 0.0;
    };
    for (ops::Binary op : all) {
      Tensor out = Tensor::empty(a.shape(), dt);
      std::vector<double> sv = same.to_vector(), cv = channel.to_vector(), want(av.size());
      ops::binary(op, a, same, out);
      for (size_t i = 0; i < av.size(); ++i) want[i] = f(op, av[i], sv[i]);
      CHECK(max_rel_diff(out.to_vector(), want) < tol(dt));
      ops::binary(op, a, scalar, out);
      for (size_t i = 0; i < av.size(); ++i) want[i] = f(op, av[i], 1.5);
      CHECK(max_rel_diff(out.to_vector(), want) < tol(dt));
      ops::binary_scalar(op, a, 1.5, out);
      CHECK(max_rel_diff(out.to_vector(), want) < tol(dt));
      ops::binary(op, a, channel, out);
      for (size_t i = 0; i < av.size(); ++i) want[i] = f(op, av[i], cv[(i / 14) % 5]);
      CHECK(max_rel_diff(out.to_vector(), want) < tol(dt));
    }
    // 2-D (N, C) with a per-channel vector, in place.
    Tensor m = random_tensor({4, 3}, dt, 5);
    std::vector<double> mv = m.to_vector();
    Tensor bias = Tensor::from_vector({1, 2, 3}, {3}, dt);
    ops::binary(ops::Binary::Add, m, bias, m);
    std::vector<double> want(12);
    for (int i = 0; i < 12; ++i) want[i] = mv[i] + 1 + i % 3;
    CHECK(max_rel_diff(m.to_vector(), want) < tol(dt));
    CHECK_THROWS_WITH_AS(ops::binary(ops::Binary::Add, a, Tensor::zeros({7}, dt), a),
                         doctest::Contains("cannot broadcast"), Error);
  }
}

TEST_CASE("ops: axpby and fill") {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor x = random_tensor({37}, dt, 1), y = random_tensor({37}, dt, 2);
    std::vector<double> xv = x.to_vector(), yv = y.to_vector(), want(37);
    ops::axpby(2.0, x, -0.5, y);
    for (int i = 0; i < 37; ++i) want[i] = 2 * xv[i] - 0.5 * yv[i];
    CHECK(max_rel_diff(y.to_vector(), want) < tol(dt));
    y.fill(NAN);
    ops::axpby(3.0, x, 0.0, y);  // beta = 0 ignores NaN
    for (int i = 0; i < 37; ++i) want[i] = 3 * xv[i];
    CHECK(max_rel_diff(y.to_vector(), want) < tol(dt));
    Tensor big = Tensor::empty({100003}, dt);  // large enough for the threaded path
    big.fill(-4.25);
    std::vector<double> bv = big.to_vector();
    CHECK(std::all_of(bv.begin(), bv.end(), [](double v) { return v == -4.25; }));
  }
  Tensor labels = Tensor::empty({5}, DType::I64);
  labels.fill(3);
  CHECK(labels.to_vector() == std::vector<double>(5, 3.0));
}

TEST_CASE("ops: reductions over any set of axes against a naive loop") {
  std::mt19937 rng(11);
  const Shape shapes[] = {Shape({7}), Shape({3, 1, 5}), Shape({2, 3, 4, 5}), Shape({1, 1, 1}), Shape({4, 13, 1, 3}),
                          Shape({2, 0, 3})};
  for (DType dt : {DType::F32, DType::F64}) {
    for (const Shape& s : shapes) {
      const int nd = s.ndim();
      for (int mask = 0; mask < (1 << nd); ++mask) {
        std::vector<int> axes;
        for (int d = 0; d < nd; ++d)
          if (mask & (1 << d)) axes.push_back(rng() % 2 ? d : d - nd);  // negative axes too
        Tensor x = random_tensor(s, dt, static_cast<uint64_t>(mask + 1));
        std::vector<double> xv = x.to_vector();
        const Shape out_shape = ops::reduced_shape(s, axes, true);
        const int64_t outn = out_shape.numel();
        for (ops::Reduce op : {ops::Reduce::Sum, ops::Reduce::Mean, ops::Reduce::Max}) {
          const int64_t red = outn ? s.numel() / outn : 0;
          if (op == ops::Reduce::Max && red == 0) {
            if (outn > 0) CHECK_THROWS_AS(ops::reduce(op, x, axes), Error);
            continue;
          }
          std::vector<double> want(static_cast<size_t>(outn), op == ops::Reduce::Max ? -INFINITY : 0.0);
          std::vector<int64_t> want_idx(static_cast<size_t>(outn), -1), seen(static_cast<size_t>(outn), 0);
          for (int64_t i = 0; i < s.numel(); ++i) {
            // Unravel i, then ravel with reduced dims dropped.
            int64_t rem = i, o = 0, ostride = 1;
            std::vector<int64_t> idx(static_cast<size_t>(nd));
            for (int d = nd - 1; d >= 0; --d) { idx[d] = rem % s[d]; rem /= s[d]; }
            for (int d = nd - 1; d >= 0; --d)
              if (!(mask & (1 << d))) { o += idx[d] * ostride; ostride *= s[d]; }
            const double v = xv[static_cast<size_t>(i)];
            if (op == ops::Reduce::Max) {
              if (v > want[o]) { want[o] = v; want_idx[o] = seen[o]; }
              ++seen[o];
            } else {
              want[o] += op == ops::Reduce::Mean ? v / static_cast<double>(red) : v;
            }
          }
          Tensor out = Tensor::empty(out_shape, dt);
          Tensor index = Tensor::empty(out_shape, DType::I64);
          ops::reduce(op, x, axes, out, op == ops::Reduce::Max ? &index : nullptr);
          INFO("shape ", s.str(), " mask ", mask);
          CHECK(max_rel_diff(out.to_vector(), want) < tol(dt) * 10);
          if (op == ops::Reduce::Max) {
            std::vector<double> iv = index.to_vector();
            for (int64_t o = 0; o < outn; ++o) CHECK(iv[o] == static_cast<double>(want_idx[o]));
          }
        }
      }
    }
  }
  CHECK_THROWS_WITH_AS(ops::reduce(ops::Reduce::Sum, Tensor::zeros({2, 3}), {2}), doctest::Contains("out of range"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::reduce(ops::Reduce::Sum, Tensor::zeros({2, 3}), {1, -1}), doctest::Contains("twice"),
                       Error);
}

TEST_CASE("ops: a long sum with few outputs splits over the threads: accurate, the same at any thread count") {
  // 1.5 M values in two rows (fewer outputs than threads: the chunked route), a non-finite value found.
  const int64_t n = 3 * (int64_t{1} << 18) + 5;
  const Tensor x = random_tensor({2, n}, DType::F32, 5);
  const std::vector<double> xv = x.to_vector();
  const int saved = num_threads();
  std::vector<std::vector<double>> sums;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    sums.push_back(ops::reduce(ops::Reduce::Sum, x, {1}).to_vector());
  }
  set_num_threads(saved);
  for (int64_t row = 0; row < 2; ++row) {
    double want = 0;
    for (int64_t i = 0; i < n; ++i) want += xv[static_cast<size_t>(row * n + i)];
    CHECK(std::abs(sums[0][static_cast<size_t>(row)] - want) <= 1e-6 * std::abs(want) + 1e-3);
  }
  CHECK(sums[1] == sums[0]);
  CHECK(sums[2] == sums[0]);
  Tensor bad = x.clone();
  bad.reshape({-1}).slice(n + 12345, n + 12346).fill(INFINITY);
  CHECK(!std::isfinite(ops::reduce(ops::Reduce::Sum, bad, {1}).to_vector()[1]));
}

TEST_CASE("ops: random fills are deterministic per (seed, stream, index) and well distributed") {
  for (DType dt : {DType::F32, DType::F64}) {
    const int64_t n = 200000;
    Tensor u = Tensor::empty({n}, dt), u2 = Tensor::empty({n}, dt), other = Tensor::empty({n}, dt);
    ops::fill_uniform(u, -1, 3, 42, 7);
    ops::fill_uniform(u2, -1, 3, 42, 7);
    ops::fill_uniform(other, -1, 3, 42, 8);
    std::vector<double> a = u.to_vector(), b = u2.to_vector(), c = other.to_vector();
    CHECK(a == b);
    CHECK(a != c);
    // A prefix fill gives the prefix of the values: element i depends on i only.
    Tensor head = Tensor::empty({10}, dt);
    ops::fill_uniform(head, -1, 3, 42, 7);
    for (int i = 0; i < 10; ++i) CHECK(head.to_vector()[i] == a[i]);
    double mean = 0, lo = 1e9, hi = -1e9;
    for (double v : a) { mean += v / n; lo = std::min(lo, v); hi = std::max(hi, v); }
    CHECK(std::abs(mean - 1.0) < 0.02);
    CHECK(lo >= -1);
    CHECK(hi < 3);

    Tensor g = Tensor::empty({n}, dt);
    ops::fill_normal(g, 2, 0.5, 3, 0);
    double m = 0, var = 0;
    std::vector<double> gv = g.to_vector();
    for (double v : gv) m += v / n;
    for (double v : gv) var += (v - m) * (v - m) / n;
    CHECK(std::abs(m - 2) < 0.01);
    CHECK(std::abs(std::sqrt(var) - 0.5) < 0.01);

    Tensor mask = Tensor::empty({n}, dt);
    ops::fill_bernoulli(mask, 0.3, 9, 1);
    double ones = 0;
    for (double v : mask.to_vector()) {
      CHECK((v == 0 || v == 1));
      ones += v;
    }
    CHECK(std::abs(ones / n - 0.3) < 0.01);
  }
  // Float and double draws of a Bernoulli mask agree (both use the 24-bit uniform).
  Tensor mf = Tensor::empty({1000}, DType::F32), md = Tensor::empty({1000}, DType::F64);
  ops::fill_bernoulli(mf, 0.5, 1, 2);
  ops::fill_bernoulli(md, 0.5, 1, 2);
  CHECK(mf.to_vector() == md.to_vector());
  CHECK_THROWS_AS(ops::fill_bernoulli(mf, 1.5, 1, 2), Error);
}

}  // TEST_SUITE
