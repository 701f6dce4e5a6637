// Config: a YAML mapping read key by key, with errors that name the file, line, owner and key.
// Every key must be read (get/require) or declared (ignore) before finish(); any other key is an error
// suggesting the nearest valid one. Layers, nets and experiments all read their YAML through this.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace mpncov {

// Values for `$name` placeholders (block arguments in net files).
using ConfigArgs = std::map<std::string, YAML::Node>;

class Config {
 public:
  // node: a mapping (or null for "no keys"); file: where it came from; owner: e.g. "layer 'conv1' (conv)".
  // args: values for "$name" strings among the values; overrides: keys whose values replace the node's.
  Config(YAML::Node node, std::string file, std::string owner, ConfigArgs args = {}, ConfigArgs overrides = {});

  bool has(const std::string& key) const;
  // The value of a key after overrides and "$name" substitution (a null node when absent).
  YAML::Node value(const std::string& key) const;
  const YAML::Node& node() const { return node_; }
  const std::string& file() const { return file_; }
  const std::string& owner() const { return owner_; }

  template <typename T>
  T get(const std::string& key, const T& fallback) {
    if (!has(key)) {
      known_.insert(key);
      return fallback;
    }
    return require<T>(key);
  }

  template <typename T>
  T require(const std::string& key) {
    known_.insert(key);
    if (!has(key)) fail(key, "is required");
    const YAML::Node v = value(key);
    try {
      return v.as<T>();
    } catch (const YAML::Exception&) {
      fail(key, str("expected ", type_name<T>(), ", got '", YAML::Dump(v), "'"));
    }
  }

  // An integer, or a list [a, b] (e.g. kernel: 3 or kernel: [3, 1]).
  std::pair<int64_t, int64_t> get_pair(const std::string& key, std::pair<int64_t, int64_t> fallback);
  // Declares keys read by someone else (so finish() accepts them).
  void ignore(const std::string& key) { known_.insert(key); }
  // Throws for a key no reader asked for, naming the nearest known one.
  void finish() const;

  // "file:line" of the key (or of the mapping when the key is absent).
  std::string where(const std::string& key = "") const;
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  // Fails with message unless cond.
  void check(bool cond, const std::string& key, const std::string& message) const {
    if (!cond) fail(key, message);
  }

 private:
  template <typename T>
  static const char* type_name() {
    if constexpr (std::is_same_v<T, bool>) return "true or false";
    else if constexpr (std::is_integral_v<T>) return "an integer";
    else if constexpr (std::is_floating_point_v<T>) return "a number";
    else if constexpr (std::is_same_v<T, std::string>) return "a string";
    else return "a list";
  }

  YAML::Node resolve(const YAML::Node& v, const std::string& key) const;
  // " (is 'kernal' a misspelling?)" when the mapping has an unread key close to a required one.
  std::string misspelt(const std::string& key) const;

  YAML::Node node_;
  std::string file_;
  std::string owner_;
  ConfigArgs args_;
  ConfigArgs overrides_;
  std::set<std::string> known_;
};

}  // namespace mpncov
