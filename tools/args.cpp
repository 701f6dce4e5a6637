#include "tools/args.h"

#include <algorithm>
#include <cstdlib>

#include "core/error.h"
#include "core/text.h"
#include "tools/command.h"

namespace mpncov::tools {

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
    const bool is_option = std::find(options.begin(), options.end(), name) != options.end();
    const bool is_flag = std::find(flags.begin(), flags.end(), name) != flags.end();
    if (!is_option && !is_flag) {
      std::vector<std::string> all = options;
      all.insert(all.end(), flags.begin(), flags.end());
      throw UsageError{str("unknown option --", name, did_you_mean(name, all))};
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
