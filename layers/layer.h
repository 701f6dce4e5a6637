// The layer contract (Caffe's, kept small) and the registry from YAML `type` to factory.
//
//   setup(input shapes) -> output shapes   checks arity and shapes; creates the parameters the first
//                                          time (later calls, e.g. for a new batch size, keep them)
//   forward(inputs, outputs)               writes (=) the outputs
//   backward(inputs, outputs, output grads, input grads)
//                                          writes (=) each defined input grad (an undefined one is not
//                                          needed) and ACCUMULATES (+=) parameter grads, unless frozen
//
// Gradients follow one convention: diff = dL/dx. Layers are written once against core/ops.h; anything
// device-specific is an op. A layer that may run in place (output sharing its input's storage) says so;
// its backward then sees the output where the input was.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/precision.h"
#include "core/tensor.h"

namespace mpncov {
namespace ops {
struct PreparedConv;  // core/nn_ops.h
struct Pool2dParams;  // core/nn_ops.h
}

struct Parameter {
  std::string name;  // local to the layer: "weight", "bias"
  Tensor value;
  Tensor grad;
  double lr_mult = 1.0;
  double decay_mult = 1.0;
  bool frozen = false;  // no gradient is computed or applied
  // Set by a layer whose every backward pass can write this gradient instead of adding to it (the
  // convolution's weight): zero_grad then only marks it (grad_zero_pending) and the layer's next backward
  // writes it, which saves a pass over the gradient and the reading of the old one.
  bool overwrite_grad = false;
  // The gradient counts as zero but its memory may still hold old values: zero_grad deferred the zeroing
  // of an overwrite_grad parameter to its layer's next backward, which clears this. Whoever reads the
  // gradient before that backward zeroes it first (zero_pending_grad; SGD::step does).
  bool grad_zero_pending = false;
};

// Zeroes a gradient whose zeroing zero_grad deferred (Parameter::grad_zero_pending).
void zero_pending_grad(Parameter& p);

struct Buffer {
  std::string name;  // "running_mean", ...: saved with the weights, not trained
  Tensor value;
};

// What a layer needs to create its parameters: where they live and how to draw their initial values.
struct SetupContext {
  DType dtype = DType::F32;
  Device device = Device::cpu();
  uint64_t seed = 1;     // the run's seed
  std::string name;      // the layer's full dotted name; it keys the layer's random streams
  // The net's memory plan (Net::setup): bytes planned so far and the most it may plan. A parameter or
  // buffer that would go past the limit is refused before it is allocated. Null: no plan.
  double* planned_bytes = nullptr;
  double memory_limit = 0;
};

class Layer {
 public:
  virtual ~Layer() = default;

  virtual std::string type() const = 0;
  virtual std::vector<Shape> setup(const std::vector<Shape>& inputs, const SetupContext& ctx) = 0;
  virtual void forward(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs) = 0;
  virtual void backward(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                        const std::vector<Tensor>& output_grads, const std::vector<Tensor>& input_grads) = 0;

