// Net: the layers of a NetSpec run as a DAG. Forward runs the layers in order, keeping every output for
// backward; backward runs them in reverse, summing the gradients of outputs used by several layers and
// skipping everything below a frozen prefix (no gradient is computed there). A ReLU-like layer runs in
// place on its input when that input has no other reader and its producer's backward does not need it.
// A chain of recomputable layers (a concat, then batch norm and ReLU), each read only by the layer right
// after it, keeps its outputs in storage shared by all such chains and runs forward again just before
// its reader's backward: a DenseNet's growing concatenations and their batch norms then cost one buffer
// each, not one per dense layer. Gradients whose lifetimes in backward do not overlap share buffers.
// Parameters and buffers are named "<layer>.<param>", exactly as torchvision names them.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "layers/layer.h"
#include "nets/commuted_pooling.h"
#include "nets/eval_fusion.h"
#include "nets/net_spec.h"
#include "nets/train_fusion.h"

namespace mpncov {

struct NetParameter {
  std::string name;  // "layer1.0.conv1.weight"
  Parameter* parameter;
  NetPart part;
};

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

// The memory a net may plan for its parameters and activations on a device before setup() refuses it
// (from the shapes, before allocating): the machine's physical memory for the CPU; for CUDA a sane
// ceiling of 1 TiB (no GPU holds more), the GPU's own allocator reporting anything tighter.
// set_memory_limit(bytes) sets one limit for every device (tests, fuzzing); 0 restores these.
double memory_limit(Device device);
void set_memory_limit(double bytes);

// What a training step's buffers take (Net::memory_plan), in bytes. Layers' own workspaces (convolution
// scratch, batch statistics) and the optimizer's state are not counted.
struct MemoryPlan {
  double parameters = 0;        // values and buffers (running statistics)
  double parameter_grads = 0;   // of the trainable parameters
  double activations = 0;       // layer outputs kept for backward, shared storage once
  double activation_grads = 0;  // gradient buffers of the outputs, shared by lifetime (with scratch)
  double total() const { return parameters + parameter_grads + activations + activation_grads; }
};

// Debugging the memory plan. poison: every buffer whose life ends (a gradient after its last read, a
// scratch buffer after it was added, the shared storage before a chain overwrites it) is filled with
// NaN, so a buffer reused while still live shows as NaN in the outputs or gradients. The environment
// variable MPNCOV_POISON_BUFFERS=1 turns it on for every net. shorten_gradient_lives is the fault the
// tests inject to see that poison catches it: each gradient's life ends one layer early.
struct MemoryDebug {
  bool poison = false;
  bool shorten_gradient_lives = false;
};

class Net {
 public:
  // Creates every layer from its keys (errors name the file, line, layer and key).
  explicit Net(NetSpec spec);

  const NetSpec& spec() const { return spec_; }
  // Infers shapes for an input batch (N, C, H, W), creates parameters the first time and allocates the
  // activations. Call again when the input shape changes; parameters are kept. seed (initial weights,
  // dropout masks): without one, the seed of the previous setup (1 the first time), so setting up again
  // (another batch size, freeze, precision) keeps the run's seed.
  void setup(const Shape& input, DType dtype = DType::F32, Device device = Device::cpu(),
             std::optional<uint64_t> seed = std::nullopt);
  bool is_setup() const { return !outputs_.empty(); }
  const Shape& input_shape() const { return input_shape_; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }

  // Runs the net; returns the last layer's output (the logits).
  const Tensor& forward(const Tensor& input);
  // From dL/d(output): accumulates parameter gradients (+=).
  void backward(const Tensor& output_grad);
  // Called with each layer's index as soon as its backward has run (its parameter gradients are then
  // final for this pass): the data-parallel gradient reducer starts communicating from here.
  void set_backward_hook(std::function<void(int layer)> hook) { backward_hook_ = std::move(hook); }

