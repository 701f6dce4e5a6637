// Initialisation: torchvision's defaults and the selectable schemes, drawn from the layer's own stream.
#include <cmath>

#include "layers/gradcheck_suite.h"
#include "tests/helpers.h"

using namespace mpncov;

namespace {
std::unique_ptr<Layer> build(const std::string& type, const std::string& yaml, const Shape& in,
                             const std::string& name = "net.layer") {
  LayerCase c;
  c.type = type;
  c.yaml = yaml;
  std::unique_ptr<Layer> layer = make_case_layer(c);
  SetupContext ctx;
  ctx.name = name;
  ctx.seed = 5;
  layer->setup({in}, ctx);
  return layer;
}
double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector()) m = std::max(m, std::abs(v));
  return m;
}
double stddev(const Tensor& t) {
  double s = 0, s2 = 0;
  const std::vector<double> v = t.to_vector();
  for (double x : v) {
    s += x;
    s2 += x * x;
  }
  const double n = static_cast<double>(v.size());
  return std::sqrt(s2 / n - (s / n) * (s / n));
}
}  // namespace

TEST_SUITE("unit") {
TEST_CASE("init: kaiming uniform by default, kaiming normal (fan-in, fan-out), normal, constant - BN ones and zeros") {
  auto conv = build("conv", "{out_channels: 64, kernel_size: 3}", {1, 32, 8, 8});
  const double bound = 1.0 / std::sqrt(32.0 * 9.0);
  CHECK(max_abs(conv->parameter("weight").value) <= bound);
  CHECK(max_abs(conv->parameter("weight").value) > 0.95 * bound);
  CHECK(max_abs(conv->parameter("bias").value) <= bound);
  CHECK(stddev(conv->parameter("weight").value) == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.05));

  auto he = build("conv", "{out_channels: 64, kernel_size: 3, init: kaiming_normal_fan_out}", {1, 32, 8, 8});
  CHECK(stddev(he->parameter("weight").value) == doctest::Approx(std::sqrt(2.0 / (64 * 9))).epsilon(0.05));
  CHECK(max_abs(he->parameter("bias").value) == 0);
  auto fan_in = build("conv", "{out_channels: 64, kernel_size: 3, init: kaiming_normal}", {1, 32, 8, 8});
  CHECK(stddev(fan_in->parameter("weight").value) == doctest::Approx(std::sqrt(2.0 / (32 * 9))).epsilon(0.05));
  CHECK(max_abs(fan_in->parameter("bias").value) == 0);

  auto fc = build("linear", "{out_features: 100, init: normal, lr_mult: 5, decay_mult: 0}", {2, 300});
  CHECK(stddev(fc->parameter("weight").value) == doctest::Approx(0.01).epsilon(0.05));
  CHECK(fc->parameter("weight").lr_mult == 5);
  CHECK(fc->parameter("bias").decay_mult == 0);

  auto k = build("linear", "{out_features: 3, init: constant, init_value: 0.5}", {2, 4});
  CHECK(k->parameter("weight").value.to_vector() == std::vector<double>(12, 0.5));

  auto bn = build("batchnorm", "{}", {2, 3, 2, 2});
  CHECK(bn->parameter("weight").value.to_vector() == std::vector<double>(3, 1.0));
  CHECK(bn->buffer("running_var").value.to_vector() == std::vector<double>(3, 1.0));
  CHECK(bn->buffer("num_batches_tracked").value.dtype() == DType::I64);
}

TEST_CASE("init: draws depend on the layer's name, not on the order layers are built") {
  auto a = build("conv", "{out_channels: 4, kernel_size: 3}", {1, 2, 5, 5}, "features.0");
  auto b = build("conv", "{out_channels: 4, kernel_size: 3}", {1, 2, 5, 5}, "features.3");
  auto a2 = build("conv", "{out_channels: 4, kernel_size: 3}", {1, 2, 5, 5}, "features.0");
  CHECK(test::max_rel_diff(a->parameter("weight").value, a2->parameter("weight").value) == 0);
  CHECK(test::max_rel_diff(a->parameter("weight").value, b->parameter("weight").value) > 0);
}
}  // TEST_SUITE
