// Errors: every failure is an mpncov::Error carrying what went wrong and where.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace mpncov {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& out, const T& first, const Rest&... rest) {
  out << first;
  append(out, rest...);
}
}  // namespace detail

// Joins the arguments with operator<< into one message.
template <typename... Args>
std::string str(const Args&... args) {
  std::ostringstream out;
  detail::append(out, args...);
  return out.str();
}

// The build maps the checkout's path away (-fmacro-prefix-map); a compiler cache may still hand the
// compiler a path relative to the build folder ("../core/x.cpp"): either way the message names the file
// from the repository's root.
[[noreturn]] inline void fail_at(const char* file, int line, const std::string& message) {
  while (file[0] == '.' && (file[1] == '/' || (file[1] == '.' && file[2] == '/'))) file += file[1] == '/' ? 2 : 3;
  throw Error(str(message, " [", file, ":", line, "]"));
}

}  // namespace mpncov

// Throws mpncov::Error with the message (streamed arguments) when cond is false.
#define MPNCOV_CHECK(cond, ...)                                                 \
  do {                                                                          \
    if (!(cond)) ::mpncov::fail_at(__FILE__, __LINE__, ::mpncov::str(__VA_ARGS__)); \
  } while (0)

#define MPNCOV_FAIL(...) ::mpncov::fail_at(__FILE__, __LINE__, ::mpncov::str(__VA_ARGS__))
