// bcnn, cbp and gavp, and the separate iSQRT-COV stages (covpool, sqrtm, triuvec) against the fused layer.
#include <cmath>

#include "core/fft.h"
#include "layers/gradcheck.h"
#include "tests/representations/rep_helpers.h"

using namespace mpncov;
using namespace mpncov::test;

namespace {

// cbp by its definition, in double: count sketches, then the O(D^2) circular convolution per position.
std::vector<double> cbp_reference(const Tensor& x, Layer& layer, int64_t dim, double thresh) {
  const std::vector<double> xv = x.to_vector();
  const std::vector<double> h1 = layer.buffer("hash1").value.to_vector(), s1 = layer.buffer("sign1").value.to_vector();
  const std::vector<double> h2 = layer.buffer("hash2").value.to_vector(), s2 = layer.buffer("sign2").value.to_vector();
  const int64_t b = x.dim(0), c = x.dim(1), m = x.numel() / (b * c);
  std::vector<double> out(static_cast<size_t>(b * dim), 0.0);
  for (int64_t i = 0; i < b; ++i) {
    std::vector<double> y(static_cast<size_t>(dim), 0.0);
    for (int64_t s = 0; s < m; ++s) {
      std::vector<double> u(static_cast<size_t>(dim), 0.0), v(static_cast<size_t>(dim), 0.0);
      for (int64_t ch = 0; ch < c; ++ch) {
        const double xe = xv[(i * c + ch) * m + s];
        u[static_cast<size_t>(h1[ch])] += s1[ch] * xe;
        v[static_cast<size_t>(h2[ch])] += s2[ch] * xe;
      }
      for (int64_t k = 0; k < dim; ++k)
        for (int64_t j = 0; j < dim; ++j) y[k] += u[j] * v[((k - j) % dim + dim) % dim];
    }
    double norm = 0;
    for (double& e : y) {
      e = (e > 0 ? 1.0 : e < 0 ? -1.0 : 0.0) * std::sqrt(std::abs(e) + thresh);
      norm += e * e;
    }
    norm = std::max(std::sqrt(norm), 1e-12);
    for (int64_t k = 0; k < dim; ++k) out[i * dim + k] = y[k] / norm;
  }
  return out;
}

}  // namespace

TEST_SUITE("gradcheck") {

TEST_CASE("bcnn, cbp, gavp: gradient at X") {
  // For cbp, C^2 well above D: every bin of y gets contributions. An empty bin is 0 exactly only in exact
  // arithmetic; after the FFTs it holds rounding noise whose sign the signed root turns into +-sqrt(thresh)
  // (as in the seed): a kink for the checker and a mismatch for an exact reference.
  const Tensor x = random_tensor({2, 4, 3, 2}, DType::F64, 21), x8 = random_tensor({2, 8, 3, 2}, DType::F64, 24);
  for (const char* spec : {"bcnn|{}", "cbp|{dim: 8}", "cbp|{dim: 7}", "gavp|{}"}) {
    const std::string s = spec, type = s.substr(0, s.find('|')), keys = s.substr(s.find('|') + 1);
    auto layer = rep_layer(type, keys);
    GradCheckReport r = gradcheck(*layer, {type == "cbp" ? x8 : x});
    INFO(spec, "\n", r.table());
    CHECK(r.pass());
  }
}

TEST_CASE("covpool, sqrtm, triuvec: gradients - sqrtm's is exact for a non-symmetric upstream gradient") {
  const Tensor x = random_tensor({2, 5, 3, 3}, DType::F64, 22);
  auto covpool = rep_layer("covpool");
  GradCheckReport r = gradcheck(*covpool, {x});
  INFO(r.table());
  CHECK(r.pass());
  auto triuvec = rep_layer("triuvec");
  GradCheckReport rt = gradcheck(*triuvec, {random_tensor({2, 4, 4}, DType::F64, 23)});
  CHECK(rt.pass());
  // sqrtm at a covariance (symmetric positive definite); the checker's output weights are not symmetric.
  const Tensor sigma = run_forward(*covpool, x);
  for (int iterations : {1, 2, 3, 5}) {
    auto sqrtm = rep_layer("sqrtm", str("{iterations: ", iterations, "}"));
    GradCheckReport rs = gradcheck(*sqrtm, {sigma});
    INFO("iterations ", iterations, "\n", rs.table());
    CHECK(rs.pass());
  }
}

}  // TEST_SUITE

