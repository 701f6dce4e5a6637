// The mpncov layer (iSQRT-COV): gradients, the trace guard, the order of the vector, properties of the
// Newton-Schulz root, and the ops it is built from.
#include <cmath>

#include "core/matrix_ops.h"
#include "layers/gradcheck.h"
#include "tests/layers/layer_test.h"
#include "nets/model.h"
#include "nets/net.h"
#include "tests/representations/rep_helpers.h"

using namespace mpncov;
using namespace mpncov::test;

namespace {

std::string keys(int iterations, bool sqrt, bool vectorize) {
  return str("{iterations: ", iterations, ", sqrt: ", sqrt ? "true" : "false", ", vectorize: ",
             vectorize ? "true" : "false", "}");
}

// A naive (B, n, n) product in double for reference.
std::vector<double> naive_matmul(const std::vector<double>& a, const std::vector<double>& b, int64_t batch,
                                 int64_t n) {
  std::vector<double> c(static_cast<size_t>(batch * n * n), 0.0);
  for (int64_t s = 0; s < batch; ++s)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < n; ++k)
        for (int64_t j = 0; j < n; ++j) c[s * n * n + i * n + j] += a[s * n * n + i * n + k] * b[s * n * n + k * n + j];
  return c;
}

}  // namespace

TEST_SUITE("gradcheck") {

TEST_CASE("mpncov: gradient at X for iterations 1, 2, 3, 5, with sqrt and vectorize toggled") {
  const Tensor x = random_tensor({2, 5, 3, 4}, DType::F64, 11);  // M = 12 > C = 5: Sigma is SPD
  for (int iterations : {1, 2, 3, 5})
    for (bool sqrt : {true, false})
      for (bool vectorize : {true, false}) {
        if (!sqrt && iterations != 1) continue;  // iterations unused
        auto layer = rep_layer("mpncov", keys(iterations, sqrt, vectorize));
        GradCheckReport r = gradcheck(*layer, {x});
        INFO(keys(iterations, sqrt, vectorize), "\n", r.table());
        CHECK(r.pass());
      }
}

TEST_CASE("mpncov: gradient of the spectral CPU evaluation (spectral_min 1) for iterations 1, 2, 3, 5") {
  const Tensor x = random_tensor({2, 5, 3, 4}, DType::F64, 13);
  for (int iterations : {1, 2, 3, 5})
    for (bool vectorize : {true, false}) {
      const std::string k =
          str("{iterations: ", iterations, ", vectorize: ", vectorize ? "true" : "false", ", spectral_min: 1}");
      auto layer = rep_layer("mpncov", k);
      GradCheckReport r = gradcheck(*layer, {x});
      INFO(k, "\n", r.table());
      CHECK(r.pass());
    }
}

TEST_CASE("mpncov: gradient for one-dimensional features (B, C, L)") {
  const Tensor x = random_tensor({2, 4, 9}, DType::F64, 12);
  auto layer = rep_layer("mpncov", "{iterations: 3}");
  GradCheckReport r = gradcheck(*layer, {x});
  INFO(r.table());
  CHECK(r.pass());
}

}  // TEST_SUITE

