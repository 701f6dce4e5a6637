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

}  // namespace mpncov
