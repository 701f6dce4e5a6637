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
  // Failures are about the user's file, not our code: the message names the file, no source location.
  const auto fail = [&path](const std::string& what) { throw Error(str(path, ": ", what)); };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail(str("cannot open: ", std::strerror(errno)));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat info;
  if (::fstat(fd, &info) != 0) fail(str("cannot stat: ", std::strerror(errno)));
  if (!S_ISREG(info.st_mode)) fail("not a regular file");
  bytes.resize(static_cast<size_t>(info.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t got = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail(str("read failed: ", std::strerror(errno)));
    if (got == 0) break;  // the file shrank while we read it
    done += static_cast<size_t>(got);
  }
  bytes.resize(done);
}

}  // namespace mpncov::data
