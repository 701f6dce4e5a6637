// The training step: one SGD update per call, and a non-finite loss or gradient stops it before the
// update, naming the first layer where it happened.
#include <doctest/doctest.h>

#include <cmath>

#include "nets/net_spec.h"
#include "optim/param_group.h"
#include "optim/sgd.h"
#include "tests/helpers.h"
#include "train/step.h"

using namespace mpncov;

namespace {

const char* kNet = R"(name: step_net
input: [2, 4, 4]
features:
  - {name: conv1, type: conv, out_channels: 3, kernel_size: 3, padding: 1}
  - {name: relu1, type: relu}
representation: {name: representation, type: gavp}
classifier:
  - {name: fc, type: linear, out_features: 3}
)";

struct Fixture {
  Net net{parse_net(kNet, "step_net.yaml")};
  std::unique_ptr<SGD> sgd;
  Tensor x, y;
  Fixture() {
    net.setup(Shape({4, 2, 4, 4}), DType::F64, Device::cpu(), 5);
    std::vector<NamedParameter> all;
    for (const NetParameter& p : net.parameters()) all.push_back({p.name, p.parameter});
    ParamGroup g;
    g.name = "all";
    g.params = all;
    g.base_lr = g.lr = 0.1;
    sgd = std::make_unique<SGD>(std::vector<ParamGroup>{g});
    x = test::random_tensor({4, 2, 4, 4}, DType::F64, 3);
    y = Tensor::from_vector({0, 1, 2, 1}, {4}, DType::I64);
  }
  Parameter& param(const std::string& layer, const std::string& name) {
    for (Parameter& p : net.layer(net.index_of(layer)).parameters())
      if (p.name == name) return p;
    FAIL("no parameter ", layer, ".", name);
    throw 0;
  }
};

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("train step: updates the parameters and reports the loss") {
  Fixture f;
  const std::vector<double> before = f.param("fc", "weight").value.to_vector();
  TrainStep step(f.net, *f.sgd);
  step.run(f.x, f.y);
  const double first = step.loss();
  CHECK(std::isfinite(first));
  CHECK(f.param("fc", "weight").value.to_vector() != before);
  for (int i = 0; i < 20; ++i) step.run(f.x, f.y);
  CHECK(step.loss() < first);
}

TEST_CASE("train step: a non-finite loss stops it before the update, naming the first bad output") {
  Fixture f;
  Parameter& w = f.param("fc", "weight");
  std::vector<double> wv = w.value.to_vector();
  wv[1] = NAN;
  w.value.copy_from(Tensor::from_vector(wv, w.value.shape(), DType::F64));
  const std::vector<double> conv_before = f.param("conv1", "weight").value.to_vector();
  TrainStep step(f.net, *f.sgd);
  CHECK_THROWS_WITH_AS(step.run(f.x, f.y), doctest::Contains("the first layer with a non-finite output is fc"),
                       NonFiniteError);
  CHECK(f.param("conv1", "weight").value.to_vector() == conv_before);
}

TEST_CASE("train step: a non-finite gradient under a finite loss stops it before the update, naming the layer") {
  Fixture f;
  // ReLU maps the NaN that one input pixel spreads through conv1 to 0, so the loss stays finite; conv1's
  // weight gradient multiplies that pixel by a zero output gradient and turns NaN.
  std::vector<double> v = f.x.to_vector();
  v[5] = NAN;
  const Tensor bad = Tensor::from_vector(v, f.x.shape(), DType::F64);
  const std::vector<double> fc_before = f.param("fc", "weight").value.to_vector();
  TrainStep step(f.net, *f.sgd);
  CHECK_THROWS_WITH_AS(step.run(bad, f.y), doctest::Contains("the gradient of conv1.weight is not finite"),
                       NonFiniteError);
  CHECK(std::isfinite(step.loss()));
  CHECK(f.param("fc", "weight").value.to_vector() == fc_before);  // no parameter was updated
}

}  // TEST_SUITE
