#include "nets/net.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <limits>

#include "core/config_error.h"
#include "core/context.h"
#include "core/ops.h"
#include "core/text.h"
#include "nets/layout_plan.h"

namespace mpncov {
namespace {

double now_seconds(Device device) {
  synchronize(device);
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Prefixes an error from a layer with where it is defined, unless it already says so. Errors while
// creating or setting up the layers are the net file's (ConfigError); later ones happen at run time.
[[noreturn]] void rethrow_at(const LayerSpec& l, const Error& e, bool config = false) {
  std::string what = e.what();
  if (what.rfind(l.file, 0) != 0) what = str(l.where(), ": layer '", l.name, "' (", l.type, "): ", what);
  if (config) throw ConfigError(what);
  throw Error(what);
}

double memory_limit_override = 0;

double tensor_bytes(const Shape& shape, DType dtype) {
  return static_cast<double>(shape.numel()) * static_cast<double>(dtype_size(dtype));
}

}  // namespace

double memory_limit(Device device) {
  if (memory_limit_override > 0) return memory_limit_override;
  if (device.is_cuda()) return 1099511627776.0;
  return static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
}

void set_memory_limit(double bytes) { memory_limit_override = bytes; }

Net::Net(NetSpec spec) : spec_(std::move(spec)) {
  MPNCOV_CHECK(!spec_.layers.empty(), spec_.file, ": the net has no layers");
  const char* poison = std::getenv("MPNCOV_POISON_BUFFERS");
  memory_debug_.poison = poison && std::string(poison) == "1";
  for (const LayerSpec& l : spec_.layers) {
    try {
      Config config = l.config();
      layers_.push_back(make_layer(l.type, config));
    } catch (const Error& e) {
      rethrow_at(l, e, true);
    }
  }
  build_graph();
}

void Net::build_graph() {
  const size_t n = spec_.layers.size();
  inputs_.assign(n, {});
  consumers_.assign(n, {});
  for (size_t i = 0; i < n; ++i) {
    for (const std::string& in : spec_.layers[i].inputs) {
      int j = in == kNetInput ? -1 : spec_.find(in);
      MPNCOV_CHECK(in == kNetInput || (j >= 0 && j < static_cast<int>(i)), spec_.layers[i].where(), ": layer '",
                   spec_.layers[i].name, "': input '", in, "' is not an earlier layer");
      inputs_[i].push_back(j);
      if (j >= 0) consumers_[static_cast<size_t>(j)].push_back(static_cast<int>(i));
    }
  }
}

int Net::index_of(const std::string& name) const {
  const int i = spec_.find(name);
  if (i >= 0) return i;
  std::vector<std::string> names;
  for (const LayerSpec& l : spec_.layers) names.push_back(l.name);
  throw Error(str("net '", spec_.name, "' has no layer '", name, "'", did_you_mean(name, names)));
}

std::vector<Shape> Net::input_shapes(int i) const {
  std::vector<Shape> shapes;
  for (int j : inputs_[static_cast<size_t>(i)]) shapes.push_back(j < 0 ? input_shape_ : output_shapes_[static_cast<size_t>(j)]);
  return shapes;
}

void Net::setup(const Shape& input, DType dtype, Device device, std::optional<uint64_t> seed) {
  if (seed) seed_ = *seed;
  require_device(device);
  MPNCOV_CHECK(input.ndim() == 4, "net '", spec_.name, "': the input must be (N, C, H, W), got ", input.str());
  MPNCOV_CHECK(outputs_.empty() || (dtype == dtype_ && device == device_), "net '", spec_.name,
               "': set up again with another dtype or device; use to(device) to move it");
  input_shape_ = input;
  dtype_ = dtype;
  device_ = device;
  const size_t n = layers_.size();
  // The memory plan: parameters (kept from an earlier setup, or refused as they are created when they
  // do not fit), then every output and its gradient, all checked before the activations are allocated.
  const double limit = memory_limit(device);
  double planned = 0;
  for (const auto& layer : layers_) {
    for (const Parameter& p : layer->parameters()) planned += 2 * tensor_bytes(p.value.shape(), dtype);
    for (const Buffer& b : layer->buffers()) planned += tensor_bytes(b.value.shape(), dtype);
  }
  output_shapes_.assign(n, Shape());
  for (size_t i = 0; i < n; ++i) {
    const LayerSpec& l = spec_.layers[i];
    SetupContext ctx;
    ctx.dtype = dtype;
    ctx.device = device;
    ctx.seed = seed_;
    ctx.name = l.name;
    ctx.planned_bytes = &planned;
    ctx.memory_limit = limit;
    std::vector<Shape> out;
    try {
      out = layers_[i]->setup(input_shapes(static_cast<int>(i)), ctx);
    } catch (const Error& e) {
      rethrow_at(l, e, true);
    }
    MPNCOV_CHECK(out.size() == 1, l.where(), ": layer '", l.name, "' has ", out.size(),
                 " outputs; nets support layers with one output");
    output_shapes_[i] = out[0];
  }
  const double parameter_bytes = planned;
  size_t largest = 0;
  for (size_t i = 0; i < n; ++i) {
    planned += 2 * tensor_bytes(output_shapes_[i], dtype);  // output and gradient (an upper bound)
    if (output_shapes_[i].numel() > output_shapes_[largest].numel()) largest = i;
  }
  if (planned > limit)
    throw ConfigError(str("net '", spec_.name, "' (", spec_.file, ") does not fit: for the input ", input.str(), " its parameters need ",
                    format_bytes(parameter_bytes), " and its activations with their gradients up to ",
                    format_bytes(planned - parameter_bytes), ", more than the ", format_bytes(limit), " of ",
                    device.str(), " memory it may use (the largest output: layer '", spec_.layers[largest].name,
                    "' ", output_shapes_[largest].str(), " at ", spec_.layers[largest].where(),
                    "); the activations were not allocated. Use a smaller batch or input"));
  // Layouts and storage types: in bfloat16 mixed precision an activation kept in a convolution kernel's
  // layout is stored in bfloat16 (only layers that take bfloat16 read it: docs/layouts.md), its gradient too.
  layouts_ = plan_layouts(layers_, inputs_, dtype, device);
  output_dtypes_.assign(n, dtype);
  for (size_t i = 0; i < n; ++i)
    if (precision_ == Precision::BFloat16 && layouts_[i] != Layout::NCHW) output_dtypes_[i] = DType::BF16;
  const auto output_bytes = [&](size_t i) {
    return output_shapes_[i].numel() * static_cast<int64_t>(dtype_size(output_dtypes_[i]));
  };
  // In place: a layer that allows it, whose (first) input is another layer's output read by no one else,
  // whose producer's backward does not read that output (a residual add writes over its first input,
  // the last batch norm of the block).
  in_place_.assign(n, false);
  for (size_t i = 0; i < n; ++i) {
    if (!in_place_allowed_ || !layers_[i]->can_run_in_place() || inputs_[i].empty()) continue;
    const int j = inputs_[i][0];
    if (j < 0 || consumers_[static_cast<size_t>(j)].size() != 1) continue;
    if (layers_[static_cast<size_t>(j)]->backward_uses_outputs()) continue;
    in_place_[i] = output_shapes_[i].numel() == output_shapes_[static_cast<size_t>(j)].numel() &&
                   output_dtypes_[i] == output_dtypes_[static_cast<size_t>(j)];
  }
  // Shared storage: chains of recomputed layers. A chain starts at a layer that only copies (concat,
  // recomputable()) and goes on through layers that can be redone after it (batch norm, ReLU:
  // recomputable_in_chain()), each member read only by the layer right after it, the first one reading
  // only kept outputs. So backward runs the chain's layers right after its reader's, nothing in between:
  // the members' outputs live in storage shared by all chains (one buffer per position in a chain, a
  // layer in place staying in its input's) and the chain runs again just before its reader's backward.
  // A DenseNet's growing concatenation, the batch norm of it and its ReLU then cost three buffers in all.
  chain_head_.assign(n, -1);
  for (size_t i = 0; in_place_allowed_ && i + 1 < n; ++i) {
    if (consumers_[i].size() != 1 || consumers_[i][0] != static_cast<int>(i + 1)) continue;
    bool after_chain = false, kept = true;  // reads the previous member of a chain; reads no other member
    for (int j : inputs_[i]) {
      if (j < 0 || chain_head_[static_cast<size_t>(j)] < 0) continue;
      if (j + 1 == static_cast<int>(i)) after_chain = true;
      else kept = false;
    }
    if (after_chain && kept && layers_[i]->recomputable_in_chain()) chain_head_[i] = chain_head_[i - 1];
    else if (!after_chain && kept && layers_[i]->recomputable() && !in_place_[i]) chain_head_[i] = static_cast<int>(i);
  }
  // The reader must not overwrite the chain's last output in place (that would not be redone): such a
  // chain ends one member earlier.
  for (size_t i = n - 1; i-- > 0;)
    if (chain_head_[i] >= 0 && chain_head_[i + 1] < 0 && in_place_[i + 1]) chain_head_[i] = -1;
  std::vector<int64_t> position_bytes;  // per position in a chain: the largest output there
  std::vector<size_t> position(n, 0);
  size_t next = 0;
  for (size_t i = 0; i < n; ++i) {
    if (chain_head_[i] < 0) continue;
    if (chain_head_[i] == static_cast<int>(i)) next = 0;
    if (in_place_[i]) continue;
    position[i] = next++;
    if (position_bytes.size() < next) position_bytes.push_back(0);
    position_bytes[position[i]] = std::max(position_bytes[position[i]], output_bytes(i));
  }
  // Average poolings run after their pointwise convolution (nets/commuted_pooling.h): their outputs are
  // never stored, nor their gradients.
  std::vector<bool> shared(n);
  for (size_t i = 0; i < n; ++i) shared[i] = chain_head_[i] >= 0;
  pooling_.plan(layers_, inputs_, consumers_, shared, layouts_, output_shapes_, output_dtypes_, dtype, device,
                in_place_allowed_ && pooling_commuted_on_);
  // Buffers shared by tensors of several types hold whole elements of the net's type.
  const auto buffer = [&](int64_t bytes) {
    const int64_t size = static_cast<int64_t>(dtype_size(dtype));
    return Tensor::empty(Shape{(bytes + size - 1) / size}, dtype, device);
  };
  shared_storage_.clear();
  for (int64_t bytes : position_bytes) shared_storage_.push_back(buffer(bytes));
  outputs_.assign(n, Tensor());
  for (size_t i = 0; i < n; ++i) {
    if (in_place_[i]) outputs_[i] = outputs_[static_cast<size_t>(inputs_[i][0])].reshape(output_shapes_[i].dims());
    else if (chain_head_[i] >= 0) outputs_[i] = shared_storage_[position[i]].view(output_dtypes_[i], output_shapes_[i]);
    else if (pooling_.conv_of(static_cast<int>(i)) < 0) outputs_[i] = Tensor::empty(output_shapes_[i], output_dtypes_[i], device);
  }
  // Which outputs need gradients: those of layers with trainable parameters or fed by such outputs, on a
  // path to the net's output. A layer off every such path (an output nothing reads on the way) adds
  // nothing to the loss: its backward is skipped, its parameters' gradients stay zero.
  std::vector<bool> trainable_above(n, false);
  reaches_output_.assign(n, false);
  for (size_t i = 0; i < n; ++i) {
    bool need = false;
    for (const Parameter& p : layers_[i]->parameters()) need = need || !p.frozen;
    for (int j : inputs_[i]) need = need || (j >= 0 && trainable_above[static_cast<size_t>(j)]);
    trainable_above[i] = need;
  }
  if (n > 0) reaches_output_[n - 1] = true;
  for (size_t i = n; i-- > 0;)
    for (int c : consumers_[i]) reaches_output_[i] = reaches_output_[i] || reaches_output_[static_cast<size_t>(c)];
  needs_grad_.assign(n, false);
  for (size_t i = 0; i < n; ++i) needs_grad_[i] = trainable_above[i] && reaches_output_[i];
  // The readers whose backward runs, which give an output its gradient.
  const auto grad_readers = [&](size_t j) {
    std::vector<int> readers;
    for (int c : consumers_[j]) if (needs_grad_[static_cast<size_t>(c)]) readers.push_back(c);
    return readers;
  };
  // Gradient buffers by lifetime. Backward runs from the last layer down: dL/d(output i) is written at
  // i's last reader and read for the last time at i itself, so it lives over [i, last reader]; a layer in
  // place on its input shares that input's gradient, which then lives until the layer's last reader. A
  // reader that is not the last of its input writes that input's gradient into a scratch buffer, added
  // right after its own backward: a life of [reader, reader]. A commuted pooling's input gradient is written
  // at its convolution's turn, one layer later, and its own gradient is never made. Buffers whose lives do
  // not meet share storage (slots).
  const auto written_at = [&](int reader) { return pooling_.conv_of(reader) >= 0 ? reader + 1 : reader; };
  std::vector<int> owner(n, -1), last(n, -1);  // per gradient: the layer owning its buffer; per owner: span end
  for (size_t i = 0; i < n; ++i) {
    if (!needs_grad_[i] || pooling_.conv_of(static_cast<int>(i)) >= 0) continue;
    // (An add in place over a frozen input, whose gradient is not needed, owns its own.)
    const int up = in_place_[i] ? owner[static_cast<size_t>(inputs_[i][0])] : -1;
    const size_t o = up >= 0 ? static_cast<size_t>(up) : i;
    owner[i] = static_cast<int>(o);
    int end = i + 1 == n ? static_cast<int>(n) : -1;
    for (int c : grad_readers(i)) end = std::max(end, written_at(c));
    last[o] = std::max(last[o], end);
  }
  struct Life {
    int64_t bytes;
    int start, end;  // layer indices: from start (reached last in backward) to end
    int layer, input;  // whose: layer's output gradient (input -1) or its scratch for input k
  };
  std::vector<Life> lives;
  for (size_t i = 0; i < n; ++i)
    for (size_t k = 0; k < inputs_[i].size(); ++k) layers_[i]->set_adds_input_grad(k, false);
  for (size_t i = 0; i < n; ++i) {
    if (owner[i] != static_cast<int>(i)) continue;
    // The debug fault: a life one layer too short, so its buffer is reused while it is still read.
    const int end = memory_debug_.shorten_gradient_lives && last[i] > static_cast<int>(i) + 1 ? last[i] - 1 : last[i];
    lives.push_back({output_bytes(i), static_cast<int>(i), end, static_cast<int>(i), -1});
  }
  for (size_t i = 0; i < n; ++i) {
    if (!needs_grad_[i]) continue;  // its backward does not run
    for (size_t k = 0; k < inputs_[i].size(); ++k) {
      const int j = inputs_[i][k];
      if (j < 0 || !needs_grad_[static_cast<size_t>(j)]) continue;
      const std::vector<int> readers = grad_readers(static_cast<size_t>(j));
      const bool last_reader = *std::max_element(readers.begin(), readers.end()) == static_cast<int>(i);
      // The same layer may read j twice (add(x, x)): only its first slot writes directly.
      const bool first_slot = std::find(inputs_[i].begin(), inputs_[i].end(), j) == inputs_[i].begin() + static_cast<long>(k);
      if (last_reader && first_slot) continue;
      // A reader that can add its gradient to what the later readers wrote needs no scratch (Layer::can_add_input_grad).
      if (first_slot && grad_adding_on_ &&
          layers_[i]->can_add_input_grad(k, layouts_[static_cast<size_t>(j)], layouts_[i], output_dtypes_[static_cast<size_t>(j)], device)) {
        layers_[i]->set_adds_input_grad(k, true);
        continue;
      }
      lives.push_back({output_bytes(static_cast<size_t>(j)), static_cast<int>(i), written_at(static_cast<int>(i)),
                       static_cast<int>(i), static_cast<int>(k)});
    }
  }
  std::stable_sort(lives.begin(), lives.end(), [](const Life& a, const Life& b) { return a.start < b.start; });
  struct Slot {
    int64_t bytes = 0;
    int busy_until = -1;  // the end of the life in it
  };
  std::vector<Slot> slots;
  std::vector<int> slot_of(lives.size(), -1);
  for (size_t l = 0; l < lives.size(); ++l) {
    const int64_t need = lives[l].bytes;
    int best = -1;  // a free slot: the smallest that is large enough, else the largest (grown)
    for (size_t k = 0; k < slots.size(); ++k) {
      if (slots[k].busy_until >= lives[l].start || !in_place_allowed_) continue;  // off: a buffer each
      if (best < 0) { best = static_cast<int>(k); continue; }
      const Slot& b = slots[static_cast<size_t>(best)];
      const bool fits = slots[k].bytes >= need, best_fits = b.bytes >= need;
      if ((fits && (!best_fits || slots[k].bytes < b.bytes)) || (!fits && !best_fits && slots[k].bytes > b.bytes))
        best = static_cast<int>(k);
    }
    if (best < 0) {
      best = static_cast<int>(slots.size());
      slots.emplace_back();
    }
    Slot& slot = slots[static_cast<size_t>(best)];
    slot.bytes = std::max(slot.bytes, need);
    slot.busy_until = lives[l].end;
    slot_of[l] = best;
  }
  gradient_slots_.clear();
  for (const Slot& slot : slots) gradient_slots_.push_back(buffer(slot.bytes));
  grads_.assign(n, Tensor());
  grad_slot_.assign(n, -1);
  scratch_.assign(n, {});
  scratch_slots_.assign(n, {});
  for (size_t i = 0; i < n; ++i) {
    scratch_[i].assign(inputs_[i].size(), Tensor());
    scratch_slots_[i].assign(inputs_[i].size(), -1);
  }
  for (size_t l = 0; l < lives.size(); ++l) {
    const Life& life = lives[l];
    const Tensor& storage = gradient_slots_[static_cast<size_t>(slot_of[l])];
    const size_t i = static_cast<size_t>(life.layer);
    if (life.input < 0) {
      grads_[i] = storage.view(output_dtypes_[i], output_shapes_[i]);
      grad_slot_[i] = slot_of[l];
    } else {
      const size_t k = static_cast<size_t>(life.input);
      const size_t j = static_cast<size_t>(inputs_[i][k]);
      scratch_[i][k] = storage.view(output_dtypes_[j], output_shapes_[j]);
      scratch_slots_[i][k] = slot_of[l];
    }
  }
  for (size_t i = 0; i < n; ++i)
    if (owner[i] >= 0 && owner[i] != static_cast<int>(i)) grads_[i] = grads_[static_cast<size_t>(inputs_[i][0])].reshape(output_shapes_[i].dims());
  apply_layouts();
  fusion_.plan(layers_, inputs_, consumers_, in_place_, shared, layouts_, pooling_);
  plain_outputs_ = eval_outputs_ = outputs_;
  outputs_moved_ = false;
  for (size_t i = 0; i < n; ++i) {
    const int x = fusion_.onto_residual_of(static_cast<int>(i));
    const int from = x >= 0 ? x : in_place_[i] ? inputs_[i][0] : -1;
    if (from >= 0)
      eval_outputs_[i] = eval_outputs_[static_cast<size_t>(from)].reshape(output_shapes_[i].dims()).with_layout(layouts_[i]);
  }
  eval_overwritten_.assign(n, false);  // the shortcut and every earlier output in its storage
  eval_moves_outputs_ = false;
  for (size_t a = 0; a < n; ++a) {
    if (fusion_.onto_residual_of(static_cast<int>(a)) < 0) continue;
    eval_moves_outputs_ = true;
    for (size_t j = 0; j < a; ++j)
      if (eval_outputs_[j].defined() && eval_outputs_[j].same_storage(eval_outputs_[a])) eval_overwritten_[j] = true;
  }
  plan_train_fusion();
  set_training(training_);
  reset_timing();
}

const Tensor& Net::input_tensor(int layer, int k) const {
  const int j = inputs_[static_cast<size_t>(layer)][static_cast<size_t>(k)];
  return j < 0 ? input_ : outputs_[static_cast<size_t>(j)];
}

const Tensor& Net::forward(const Tensor& input) {
  MPNCOV_CHECK(is_setup(), "net '", spec_.name, "': call setup() before forward()");
  MPNCOV_CHECK(input.shape() == input_shape_, "net '", spec_.name, "' is set up for input ", input_shape_.str(),
               ", got ", input.shape().str());
  MPNCOV_CHECK(input.dtype() == dtype_ && input.device() == device_, "net '", spec_.name, "' runs ",
               dtype_name(dtype_), " on ", device_.str(), ", got an input ", input.str());
  input_ = input;
  fusion_.begin(!training_ && eval_fusion_applies());
  if (const bool moved = fusion_.allowed() && eval_moves_outputs_; moved != outputs_moved_) {
    outputs_ = moved ? eval_outputs_ : plain_outputs_;
    outputs_moved_ = moved;
  }
  residual_fused_ = training_ && train_fusion_.triples() > 0;  // batch norm + add + ReLU (nets/train_fusion.h)
  for (size_t i = 0; i < layers_.size(); ++i) {
    std::vector<Tensor> in;
    for (size_t k = 0; k < inputs_[i].size(); ++k) in.push_back(input_tensor(static_cast<int>(i), static_cast<int>(k)));
    // A chain starting overwrites the shared storage: nothing may read what was there.
    if (memory_debug_.poison && chain_head_[i] == static_cast<int>(i)) for (const Tensor& t : shared_storage_) poison(t);
    const double start = timing_ ? now_seconds(device_) : 0;
    try {
      const int add = residual_fused_ ? train_fusion_.residual_add_of(static_cast<int>(i)) : -1;
      if (residual_fused_ && train_fusion_.residual_bn_of(static_cast<int>(i)) >= 0) {
        // its batch norm wrote the output
      } else if (add >= 0) {
        in.push_back(input_tensor(add, train_fusion_.residual_input_of(add)));
        layers_[i]->forward(in, {outputs_[static_cast<size_t>(add)]});
      } else if (fusion_.forward(static_cast<int>(i), layers_, in, outputs_, pooling_) ||
                 train_fusion_.skips(static_cast<int>(i)) || pooling_.conv_of(static_cast<int>(i)) >= 0) {
        // done in another layer's turn (a commuted pooling: by its convolution)
      } else if (const int pool = pooling_.pool_of(static_cast<int>(i)); pool >= 0) {
        pooling_.forward(static_cast<int>(i), *layers_[i], input_tensor(pool, 0), outputs_[i]);
      } else {
        layers_[i]->forward(in, {outputs_[i]});
      }
    } catch (const Error& e) {
      rethrow_at(spec_.layers[i], e);
    }
    if (timing_) forward_seconds_[i] += now_seconds(device_) - start;
  }
  return outputs_.back();
}

void Net::backward(const Tensor& output_grad) {
  const size_t n = layers_.size();
  MPNCOV_CHECK(output_grad.shape() == output_shapes_.back(), "net '", spec_.name, "': the output gradient is ",
               output_grad.shape().str(), ", the output ", output_shapes_.back().str());
  if (!needs_grad_[n - 1]) return;  // everything frozen
  if (fusion_.fused_any() || outputs_moved_) {
    // The fused convolutions' outputs, which backward reads, are not there, or a shortcut that backward
    // reads was written over: the same (evaluation) forward again, unfused, even if training was turned on
    // since (it would move the running statistics).
    const bool on = eval_fusion_on_, training = training_;
    const auto restore = [&] {
      eval_fusion_on_ = on;
      if (training) set_training(true);
    };
    eval_fusion_on_ = false;
    if (training) set_training(false);
    const Tensor input = input_;
    try {
      forward(input);
    } catch (...) {
      restore();
      throw;
    }
    restore();
  }
  grads_[n - 1].copy_from(output_grad);
  for (size_t i = n; i-- > 0;) {
    if (!needs_grad_[i]) continue;
    std::vector<Tensor> in, in_grads;
    for (size_t k = 0; k < inputs_[i].size(); ++k) {
      in.push_back(input_tensor(static_cast<int>(i), static_cast<int>(k)));
      const int j = inputs_[i][k];
      const bool want = j >= 0 && needs_grad_[static_cast<size_t>(j)];
      in_grads.push_back(!want ? Tensor() : scratch_[i][k].defined() ? scratch_[i][k] : grads_[static_cast<size_t>(j)]);
    }
    const double start = timing_ ? now_seconds(device_) : 0;
    try {
      if (chain_head_[i] < 0)
        for (int j : inputs_[i]) if (j >= 0 && chain_head_[static_cast<size_t>(j)] >= 0) {
          if (memory_debug_.poison) for (const Tensor& t : shared_storage_) poison(t);
          recompute(j);
        }
      if (const int pool = pooling_.pool_of(static_cast<int>(i)); pool >= 0) {
        // The pooling's input gradient, where the pooling's backward would write it (its turn adds a scratch).
        const int j = inputs_[static_cast<size_t>(pool)][0];
        const Tensor dx = j < 0 || !needs_grad_[static_cast<size_t>(j)] ? Tensor()
                          : scratch_[static_cast<size_t>(pool)][0].defined() ? scratch_[static_cast<size_t>(pool)][0]
                                                                              : grads_[static_cast<size_t>(j)];
        pooling_.backward(static_cast<int>(i), *layers_[i], input_tensor(pool, 0), outputs_[i], grads_[i], dx);
      } else if (!train_fusion_.skips(static_cast<int>(i)) && pooling_.conv_of(static_cast<int>(i)) < 0) {
        layers_[i]->backward(in, {outputs_[i]}, {grads_[i]}, in_grads);
      }
    } catch (const Error& e) {
      rethrow_at(spec_.layers[i], e);
    }
    for (size_t k = 0; k < inputs_[i].size(); ++k)
      if (scratch_[i][k].defined()) ops::axpby(1.0, scratch_[i][k], 1.0, grads_[static_cast<size_t>(inputs_[i][k])]);
    if (memory_debug_.poison) {  // the lives that end here: the scratch buffers and i's own gradient
      for (int slot : scratch_slots_[i]) if (slot >= 0) poison(gradient_slots_[static_cast<size_t>(slot)]);
      if (grad_slot_[i] >= 0) poison(gradient_slots_[static_cast<size_t>(grad_slot_[i])]);
    }
    if (timing_) backward_seconds_[i] += now_seconds(device_) - start;
    if (backward_hook_) backward_hook_(static_cast<int>(i));
  }
}

void Net::recompute(int last) {
  for (int l = chain_head_[static_cast<size_t>(last)]; l <= last; ++l) {
    if (train_fusion_.skips(l)) continue;  // redone by its batch norm
    std::vector<Tensor> in;
    for (size_t k = 0; k < inputs_[static_cast<size_t>(l)].size(); ++k) in.push_back(input_tensor(l, static_cast<int>(k)));
    layers_[static_cast<size_t>(l)]->recompute(in, {outputs_[static_cast<size_t>(l)]});
  }
}

size_t Net::shared_bytes() const {
  size_t total = 0;
  for (const Tensor& t : shared_storage_) total += t.nbytes();
  return total;
}

void Net::poison(const Tensor& t) { ops::fill(t, std::numeric_limits<double>::quiet_NaN()); }

void Net::set_memory_debug(MemoryDebug debug) {
  memory_debug_ = debug;
  if (is_setup()) {
    const Shape input = input_shape_;
    setup(input, dtype_, device_);
  }
}

MemoryPlan Net::memory_plan() const {
  MemoryPlan plan;
  for (const auto& layer : layers_) {
    for (const Parameter& p : layer->parameters()) {
      plan.parameters += static_cast<double>(p.value.nbytes());
      if (!p.frozen) plan.parameter_grads += static_cast<double>(p.grad.nbytes());
    }
    for (const Buffer& b : layer->buffers()) plan.parameters += static_cast<double>(b.value.nbytes());
  }
  for (size_t i = 0; i < layers_.size(); ++i)
    if (!in_place_[i] && chain_head_[i] < 0 && pooling_.conv_of(static_cast<int>(i)) < 0)
      plan.activations += static_cast<double>(output_shapes_[i].numel()) * static_cast<double>(dtype_size(output_dtypes_[i]));
  plan.activations += static_cast<double>(shared_bytes()) + static_cast<double>(pooling_.scratch_bytes());
  for (const Tensor& t : gradient_slots_) plan.activation_grads += static_cast<double>(t.nbytes());
  return plan;
}

void Net::reset_timing() {
  forward_seconds_.assign(layers_.size(), 0.0);
  backward_seconds_.assign(layers_.size(), 0.0);
}

void Net::set_weights_fixed(bool on) {
  weights_fixed_ = on;
  fusion_.keep_prepared(on);
}

void Net::state_written() {
  for (auto& l : layers_) l->state_written();
  set_weights_fixed(weights_fixed_);
}

void Net::set_training(bool training) {
  if (training && weights_fixed_) set_weights_fixed(false);
  training_ = training;
  for (auto& l : layers_) l->set_training(training);
}

void Net::set_step(uint64_t step) {
  for (auto& l : layers_) l->set_step(step);
}

void Net::set_batch_rows(int64_t first, int64_t stride) {
  MPNCOV_CHECK(first >= 0 && stride >= 1 && first < stride, "batch rows: first ", first, ", stride ", stride);
  for (auto& l : layers_) l->set_batch_rows(first, stride);
}

void Net::set_precision(Precision precision) {
  const bool changed = precision != precision_;
  precision_ = precision;
  for (auto& l : layers_) l->set_precision(precision);
  if (is_setup() && changed) {  // the planned layouts and storage types depend on it
    const Shape input = input_shape_;
    setup(input, dtype_, device_);
  }
}

void Net::apply_layouts() {
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (outputs_[i].defined()) outputs_[i] = outputs_[i].with_layout(layouts_[i]);
    if (grads_[i].defined()) grads_[i] = grads_[i].with_layout(layouts_[i]);
    for (size_t k = 0; k < inputs_[i].size(); ++k)
      if (scratch_[i][k].defined()) scratch_[i][k] = scratch_[i][k].with_layout(layouts_[static_cast<size_t>(inputs_[i][k])]);
  }
}

void Net::zero_grad() {
  for (auto& l : layers_) l->zero_grad();
}

void Net::to(Device device) {
  require_device(device);
  for (auto& l : layers_) l->to(device);
  if (is_setup() && device != device_) {
    device_ = device;
    const Shape input = input_shape_;
    outputs_.clear();
    setup(input, dtype_, device);
  }
  device_ = device;
}

void Net::freeze(int k) {
  MPNCOV_CHECK(k >= 0 && k <= spec_.feature_children, "freeze: ", k, " is outside 0..", spec_.feature_children,
               " (the number of top-level feature items of ", spec_.name, ")");
  for (size_t i = 0; i < layers_.size(); ++i) {
    const bool frozen = spec_.layers[i].part == NetPart::Features && spec_.layers[i].child < k;
    for (Parameter& p : layers_[i]->parameters()) p.frozen = frozen;
  }
  if (is_setup()) {  // recompute which gradients are needed
    const Shape input = input_shape_;
    setup(input, dtype_, device_);
  }
}

void Net::plan_train_fusion() {
  std::vector<bool> shared(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) shared[i] = chain_head_[i] >= 0;
  train_fusion_.plan(layers_, inputs_, consumers_, in_place_, shared,
                     train_fusion_on_ && device_.is_cpu() && dtype_ == DType::F32);
}

void Net::set_train_fusion(bool on) {
  train_fusion_on_ = on;
  if (is_setup()) plan_train_fusion();
}

void Net::set_in_place(bool allowed) {
  in_place_allowed_ = allowed;
  if (is_setup()) {
    const Shape input = input_shape_;
    setup(input, dtype_, device_);
  }
}

void Net::set_grad_adding(bool on) {
  grad_adding_on_ = on;
  if (is_setup()) {
    const Shape input = input_shape_;
    setup(input, dtype_, device_);
  }
}

void Net::set_pooling_commuted(bool on) {
  pooling_commuted_on_ = on;
  if (is_setup()) {
    const Shape input = input_shape_;
    setup(input, dtype_, device_);
  }
}

const Tensor& Net::output(const std::string& name) const {
  const int i = index_of(name);
  const int conv = pooling_.conv_of(i);
  MPNCOV_CHECK(conv < 0, "net '", spec_.name, "': the output of layer '", name, "' is not kept: the convolution '",
               spec_.layers[static_cast<size_t>(conv)].name, "' after it runs first and pools its own output ",
               "(nets/commuted_pooling.h); set_in_place(false) keeps every output");
  MPNCOV_CHECK(!fusion_.left_unwritten(i), "net '", spec_.name, "': the output of layer '", name,
               "' was not written: the last forward fused it into a convolution's run with its batch norm ",
               "(evaluation mode); ",
               "set_in_place(false) keeps every output (or MPNCOV_EVAL_FUSION=0)");
  MPNCOV_CHECK(!overwritten(i), "net '", spec_.name, "': the output of layer '", name,
               "' is gone: the last forward (evaluation) wrote a residual add's output over it, its last reader; ",
               "set_in_place(false) keeps every output (or MPNCOV_EVAL_FUSION=0)");
  MPNCOV_CHECK(output_written(i), "net '", spec_.name, "': the output of layer '", name,
               "' was not written: the last forward (training) wrote the output of the add '",
               spec_.layers[static_cast<size_t>(train_fusion_.residual_add_of(i))].name, "' in its place; ",
               "set_in_place(false) keeps every output (or MPNCOV_TRAIN_FUSION=0)");
  return outputs_[static_cast<size_t>(i)];
}

bool Net::output_written(int i) const {
  if (fusion_.left_unwritten(i) || overwritten(i) || pooling_.conv_of(i) >= 0) return false;
  const int add = residual_fused_ ? train_fusion_.residual_add_of(i) : -1;
  return add < 0 || outputs_[static_cast<size_t>(i)].same_storage(outputs_[static_cast<size_t>(add)]);
}

std::vector<NetParameter> Net::parameters() {
  std::vector<NetParameter> out;
  for (size_t i = 0; i < layers_.size(); ++i)
    for (Parameter& p : layers_[i]->parameters())
      out.push_back({spec_.layers[i].name + "." + p.name, &p, spec_.layers[i].part});
  return out;
}

std::vector<NamedTensor> Net::state() {
  std::vector<NamedTensor> out;
  for (size_t i = 0; i < layers_.size(); ++i) {
    for (Parameter& p : layers_[i]->parameters()) out.push_back({spec_.layers[i].name + "." + p.name, p.value});
    for (Buffer& b : layers_[i]->buffers()) out.push_back({spec_.layers[i].name + "." + b.name, b.value});
  }
  return out;
}

int64_t Net::parameter_count() const {
  int64_t total = 0;
  for (const auto& l : layers_)
    for (const Parameter& p : l->parameters()) total += p.value.numel();
  return total;
}

}  // namespace mpncov
