#include "core/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace mpncov {

namespace {

std::string errno_text() { return std::strerror(errno); }

// fsync of the folder makes the rename itself durable.
void sync_folder(const std::string& path) {
  std::string folder = std::filesystem::path(path).parent_path().string();
  if (folder.empty()) folder = ".";
  const int dfd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;  // some file systems refuse to open folders; the data itself is already synced
  ::fsync(dfd);
  ::close(dfd);
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  MPNCOV_CHECK(!path_.empty(), "atomic write: empty file name");
  temp_ = path_ + ".tmp." + std::to_string(::getpid());
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  MPNCOV_CHECK(fd_ >= 0, "cannot create '", temp_, "' (to write '", path_, "'): ", errno_text());
}

AtomicFile::~AtomicFile() { discard(); }

void AtomicFile::discard() noexcept {
  if (fd_ < 0) return;
  ::close(fd_);
  ::unlink(temp_.c_str());
  fd_ = -1;
}

void AtomicFile::write(const void* data, size_t nbytes) {
  MPNCOV_CHECK(fd_ >= 0, "atomic write of '", path_, "': write after commit");
  const char* p = static_cast<const char*>(data);
  while (nbytes > 0) {
    // Linux writes at most about 2 GB per call; loop over partial writes and EINTR.
    const ssize_t n = ::write(fd_, p, nbytes < (size_t{1} << 30) ? nbytes : (size_t{1} << 30));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? errno_text() : "no progress";
      discard();
      MPNCOV_FAIL("cannot write '", temp_, "': ", why);
    }
    p += n;
    nbytes -= static_cast<size_t>(n);
    written_ += static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  MPNCOV_CHECK(fd_ >= 0, "atomic write of '", path_, "': committed twice");
  if (::fsync(fd_) != 0) {
    const std::string why = errno_text();
    discard();
    MPNCOV_FAIL("cannot flush '", temp_, "' to disk: ", why);
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const std::string why = errno_text();
    ::unlink(temp_.c_str());
    MPNCOV_FAIL("cannot close '", temp_, "': ", why);
  }
  if (::rename(temp_.c_str(), path_.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(temp_.c_str());
    MPNCOV_FAIL("cannot rename '", temp_, "' to '", path_, "': ", why);
  }
  sync_folder(path_);
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  AtomicFile f(path);
  f.write(contents);
  f.commit();
}

}  // namespace mpncov
