#include "nets/net_gradcheck.h"

#include <algorithm>
#include <cstdio>

#include "core/ops.h"
#include "nets/net.h"

namespace mpncov {

std::vector<NetGradCheckRow> gradcheck_net(const NetSpec& spec, const Shape& input, const GradCheckOptions& options) {
  Net net(spec);  // for the shapes each layer sees
  net.setup(input, DType::F64);
  std::vector<NetGradCheckRow> rows;
  for (int i = 0; i < net.size(); ++i) {
    const LayerSpec& l = spec.layers[static_cast<size_t>(i)];
    Config config = l.config();
    std::unique_ptr<Layer> layer = make_layer(l.type, config);
    std::vector<Tensor> inputs;
    uint64_t stream = 0;
    for (const Shape& s : net.input_shapes(i)) {
      Tensor t = Tensor::empty(s, DType::F64);
      ops::fill_uniform(t, -1, 1, options.seed, 7000 + static_cast<uint64_t>(i) * 16 + stream++);
      inputs.push_back(t);
    }
    rows.push_back({l.name, l.type, gradcheck(*layer, inputs, options)});
  }
  return rows;
}

std::string net_gradcheck_table(const std::vector<NetGradCheckRow>& rows) {
  std::string out;
  char line[320];
  std::snprintf(line, sizeof line, "%-40s %-18s %10s %13s %13s %7s  %s\n", "layer", "type", "checked", "max abs err",
                "max rel err", "kinks", "result");
  out += line;
  for (const NetGradCheckRow& r : rows) {
    int64_t checked = 0, kinks = 0;
    double abs_err = 0, rel_err = 0;
    for (const GradCheckRow& g : r.report.rows) {
      checked += g.checked;
      kinks += g.kinks;
      abs_err = std::max(abs_err, g.max_abs_error);
      rel_err = std::max(rel_err, g.max_rel_error);
    }
    std::snprintf(line, sizeof line, "%-40s %-18s %10lld %13.3e %13.3e %7lld  %s\n", r.layer.c_str(), r.type.c_str(),
                  static_cast<long long>(checked), abs_err, rel_err, static_cast<long long>(kinks),
                  r.report.pass() ? "pass" : "FAIL");
    out += line;
  }
  return out;
}

}  // namespace mpncov
