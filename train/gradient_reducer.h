// Data-parallel gradient averaging: the trainable parameters' gradients, grouped into buckets of about
// bucket_mb in the order the backward pass finishes them (last layer first), each bucket all-reduced as
// soon as its last gradient is complete while the backward pass goes on through the earlier layers. Every
// rank builds the same buckets from the same net and issues them in the same fixed order; frozen
// parameters are left out. After finish() every gradient is the mean over the processes.
//
//   GradientReducer reducer(net, comm, options);  // hooks itself into net's backward pass
//   reducer.begin(); net.backward(dy); reducer.finish(); sgd.step();
#pragma once
#include <vector>

#include "core/dist/communicator.h"
#include "nets/net.h"

namespace mpncov {

struct GradientReducerOptions {
  double bucket_mb = 25;  // bucket size in MiB (PyTorch DDP's default)
  bool overlap = true;    // false: every bucket starts after the whole backward pass (for measuring)
};

class GradientReducer {
 public:
  GradientReducer(Net& net, dist::Communicator& comm, GradientReducerOptions options = {});

  void begin();              // before the backward pass
  void layer_done(int layer);  // layer's backward has run: start the buckets it completes
  void finish();             // start what is left, wait for all, write the averaged gradients back

  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  dist::Communicator& communicator() const { return comm_; }
  int buckets() const { return static_cast<int>(buckets_.size()); }
  int64_t elements() const;  // gradient elements communicated per step
  // Seconds finish() spent waiting for collectives (communication not hidden behind the backward pass).
  double wait_seconds() const { return wait_seconds_; }
  void reset_wait_seconds() { wait_seconds_ = 0; }

 private:
  struct Slot {
    Parameter* param;
    int64_t offset, numel;
  };
  struct Bucket {
    std::vector<Slot> slots;
    Tensor flat;
    int pending = 0;  // gradients not yet complete in this step
    dist::WorkHandle work;
  };
  void launch(Bucket& b);

  Net& net_;
  dist::Communicator& comm_;
  GradientReducerOptions options_;
  std::vector<Bucket> buckets_;
  std::vector<std::vector<int>> layer_buckets_;  // per layer: the bucket of each of its trainable parameters
  double wait_seconds_ = 0;
};

}  // namespace mpncov
