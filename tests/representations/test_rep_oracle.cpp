// The representation layers against fast-MPN-COV's formulas in PyTorch (tests/oracle/representations.py):
// forward output and input gradient (autograd, the exact gradient) in float32 and float64, and for
// iSQRT-COV the seed's own hand-written Sqrtm backward: it returns the transpose of the exact gradient of
// Sigma, yet gives the same gradient of the features, because covariance pooling symmetrises.
#include <cmath>

#include "core/npy.h"
#include "tests/representations/rep_helpers.h"

using namespace mpncov;
using namespace mpncov::test;

namespace {


// ||a - b|| / ||b|| (Frobenius).
double normwise_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> av = a.to_vector(), bv = b.to_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < av.size(); ++i) num += (av[i] - bv[i]) * (av[i] - bv[i]), den += bv[i] * bv[i];
  return std::sqrt(num / std::max(den, 1e-300));
}

Tensor transposed(const Tensor& t) {
  const int64_t b = t.dim(0), n = t.dim(1);
  std::vector<double> v = t.to_vector(), out(v.size());
  for (int64_t s = 0; s < b; ++s)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) out[s * n * n + i * n + j] = v[s * n * n + j * n + i];
  return Tensor::from_vector(out, t.shape(), DType::F64);
}

struct OracleRun {
  Tensor y, dx;        // ours
  std::string folder;  // where the reference files are
};

// Runs our layer on x with upstream gradient g, writes the inputs for the script, runs it.
OracleRun run_case(const std::string& type, const std::string& keys, const std::string& oracle_case, const Tensor& x,
                   const std::string& name, bool double_reference = false) {
  auto layer = rep_layer(type, keys);
  OracleRun r;
  r.y = run_forward(*layer, x);
  const Tensor g = random_tensor(r.y.shape(), x.dtype(), 77);
  r.dx = run_backward(*layer, x, r.y, g);
  r.folder = temp_dir("rep-oracle-" + name).string();
  save_npy(r.folder + "/x.npy", x);
  save_npy(r.folder + "/g.npy", g);
  for (const Buffer& b : layer->buffers()) save_npy(r.folder + "/" + b.name + ".npy", b.value);
  std::vector<std::string> args = {oracle_case, r.folder};
  if (double_reference) args.push_back("--double");
  run_oracle("representations.py", args);
  return r;
}

// Elementwise, relative to the reference's largest value; `loose_dx` holds the input gradient to 2x the
// tolerance norm-wise and 5x elementwise instead.
void check_against_reference(const OracleRun& r, DType dt, bool loose_dx = false) {
  const double tol = dt == DType::F32 ? 1e-4 : 1e-10;
  const Tensor y_ref = load_npy(r.folder + "/y.npy"), dx_ref = load_npy(r.folder + "/dx.npy");
  CHECK(y_ref.numel() == r.y.numel());
  CHECK(scaled_diff(r.y, y_ref) < tol);
  if (loose_dx) {
    CHECK(normwise_diff(r.dx, dx_ref) < 2 * tol);
    CHECK(scaled_diff(r.dx, dx_ref) < 5 * tol);
  } else {
    CHECK(scaled_diff(r.dx, dx_ref) < tol);
  }
}

}  // namespace

