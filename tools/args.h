// Command-line arguments of a subcommand: positionals, `--name value` options (repeatable) and flags.
// Unknown options are usage errors naming the nearest known one.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mpncov::tools {

class Args {
 public:
  // options: names taking a value; flags: names without one (all without the leading "--").
  Args(const std::vector<std::string>& argv, const std::vector<std::string>& options,
       const std::vector<std::string>& flags = {});

  const std::vector<std::string>& positional() const { return positional_; }
  // The single positional argument; a usage error when there is none or several.
  std::string one_positional(const std::string& what) const;
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  bool flag(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const;
  int64_t get_int(const std::string& name, int64_t fallback) const;
  double get_double(const std::string& name, double fallback) const;
  std::vector<std::string> all(const std::string& name) const;  // every value of a repeated option

 private:
  std::vector<std::string> positional_;
  std::map<std::string, std::vector<std::string>> values_;
};

// "3x224x224" -> {3, 224, 224}; a usage error otherwise. count 0 accepts 1 to 8 sizes.
std::vector<int64_t> parse_dims(const std::string& text, size_t count, const std::string& option);

}  // namespace mpncov::tools