TEST_SUITE("unit") {

// An eps of .inf guarded every sample (a NaN output), a thresh of .inf made every signed root infinite.
TEST_CASE("mpncov, sqrtm, bcnn, cbp: non-finite eps and thresh are errors naming the key") {
  for (const char* type : {"mpncov", "sqrtm"})
    test::expect_config_error(type, "{eps: .inf}", {"key 'eps'", "expected a finite number, got inf"});
  for (const char* type : {"bcnn", "cbp"})
    test::expect_config_error(type, "{thresh: .inf}", {"key 'thresh'", "expected a finite number, got inf"});
}

// iterations was unbounded: a typo (500, 5000) cost that many matrix products per sample and the memory for
// their backward, without changing the converged root.
TEST_CASE("mpncov, sqrtm: iterations outside [1, 50] are errors naming the key and the bound") {
  for (const char* type : {"mpncov", "sqrtm"}) {
    for (const char* n : {"0", "-1", "51", "5000"})
      test::expect_config_error(type, str("{iterations: ", n, "}"),
                                {"key 'iterations'", "must lie in [1, 50]", str("got ", n)});
    for (const char* n : {"1", "50"}) CHECK_NOTHROW(rep_layer(type, str("{iterations: ", n, "}")));
  }
  // An experiment's representation: the error names its file and line.
  std::string message;
  try {
    Net net(compose_model(read_model_config(
        YAML::Load("net: small_cnn\nrepresentation: {type: mpncov, reduce: 8, iterations: 0}\nclasses: 3\n"), "e.yaml")));
  } catch (const Error& e) {
    message = e.what();
  }
  INFO(message);
  CHECK(message.find("e.yaml:2: layer 'representation' (mpncov): key 'iterations' must lie in [1, 50]") !=
        std::string::npos);
}

TEST_CASE("mpncov: output size d(d+1)/2 and the row-major upper-triangle order") {
  auto layer = rep_layer("mpncov", "{sqrt: false}");
  SetupContext ctx;
  CHECK(layer->setup({Shape({2, 256, 14, 14})}, ctx)[0] == Shape({2, 32896}));
  // With sqrt off the vector is Sigma's upper triangle: compare with Sigma computed naively.
  const Tensor x = random_tensor({1, 4, 2, 3}, DType::F64, 3);
  const Tensor y = run_forward(*layer, x);
  const std::vector<double> xv = x.to_vector(), yv = y.to_vector();
  const int64_t c = 4, m = 6;
  size_t k = 0;
  for (int64_t i = 0; i < c; ++i)
    for (int64_t j = i; j < c; ++j, ++k) {
      double mi = 0, mj = 0, s = 0;
      for (int64_t p = 0; p < m; ++p) mi += xv[i * m + p] / m, mj += xv[j * m + p] / m;
      for (int64_t p = 0; p < m; ++p) s += (xv[i * m + p] - mi) * (xv[j * m + p] - mj) / m;
      CHECK(yv[k] == doctest::Approx(s).epsilon(1e-12));
    }
  CHECK(k == yv.size());
}

TEST_CASE("mpncov: a 1x1 feature map (zero covariance in every image) is refused at setup, naming the input size") {
  for (const char* type : {"mpncov", "covpool"})
    for (const Shape& s : {Shape({2, 4, 1, 1}), Shape({2, 4, 1})}) {
      INFO(type, " ", s.str());
      SetupContext ctx;
      CHECK_THROWS_WITH_AS(rep_layer(type)->setup({s}, ctx), doctest::Contains("has one spatial position"), Error);
    }
  // A backbone that pools 4x4 images down to 1x1 under an MPN-COV head: the net says where and what to change.
  const NetSpec spec = compose_model(read_model_config(
      YAML::Load("net: small_cnn\nrepresentation: {type: mpncov, reduce: 4, iterations: 3}\nclasses: 3\n"), "e.yaml"));
  Net net(spec);
  CHECK_THROWS_WITH_AS(net.setup(Shape({2, 3, 4, 4})), doctest::Contains("data.image_size"), Error);
  Net larger(spec);
  larger.setup(Shape({2, 3, 8, 8}));  // 2x2 positions: fine
}

TEST_CASE("mpncov: a zero or constant feature map is guarded: no NaN, counted in diagnostics") {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor x = random_tensor({3, 4, 3, 3}, dt, 5);
    // Sample 0 all zeros, sample 2 constant per channel (zero covariance); sample 1 normal.
    std::vector<double> v = x.to_vector();
    for (int64_t i = 0; i < 36; ++i) v[i] = 0.0, v[72 + i] = 1.5 + (i / 9);
    x = Tensor::from_vector(v, x.shape(), dt);
    auto layer = rep_layer("mpncov", "{iterations: 5}");
    const Tensor y = run_forward(*layer, x);
    for (double e : y.to_vector()) CHECK(std::isfinite(e));
    CHECK(layer->diagnostics().at("guarded_samples") == 2);
    const std::vector<double> yv = y.to_vector();
    const int64_t k = y.dim(1);
    for (int64_t i = 0; i < k; ++i) CHECK(std::abs(yv[i]) < 1e-3);
    const Tensor dx = run_backward(*layer, x, y, random_tensor(y.shape(), dt, 6));
    const std::vector<double> dv = dx.to_vector();
    for (size_t i = 0; i < dv.size(); ++i) {
      CHECK(std::isfinite(dv[i]));
      if (i < 36) CHECK(dv[i] == 0.0);  // Xc = 0 there
    }
  }
}

TEST_CASE("mpncov: the spectral evaluation agrees with the product iteration (C = 160, float32 and float64)") {
  // M = 100 < C: Sigma is singular (repeated zero eigenvalues), the case of 14 x 14 maps with 256 channels.
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor x = random_tensor({2, 160, 10, 10}, dt, 21);
    auto products = rep_layer("mpncov", "{iterations: 5, spectral_min: 100000}");
    auto spectral = rep_layer("mpncov", "{iterations: 5, spectral_min: 1}");
    const Tensor y1 = run_forward(*products, x), y2 = run_forward(*spectral, x);
    const Tensor g = random_tensor(y1.shape(), dt, 22);
    const Tensor d1 = run_backward(*products, x, y1, g), d2 = run_backward(*spectral, x, y2, g);
    // Differences relative to the largest reference entry (dX entries are far below 1): scaled_diff.
    const double tol = dt == DType::F32 ? 1e-4 : 1e-10;
    INFO(std::string(dtype_name(dt)), ": output ", scaled_diff(y2, y1), ", gradient ", scaled_diff(d2, d1));
    CHECK(scaled_diff(y2, y1) < tol);
    CHECK(scaled_diff(d2, d1) < tol);
  }
}

