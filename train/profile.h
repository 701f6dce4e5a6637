// Timing of training steps layer by layer, for `mpncov time` and the benchmarks: forward, backward, loss
// and SGD update of a net on random inputs, after warm-up, with the device synchronised around each part.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nets/net.h"

namespace mpncov {

struct StepProfile {
  std::vector<double> forward, backward;  // seconds per step, per layer
  double loss = 0, update = 0, step = 0;  // seconds per step (per forward pass with inference)
  int64_t batch = 0;
  bool inference = false;  // eval-mode forward passes only (no backward, loss or update)
  std::string table(const Net& net) const;

 private:
  std::string inference_table(const Net& net) const;
};

// Runs `warmup` untimed and `iterations` timed training steps (SGD, momentum 0.9) of a set-up net.
// Layer timing synchronises the device after each layer, so `step` is also measured separately without it.
StepProfile profile_training(Net& net, int64_t iterations, int64_t warmup = 2);
// Seconds per eval-mode forward pass (no per-layer synchronisation).
double time_inference(Net& net, int64_t iterations, int64_t warmup = 2);
// The same, then `iterations` more passes timed layer by layer.
StepProfile profile_inference(Net& net, int64_t iterations, int64_t warmup = 2);

}  // namespace mpncov
