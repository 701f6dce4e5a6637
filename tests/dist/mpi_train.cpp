// Data-parallel training across 2 processes against 1 process: sync batch norm and the bucketed gradient
// all-reduce make 2 processes of batch 8 compute what 1 process of batch 16 computes.
#include <doctest/doctest.h>

#include "core/dist/communicator.h"
#include "nets/net.h"
#include "nets/net_spec.h"
#include "optim/param_group.h"
#include "optim/sgd.h"
#include "tests/helpers.h"
#include "train/gradient_reducer.h"
#include "train/step.h"
#include "train/pipeline_config.h"
#include "train/trainer.h"
#include "data/synthetic.h"

using namespace mpncov;

namespace {

std::string small_net(bool batchnorm, bool sync) {
  const std::string bn = sync ? "{name: BN, type: batchnorm, sync: true}" : "{name: BN, type: batchnorm}";
  auto with = [&](const std::string& name) {
    std::string s = bn;
    return s.replace(s.find("BN"), 2, name);
  };
  std::string net = "name: dp_net\ninput: [3, 8, 8]\nfeatures:\n"
                    "  - {name: conv1, type: conv, out_channels: 6, kernel_size: 3, padding: 1}\n";
  if (batchnorm) net += "  - " + with("bn1") + "\n";
  net += "  - {name: relu1, type: relu}\n"
         "  - {name: pool, type: maxpool, kernel_size: 2, stride: 2}\n"
         "  - {name: conv2, type: conv, out_channels: 5, kernel_size: 3, padding: 1, bias: false}\n";
  if (batchnorm) net += "  - " + with("bn2") + "\n";
  net += "  - {name: relu2, type: relu}\n"
         "representation: {name: representation, type: gavp}\n"
         "classifier:\n  - {name: fc, type: linear, out_features: 3}\n";
  return net;
}

struct Trajectory {
  std::vector<double> losses;       // the mean loss over the whole batch of 16, per step
  std::vector<NamedTensor> state;   // after the last step
};

// `steps` SGD steps on the batches of 16 in xs/ys; this process takes rows [first, first + count) of each
// and averages with the others through comm (a single process takes all 16).
Trajectory train_steps(const std::string& net_text, DType dtype, dist::Communicator& comm, const Tensor& xs,
                       const Tensor& ys, int64_t first, int64_t count, bool overlap) {
  const int64_t steps = xs.dim(0);
  Net net(parse_net(net_text, "dp_net.yaml"));
  net.setup(Shape({count, 3, 8, 8}), dtype, Device::cpu(), 5);
  for (const NamedTensor& t : net.state()) comm.broadcast(t.tensor, 0);
  std::vector<NamedParameter> features, classifier;
  for (const NetParameter& p : net.parameters())
    (p.part == NetPart::Classifier ? classifier : features).push_back({p.name, p.parameter});
  GroupSettings gs;
  gs.lr = 0.1;
  gs.momentum = 0.9;
  gs.weight_decay = 1e-3;
  SGD sgd(seed_groups(features, {}, classifier, gs));
  GradientReducerOptions ro;
  ro.bucket_mb = 0.0005;  // ~500 bytes: several buckets even for this tiny net
  ro.overlap = overlap;
  std::unique_ptr<GradientReducer> reducer;
  StepOptions so;
  if (comm.size() > 1) {
    reducer = std::make_unique<GradientReducer>(net, comm, ro);
    so.gradients = reducer.get();
  }
  TrainStep step(net, sgd, so);  // the trainer's step
  Trajectory out;
  net.set_training(true);
  for (int64_t s = 0; s < steps; ++s) {
    const Tensor x = xs.slice(s, s + 1).reshape({16, 3, 8, 8}).slice(first, first + count).to(dtype);
    const Tensor y = ys.slice(s, s + 1).reshape({16}).slice(first, first + count);
    step.run(x, y);
    Tensor mean = Tensor::full(Shape({1}), step.loss() / comm.size(), DType::F64);
    comm.all_reduce(mean);
    out.losses.push_back(mean.item());
  }
  out.state = net.state();
  return out;
}

// Learnable labels: the channel with the largest mean of each image.
Tensor labels_of(const Tensor& xs) {
  const std::vector<double> v = xs.to_vector();
  const int64_t images = xs.dim(0) * xs.dim(1), plane = 64;
  std::vector<double> labels;
  for (int64_t i = 0; i < images; ++i) {
    double best = -1e9;
    int label = 0;
    for (int c = 0; c < 3; ++c) {
      double sum = 0;
      for (int64_t k = 0; k < plane; ++k) sum += v[static_cast<size_t>((i * 3 + c) * plane + k)];
      if (sum > best) best = sum, label = c;
    }
    labels.push_back(label);
  }
  return Tensor::from_vector(labels, {xs.dim(0), xs.dim(1)}, DType::I64);
}

void check_same(const Trajectory& a, const Trajectory& b, double tolerance) {
  CHECK(test::max_rel_diff(a.losses, b.losses) < tolerance);
  REQUIRE(a.state.size() == b.state.size());
  for (size_t i = 0; i < a.state.size(); ++i) {
    INFO(a.state[i].name);
    if (a.state[i].name.find("num_batches_tracked") != std::string::npos) continue;
    CHECK(test::max_rel_diff(a.state[i].tensor, b.state[i].tensor) < tolerance);
  }
}

}  // namespace

