#include "tools/args.h"

#include <algorithm>
#include <cstdlib>

#include "core/error.h"
#include "core/text.h"
#include "tools/command.h"
#include "train/experiment.h"

namespace mpncov::tools {
namespace {

bool is_known(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// The nearest option; for a command that takes --set, the experiment key of the same name (--epochs:
// --set solver.epochs=VALUE), since experiment keys are not options of their own.
std::string unknown_option_hint(const std::string& name, const std::vector<std::string>& known, bool takes_set) {
  if (takes_set) {
    std::string leaf = name;
    std::replace(leaf.begin(), leaf.end(), '-', '_');
    for (const std::string& key : experiment_keys())
      if (key.substr(key.find('.') + 1) == leaf)
        return str(": it is the experiment key ", key, ", set with --set ", key, "=VALUE");
    return str(did_you_mean(name, known), " (experiment keys are set with --set section.key=VALUE)");
  }
  return did_you_mean(name, known);
}

}  // namespace

Args::Args(const std::vector<std::string>& argv, const std::vector<std::string>& options,
           const std::vector<std::string>& flags) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a.rfind("--", 0) != 0 || a.size() == 2) {
      positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const bool is_option = is_known(options, name), is_flag = is_known(flags, name);
    if (!is_option && !is_flag) {
      std::vector<std::string> all = options;
      all.insert(all.end(), flags.begin(), flags.end());
      throw UsageError{str("unknown option --", name, unknown_option_hint(name, all, is_known(options, "set")))};
    }
    if (is_flag) {
      if (inline_value) throw UsageError{str("--", name, " takes no value")};
      values_[name].push_back("");
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argv.size()) throw UsageError{str("--", name, " needs a value")};
      value = argv[++i];
    }
    values_[name].push_back(value);
  }
}

std::string Args::one_positional(const std::string& what) const {
  if (positional_.size() != 1)
    throw UsageError{positional_.empty() ? str("missing ", what) : str("expected one ", what, ", got ", positional_.size(), " arguments")};
  return positional_[0];
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second.back();
}

int64_t Args::get_int(const std::string& name, int64_t fallback) const {
  if (!has(name)) return fallback;
  const std::string v = get(name);
  char* end = nullptr;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end) throw UsageError{str("--", name, " expects an integer, got '", v, "'")};
  return x;
}

double Args::get_double(const std::string& name, double fallback) const {
  if (!has(name)) return fallback;
  const std::string v = get(name);
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end) throw UsageError{str("--", name, " expects a number, got '", v, "'")};
  return x;
}

std::vector<std::string> Args::all(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::vector<int64_t> parse_dims(const std::string& text, size_t count, const std::string& option) {
  std::vector<int64_t> dims;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t x = text.find('x', start);
    const std::string part = text.substr(start, x == std::string::npos ? std::string::npos : x - start);
    char* end = nullptr;
    const long long v = std::strtoll(part.c_str(), &end, 10);
    if (part.empty() || *end || v < 1) break;
    dims.push_back(v);
    if (x == std::string::npos) {
      if (count ? dims.size() == count : dims.size() <= 8) return dims;
      break;
    }
    start = x + 1;
  }
  throw UsageError{str("--", option, " expects ",
                       count == 3 ? "CxHxW, e.g. 3x224x224" : count == 0 ? "NxCxHxW" : str(count, " sizes joined by x"),
                       ", got '", text, "'")};
}

}  // namespace mpncov::tools
