#include <unistd.h>

#include "core/atomic_file.h"
#include "tests/core/io_test_util.h"

using namespace mpncov;
using namespace mpncov::test;
namespace fs = std::filesystem;

TEST_SUITE("unit") {

TEST_CASE("atomic file: replaces the old file, leaves no temporary, and an abandoned write changes nothing") {
  const fs::path dir = temp_dir("atomic_file");
  const std::string path = (dir / "f.txt").string();
  write_file_atomic(path, "first");
  write_file_atomic(path, "second, longer");
  CHECK(read_bytes(path) == "second, longer");

  {
    AtomicFile f(path);
    CHECK(f.temp_path() == path + ".tmp." + std::to_string(::getpid()));
    f.write("half written");
    CHECK(fs::exists(f.temp_path()));
    CHECK(read_bytes(path) == "second, longer");  // readers still see the old file
  }  // destroyed without commit: as if the process died here, minus the leftover temporary
  CHECK(read_bytes(path) == "second, longer");

  {
    AtomicFile f(path);
    f.write("abc", 3);
    f.write(std::string_view("def"));
    CHECK(f.bytes_written() == 6);
    f.commit();
    CHECK_THROWS_WITH_AS(f.commit(), doctest::Contains("committed twice"), Error);
    CHECK_THROWS_WITH_AS(f.write("x"), doctest::Contains("write after commit"), Error);
  }
  CHECK(read_bytes(path) == "abcdef");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  CHECK(names == std::vector<std::string>{"f.txt"});

  CHECK_THROWS_WITH_AS(write_file_atomic((dir / "missing" / "f").string(), "x"), doctest::Contains("cannot create"), Error);
  fs::create_directory(dir / "folder");
  CHECK_THROWS_WITH_AS(write_file_atomic((dir / "folder").string(), "x"), doctest::Contains("cannot rename"), Error);
  CHECK(fs::is_directory(dir / "folder"));
}

}  // TEST_SUITE
