#include "nets/layout_plan.h"

namespace mpncov {

std::vector<Layout> plan_layouts(const std::vector<std::unique_ptr<Layer>>& layers,
                                 const std::vector<std::vector<int>>& inputs, DType dtype, Device device) {
  const size_t n = layers.size();
  std::vector<Layout> out(n, Layout::NCHW);
  if (n == 0 || layout_mode() == LayoutMode::Off || dtype != DType::F32 || !device.is_cpu()) return out;
  // Each layer chooses from its inputs' layouts; an output one of its readers cannot take is forced to
  // NCHW, which may change what later layers choose and force more: repeat until nothing changes (each
  // round forces at least one more output, so at most n rounds).
  std::vector<bool> forced(n, false);
  forced[n - 1] = true;
  for (;;) {
    std::vector<std::vector<Layout>> in(n);
    for (size_t i = 0; i < n; ++i) {
      for (int j : inputs[i]) in[i].push_back(j < 0 ? Layout::NCHW : out[static_cast<size_t>(j)]);
      out[i] = forced[i] ? Layout::NCHW : layers[i]->output_layout(in[i]);
    }
    bool changed = false;
    for (size_t i = 0; i < n; ++i)
      for (size_t k = 0; k < inputs[i].size(); ++k) {
        const int j = inputs[i][k];
        if (j < 0 || in[i][k] == Layout::NCHW || layers[i]->accepts_layout(k, in[i][k], out[i])) continue;
        forced[static_cast<size_t>(j)] = true;
        changed = true;
      }
    if (!changed) return out;
  }
}

}  // namespace mpncov