  void set_training(bool training);
  bool training() const { return training_; }
  void set_step(uint64_t step);
  // This process's rows of the batch one process would take (Layer::set_batch_rows): data-parallel
  // training sets (rank, number of processes); one process keeps (0, 1).
  void set_batch_rows(int64_t first, int64_t stride);
  // The math of the convolution and linear layers (core/precision.h); float32 by default.
  void set_precision(Precision precision);
  Precision precision() const { return precision_; }
  void zero_grad();
  void to(Device device);
  // Freezes the parameters of the first k top-level feature items (the seed's "first k children").
  void freeze(int k);
  // In-place execution and shared storage on or off: off keeps every layer's own output (e.g. for
  // extract) and gives every output gradient and scratch buffer its own storage (the plan off).
  void set_in_place(bool allowed);
  // Average poolings run after their pointwise convolution, their outputs never stored
  // (nets/commuted_pooling.h): on by default; it applies only with in-place execution on. Sets up again.
  void set_pooling_commuted(bool on);
  // Gradients added by the layers that read an input other layers read too (Layer::can_add_input_grad), as
  // they compute them: on by default, with in-place execution on or off (a kernel's route, like the
  // algorithm it runs, not a matter of where buffers live: its sum may round differently). Off, such a
  // layer writes into a scratch buffer added by a pass of its own. Sets up again.
  void set_grad_adding(bool on);
  // Whether layer i's backward adds its gradient for input k to what the layers after it wrote.
  bool adds_grad(int i, int k) const { return layers_[static_cast<size_t>(i)]->adds_input_grad(static_cast<size_t>(k)); }
  // For an average pooling that runs commuted, the convolution that runs it, else -1.
  int pooled_by(int i) const { return pooling_.conv_of(i); }
  // Evaluation-mode fusion of convolution -> batch norm (-> ReLU) into one convolution (nets/eval_fusion.h):
  // on by default (unless MPNCOV_EVAL_FUSION=0); it applies only with in-place execution on.
  void set_eval_fusion(bool on) { eval_fusion_on_ = on; }
  // Whether evaluation forwards fuse runs: fusion on, in-place execution on, a CPU float32 net in float32
  // precision, and the environment allowing it (MPNCOV_EVAL_FUSION not 0).
  bool eval_fusion_applies() const {
    return eval_fusion_on_ && in_place_allowed_ && precision_ == Precision::Float32 && dtype_ == DType::F32 &&
           device_.is_cpu() && eval_fusion_enabled();
  }
  // Fixed weights (off by default): the caller answers for no parameter changing while on, and the fused
  // convolutions of evaluation forwards keep the weights they prepare (scaled per channel, in the kernel's
  // layout) from one batch to the next instead of preparing them at every forward (ops::PreparedConv; a
  // batch norm's statistics are still compared at each forward). Turning it on or off, and load_weights,
  // drop what was kept; training mode turns it off. FixedWeights below holds it for a scope (an evaluation pass).
  void set_weights_fixed(bool on);
  bool weights_fixed() const { return weights_fixed_; }
  // Called after the parameters or buffers of state() were written from outside (load_weights, a
  // checkpoint, a broadcast): what was kept from the old values is dropped (the prepared weights of fixed
  // weights, a batch norm's host copy of num_batches_tracked; Layer::state_written).
  void state_written();
  // The convolution layer i is folded into in evaluation (itself for that convolution), else -1.
  int fused_into(int i) const { return in_place_allowed_ && eval_fusion_on_ ? fusion_.head_of(i) : -1; }
  // Whether the last forward ran layer i (a convolution) fused with the batch norm after it.
  bool fused(int i) const { return fusion_.ran_fused(i); }
  // Whether the last forward ran layer i inside another layer's fused run (a folded batch norm, ReLU or add,
  // a commuted average pooling), so that its work is that layer's. Not a residual add that the run made
  // in a pass of its own after the convolution (its kernel would not take it).
  bool folded(int i) const {
    const int head = fused_into(i);
    return head >= 0 && head != i && fused(head) && (i > head || fused(i)) && !fusion_.added_apart(i);
  }
  // Batch norm + ReLU and add + ReLU fusion (nets/train_fusion.h): on by default (unless MPNCOV_TRAIN_FUSION=0) on the CPU
  // in float32 nets; it applies only with in-place execution on. Takes effect from the next forward.
  void set_train_fusion(bool on);
  // The batch norm or add a ReLU runs inside (its own forward and backward skipped), else -1.
  int relu_fused_into(int i) const { return train_fusion_.fused_into(i); }
  // The batch norm that runs an add (and its ReLU) in training (nets/train_fusion.h), else -1.
  int add_fused_into(int i) const { return train_fusion_.residual_bn_of(i); }
  // Per-layer timing (for `mpncov time`): when on, every layer's forward and backward is timed (the device
  // synchronised around it) and the seconds accumulate until reset_timing().
  void set_timing(bool on) { timing_ = on; }
  void reset_timing();
  const std::vector<double>& forward_seconds() const { return forward_seconds_; }
  const std::vector<double>& backward_seconds() const { return backward_seconds_; }

  // The plan of the last setup (see MemoryPlan), and its debugging (see MemoryDebug; set up again).
  MemoryPlan memory_plan() const;
  void set_memory_debug(MemoryDebug debug);
  const MemoryDebug& memory_debug() const { return memory_debug_; }