  // Whether output 0 may share input 0's storage.
  virtual bool can_run_in_place() const { return false; }
  // Whether backward reads the outputs. When it does not, the layer after it may overwrite them in place
  // (e.g. a ReLU after a convolution or batch norm).
  virtual bool backward_uses_outputs() const { return true; }
  // Whether forward only copies its inputs (e.g. concat), so a net may keep the output in shared storage
  // and run it again (recompute) when backward needs it. Such a layer may start a recomputed chain.
  virtual bool recomputable() const { return false; }
  // Whether the layer may continue such a chain: recompute() rewrites the outputs of its last forward,
  // bit for bit, from the same inputs, with no side effect (batch norm keeps its running statistics and
  // step count; ReLU is a pure function). Nets recompute only what is cheap next to a convolution.
  virtual bool recomputable_in_chain() const { return recomputable(); }
  // Runs forward again for backward, after a forward on the same inputs (see above).
  virtual void recompute(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs) {
    forward(inputs, outputs);
  }
  // Evaluation-mode fusion (nets/eval_fusion.h). eval_affine: a layer that is now a per-channel affine map
  // of a 4-D input, out = scale * in + shift (batch norm on its running statistics), writes scale and shift
  // (C) and returns true. forward_affine: forward, then out = scale * out + shift per output channel, plus
  // residual when defined (it may be out itself, holding the residual on entry), and a ReLU when asked, in
  // the same pass; false, writing nothing, where the layer cannot.
  virtual bool eval_affine(Tensor& scale, Tensor& shift) const {
    (void)scale;
    (void)shift;
    return false;
  }
  // prepared (may be null): what the kernel prepares from the weights, kept between calls while the caller
  // answers for the weights not changing (ops::PreparedConv).
  virtual bool forward_affine(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                              const Tensor& scale, const Tensor& shift, bool relu,
                              ops::PreparedConv* prepared = nullptr, const Tensor& residual = Tensor()) {
    (void)inputs;
    (void)outputs;
    (void)scale;
    (void)shift;
    (void)relu;
    (void)prepared;
    (void)residual;
    return false;
  }
  // Evaluation fusion's commuted pooling (nets/eval_fusion.h): average_pool writes an average pooling
  // layer's parameters and returns true; pointwise says whether the layer is a linear map of each pixel's
  // channels and nothing else (a 1x1, stride-1, unpadded, one-group convolution without bias), which
  // commutes with any average pooling (each a linear map of its own axes, the same at every position of
  // the other).
  virtual bool average_pool(ops::Pool2dParams& params) const {
    (void)params;
    return false;
  }
  virtual bool pointwise() const { return false; }
  // Training fusion (nets/train_fusion.h): a layer that can apply a ReLU to its output within its own passes
  // (batch norm) turns that on or off and returns true; false where it cannot (it then stays off). On,
  // forward and recompute write max(0, out), and backward takes the gradient of that ReLU's output and
  // reads its outputs (the ReLU's, which ran in place on them) to mask it, bit for bit the two layers.
  virtual bool fuse_relu(bool on) {
    (void)on;
    return false;
  }
  // Training fusion of a residual add and its ReLU (batch norm): on, a training forward given two inputs
  // {x, residual} writes max(0, out(x) + residual) into the add's output (out[0]) instead of its own; a
  // forward with one input, and every backward, run as usual (the add's backward then writes this layer's
  // output gradient). Returns false where it cannot (it then stays off).
  virtual bool fuse_residual_relu(bool on) {
    (void)on;
    return false;
  }
  // Whether backward can add input k's gradient to what input_grads[k] holds, instead of writing it, within
  // its own passes, for an input in layout `in`, the output in `out`, of this dtype on this device. A net
  // asks it to (set_adds_input_grad) for an input that other layers read too: its gradient is the sum of
  // theirs, already written by those whose backward ran before, and adding it here saves a buffer and
  // the pass that would add it.
  virtual bool can_add_input_grad(size_t k, Layout in, Layout out, DType dtype, Device device) const {
    (void)k;
    (void)in;
    (void)out;
    (void)dtype;
    (void)device;
    return false;
  }
  void set_adds_input_grad(size_t k, bool on);
  bool adds_input_grad(size_t k) const { return k < adds_input_grad_.size() && adds_input_grad_[k]; }
  // Numbers worth reporting (e.g. guarded samples of a covariance layer), by name.
  virtual std::map<std::string, double> diagnostics() const { return {}; }
  // FLOPs of one forward pass for the shapes of the last setup (multiply-add = 2), for inspect.
  virtual double flops() const { return 0; }

  // Memory layouts (core/layout.h), planned by the net after setup (nets/layout_plan.h): the tensors a
  // layer gets carry their layout, and a gradient has the layout of the tensor it is the gradient of.
  // output_layout: the layout this layer would give its output, its inputs coming in `inputs`;
  // accepts_layout: whether input k may come in layout `in` when the output is in `out`. A layer that
  // knows nothing of layouts keeps the defaults: NCHW in and out.
  virtual Layout output_layout(const std::vector<Layout>& inputs) const {
    (void)inputs;
    return Layout::NCHW;
  }
  virtual bool accepts_layout(size_t k, Layout in, Layout out) const {
    (void)k;
    (void)out;
    return in == Layout::NCHW;
  }

