// Shared test helpers: random tensors, comparisons, the PyTorch oracle runner and temporary folders.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/context.h"
#include "core/cpu/nn_cpu.h"
#include "core/layout.h"
#include "core/ops.h"
#include "core/tensor.h"

namespace mpncov::test {

// Restores the activation layout mode (core/layout.h) when a test ends, however it ends.
struct LayoutModeGuard {
  LayoutMode saved = layout_mode();
  ~LayoutModeGuard() { set_layout_mode(saved); }
};

// Sets the CPU convolution algorithm (core/cpu/nn_cpu.h) for one scope and restores the one before.
struct AlgorithmScope {
  cpu::ConvAlgorithm before = cpu::conv_algorithm();
  explicit AlgorithmScope(cpu::ConvAlgorithm a) { cpu::set_conv_algorithm(a); }
  ~AlgorithmScope() { cpu::set_conv_algorithm(before); }
};

// A CPU tensor of uniform values in [low, high) drawn from (seed, stream).
inline Tensor random_tensor(const Shape& shape, DType dtype = DType::F64, uint64_t seed = 1, double low = -1,
                            double high = 1) {
  Tensor t = Tensor::empty(shape, dtype);
  ops::fill_uniform(t, low, high, seed, 0);
  return t;
}

// Largest |a - b| relative to max(1, |b|) over all elements; the sizes must match.
inline double max_rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i]));
    if (std::isnan(d) || d > worst) worst = std::isnan(d) ? INFINITY : d;
  }
  return worst;
}

inline double max_rel_diff(const Tensor& a, const Tensor& b) { return max_rel_diff(a.to_vector(), b.to_vector()); }

// Largest |a - b| over the largest |b| (an error relative to the reference's scale, for tolerances of
// float32 or bfloat16 arithmetic), both read in NCHW whatever their layout; a NaN in a counts as infinite.
double scaled_diff(const Tensor& a, const Tensor& b);

// A net's logits against a reference's (the oracle tests of whole nets): the largest |difference| within
// 1e-4 of the largest |logit|, or of 1 where every logit is smaller; `what` and both figures in the message.
void check_logits(const Tensor& got, const Tensor& want, const std::string& what);

// x converted into a new tensor of dtype `dtype` (x's by default) in layout l, in one pass.
Tensor in_layout(const Tensor& x, Layout l);
Tensor in_layout(const Tensor& x, Layout l, DType dtype);

// A small DenseNet (net YAML): two dense blocks of `repeat1` and `repeat2` layers around a transition
// pooling: fan-out to many concatenations, batch norms and ReLUs in shared storage, recomputed in backward.
std::string small_densenet_yaml(int repeat1, int repeat2);

// Whether a CUDA device can run; GPU tests call this and skip with a reason when not.
inline bool gpu_present() { return cuda_built() && cuda_device_count() > 0; }

// A fresh empty folder under the build tree for one test.
// A three-class image folder of synthetic images (dir/data/train, dir/data/val), written once per dir.
void write_tiny_image_folder(const std::filesystem::path& dir, int train_per_class = 6, int val_per_class = 2,
                             int size = 16);

// The tiny folder above and dir/exp.yaml over it: small_cnn with iSQRT-COV (`model_extra` adds lines to the
// model section), preset plain at 16x16, batch 4, run folder dir/run; `solver` is the solver's flow mapping.
// Returns the experiment's path.
std::string write_tiny_experiment(const std::filesystem::path& dir, const std::string& solver,
                                  const std::string& model_extra = "");

inline std::filesystem::path temp_dir(const std::string& name) {
  std::filesystem::path p = std::filesystem::path(MPNCOV_BINARY_DIR) / "test-tmp" / name;
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

// Runs tests/oracle/SCRIPT with Debian's python3 (which has PyTorch) and the arguments; fails the
// test with the script's output when it does not succeed.
std::string run_oracle(const std::string& script, const std::vector<std::string>& args);

}  // namespace mpncov::test
