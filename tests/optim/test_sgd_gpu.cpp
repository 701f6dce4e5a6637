// The CUDA SGD update against the CPU one, float32: the kernel rounds each operation as the CPU loop does
// (no FMA contraction), so the weights and momentum buffers agree bit for bit.
#include <cstring>

#include "core/optim_ops.h"
#include "tests/helpers.h"

using namespace mpncov;

TEST_SUITE("gpu") {

TEST_CASE("gpu: sgd_update on CUDA equals the CPU update" * doctest::skip(!mpncov::test::gpu_present())) {
  const Device gpu = Device::cuda(0);
  struct Case {
    double momentum;
    bool nesterov;
    double wd;
  };
  for (const Case& c : {Case{0.9, false, 1e-4}, Case{0.9, true, 5e-4}, Case{0.0, false, 1e-2}}) {
    for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{3'000'001}}) {
      CAPTURE(c.momentum);
      CAPTURE(c.nesterov);
      CAPTURE(n);
      Tensor w = test::random_tensor({n}, DType::F32, 1);
      Tensor buf = Tensor::zeros({n}, DType::F32);
      Tensor wg = w.to(gpu).clone(), bufg = buf.to(gpu).clone();
      for (int s = 0; s < 5; ++s) {
        Tensor g = test::random_tensor({n}, DType::F32, 10 + s);
        const ops::SgdStep step{0.1 / (s + 1), c.wd, c.momentum, c.nesterov, s == 0};
        ops::sgd_update(w, g, buf, step);
        ops::sgd_update(wg, g.to(gpu), bufg, step);
      }
      const Tensor back = wg.to(Device::cpu()), bufback = bufg.to(Device::cpu());
      CHECK(std::memcmp(back.raw(), w.raw(), w.nbytes()) == 0);
      CHECK(std::memcmp(bufback.raw(), buf.raw(), buf.nbytes()) == 0);
      CHECK(test::max_rel_diff(back, w) == 0);
    }
  }
}

}  // TEST_SUITE
