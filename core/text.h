// Small text helpers for error messages: edit distance and "did you mean" suggestions.
#pragma once
#include <string>
#include <vector>

namespace mpncov {

size_t edit_distance(const std::string& a, const std::string& b);
// The candidate closest to `word` (empty when none is reasonably close).
std::string nearest(const std::string& word, const std::vector<std::string>& candidates);
// ", did you mean 'x'?" or "" — ready to append to a message.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);
// A byte count for people: "512 B", "1.5 GiB", "108.0 TiB".
std::string format_bytes(double bytes);
// The items with `sep` between them ("a, b, c").
std::string join(const std::vector<std::string>& items, const std::string& sep = ", ");
inline bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}
inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace mpncov