TEST_SUITE("dist-train") {

TEST_CASE("dist: 2 processes x batch 8 with sync batch norm = 1 process x batch 16, 20 steps in float64") {
  dist::Communicator& comm = dist::world();
  const Tensor xs = test::random_tensor({20, 16, 3, 8, 8}, DType::F64, 21);
  const Tensor ys = labels_of(xs);
  std::unique_ptr<dist::Communicator> alone = dist::single_process();
  const Trajectory one = train_steps(small_net(true, false), DType::F64, *alone, xs, ys, 0, 16, true);
  for (bool overlap : {true, false}) {
    INFO("overlap ", overlap);
    const Trajectory two = train_steps(small_net(true, true), DType::F64, comm, xs, ys, 8 * comm.rank(), 8, overlap);
    check_same(two, one, 1e-9);
  }
  // It learned something (the last steps' loss below the first steps').
  CHECK(one.losses[17] + one.losses[18] + one.losses[19] < one.losses[0] + one.losses[1] + one.losses[2]);
  // Without sync the statistics are per process: the trajectories differ (the test above can fail).
  const Trajectory local = train_steps(small_net(true, false), DType::F64, comm, xs, ys, 8 * comm.rank(), 8, true);
  CHECK(test::max_rel_diff(local.losses, one.losses) > 1e-6);
  // float32: the same within float32 rounding accumulated over 20 steps.
  const Trajectory one32 = train_steps(small_net(true, false), DType::F32, *alone, xs, ys, 0, 16, true);
  const Trajectory two32 = train_steps(small_net(true, true), DType::F32, comm, xs, ys, 8 * comm.rank(), 8, true);
  check_same(two32, one32, 1e-4);
}

TEST_CASE("dist: without batch norm, 2 processes x batch 8 = 1 process x batch 16 (no sync needed)") {
  dist::Communicator& comm = dist::world();
  const Tensor xs = test::random_tensor({20, 16, 3, 8, 8}, DType::F64, 22);
  const Tensor ys = labels_of(xs);
  std::unique_ptr<dist::Communicator> alone = dist::single_process();
  const Trajectory one = train_steps(small_net(false, false), DType::F64, *alone, xs, ys, 0, 16, true);
  const Trajectory two = train_steps(small_net(false, false), DType::F64, comm, xs, ys, 8 * comm.rank(), 8, true);
  check_same(two, one, 1e-9);
}

TEST_CASE("dist: a non-finite loss on one rank stops every rank at the same step, before the update") {
  dist::Communicator& comm = dist::world();
  Net net(parse_net(small_net(true, false), "dp_net.yaml"));
  net.setup(Shape({4, 3, 8, 8}), DType::F64, Device::cpu(), 5);
  std::vector<NamedParameter> all;
  for (const NetParameter& p : net.parameters()) all.push_back({p.name, p.parameter});
  GroupSettings gs;
  SGD sgd(seed_groups(all, {}, {}, gs));
  GradientReducer reducer(net, comm);
  StepOptions so;
  so.gradients = &reducer;
  TrainStep step(net, sgd, so);
  const Tensor x = test::random_tensor({4, 3, 8, 8}, DType::F64, 30 + static_cast<uint64_t>(comm.rank()));
  step.run(x, Tensor::from_vector({0, 1, 2, 0}, Shape({4}), DType::I64));  // a good step on both
  const std::vector<double> before = net.parameters()[0].parameter->value.to_vector();
  // A label outside the classes makes rank 1's loss NaN, and only rank 1's.
  const Tensor y = Tensor::from_vector({0, 1, comm.rank() == 1 ? 7.0 : 2.0, 0}, Shape({4}), DType::I64);
  CHECK_THROWS_WITH_AS(step.run(x, y), doctest::Contains(comm.rank() == 1 ? "the loss is nan" : "another process"),
                       NonFiniteError);
  // NaN gradients on one rank (a NaN image: ReLU hides it from the loss) reach every rank through the
  // all-reduce, and every rank stops on them.
  Tensor bad = x.clone();
  if (comm.rank() == 1) ops::fill(bad.slice(2, 3), NAN);
  CHECK_THROWS_WITH_AS(step.run(bad, Tensor::from_vector({0, 1, 2, 0}, Shape({4}), DType::I64)),
                       doctest::Contains("is not finite"), NonFiniteError);
  CHECK(net.parameters()[0].parameter->value.to_vector() == before);  // no update anywhere
}

TEST_CASE("dist: frozen parameters are left out of the buckets and stay put - the others end equal on both ranks") {
  dist::Communicator& comm = dist::world();
  Net net(parse_net(small_net(true, false), "dp_net.yaml"));
  net.setup(Shape({4, 3, 8, 8}), DType::F32, Device::cpu(), 5);
  net.freeze(2);  // conv1 and bn1
  std::vector<NamedParameter> all;
  int64_t trainable = 0;
  for (const NetParameter& p : net.parameters()) {
    all.push_back({p.name, p.parameter});
    if (!p.parameter->frozen) trainable += p.parameter->value.numel();
  }
  GroupSettings gs;
  SGD sgd(seed_groups(all, {}, {}, gs));
  GradientReducerOptions ro;
  ro.bucket_mb = 0.0001;  // ~100 bytes: the classifier and bn2 in one bucket, conv2 in another
  GradientReducer reducer(net, comm, ro);
  CHECK(reducer.elements() == trainable);
  CHECK(reducer.buckets() > 1);
  StepOptions so;
  so.gradients = &reducer;
  TrainStep step(net, sgd, so);
  const std::vector<double> conv1 = net.parameters()[0].parameter->value.to_vector();
  const Tensor x = test::random_tensor({4, 3, 8, 8}, DType::F32, 40 + static_cast<uint64_t>(comm.rank()));
  for (int i = 0; i < 3; ++i) step.run(x, Tensor::from_vector({0, 1, 2, 0}, Shape({4}), DType::I64));
  CHECK(net.parameters()[0].parameter->value.to_vector() == conv1);
  for (const NetParameter& p : net.parameters()) {  // rank 0's values, compared on every rank
    Tensor mine = p.parameter->value.clone(), theirs = p.parameter->value.clone();
    comm.broadcast(theirs, 0);
    INFO(p.name);
    CHECK(mine.to_vector() == theirs.to_vector());
  }
}

TEST_CASE("dist: validation over 2 ranks equals validation on 1 for 9 images (each counted once)") {
  dist::Communicator& comm = dist::world();
  const std::filesystem::path dir = std::filesystem::path(MPNCOV_BINARY_DIR) / "test-tmp" / "dist_validation";
  if (comm.rank() == 0) {
    std::filesystem::remove_all(dir);
    data::SyntheticOptions o;
    o.classes = 3;
    o.train_per_class = 1;
    o.val_per_class = 3;
    o.size = 8;
    data::write_synthetic_dataset(dir.string(), o);
  }
  comm.barrier();
  auto val = std::make_shared<const data::ImageFolder>((dir / "val").string());
  REQUIRE(val->size() == 9);
  DataConfig d;
  d.preset = "plain";
  d.image_size = 8;
  Net net(parse_net(small_net(true, false), "dp_net.yaml"));
  net.setup(Shape({2, 3, 8, 8}), DType::F32, Device::cpu(), 5);
  data::LoaderOptions lo;
  lo.batch_size = 2;
  lo.workers = 0;
  lo.shuffle = false;
  data::Loader whole(val, make_pipeline(d, false, 1), lo);
  const EvalResult one = evaluate(net, whole, Device::cpu(), 0);
  lo.rank = comm.rank();
  lo.world_size = comm.size();
  lo.pad_shards = false;
  data::Loader shard(val, make_pipeline(d, false, 1), lo);
  CHECK(shard.samples_per_epoch() == (comm.rank() == 0 ? 5 : 4));
  const EvalResult two = evaluate(net, shard, Device::cpu(), 0, {}, &comm);
  CHECK(two.images == 9);
  CHECK(one.images == 9);
  CHECK(two.top1 == one.top1);
  CHECK(two.top5 == one.top5);
  CHECK(std::abs(two.loss - one.loss) < 1e-6 * std::abs(one.loss));
  // Padded shards (as training uses) would count an image twice: the run must not use them.
  lo.pad_shards = true;
  data::Loader padded(val, make_pipeline(d, false, 1), lo);
  CHECK(evaluate(net, padded, Device::cpu(), 0, {}, &comm).images == 10);
}

}  // TEST_SUITE