  bool training() const { return training_; }
  virtual void set_training(bool training) { training_ = training; }
  // Its parameters or buffers were written from outside (a weights file, a checkpoint, a broadcast): a
  // layer that keeps a copy of one elsewhere reads it again (Net::state_written).
  virtual void state_written() {}
  // The training step, so random layers (dropout) draw a fresh mask each step and the same mask when
  // the step repeats (gradient checks, resumed runs).
  void set_step(uint64_t step) { step_ = step; }
  uint64_t step() const { return step_; }
  // Which rows of the batch one process would take this process holds: its row j is row first + j * stride
  // (data-parallel training: rank and number of processes, as data/sampler.h interleaves the shares).
  // Random layers key their draws by that row, so N processes draw what one process draws.
  void set_batch_rows(int64_t first, int64_t stride) {
    row_first_ = first;
    row_stride_ = stride;
  }
  int64_t row_first() const { return row_first_; }
  int64_t row_stride() const { return row_stride_; }
  // The math of the layers that multiply (conv, linear read it; the others always compute in their dtype).
  void set_precision(Precision precision) { precision_ = precision; }
  Precision precision() const { return precision_; }

  std::vector<Parameter>& parameters() { return parameters_; }
  const std::vector<Parameter>& parameters() const { return parameters_; }
  std::vector<Buffer>& buffers() { return buffers_; }
  const std::vector<Buffer>& buffers() const { return buffers_; }
  Parameter& parameter(const std::string& name);
  Buffer& buffer(const std::string& name);

  // Moves parameters, their gradients and buffers to a device.
  void to(Device device);
  // Sets every parameter gradient to zero.
  void zero_grad();

 protected:
  // Adds a parameter (and its zeroed gradient) unless setup already made it; returns it.
  Parameter& add_parameter(const std::string& name, const Shape& shape, const SetupContext& ctx);
  Buffer& add_buffer(const std::string& name, const Shape& shape, const SetupContext& ctx, double value);
  // Seed and stream for this layer's random draws of one purpose: from the run seed, the layer's name and
  // the purpose, so they do not depend on construction order or thread count.
  static uint64_t stream_of(const std::string& name, const std::string& purpose);

 private:
  bool training_ = true;
  uint64_t step_ = 0;
  int64_t row_first_ = 0, row_stride_ = 1;
  Precision precision_ = Precision::Float32;
  std::vector<bool> adds_input_grad_;  // per input: backward adds its gradient (set_adds_input_grad)
  std::vector<Parameter> parameters_;
  std::vector<Buffer> buffers_;
};

// ---- registry ----
using LayerFactory = std::function<std::unique_ptr<Layer>(Config& config)>;

// One configuration of a layer for the gradient checks (`mpncov gradcheck --layer TYPE` and the tests).
struct LayerCheck {
  std::string yaml = "{}";          // the layer's keys as YAML
  std::vector<Shape> inputs{};      // small shapes, batch first
  bool training = true;
  std::vector<int> label_inputs{};  // inputs that are int64 labels in [0, inputs[0][1]), not differentiated
};

struct LayerInfo {
  std::string type;
  std::string summary;                   // one line for help texts
  LayerFactory factory;
  // Small input shapes (batch first) for the layer with no keys: its one check when `checks` is empty.
  std::vector<Shape> example_inputs;
  // The configurations the gradient checks run, each option of the layer at least once.
  std::vector<LayerCheck> checks{};
};

bool register_layer(LayerInfo info);
const LayerInfo& layer_info(const std::string& type);  // throws naming the nearest known type
std::vector<std::string> layer_types();
// Builds a layer from its YAML keys (the caller has declared `type`, `name`, `inputs` etc. as read);
// unknown keys are errors.
std::unique_ptr<Layer> make_layer(const std::string& type, Config& config);

}  // namespace mpncov

#define MPNCOV_LAYER_CAT2(a, b) a##b
#define MPNCOV_LAYER_CAT(a, b) MPNCOV_LAYER_CAT2(a, b)
// Registers a layer type at start-up: MPNCOV_REGISTER_LAYER({"relu", "summary", factory, {{2, 3}}}), or with its
// checks: MPNCOV_REGISTER_LAYER({"conv", "summary", factory, {}, {{"{out_channels: 4}", {{2, 3, 6, 6}}}, ...}}).
#define MPNCOV_REGISTER_LAYER(...) \
  static const bool MPNCOV_LAYER_CAT(mpncov_layer_registered_, __LINE__) = ::mpncov::register_layer(__VA_ARGS__)
