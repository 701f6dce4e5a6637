#include "core/config.h"

#include "core/text.h"

namespace mpncov {

Config::Config(YAML::Node node, std::string file, std::string owner)
    : node_(std::move(node)), file_(std::move(file)), owner_(std::move(owner)) {
  if (node_ && !node_.IsNull() && !node_.IsMap())
    throw Error(str(where(), ": ", owner_, ": expected a mapping of keys to values"));
}

bool Config::has(const std::string& key) const { return node_ && node_.IsMap() && node_[key]; }

std::pair<int64_t, int64_t> Config::get_pair(const std::string& key, std::pair<int64_t, int64_t> fallback) {
  known_.insert(key);
  if (!has(key)) return fallback;
  const YAML::Node v = node_[key];
  try {
    if (v.IsScalar()) {
      const int64_t x = v.as<int64_t>();
      return {x, x};
    }
    if (v.IsSequence() && v.size() == 2) return {v[0].as<int64_t>(), v[1].as<int64_t>()};
  } catch (const YAML::Exception&) {
  }
  fail(key, str("expected an integer or a list of two integers, got '", YAML::Dump(v), "'"));
}

void Config::finish() const {
  if (!node_ || !node_.IsMap()) return;
  const std::vector<std::string> valid(known_.begin(), known_.end());
  for (const auto& kv : node_) {
    const std::string key = kv.first.as<std::string>();
    if (known_.count(key)) continue;
    std::string valid_list;
    for (const std::string& k : valid) valid_list += (valid_list.empty() ? "" : ", ") + k;
    throw Error(str(where(key), ": ", owner_, ": unknown key '", key, "'", did_you_mean(key, valid),
                    " (valid keys: ", valid_list, ")"));
  }
}

std::string Config::where(const std::string& key) const {
  YAML::Mark mark;
  if (!key.empty() && has(key)) {
    // The mark of the key itself: find it among the mapping's entries.
    for (const auto& kv : node_)
      if (kv.first.as<std::string>() == key) mark = kv.first.Mark();
  } else if (node_) {
    mark = node_.Mark();
  }
  if (mark.line < 0) return file_;
  return str(file_, ":", mark.line + 1);
}

void Config::fail(const std::string& key, const std::string& message) const {
  throw Error(str(where(key), ": ", owner_, ": key '", key, "' ", message));
}

}  // namespace mpncov