TEST_CASE("mpncov: an evaluation forward runs the products (C >= spectral_min), a training one the spectral path") {
  // Evaluation needs no backward, so it skips the eigendecomposition: its output is the product
  // iteration's bit for bit, and a backward after it is that iteration's exact adjoint.
  const Tensor x = random_tensor({2, 160, 10, 10}, DType::F32, 23);
  auto products = rep_layer("mpncov", "{iterations: 5, spectral_min: 100000}");
  auto layer = rep_layer("mpncov", "{iterations: 5}");
  layer->set_training(false);
  const Tensor y_eval = run_forward(*layer, x), y_products = run_forward(*products, x);
  CHECK(y_eval.to_vector() == y_products.to_vector());
  const Tensor g = random_tensor(y_eval.shape(), DType::F32, 24);
  const Tensor d_eval = run_backward(*layer, x, y_eval, g), d_products = run_backward(*products, x, y_products, g);
  CHECK(d_eval.to_vector() == d_products.to_vector());
  layer->set_training(true);
  const Tensor y_train = run_forward(*layer, x);
  INFO("training against evaluation: ", scaled_diff(y_train, y_eval));
  CHECK(y_train.to_vector() != y_eval.to_vector());  // the spectral path: not the same arithmetic
  CHECK(scaled_diff(y_train, y_eval) < 1e-4);
}

TEST_CASE("mpncov: the output does not depend on the order of positions") {
  const Tensor x = random_tensor({2, 5, 3, 4}, DType::F64, 7);
  std::vector<double> v = x.to_vector(), p(v.size());
  const int64_t m = 12;
  for (int64_t row = 0; row < 10; ++row)
    for (int64_t j = 0; j < m; ++j) p[row * m + j] = v[row * m + (j * 5 + 3) % m];  // 5 is coprime to 12
  const Tensor xp = Tensor::from_vector(p, x.shape(), DType::F64);
  auto layer = rep_layer("mpncov", "{iterations: 5}");
  const Tensor y = run_forward(*layer, x), yp = run_forward(*layer, xp);
  CHECK(max_rel_diff(y, yp) < 1e-12);
}

TEST_CASE("mpncov: Y_N^2 approaches Sigma as the iterations grow") {
  // Sigma with eigenvalues spread over [0.1, 1] relative to the largest: the regime of real features.
  const Tensor x = random_tensor({1, 8, 8, 8}, DType::F64, 9);
  auto cov = rep_layer("mpncov", "{sqrt: false, vectorize: false}");
  const std::vector<double> sigma = run_forward(*cov, x).to_vector();
  double norm = 0;
  for (double s : sigma) norm += s * s;
  // Bounds measured here with some margin; the seed reports about 100% at N = 1 and 2-3% at N = 5.
  const std::vector<std::pair<int, double>> bounds = {{1, 1.0}, {2, 0.6}, {3, 0.3}, {5, 0.08}, {8, 0.01}};
  double previous = INFINITY;
  for (auto [n, bound] : bounds) {
    auto layer = rep_layer("mpncov", str("{iterations: ", n, ", vectorize: false}"));
    const std::vector<double> y = run_forward(*layer, x).to_vector();
    const std::vector<double> y2 = naive_matmul(y, y, 1, 8);
    double err = 0;
    for (size_t i = 0; i < y2.size(); ++i) err += (y2[i] - sigma[i]) * (y2[i] - sigma[i]);
    const double rel = std::sqrt(err / norm);
    INFO("iterations ", n, ": relative error ", rel);
    CHECK(rel < bound);
    CHECK(rel < previous);
    previous = rel;
  }
}

