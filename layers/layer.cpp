#include "layers/layer.h"

#include <algorithm>

#include "core/text.h"

namespace mpncov {

Parameter& Layer::parameter(const std::string& name) {
  for (Parameter& p : parameters_)
    if (p.name == name) return p;
  MPNCOV_FAIL(type(), " layer has no parameter '", name, "'");
}

Buffer& Layer::buffer(const std::string& name) {
  for (Buffer& b : buffers_)
    if (b.name == name) return b;
  MPNCOV_FAIL(type(), " layer has no buffer '", name, "'");
}

void Layer::to(Device device) {
  for (Parameter& p : parameters_) {
    p.value = p.value.to(device);
    p.grad = p.grad.to(device);
  }
  for (Buffer& b : buffers_) b.value = b.value.to(device);
}

void Layer::set_adds_input_grad(size_t k, bool on) {
  if (adds_input_grad_.size() <= k) adds_input_grad_.resize(k + 1, false);
  adds_input_grad_[k] = on;
}

void Layer::zero_grad() {
  for (Parameter& p : parameters_) {
    if (p.overwrite_grad && p.grad.defined()) p.grad_zero_pending = true;
    else p.grad.zero();
  }
}

void zero_pending_grad(Parameter& p) {
  if (!p.grad_zero_pending) return;
  p.grad.zero();
  p.grad_zero_pending = false;
}

namespace {
// Adds `copies` tensors of this shape to the net's memory plan, refusing them when they do not fit.
void plan(const Layer& layer, const SetupContext& ctx, const std::string& what, const Shape& shape, int copies) {
  if (!ctx.planned_bytes) return;
  const double bytes = static_cast<double>(shape.numel()) * static_cast<double>(dtype_size(ctx.dtype)) * copies;
  const double before = *ctx.planned_bytes;
  *ctx.planned_bytes += bytes;
  if (*ctx.planned_bytes > ctx.memory_limit)
    throw Error(str(layer.type(), " layer '", ctx.name, "': ", what, " ", shape.str(), " needs ", format_bytes(bytes),
                    copies == 2 ? " with its gradient" : "", before > 0 ? str(" after ", format_bytes(before), " planned") : "",
                    ", more than the ", format_bytes(ctx.memory_limit), " of ", ctx.device.str(),
                    " memory the net may use; it was not allocated"));
}
}  // namespace

Parameter& Layer::add_parameter(const std::string& name, const Shape& shape, const SetupContext& ctx) {
  for (Parameter& p : parameters_) {
    if (p.name != name) continue;
    MPNCOV_CHECK(p.value.shape() == shape, type(), " layer '", ctx.name, "': parameter ", name, " has shape ",
                 p.value.shape().str(), " but the inputs now need ", shape.str());
    return p;
  }
  plan(*this, ctx, "parameter " + name, shape, 2);  // value and gradient
  Parameter p;
  p.name = name;
  p.value = Tensor::zeros(shape, ctx.dtype, ctx.device);
  p.grad = Tensor::zeros(shape, ctx.dtype, ctx.device);
  parameters_.push_back(std::move(p));
  return parameters_.back();
}

Buffer& Layer::add_buffer(const std::string& name, const Shape& shape, const SetupContext& ctx, double value) {
  for (Buffer& b : buffers_)
    if (b.name == name) return b;
  plan(*this, ctx, "buffer " + name, shape, 1);
  buffers_.push_back(Buffer{name, Tensor::full(shape, value, ctx.dtype, ctx.device)});
  return buffers_.back();
}

uint64_t Layer::stream_of(const std::string& name, const std::string& purpose) {
  // FNV-1a over "name/purpose": stable across runs, platforms and compilers.
  uint64_t h = 1469598103934665603ull;
  for (char c : name + "/" + purpose) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

namespace {
std::vector<LayerInfo>& registry() {
  static std::vector<LayerInfo> layers;
  return layers;
}
}  // namespace

bool register_layer(LayerInfo info) {
  for (const LayerInfo& l : registry())
    MPNCOV_CHECK(l.type != info.type, "layer type '", info.type, "' registered twice");
  registry().push_back(std::move(info));
  return true;
}

std::vector<std::string> layer_types() {
  std::vector<std::string> types;
  for (const LayerInfo& l : registry()) types.push_back(l.type);
  std::sort(types.begin(), types.end());
  return types;
}

const LayerInfo& layer_info(const std::string& type) {
  for (const LayerInfo& l : registry())
    if (l.type == type) return l;
  std::string all;
  for (const std::string& t : layer_types()) all += (all.empty() ? "" : ", ") + t;
  throw Error(str("unknown layer type '", type, "'", did_you_mean(type, layer_types()), " (known types: ", all, ")"));
}

std::unique_ptr<Layer> make_layer(const std::string& type, Config& config) {
  const LayerInfo& info = layer_info(type);
  std::unique_ptr<Layer> layer = info.factory(config);
  config.finish();
  return layer;
}

}  // namespace mpncov
