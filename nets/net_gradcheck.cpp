#include "nets/net_gradcheck.h"

#include <algorithm>
#include <cstdio>

#include "nets/net.h"

namespace mpncov {

std::vector<LayerCase> net_layer_cases(const NetSpec& spec, const Shape& input, bool training) {
  Net net(spec);  // for the shapes each layer sees
  net.setup(input, DType::F64);
  std::vector<LayerCase> cases;
  for (int i = 0; i < net.size(); ++i) {
    const LayerSpec& l = spec.layers[static_cast<size_t>(i)];
    LayerCase c;
    c.type = l.type;
    YAML::Emitter out;
    out << YAML::Flow << l.resolved_keys();
    c.yaml = out.c_str();
    c.inputs = net.input_shapes(i);
    c.training = training;
    cases.push_back(c);
  }
  return cases;
}

std::vector<NetGradCheckRow> gradcheck_net(const NetSpec& spec, const Shape& input, const GradCheckOptions& options) {
  std::vector<NetGradCheckRow> rows;
  const std::vector<LayerCase> cases = net_layer_cases(spec, input, options.training);
  for (size_t i = 0; i < cases.size(); ++i)
    rows.push_back({spec.layers[i].name, spec.layers[i].type, gradcheck_case(cases[i], options)});
  return rows;
}

std::vector<NetGradCheckRow> compare_net_on_device(const NetSpec& spec, const Shape& input, Device device,
                                                   double tolerance, uint64_t seed) {
  std::vector<NetGradCheckRow> rows;
  const std::vector<LayerCase> cases = net_layer_cases(spec, input);
  for (size_t i = 0; i < cases.size(); ++i)
    rows.push_back({spec.layers[i].name, spec.layers[i].type, compare_case_on_device(cases[i], device, tolerance, seed)});
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
                  !r.report.pass() ? "FAIL" : r.report.degenerate() ? "zero (no signal)" : "pass");
    out += line;
  }
  return out;
}

}  // namespace mpncov
