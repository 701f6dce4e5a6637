// Bounded reads from one file: its size is known up front, and every read names the file and fails
// cleanly when the bytes are not there, so format readers never read past the end.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace mpncov {

class FileReader {
 public:
  explicit FileReader(std::string path);  // throws when the file cannot be opened or is not regular
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  // Reads exactly nbytes at offset into dst; throws when the file is shorter (e.g. truncated while open).
  void read_at(uint64_t offset, void* dst, size_t nbytes) const;

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace mpncov
