#include "core/config.h"

#include "core/config_error.h"
#include "core/text.h"

namespace mpncov {

Config::Config(YAML::Node node, std::string file, std::string owner, ConfigArgs args, ConfigArgs overrides)
    : node_(std::move(node)),
      file_(std::move(file)),
      owner_(std::move(owner)),
      args_(std::move(args)),
      overrides_(std::move(overrides)) {
  if (node_ && !node_.IsNull() && !node_.IsMap())
    throw ConfigError(str(where(), ": ", owner_, ": expected a mapping of keys to values"));
  // Keys are names; a list or mapping as a key (`? [a, b]: 1`) would break every lookup below. A name given
  // twice is refused too: YAML parsers keep one of the two silently (yaml-cpp's lookups find the first), so
  // a second `solver:` section or `lr:` at the end of a file would be ignored.
  if (node_ && node_.IsMap()) {
    std::map<std::string, int> seen;  // key -> its line
    for (const auto& kv : node_) {
      if (!kv.first.IsScalar())
        throw ConfigError(str(file_, ":", kv.first.Mark().line + 1, ": ", owner_, ": a key must be a name, got '",
                              YAML::Dump(kv.first), "'"));
      const int line = kv.first.Mark().line + 1;
      const auto [first, fresh] = seen.emplace(kv.first.Scalar(), line);
      if (!fresh)
        throw ConfigError(str(line > 0 ? str(file_, ":", line) : str(file_, " (--set)"), ": ", owner_, ": key '",
                              kv.first.Scalar(), "' is given twice", first->second > 0 ? str(" (also on line ", first->second, ")") : "",
                              "; only one may be"));
    }
  }
}

bool Config::has(const std::string& key) const {
  return overrides_.count(key) || (node_ && node_.IsMap() && node_[key]);
}

YAML::Node Config::value(const std::string& key) const {
  auto o = overrides_.find(key);
  if (o != overrides_.end()) return o->second;
  if (!node_ || !node_.IsMap() || !node_[key]) return YAML::Node();
  return resolve(node_[key], key);
}

YAML::Node Config::resolve(const YAML::Node& v, const std::string& key) const {
  if (v.IsScalar()) {
    const std::string text = v.Scalar();
    if (text.size() < 2 || text[0] != '$') return v;
    const std::string name = text.substr(1);
    auto a = args_.find(name);
    if (a != args_.end()) return a->second;
    std::vector<std::string> names;
    for (const auto& kv : args_) names.push_back(kv.first);
    fail(key, str("refers to an unknown argument '$", name, "'", did_you_mean(name, names)));
  }
  if (v.IsSequence()) {
    YAML::Node out(YAML::NodeType::Sequence);
    for (const YAML::Node& e : v) out.push_back(resolve(e, key));
    return out;
  }
  return v;
}

std::pair<int64_t, int64_t> Config::get_pair(const std::string& key, std::pair<int64_t, int64_t> fallback) {
  known_.insert(key);
  if (!has(key)) return fallback;
  const YAML::Node v = value(key);
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

std::string Config::misspelt(const std::string& key) const {
  if (!node_ || !node_.IsMap()) return "";
  for (const auto& kv : node_) {
    const std::string k = kv.first.as<std::string>();
    if (!known_.count(k) && nearest(k, {key}) == key) return str(" (is '", k, "' a misspelling?)");
  }
  return "";
}

void Config::finish() const {
  if (!node_ || !node_.IsMap()) return;
  const std::vector<std::string> valid(known_.begin(), known_.end());
  for (const auto& kv : node_) {
    const std::string key = kv.first.as<std::string>();
    if (known_.count(key)) continue;
    std::string valid_list;
    for (const std::string& k : valid) valid_list += (valid_list.empty() ? "" : ", ") + k;
    throw ConfigError(str(where(key), ": ", owner_, ": unknown key '", key, "'", did_you_mean(key, valid),
                    " (valid keys: ", valid_list, ")"));
  }
}

std::string Config::where(const std::string& key) const {
  YAML::Mark mark;
  if (!key.empty() && node_ && node_.IsMap() && node_[key]) {
    // The mark of the key itself: find it among the mapping's entries.
    for (const auto& kv : node_)
      if (kv.first.as<std::string>() == key) mark = kv.first.Mark();
    // A key with no place in any file was set on the command line (apply_overrides gives every
    // overridden key a fresh node): blame --set, not a line of the file.
    if (mark.line < 0) return str(file_, " (--set)");
  } else if (node_) {
    mark = node_.Mark();
  }
  if (mark.line < 0) return file_;
  return str(file_, ":", mark.line + 1);
}

void Config::fail(const std::string& key, const std::string& message) const {
  throw ConfigError(str(where(key), ": ", owner_, ": key '", key, "' ", message, has(key) ? "" : misspelt(key)));
}

}  // namespace mpncov
