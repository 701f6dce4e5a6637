// Helpers for the representation tests: building a layer from inline YAML, running it once.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "layers/layer.h"
#include "tests/helpers.h"

namespace mpncov::test {

// A layer of `type` from the YAML mapping `keys` (e.g. "{iterations: 3, sqrt: false}").
inline std::unique_ptr<Layer> rep_layer(const std::string& type, const std::string& keys = "{}") {
  Config c(YAML::Load(keys), "test", "layer '" + type + "'");
  return make_layer(type, c);
}

// Sets the layer up for x (on x's device and dtype) and runs forward; returns the output.
inline Tensor run_forward(Layer& layer, const Tensor& x, const std::string& name = "rep") {
  SetupContext ctx;
  ctx.dtype = x.dtype();
  ctx.device = x.device();
  ctx.name = name;
  const std::vector<Shape> shapes = layer.setup({x.shape()}, ctx);
  Tensor y = Tensor::zeros(shapes.at(0), x.dtype(), x.device());
  layer.forward({x}, {y});
  return y;
}

// Backward of the last forward for upstream gradient g; returns dL/dx.
inline Tensor run_backward(Layer& layer, const Tensor& x, const Tensor& y, const Tensor& g) {
  Tensor dx = Tensor::zeros(x.shape(), x.dtype(), x.device());
  layer.backward({x}, {y}, {g}, {dx});
  return dx;
}

}  // namespace mpncov::test