TEST_CASE("square_matmul: symmetric and skew panels agree with the full product") {
  for (DType dt : {DType::F32, DType::F64}) {
    const int64_t b = 3, n = 70, k = 45;  // n not a multiple of the panel
    const Tensor x = random_tensor({b, n, k}, dt, 1);
    Tensor full = Tensor::zeros({b, n, n}, dt), sym = Tensor::zeros({b, n, n}, dt);
    ops::square_matmul(x, x, full, ops::Structure::General, false, true, 0.5);
    ops::square_matmul(x, x, sym, ops::Structure::Symmetric, false, true, 0.5);
    CHECK(max_rel_diff(full, sym) < (dt == DType::F32 ? 1e-5 : 1e-12));
    // Transposed first operand: x^T x over (b, k, k) -- here through a (b, k, n) view of x's transpose.
    const Tensor xt = random_tensor({b, k, n}, dt, 2);
    Tensor f2 = Tensor::zeros({b, n, n}, dt), s2 = Tensor::zeros({b, n, n}, dt);
    ops::square_matmul(xt, xt, f2, ops::Structure::General, true, false);
    ops::square_matmul(xt, xt, s2, ops::Structure::Symmetric, true, false);
    CHECK(max_rel_diff(f2, s2) < (dt == DType::F32 ? 1e-5 : 1e-12));
  }
  // Skew: S K S with S symmetric and K skew.
  const int64_t n = 40;
  const Tensor s0 = random_tensor({2, n, n}, DType::F64, 3), k0 = random_tensor({2, n, n}, DType::F64, 4);
  Tensor s = Tensor::zeros({2, n, n}, DType::F64), kk = Tensor::zeros({2, n, n}, DType::F64);
  ops::symmetric_combine(0, Tensor(), 0.5, s0, 1, 0, Tensor(), s);
  ops::symmetric_combine(0, Tensor(), 0.5, k0, -1, 0, Tensor(), kk);
  Tensor sk = Tensor::zeros({2, n, n}, DType::F64), full = Tensor::zeros({2, n, n}, DType::F64),
         skew = Tensor::zeros({2, n, n}, DType::F64);
  ops::square_matmul(s, kk, sk);
  ops::square_matmul(sk, s, full);
  ops::square_matmul(sk, s, skew, ops::Structure::Skew);
  CHECK(max_rel_diff(full, skew) < 1e-12);
  const std::vector<double> naive = naive_matmul(naive_matmul(s.to_vector(), kk.to_vector(), 2, n), s.to_vector(), 2, n);
  CHECK(max_rel_diff(full.to_vector(), naive) < 1e-12);
}

TEST_CASE("square_matmul in float32 (oneDNN, triangular ones in strips) equals a double product") {
  // n = 256 and 200 cut a triangular product into four and three strips; transposes, alpha and beta.
  for (int64_t n : {256, 200, 64}) {
    const int64_t b = 2, k = 96;
    const Tensor a64 = random_tensor({b, n, k}, DType::F64, 31), c64 = random_tensor({b, n, n}, DType::F64, 32);
    const std::vector<double> av = a64.to_vector(), cv = c64.to_vector();
    for (bool ta : {false, true})
      for (ops::Structure st : {ops::Structure::General, ops::Structure::Symmetric}) {
        // op(a) = a (n x k) or, transposed, the stored (k x n) matrix read by columns; op(b) = op(a)^T.
        const Tensor a = Tensor::from_vector(av, ta ? Shape({b, k, n}) : Shape({b, n, k}), DType::F32);
        std::vector<double> c_sym = cv;  // beta applies to a symmetric C (the structure's promise)
        for (int64_t s = 0; s < b; ++s)
          for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < i; ++j) c_sym[s * n * n + i * n + j] = c_sym[s * n * n + j * n + i];
        Tensor c = Tensor::from_vector(c_sym, {b, n, n}, DType::F32);
        ops::square_matmul(a, a, c, st, ta, !ta, 0.5, 0.25);
        std::vector<double> want(c_sym.size());
        for (int64_t s = 0; s < b; ++s)
          for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < n; ++j) {
              double dot = 0;
              for (int64_t e = 0; e < k; ++e) {
                const double ai = ta ? av[s * n * k + e * n + i] : av[s * n * k + i * k + e];
                const double aj = ta ? av[s * n * k + e * n + j] : av[s * n * k + j * k + e];
                dot += static_cast<double>(static_cast<float>(ai)) * static_cast<float>(aj);
              }
              want[s * n * n + i * n + j] = 0.5 * dot + 0.25 * static_cast<float>(c_sym[s * n * n + i * n + j]);
            }
        INFO("n ", n, ", transposed ", ta, ", symmetric ", st == ops::Structure::Symmetric);
        CHECK(max_rel_diff(c.to_vector(), want) < 1e-5);
      }
  }
}

TEST_CASE("triu_gather and triu_scatter: order, scale, adjoint and symmetric halves") {
  const Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 3, 3}, DType::F64);
  const Tensor s = Tensor::from_vector({2}, {1}, DType::F64);
  Tensor v = Tensor::zeros({1, 6}, DType::F64);
  ops::triu_gather(x, s, v);
  CHECK(v.to_vector() == std::vector<double>{2, 4, 6, 10, 12, 18});
  Tensor back = Tensor::zeros({1, 3, 3}, DType::F64);
  const Tensor g = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {1, 6}, DType::F64);
  ops::triu_scatter(g, Tensor(), back, false);
  CHECK(back.to_vector() == std::vector<double>{1, 2, 3, 0, 4, 5, 0, 0, 6});
  ops::triu_scatter(g, s, back, true);
  CHECK(back.to_vector() == std::vector<double>{2, 2, 3, 2, 8, 5, 3, 5, 12});
}

}  // TEST_SUITE