TEST_SUITE("unit") {

TEST_CASE("covpool -> sqrtm -> triuvec equals the fused mpncov layer, forward and backward") {
  const Tensor x = random_tensor({2, 6, 4, 3}, DType::F64, 31);
  auto covpool = rep_layer("covpool"), sqrtm = rep_layer("sqrtm", "{iterations: 4}"), triuvec = rep_layer("triuvec");
  auto fused = rep_layer("mpncov", "{iterations: 4}");
  const Tensor s = run_forward(*covpool, x), r = run_forward(*sqrtm, s), v = run_forward(*triuvec, r);
  const Tensor y = run_forward(*fused, x);
  CHECK(max_rel_diff(v, y) < 1e-12);
  const Tensor g = random_tensor(y.shape(), DType::F64, 32);
  const Tensor dx = run_backward(*fused, x, y, g);
  const Tensor dr = run_backward(*triuvec, r, v, g), ds = run_backward(*sqrtm, s, r, dr);
  const Tensor dx2 = run_backward(*covpool, x, s, ds);
  CHECK(max_rel_diff(dx, dx2) < 1e-10);
}

TEST_CASE("cbp: equals the O(D^2) circular-convolution definition with the same hashes") {
  for (DType dt : {DType::F64, DType::F32}) {
    const Tensor x = random_tensor({2, 12, 3, 3}, dt, 41);  // C^2 >> D: no empty bins (see the gradcheck)
    for (int64_t dim : {16, 25}) {
      auto layer = rep_layer("cbp", str("{dim: ", dim, "}"));
      const Tensor y = run_forward(*layer, x);
      CHECK(y.shape() == Shape({2, dim}));
      CHECK(max_rel_diff(y.to_vector(), cbp_reference(x, *layer, dim, 1e-8)) < (dt == DType::F64 ? 1e-12 : 1e-5));
    }
  }
}

TEST_CASE("cbp: hashes are reproducible from the seed and the layer name, and saved as buffers") {
  SetupContext ctx;
  ctx.name = "rep.cbp";
  auto a = rep_layer("cbp"), b = rep_layer("cbp");
  a->setup({Shape({1, 512, 2, 2})}, ctx);
  b->setup({Shape({1, 512, 2, 2})}, ctx);
  REQUIRE(a->buffers().size() == 4);
  for (const char* name : {"hash1", "sign1", "hash2", "sign2"})
    CHECK(a->buffer(name).value.to_vector() == b->buffer(name).value.to_vector());
  const std::vector<double> h = a->buffer("hash1").value.to_vector(), h2 = a->buffer("hash2").value.to_vector();
  CHECK(h != h2);
  int plus = 0;
  for (double s : a->buffer("sign1").value.to_vector()) {
    CHECK((s == 1.0 || s == -1.0));
    plus += s > 0;
  }
  CHECK(plus > 200);
  CHECK(plus < 312);
  for (double v : h) CHECK((v >= 0 && v < 8192 && v == std::floor(v)));
}

TEST_CASE("bcnn and gavp: values by their definitions") {
  const Tensor x = random_tensor({1, 2, 1, 3}, DType::F64, 51);
  const std::vector<double> v = x.to_vector();
  auto gavp = rep_layer("gavp");
  const std::vector<double> g = run_forward(*gavp, x).to_vector();
  CHECK(g[0] == doctest::Approx((v[0] + v[1] + v[2]) / 3));
  CHECK(g[1] == doctest::Approx((v[3] + v[4] + v[5]) / 3));
  auto bcnn = rep_layer("bcnn");
  const std::vector<double> y = run_forward(*bcnn, x).to_vector();
  REQUIRE(y.size() == 4);
  std::vector<double> z(4);
  double norm = 0;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      double s = 0;
      for (int p = 0; p < 3; ++p) s += v[i * 3 + p] * v[j * 3 + p] / 3;
      z[i * 2 + j] = (s > 0 ? 1 : -1) * std::sqrt(std::abs(s) + 1e-8);
      norm += z[i * 2 + j] * z[i * 2 + j];
    }
  for (int i = 0; i < 4; ++i) CHECK(y[i] == doctest::Approx(z[i] / std::sqrt(norm)).epsilon(1e-12));
}

TEST_CASE("rfft and irfft: against a naive DFT, and the round trip gives n times the input") {
  for (int64_t n : {8, 9, 16}) {
    const Tensor x = random_tensor({3, n}, DType::F64, 61);
    Tensor y = Tensor::zeros({3, n / 2 + 1, 2}, DType::F64), back = Tensor::zeros({3, n}, DType::F64);
    ops::rfft(x, y);
    const std::vector<double> xv = x.to_vector(), yv = y.to_vector();
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t f = 0; f <= n / 2; ++f) {
        double re = 0, im = 0;
        for (int64_t t = 0; t < n; ++t) {
          const double a = -2 * M_PI * static_cast<double>(f * t) / static_cast<double>(n);
          re += xv[r * n + t] * std::cos(a);
          im += xv[r * n + t] * std::sin(a);
        }
        CHECK(yv[(r * (n / 2 + 1) + f) * 2] == doctest::Approx(re).epsilon(1e-12));
        CHECK(yv[(r * (n / 2 + 1) + f) * 2 + 1] == doctest::Approx(im).epsilon(1e-12));
      }
    ops::irfft(y, back);
    const std::vector<double> bv = back.to_vector();
    for (size_t i = 0; i < bv.size(); ++i) CHECK(bv[i] == doctest::Approx(static_cast<double>(n) * xv[i]));
    CHECK(y.to_vector() == yv);  // the inverse left its input alone
  }
}

}  // TEST_SUITE
