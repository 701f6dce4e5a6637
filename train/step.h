// One training step: forward, softmax cross-entropy loss, backward, a non-finite check and the SGD
// update. It is written here only: `mpncov train`, `mpncov time`, the PyTorch oracle test and the GPU
// benchmark all call it, so what they check and measure is the trainer's step.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "core/error.h"
#include "layers/layer.h"
#include "nets/net.h"
#include "optim/sgd.h"

namespace mpncov {

class GradientReducer;

// The loss or a gradient stopped being finite; `what()` names the first layer where it happened. The
// parameters were not updated.
struct NonFiniteError : Error {
  using Error::Error;
};

struct StepOptions {
  double label_smoothing = 0;
  // One extra reduction over the gradients and one host read per step; off only for benchmarks.
  bool check_finite = true;
  // Time the loss and the update with the device synchronised around them (for `mpncov time`).
  bool time_parts = false;
  // Data-parallel runs: averages the gradients over the processes during the backward pass (its
  // communicator also makes the non-finite check one decision for all of them). nullptr: one process.
  GradientReducer* gradients = nullptr;
};

class TrainStep {
 public:
  // The net must be set up; the optimiser holds its parameters.
  TrainStep(Net& net, SGD& sgd, StepOptions options = {});
  ~TrainStep();

  // One step on a batch already on the net's device: images (N, C, H, W), int64 labels (N). The net is
  // set up again when the batch shape changes (a last, smaller batch).
  void run(const Tensor& images, const Tensor& labels);

  // The last step's loss, read back from the device (it waits for the step to finish).
  double loss() const;
  // The last step's logits (N, classes), valid until the next step.
  const Tensor& logits() const { return net_.output(); }

  // With options.time_parts: seconds spent in the loss and the update, summed over steps.
  double loss_seconds() const { return loss_seconds_; }
  double update_seconds() const { return update_seconds_; }

 private:
  void check_gradients() const;

  Net& net_;
  SGD& sgd_;
  StepOptions options_;
  std::unique_ptr<Layer> loss_;
  Shape loss_input_;
  Tensor value_, one_, dlogits_;
  Tensor grad_sums_;  // one slot per trainable parameter, summed into check_ once per step
  Tensor check_;
  std::vector<const Parameter*> trainable_;
  double loss_seconds_ = 0, update_seconds_ = 0;
};

// The softmax cross-entropy loss layer every training and evaluation path uses.
std::unique_ptr<Layer> make_loss(double label_smoothing);

}  // namespace mpncov