TEST_SUITE("oracle") {

TEST_CASE("mpncov against the seed's formulas: output, exact gradient, and the seed's transposed Sqrtm gradient") {
  struct Case {
    Shape shape;
    int iterations;
    bool sqrt, vectorize;
  };
  const std::vector<Case> cases = {
      {Shape({2, 64, 7, 7}), 1, true, true},   {Shape({2, 64, 7, 7}), 3, true, true},
      {Shape({2, 64, 7, 7}), 5, true, true},   {Shape({2, 64, 7, 7}), 2, true, false},
      {Shape({2, 64, 7, 7}), 5, false, true},  {Shape({2, 256, 14, 14}), 5, true, true},
  };
  for (DType dt : {DType::F32, DType::F64}) {
    for (const Case& c : cases) {
      const std::string keys = str("{iterations: ", c.iterations, ", sqrt: ", c.sqrt ? "true" : "false",
                                   ", vectorize: ", c.vectorize ? "true" : "false", "}");
      INFO(dtype_name(dt), " ", c.shape.str(), " ", keys);
      const Tensor x = random_tensor(c.shape, dt, 5, 0.0, 2.0);  // post-ReLU-like features
      const OracleRun r = run_case("mpncov", keys, str("mpncov:", c.iterations, ":", int(c.sqrt), ":", int(c.vectorize)),
                                   x, "mpncov");
      if (c.vectorize) CHECK(r.y.dim(1) == c.shape[1] * (c.shape[1] + 1) / 2);
      check_against_reference(r, dt);
      if (!c.sqrt || dt != DType::F64) continue;
      // The seed's Sqrtm backward: the transpose of the exact gradient of Sigma (different, since the
      // gradient from Triuvec is upper-triangular), and the same gradient of X once through covariance pooling.
      const Tensor exact = load_npy(r.folder + "/dsigma_exact.npy"), seed = load_npy(r.folder + "/dsigma_seed.npy");
      CHECK(scaled_diff(seed, transposed(exact)) < 1e-10);
      CHECK(scaled_diff(seed, exact) > 1e-3);
      CHECK(scaled_diff(r.dx, load_npy(r.folder + "/dx_seed.npy")) < 1e-10);
      // Our sqrtm stage returns the exact one.
      const Tensor sigma = load_npy(r.folder + "/sigma.npy");
      auto sqrtm = rep_layer("sqrtm", str("{iterations: ", c.iterations, "}"));
      const Tensor root = run_forward(*sqrtm, sigma);
      const Tensor g = load_npy(r.folder + "/g.npy");
      Tensor groot = g.reshape({sigma.dim(0), -1});
      if (c.vectorize) {
        auto triuvec = rep_layer("triuvec");
        groot = run_backward(*triuvec, root, run_forward(*triuvec, root), g);
      }
      const Tensor dsigma = run_backward(*sqrtm, sigma, root, groot.reshape({sigma.dim(0), sigma.dim(1), sigma.dim(2)}));
      CHECK(scaled_diff(dsigma, exact) < 1e-9);
    }
  }
}

TEST_CASE("bcnn, cbp and gavp against the seed's formulas") {
  for (DType dt : {DType::F32, DType::F64}) {
    INFO(dtype_name(dt));
    check_against_reference(run_case("bcnn", "{}", "bcnn", random_tensor({2, 32, 5, 5}, dt, 6, 0.0, 2.0), "bcnn"), dt);
    check_against_reference(run_case("gavp", "{}", "gavp", random_tensor({2, 16, 5, 4}, dt, 7), "gavp"), dt);
    // cbp: the script reads our hashes and signs (the seed draws its own from torch's RNG). Our float32 is
    // held to the float64 reference: PyTorch's float32 gradient, through two FFTs and the signed root's
    // 1 / (2 sqrt(|y| + 1e-8)), is itself 2e-4 to 4e-4 (elementwise, relative to the largest) off it. That
    // factor also magnifies the float32 rounding of y in bins where |y| is small, so our float32 gradient
    // is about 1.2e-4 off, elementwise and norm-wise (closer than PyTorch's own float32): a looser check.
    const bool f32 = dt == DType::F32;
    check_against_reference(run_case("cbp", "{dim: 512}", "cbp", random_tensor({2, 64, 4, 4}, dt, 8), "cbp", f32), dt, f32);
    check_against_reference(
        run_case("cbp", "{}", "cbp", random_tensor({2, 512, 7, 7}, dt, 9, 0.0, 2.0), "cbp8192", f32), dt, f32);
  }
}

}  // TEST_SUITE
