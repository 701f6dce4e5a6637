// SGD against hand-computed steps; frozen parameters, multipliers, groups, schedules and state restore.
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "optim/sgd.h"
#include "tests/helpers.h"

using namespace mpncov;
using mpncov::test::random_tensor;

namespace {

Parameter make_param(const std::string& name, const std::vector<double>& values, DType dt = DType::F64) {
  Parameter p;
  p.name = name;
  p.value = Tensor::from_vector(values, {static_cast<int64_t>(values.size())}, dt);
  p.grad = Tensor::zeros(p.value.shape(), dt);
  return p;
}

ParamGroup make_group(const std::string& name, std::vector<NamedParameter> params, double lr, double wd,
                      double momentum, bool nesterov = false) {
  ParamGroup g;
  g.name = name;
  g.params = std::move(params);
  g.base_lr = g.lr = lr;
  g.weight_decay = wd;
  g.momentum = momentum;
  g.nesterov = nesterov;
  return g;
}

void set_grad(Parameter& p, const std::vector<double>& g) {
  p.grad.copy_from(Tensor::from_vector(g, p.value.shape(), p.value.dtype()));
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("sgd: three hand-computed steps with momentum and weight decay (plain and Nesterov)") {
  // lr 0.1, momentum 0.9, wd 0.01; w0 = [1, -2]; grads [0.5, 0], [-0.2, 0], [0.1, 0].
  const std::vector<std::vector<double>> grads = {{0.5, 0}, {-0.2, 0}, {0.1, 0}};
  struct Case {
    double momentum;
    bool nesterov;
    std::vector<std::vector<double>> expect;  // w after each step
  };
  const std::vector<Case> cases = {
      // d = g + 0.01 w; buf = 0.9 buf + d (buf = d first); w -= 0.1 buf
      {0.9, false, {{0.949, -1.998}, {0.922151, -1.994202}, {0.887064749, -1.988789598}}},
      // w -= 0.1 (d + 0.9 buf)
      {0.9, true, {{0.9031, -1.9962}, {0.89807411, -1.99078722}, {0.855657258191, -1.983929802282}}},
      // no momentum: w -= 0.1 d
      {0.0, false, {{0.949, -1.998}, {0.968051, -1.996002}, {0.957082949, -1.994005998}}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.momentum);
    CAPTURE(c.nesterov);
    Parameter p = make_param("w", {1, -2});
    SGD sgd({make_group("all", {{"layer.w", &p}}, 0.1, 0.01, c.momentum, c.nesterov)});
    for (size_t s = 0; s < grads.size(); ++s) {
      set_grad(p, grads[s]);
      sgd.step();
      const std::vector<double> w = p.value.to_vector();
      CHECK(w[0] == doctest::Approx(c.expect[s][0]).epsilon(1e-12));
      CHECK(w[1] == doctest::Approx(c.expect[s][1]).epsilon(1e-12));
    }
    CHECK(sgd.steps() == 3);
    CHECK((sgd.momentum_buffer("layer.w") != nullptr) == (c.momentum != 0));
  }
}

TEST_CASE("sgd: frozen parameters and lr_mult 0 are never updated and get no momentum buffer") {
  for (DType dt : {DType::F32, DType::F64}) {
    Parameter train = make_param("w", {1, 2, 3}, dt), frozen = make_param("f", {4, 5, 6}, dt);
    Parameter zero_lr = make_param("z", {7, 8}, dt);
    frozen.frozen = true;
    zero_lr.lr_mult = 0;
    Parameter no_grad = make_param("n", {9}, dt);
    no_grad.frozen = true;
    no_grad.grad = Tensor();  // frozen parameters need not have a gradient at all
    const Tensor frozen0 = frozen.value.clone(), zero0 = zero_lr.value.clone(), no_grad0 = no_grad.value.clone();
    SGD sgd({make_group("g", {{"w", &train}, {"f", &frozen}, {"z", &zero_lr}, {"n", &no_grad}}, 0.1, 0.1, 0.9)});
    for (int s = 0; s < 4; ++s) {
      set_grad(train, {1, 1, 1});
      set_grad(frozen, {1, 1, 1});  // even a stray gradient is ignored
      set_grad(zero_lr, {1, 1});
      sgd.step();
    }
    CHECK(bitwise_equal(frozen.value, frozen0));
    CHECK(bitwise_equal(zero_lr.value, zero0));
    CHECK(bitwise_equal(no_grad.value, no_grad0));
    CHECK(sgd.momentum_buffer("f") == nullptr);
    CHECK(sgd.momentum_buffer("z") == nullptr);
    CHECK(sgd.momentum_buffer("n") == nullptr);
    CHECK(sgd.momentum_buffer("w") != nullptr);
    CHECK(train.value.to_vector()[0] != 1.0);
    CHECK(sgd.state().momentum.size() == 1);
    // zero_grad leaves frozen gradients alone too.
    sgd.zero_grad();
    CHECK(train.grad.to_vector() == std::vector<double>{0, 0, 0});
    CHECK(frozen.grad.to_vector() == std::vector<double>{1, 1, 1});
  }
}

TEST_CASE("sgd: lr_mult and decay_mult scale the group's lr and weight decay") {
  Parameter a = make_param("a", {0.5, -1.5, 2.0}), b = make_param("b", {0.5, -1.5, 2.0});
  a.lr_mult = 2;
  a.decay_mult = 0;
  b.decay_mult = 3;  // against a reference group with those values built in
  Parameter ra = make_param("ra", {0.5, -1.5, 2.0}), rb = make_param("rb", {0.5, -1.5, 2.0});
  SGD sgd({make_group("g", {{"a", &a}, {"b", &b}}, 0.05, 0.01, 0.9)});
  SGD ref({make_group("ga", {{"ra", &ra}}, 0.1, 0.0, 0.9), make_group("gb", {{"rb", &rb}}, 0.05, 0.03, 0.9)});
  for (int s = 0; s < 5; ++s) {
    const std::vector<double> g = {0.1 * s, -0.3, 0.2 - 0.05 * s};
    for (Parameter* p : {&a, &b, &ra, &rb}) set_grad(*p, g);
    sgd.step();
    ref.step();
  }
  CHECK(bitwise_equal(a.value, ra.value));
  CHECK(bitwise_equal(b.value, rb.value));
}

TEST_CASE("sgd: groups keep their own lr and weight decay and momentum") {
  Parameter a = make_param("a", {1, 2}), b = make_param("b", {3, 4});
  Parameter ra = make_param("a", {1, 2}), rb = make_param("b", {3, 4});
  SGD both({make_group("one", {{"a", &a}}, 0.1, 1e-3, 0.9), make_group("two", {{"b", &b}}, 0.02, 0, 0.5, true)});
  SGD only_a({make_group("one", {{"a", &ra}}, 0.1, 1e-3, 0.9)});
  SGD only_b({make_group("two", {{"b", &rb}}, 0.02, 0, 0.5, true)});
  for (int s = 0; s < 6; ++s) {
    for (Parameter* p : {&a, &ra}) set_grad(*p, {0.3, -0.1 * s});
    for (Parameter* p : {&b, &rb}) set_grad(*p, {-0.2 * s, 0.7});
    both.step();
    only_a.step();
    only_b.step();
  }
  CHECK(bitwise_equal(a.value, ra.value));
  CHECK(bitwise_equal(b.value, rb.value));
  CHECK(both.group("two").momentum == 0.5);
  CHECK_THROWS_WITH_AS(both.group("three"), doctest::Contains("no parameter group named 'three'"), Error);
}

TEST_CASE("sgd: the seed's three groups with the classifier factor and classifier weight decay rule") {
  CHECK(seed_classifier_weight_decay(5e-4, true, "vgg16") == 0.0);
  CHECK(seed_classifier_weight_decay(5e-4, true, "vgg16_bn") == 0.0);
  CHECK(seed_classifier_weight_decay(5e-4, false, "vgg16") == 5e-4);
  CHECK(seed_classifier_weight_decay(1e-4, true, "mpncovresnet50") == 1e-4);
  CHECK(seed_classifier_weight_decay(1e-4, true, "mpncovvgg16_bn") == 1e-4);  // the seed tests startswith('vgg')

  Parameter f = make_param("f", {1}), c = make_param("c", {1});
  GroupSettings s;
  s.lr = 1e-3;
  s.momentum = 0.9;
  s.weight_decay = 5e-4;
  s.classifier_lr_mult = 1000;
  s.classifier_weight_decay = seed_classifier_weight_decay(s.weight_decay, true, "vgg16");
  std::vector<ParamGroup> groups = seed_groups({{"features.0.weight", &f}}, {}, {{"fc.weight", &c}}, s);
  REQUIRE(groups.size() == 3);
  CHECK(groups[0].name == "features");
  CHECK(groups[1].name == "representation");
  CHECK(groups[1].params.empty());
  CHECK(groups[2].name == "classifier");
  CHECK(groups[0].lr == 1e-3);
  CHECK(groups[2].lr == 1.0);
  CHECK(groups[2].base_lr == 1.0);
  CHECK(groups[0].weight_decay == 5e-4);
  CHECK(groups[1].weight_decay == 5e-4);
  CHECK(groups[2].weight_decay == 0.0);
  for (const ParamGroup& g : groups) CHECK(g.momentum == 0.9);

  // A schedule scales every group from its own base: the classifier keeps its factor.
  SGD sgd(groups);
  sgd.apply(Schedule::step(65, {30, 45, 60}), {45, 0, 100});
  CHECK(sgd.groups()[0].lr == doctest::Approx(1e-5).epsilon(1e-14));
  CHECK(sgd.groups()[2].lr == doctest::Approx(1e-2).epsilon(1e-14));
  CHECK(sgd.groups()[2].base_lr == 1.0);
}

TEST_CASE("sgd: a restored state continues bit for bit") {
  for (DType dt : {DType::F32, DType::F64}) {
    for (bool nesterov : {false, true}) {
      CAPTURE(nesterov);
      const Schedule schedule = Schedule::step(4, {2}, 0.1);
      auto make = [&](std::vector<Parameter>& ps) {
        ps.clear();
        ps.push_back({"weight", random_tensor({3, 5}, dt, 11), Tensor::zeros({3, 5}, dt), 1, 1, false});
        ps.push_back({"bias", random_tensor({5}, dt, 12), Tensor::zeros({5}, dt), 2, 0, false});
        ps.push_back({"head", random_tensor({4}, dt, 13), Tensor::zeros({4}, dt), 1, 1, false});
        ps.push_back({"stem", random_tensor({2}, dt, 14), Tensor(), 1, 1, true});
        return std::make_unique<SGD>(std::vector<ParamGroup>{
            make_group("features", {{"l.weight", &ps[0]}, {"l.bias", &ps[1]}, {"l.stem", &ps[3]}}, 0.1, 1e-2, 0.9,
                       nesterov),
            make_group("classifier", {{"fc.head", &ps[2]}}, 0.5, 0, 0.9, nesterov)});
      };
      const int64_t per_epoch = 3;
      auto run = [&](SGD& sgd, std::vector<Parameter>& ps, int64_t from, int64_t to) {
        for (int64_t s = from; s < to; ++s) {
          sgd.apply(schedule, {s / per_epoch, s % per_epoch, per_epoch});
          for (size_t i = 0; i < 3; ++i) ops::fill_uniform(ps[i].grad, -1, 1, 100 + s, i);
          sgd.step();
        }
      };
      std::vector<Parameter> straight, first, resumed;
      auto sgd_straight = make(straight);
      run(*sgd_straight, straight, 0, 10);

      auto sgd_first = make(first);
      run(*sgd_first, first, 0, 5);
      // What a checkpoint would hold: copies of the weights and of the optimiser state.
      SgdState saved = sgd_first->state();
      for (auto& [name, buf] : saved.momentum) buf = buf.clone();
      std::vector<Tensor> weights;
      for (const Parameter& p : first) weights.push_back(p.value.clone());
      sgd_first.reset();

      auto sgd_resumed = make(resumed);
      for (size_t i = 0; i < resumed.size(); ++i) resumed[i].value.copy_from(weights[i]);
      sgd_resumed->load_state(saved);
      CHECK(sgd_resumed->steps() == 5);
      CHECK(sgd_resumed->groups()[1].lr == saved.group_lr.at("classifier"));
      run(*sgd_resumed, resumed, 5, 10);
      for (size_t i = 0; i < straight.size(); ++i) CHECK(bitwise_equal(straight[i].value, resumed[i].value));
      for (const char* name : {"l.weight", "l.bias", "fc.head"})
        CHECK(bitwise_equal(*sgd_straight->momentum_buffer(name), *sgd_resumed->momentum_buffer(name)));
      CHECK(sgd_resumed->momentum_buffer("l.stem") == nullptr);
    }
  }
}

TEST_CASE("sgd: bad groups and bad states are errors that change nothing") {
  Parameter a = make_param("a", {1, 2}), b = make_param("b", {3});
  CHECK(error_of([&] { SGD({make_group("g", {{"x", &a}, {"x", &b}}, 0.1, 0, 0.9)}); })
            .find("two parameters are named 'x'") != std::string::npos);
  CHECK(error_of([&] { SGD({make_group("g", {{"x", &a}}, 0.1, 0, 0.9), make_group("h", {{"y", &a}}, 0.1, 0, 0.9)}); })
            .find("in more than one group") != std::string::npos);
  CHECK(error_of([&] { SGD({make_group("g", {}, 0.1, 0, 0.9), make_group("g", {}, 0.1, 0, 0.9)}); })
            .find("two parameter groups are named 'g'") != std::string::npos);
  CHECK(error_of([&] { SGD({make_group("g", {{"x", &a}}, 0.1, 0, 0, true)}); }).find("Nesterov without momentum") !=
        std::string::npos);
  CHECK(error_of([&] { SGD({make_group("g", {{"x", &a}}, -0.1, 0, 0.9)}); }).find("negative") != std::string::npos);

  SGD sgd({make_group("g", {{"x", &a}, {"y", &b}}, 0.1, 0, 0.9)});
  a.grad = Tensor();
  CHECK(error_of([&] { sgd.step(); }).find("'x' is trainable but has no gradient") != std::string::npos);
  a.grad = Tensor::zeros({2}, DType::F64);

  SgdState bad;
  bad.momentum["z"] = Tensor::zeros({2}, DType::F64);
  CHECK(error_of([&] { sgd.load_state(bad); }).find("unknown parameter 'z'") != std::string::npos);
  bad.momentum.clear();
  bad.momentum["x"] = Tensor::zeros({3}, DType::F64);
  CHECK(error_of([&] { sgd.load_state(bad); }).find("momentum buffer 'x'") != std::string::npos);
  bad.momentum.clear();
  bad.group_lr["h"] = 0.1;
  bad.steps = 7;
  CHECK(error_of([&] { sgd.load_state(bad); }).find("unknown parameter group 'h'") != std::string::npos);
  CHECK(sgd.steps() == 0);
  // A float32 buffer restores into a float64 parameter by conversion.
  SgdState f32;
  f32.momentum["x"] = Tensor::from_vector({0.5, -0.25}, {2}, DType::F32);
  f32.group_lr["g"] = 0.3;
  sgd.load_state(f32);
  CHECK(sgd.momentum_buffer("x")->dtype() == DType::F64);
  CHECK(sgd.momentum_buffer("x")->to_vector() == std::vector<double>{0.5, -0.25});
  CHECK(sgd.groups()[0].lr == 0.3);
}

}  // TEST_SUITE
