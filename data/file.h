// Reading a whole file into a reusable byte buffer (the loader keeps one per worker).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mpncov::data {

// Replaces bytes with the file's contents; throws mpncov::Error naming the path when it cannot.
void read_file(const std::string& path, std::vector<uint8_t>& bytes);

}  // namespace mpncov::data
