#include "train/gradient_reducer.h"

#include <chrono>

#include "core/ops.h"

namespace mpncov {

GradientReducer::GradientReducer(Net& net, dist::Communicator& comm, GradientReducerOptions options)
    : net_(net), comm_(comm), options_(options) {
  MPNCOV_CHECK(options_.bucket_mb > 0, "gradient buckets: the size must be positive, got ", options_.bucket_mb, " MiB");
  const double cap = options_.bucket_mb * 1024 * 1024;
  layer_buckets_.assign(static_cast<size_t>(net.size()), {});
  double bytes = 0;
  for (int i = net.size() - 1; i >= 0; --i) {
    for (Parameter& p : net.layer(i).parameters()) {
      if (p.frozen) continue;
      if (buckets_.empty() || bytes >= cap) {
        buckets_.emplace_back();
        bytes = 0;
      }
      Bucket& b = buckets_.back();
      const int64_t offset = b.slots.empty() ? 0 : b.slots.back().offset + b.slots.back().numel;
      b.slots.push_back({&p, offset, p.grad.numel()});
      bytes += static_cast<double>(p.grad.nbytes());
      layer_buckets_[static_cast<size_t>(i)].push_back(static_cast<int>(buckets_.size()) - 1);
    }
  }
  for (Bucket& b : buckets_) {
    const Slot& last = b.slots.back();
    const Tensor& g = b.slots.front().param->grad;
    b.flat = Tensor::empty(Shape({last.offset + last.numel}), g.dtype(), g.device());
  }
  net.set_backward_hook([this](int layer) { layer_done(layer); });
}

GradientReducer::~GradientReducer() { net_.set_backward_hook({}); }

int64_t GradientReducer::elements() const {
  int64_t n = 0;
  for (const Bucket& b : buckets_) n += b.flat.numel();
  return n;
}

void GradientReducer::begin() {
  for (Bucket& b : buckets_) {
    b.pending = static_cast<int>(b.slots.size());
    b.work.reset();
  }
}

void GradientReducer::launch(Bucket& b) {
  for (const Slot& s : b.slots) {
    zero_pending_grad(*s.param);  // no backward pass wrote it since zero_grad (layers/layer.h)
    b.flat.slice(s.offset, s.offset + s.numel).copy_from(s.param->grad);
  }
  b.work = comm_.all_reduce_async(b.flat);
}

void GradientReducer::layer_done(int layer) {
  if (!options_.overlap) return;
  for (int k : layer_buckets_[static_cast<size_t>(layer)]) {
    Bucket& b = buckets_[static_cast<size_t>(k)];
    if (--b.pending == 0) launch(b);
  }
}

void GradientReducer::finish() {
  // Buckets still open (overlap off) start now, in the same fixed order on every rank.
  for (Bucket& b : buckets_)
    if (!b.work) launch(b);
  const double scale = 1.0 / comm_.size();
  for (Bucket& b : buckets_) {
    const auto start = std::chrono::steady_clock::now();
    b.work->wait();
    wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ops::binary_scalar(ops::Binary::Mul, b.flat, scale, b.flat);
    for (const Slot& s : b.slots) s.param->grad.copy_from(b.flat.slice(s.offset, s.offset + s.numel));
    b.work.reset();
  }
}

}  // namespace mpncov
