// SGD and the step schedule against torch.optim.SGD + MultiStepLR: two parameter groups with different lr
// and weight decay, momentum 0.9, Nesterov off and on, 20 steps of a fixed gradient sequence, every step's
// weights compared. Tolerance (max |a - b| / max(1, |b|)): float64 1e-12, float32 1e-6.
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/npy.h"
#include "optim/sgd.h"
#include "tests/helpers.h"

using namespace mpncov;

TEST_SUITE("oracle") {

TEST_CASE("oracle: sgd with momentum and weight decay in two groups under a step schedule matches PyTorch") {
  const int64_t steps = 20, per_epoch = 4, epochs = 5;
  const std::vector<int64_t> milestones = {2, 4, 7};  // 7 >= epochs: never applies
  struct Spec {
    std::string name;
    Shape shape;
    int group;
  };
  const std::vector<Spec> specs = {
      {"features.w", {3, 4}, 0}, {"features.b", {4}, 0}, {"classifier.w", {5, 2}, 1}};
  for (DType dt : {DType::F64, DType::F32}) {
    for (bool nesterov : {false, true}) {
      const std::string dtype = dtype_name(dt);
      CAPTURE(dtype);
      CAPTURE(nesterov);
      const double tol = dt == DType::F64 ? 1e-12 : 1e-6;
      const auto dir = test::temp_dir(str("sgd_oracle_", dtype_name(dt), nesterov ? "_nesterov" : ""));

      std::vector<Parameter> params;
      std::vector<Tensor> grads;
      for (size_t i = 0; i < specs.size(); ++i) {
        Parameter p;
        p.name = specs[i].name;
        p.value = test::random_tensor(specs[i].shape, dt, 1 + i);
        p.grad = Tensor::zeros(specs[i].shape, dt);
        std::vector<int64_t> gshape = {steps};
        for (int d = 0; d < specs[i].shape.ndim(); ++d) gshape.push_back(specs[i].shape[d]);
        grads.push_back(test::random_tensor(Shape(gshape), dt, 50 + i));
        save_npy((dir / (p.name + ".npy")).string(), p.value);
        save_npy((dir / (p.name + "_grads.npy")).string(), grads.back());
        params.push_back(std::move(p));
      }
      {
        std::ofstream cfg(dir / "config.json");
        cfg << R"({"groups": [{"lr": 0.1, "weight_decay": 0.01, "params": ["features.w", "features.b"]},)"
            << R"( {"lr": 0.5, "weight_decay": 0.0, "params": ["classifier.w"]}],)"
            << R"( "momentum": 0.9, "milestones": [2, 4, 7], "gamma": 0.1, "steps": 20, "iterations_per_epoch": 4})";
      }

      std::vector<ParamGroup> groups(2);
      groups[0].name = "features";
      groups[0].base_lr = groups[0].lr = 0.1;
      groups[0].weight_decay = 0.01;
      groups[1].name = "classifier";
      groups[1].base_lr = groups[1].lr = 0.5;
      groups[1].weight_decay = 0.0;
      for (ParamGroup& g : groups) {
        g.momentum = 0.9;
        g.nesterov = nesterov;
      }
      for (size_t i = 0; i < specs.size(); ++i) groups[specs[i].group].params.push_back({specs[i].name, &params[i]});
      SGD sgd(groups);
      const Schedule schedule = Schedule::step(epochs, milestones, 0.1);

      std::vector<std::vector<Tensor>> trajectory(specs.size());
      for (int64_t s = 0; s < steps; ++s) {
        sgd.apply(schedule, {s / per_epoch, s % per_epoch, per_epoch});
        for (size_t i = 0; i < specs.size(); ++i) params[i].grad.copy_from(grads[i].slice(s, s + 1));
        sgd.step();
        for (size_t i = 0; i < specs.size(); ++i) trajectory[i].push_back(params[i].value.clone());
      }

      test::run_oracle("sgd_reference.py", {dir.string(), nesterov ? "1" : "0"});
      for (size_t i = 0; i < specs.size(); ++i) {
        CAPTURE(specs[i].name);
        const Tensor expect = load_npy((dir / (specs[i].name + "_torch.npy")).string());
        REQUIRE(expect.dtype() == dt);
        REQUIRE(expect.dim(0) == steps);
        double worst = 0;
        for (int64_t s = 0; s < steps; ++s)
          worst = std::max(worst, test::max_rel_diff(trajectory[i][s], expect.slice(s, s + 1)));
        CHECK_MESSAGE(worst <= tol, "max rel diff ", worst, " over ", steps, " steps, tolerance ", tol);
      }
    }
  }
}

}  // TEST_SUITE
