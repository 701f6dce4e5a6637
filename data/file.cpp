#include "data/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace mpncov::data {

void read_file(const std::string& path, std::vector<uint8_t>& bytes) {
  // O_NONBLOCK: opening a named pipe (or a device) listed as an image must not wait for a writer; it is
  // refused below. Reads of a regular file ignore the flag.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  MPNCOV_CHECK(fd >= 0, path, ": cannot open: ", std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat info;
  MPNCOV_CHECK(::fstat(fd, &info) == 0, path, ": cannot stat: ", std::strerror(errno));
  MPNCOV_CHECK(S_ISREG(info.st_mode), path, ": not a regular file");
  bytes.resize(static_cast<size_t>(info.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t got = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (got < 0 && errno == EINTR) continue;
    MPNCOV_CHECK(got >= 0, path, ": read failed: ", std::strerror(errno));
    if (got == 0) break;  // the file shrank while we read it
    done += static_cast<size_t>(got);
  }
  bytes.resize(done);
}

}  // namespace mpncov::data
