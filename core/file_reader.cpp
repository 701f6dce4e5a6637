#include "core/file_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace mpncov {

FileReader::FileReader(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  MPNCOV_CHECK(fd_ >= 0, "cannot open '", path_, "': ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    const std::string why = S_ISDIR(st.st_mode) ? "it is a folder" : "not a regular file";
    ::close(fd_);
    fd_ = -1;
    MPNCOV_FAIL("cannot read '", path_, "': ", why);
  }
  size_ = static_cast<uint64_t>(st.st_size);
}

FileReader::~FileReader() {
  if (fd_ >= 0) ::close(fd_);
}

void FileReader::read_at(uint64_t offset, void* dst, size_t nbytes) const {
  MPNCOV_CHECK(offset <= size_ && nbytes <= size_ - offset, "'", path_, "': read of ", nbytes,
               " bytes at offset ", offset, " is past the end of the file (", size_, " bytes)");
  char* p = static_cast<char*>(dst);
  while (nbytes > 0) {
    const size_t chunk = nbytes < (size_t{1} << 30) ? nbytes : (size_t{1} << 30);
    const ssize_t n = ::pread(fd_, p, chunk, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    MPNCOV_CHECK(n >= 0, "cannot read '", path_, "': ", std::strerror(errno));
    MPNCOV_CHECK(n > 0, "'", path_, "' ended early at byte ", offset, " (was it truncated while open?)");
    p += n;
    offset += static_cast<uint64_t>(n);
    nbytes -= static_cast<size_t>(n);
  }
}

}  // namespace mpncov
