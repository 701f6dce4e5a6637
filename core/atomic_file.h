// Atomic file replacement: write everything to PATH.tmp.<pid>, flush and fsync it, rename it over PATH,
// then fsync the folder. Readers see the old file or the new one, never a partial one, and a crash at
// any point leaves the previous good file in place (checkpoints rely on this).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace mpncov {

class AtomicFile {
 public:
  // Creates the temporary file beside path (same folder, so the rename stays on one file system).
  explicit AtomicFile(std::string path);
  // Without commit(), removes the temporary file and leaves path untouched.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t nbytes);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  size_t bytes_written() const { return written_; }
  // Flushes to disk and renames over path. The object is finished afterwards.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_; }

 private:
  void discard() noexcept;

  std::string path_, temp_;
  int fd_ = -1;
  size_t written_ = 0;
};

// Replaces path with contents atomically.
void write_file_atomic(const std::string& path, std::string_view contents);

}  // namespace mpncov
