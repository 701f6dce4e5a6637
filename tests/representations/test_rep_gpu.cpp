// The representation layers and their ops on CUDA against the CPU (float32 both), forward and backward.
// Skipped where no GPU is present.
#include "core/fft.h"
#include "core/matrix_ops.h"
#include "tests/representations/rep_helpers.h"

using namespace mpncov;
using namespace mpncov::test;

TEST_SUITE("gpu") {

TEST_CASE("representations: CUDA equals CPU, forward and input gradient" * doctest::skip(!gpu_present())) {
  const Device gpu = Device::cuda(0);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"mpncov", "{iterations: 1}"},
      {"mpncov", "{iterations: 5}"},
      {"mpncov", "{iterations: 3, vectorize: false}"},
      {"mpncov", "{sqrt: false}"},
      {"covpool", "{}"},
      {"bcnn", "{}"},
      {"cbp", "{dim: 512}"},
      {"cbp", "{dim: 8192}"},
      {"gavp", "{}"},
  };
  for (const auto& [type, keys] : cases) {
    for (const Shape& shape : {Shape({3, 32, 7, 7}), Shape({2, 256, 14, 14})}) {
      if (type == "cbp" && shape[1] == 256 && keys != "{dim: 8192}") continue;
      INFO(type, " ", keys, " ", shape.str());
      const Tensor x = random_tensor(shape, DType::F32, 7, 0.0, 2.0);  // post-ReLU-like features
      auto cpu = rep_layer(type, keys), cuda = rep_layer(type, keys);
      const Tensor y = run_forward(*cpu, x), yg = run_forward(*cuda, x.to(gpu));
      CHECK(max_rel_diff(y, yg.to(Device::cpu())) < 1e-4);
      const Tensor g = random_tensor(y.shape(), DType::F32, 8);
      const Tensor dx = run_backward(*cpu, x, y, g), dxg = run_backward(*cuda, x.to(gpu), yg, g.to(gpu));
      // Relative to the gradient's own scale.
      double scale = 0;
      for (double v : dx.to_vector()) scale = std::max(scale, std::abs(v));
      const std::vector<double> a = dx.to_vector(), b = dxg.to(Device::cpu()).to_vector();
      double worst = 0;
      for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]) / std::max(scale, 1e-30));
      CHECK(worst < 1e-4);
      if (type == "mpncov" && keys != "{sqrt: false}") CHECK(cuda->diagnostics().at("guarded_samples") == 0);
    }
  }
}

TEST_CASE("sqrtm and triuvec on CUDA, and the trace guard" * doctest::skip(!gpu_present())) {
  const Device gpu = Device::cuda(0);
  const Tensor x = random_tensor({2, 16, 5, 5}, DType::F32, 9);
  auto cov = rep_layer("covpool");
  const Tensor sigma = run_forward(*cov, x);
  for (const char* type : {"sqrtm", "triuvec"}) {
    auto cpu = rep_layer(type), cuda = rep_layer(type);
    const Tensor y = run_forward(*cpu, sigma), yg = run_forward(*cuda, sigma.to(gpu));
    CHECK(max_rel_diff(y, yg.to(Device::cpu())) < 1e-4);
    const Tensor g = random_tensor(y.shape(), DType::F32, 10);
    const Tensor d = run_backward(*cpu, sigma, y, g), dg = run_backward(*cuda, sigma.to(gpu), yg, g.to(gpu));
    CHECK(max_rel_diff(d, dg.to(Device::cpu())) < 1e-3);
  }
  // A zero sample: guarded, no NaN.
  Tensor z = Tensor::zeros({2, 8, 3, 3}, DType::F32, gpu);
  auto layer = rep_layer("mpncov");
  const Tensor y = run_forward(*layer, z);
  for (double v : y.to(Device::cpu()).to_vector()) CHECK(v == 0.0);
  CHECK(layer->diagnostics().at("guarded_samples") == 2);
}

TEST_CASE("rfft and irfft on CUDA equal FFTW" * doctest::skip(!gpu_present())) {
  const Device gpu = Device::cuda(0);
  for (int64_t n : {16, 25, 8192}) {
    const Tensor x = random_tensor({5, n}, DType::F32, 11);
    Tensor y = Tensor::zeros({5, n / 2 + 1, 2}, DType::F32), yg = Tensor::zeros({5, n / 2 + 1, 2}, DType::F32, gpu);
    ops::rfft(x, y);
    ops::rfft(x.to(gpu), yg);
    CHECK(max_rel_diff(y, yg.to(Device::cpu())) < 1e-4 * static_cast<double>(n));
    Tensor back = Tensor::zeros({5, n}, DType::F32), backg = Tensor::zeros({5, n}, DType::F32, gpu);
    ops::irfft(y, back);
    ops::irfft(yg, backg);
    CHECK(max_rel_diff(back, backg.to(Device::cpu())) < 1e-4 * static_cast<double>(n));
    CHECK(max_rel_diff(yg.to(Device::cpu()), y) < 1e-4 * static_cast<double>(n));  // input kept
  }
}

}  // TEST_SUITE