  int size() const { return static_cast<int>(layers_.size()); }
  Layer& layer(int i) { return *layers_[static_cast<size_t>(i)]; }
  const Layer& layer(int i) const { return *layers_[static_cast<size_t>(i)]; }
  const LayerSpec& layer_spec(int i) const { return spec_.layers[static_cast<size_t>(i)]; }
  const Shape& output_shape(int i) const { return output_shapes_[static_cast<size_t>(i)]; }
  // The type a layer's output (and its gradient) is stored in: the net's, or bfloat16 for the activations
  // kept in a convolution kernel's layout in bfloat16 mixed precision (docs/layouts.md).
  DType output_dtype(int i) const { return output_dtypes_[static_cast<size_t>(i)]; }
  std::vector<Shape> input_shapes(int i) const;
  bool runs_in_place(int i) const { return in_place_[static_cast<size_t>(i)]; }
  // Whether layer i's output leads to the net's output (the last layer). One that does not adds nothing to
  // the loss: its backward is skipped and its parameters' gradients stay zero (inspect marks it unused).
  bool reaches_output(int i) const { return reaches_output_[static_cast<size_t>(i)]; }
  // Whether a layer's output lives in the shared storage (recomputed for backward), and that storage's size.
  bool shares_storage(int i) const { return chain_head_[static_cast<size_t>(i)] >= 0; }
  size_t shared_bytes() const;
  // The output of a layer after forward (by name; throws naming the nearest layer). A layer that a
  // later one overwrote in place shows that layer's output, one in shared storage the last such output;
  // set_in_place(false) keeps each one's own. A convolution whose output the last forward did not write
  // (fused with its batch norm, see set_eval_fusion) is refused, as is a batch norm whose forward wrote the
  // residual add's output, the add's first input's storage, instead of its own (as the add's second input,
  // in an evaluation run or in training: nets/train_fusion.h), and an average pooling that runs after its convolution (nets/commuted_pooling.h).
  const Tensor& output(const std::string& layer) const;
  const Tensor& output() const { return outputs_.back(); }
  // Whether output(i) is readable: false for the outputs the last forward left unwritten (above).
  bool output_written(int i) const;
  int index_of(const std::string& layer) const;

  std::vector<NetParameter> parameters();
  // Parameters then buffers, by name: what a weights file holds.
  std::vector<NamedTensor> state();
  int64_t parameter_count() const;

 private:
  // Tags outputs, gradients and scratch with the planned layouts (layouts_, nets/layout_plan.h).
  void apply_layouts();
  void build_graph();
  const Tensor& input_tensor(int layer, int k) const;
  // Whether the last forward wrote a residual add's output over layer i's (EvalFusion::onto_residual_of).
  bool overwritten(int i) const { return outputs_moved_ && eval_overwritten_[static_cast<size_t>(i)]; }
  // Runs the chain of shared-storage layers that ends at `last` again (their outputs were overwritten).
  void recompute(int last);

  NetSpec spec_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<std::vector<int>> inputs_;       // per layer: producing layer indices, -1 for the net input
  std::vector<std::vector<int>> consumers_;    // per layer: (consumer layer) for its output
  Shape input_shape_;
  uint64_t seed_ = 1;  // of the last setup that gave one
  DType dtype_ = DType::F32;
  Device device_;
  bool training_ = true;
  Precision precision_ = Precision::Float32;
  bool in_place_allowed_ = true;
  std::vector<bool> in_place_;
  std::vector<int> chain_head_;                // per layer in shared storage: its chain's first layer; else -1
  std::vector<Tensor> shared_storage_;         // per position in a chain
  std::vector<Shape> output_shapes_;
  std::vector<Layout> layouts_;                // per output (and its gradient): the planned layout
  std::vector<DType> output_dtypes_;           // per output (and its gradient): its storage type
  std::vector<Tensor> outputs_;                // the last forward's: plain_outputs_ or eval_outputs_
  std::vector<Tensor> plain_outputs_;          // each layer's output storage
  std::vector<Tensor> eval_outputs_;           // the same, adds onto their shortcut where fusion runs (EvalFusion)
  std::vector<bool> eval_overwritten_;         // per layer: whether such an add writes over its output there
  bool eval_moves_outputs_ = false;            // whether eval_outputs_ differs from plain_outputs_
  bool outputs_moved_ = false;                 // whether the last forward used eval_outputs_
  std::vector<Tensor> grads_;                  // dL/d(output) per layer (undefined when not needed)
  std::vector<bool> needs_grad_;               // whether a layer's output needs a gradient
  std::vector<bool> reaches_output_;           // whether a layer's output leads to the net's output
  std::vector<std::vector<Tensor>> scratch_;   // per layer and input: where a non-last reader writes
  std::vector<Tensor> gradient_slots_;         // the storage of grads_ and scratch_
  std::vector<int> grad_slot_;                 // per layer owning its gradient buffer: its slot, else -1
  std::vector<std::vector<int>> scratch_slots_;  // per layer and input: the scratch's slot, else -1
  MemoryDebug memory_debug_;
  static void poison(const Tensor& t);
  Tensor input_;
  std::function<void(int)> backward_hook_;
  bool timing_ = false;
  std::vector<double> forward_seconds_, backward_seconds_;
  CommutedPooling pooling_;
  bool pooling_commuted_on_ = true;
  bool grad_adding_on_ = true;
  EvalFusion fusion_;
  bool eval_fusion_on_ = true;
  bool weights_fixed_ = false;
  TrainFusion train_fusion_;
  bool train_fusion_on_ = true;
  bool residual_fused_ = false;  // the last forward ran batch norm + add + ReLU fused
  void plan_train_fusion();
};

// Net::set_weights_fixed for a scope: on from construction (in evaluation mode), back off at its end.
class FixedWeights {
 public:
  explicit FixedWeights(Net& net) : net_(net) {
    net_.set_training(false);
    net_.set_weights_fixed(true);
  }
  ~FixedWeights() { net_.set_weights_fixed(false); }
  FixedWeights(const FixedWeights&) = delete;
  FixedWeights& operator=(const FixedWeights&) = delete;

 private:
  Net& net_;
};

}  // namespace mpncov
