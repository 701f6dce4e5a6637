#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>

#include "data/file.h"
#include "data/image_folder.h"
#include "tests/data/image_files.h"
#include "tests/helpers.h"

using namespace mpncov;
using namespace mpncov::data;
namespace fs = std::filesystem;

TEST_SUITE("unit") {

TEST_CASE("data image folder: torchvision's classes and order and extensions") {
  const fs::path root = test::temp_dir("data_image_folder");
  test::make_test_folder(root);
  std::vector<std::string> warnings;
  ImageFolder folder(root.string(), [&](const std::string& m) { warnings.push_back(m); });
  CHECK(warnings.empty());
  CHECK(folder.classes() == std::vector<std::string>{"cat", "dog", "eel"});
  std::vector<std::string> names;
  for (const Sample& s : folder.samples()) names.push_back(fs::relative(s.path, root).string());
  const std::vector<std::string> expected{
      "cat/c01_baseline.jpg", "cat/c02_444.JPG", "cat/c03_progressive.jpeg", "cat/c04_gray.jpg",
      "cat/c05_cmyk.jpg", "cat/c06_png_named.JPEG", "cat/sub/c07_nested.jpg",
      "dog/d01.png", "dog/d02_rgba.png", "dog/d03_gray.png", "dog/d04.bmp", "dog/d05_truncated.jpg",
      "dog/d06_empty.jpg", "dog/d07_text.jpg", "dog/d08_truncated.png", "dog/d09.jpg",
      "eel/e01.jpg", "eel/e02.jpg", "eel/e03.jpg", "eel/e04.jpg", "eel/e05.jpg", "eel/e06.jpg"};
  CHECK(names == expected);
  CHECK(folder[0].label == 0);
  CHECK(folder[7].label == 1);
  CHECK(folder[21].label == 2);
  CHECK(folder.class_counts() == std::vector<int64_t>{7, 9, 6});
  CHECK(ImageFolder::has_image_extension("x.WebP"));
  CHECK(ImageFolder::has_image_extension("a.b.TIFF"));
  CHECK_FALSE(ImageFolder::has_image_extension("jpg"));
  CHECK_FALSE(ImageFolder::has_image_extension("x.gif"));  // torchvision does not list .gif either
}

TEST_CASE("data image folder: errors name the path - an empty class warns") {
  const fs::path root = test::temp_dir("data_image_folder_errors");
  CHECK_THROWS_WITH(ImageFolder((root / "missing").string()), doctest::Contains("missing does not exist"));
  CHECK_THROWS_WITH(ImageFolder(root.string()), doctest::Contains("has no class folders"));
  fs::create_directories(root / "a");
  test::write_bytes(root / "a/readme.txt", {'x'});
  CHECK_THROWS_WITH(ImageFolder(root.string(), [](const std::string&) {}), doctest::Contains("has no images"));
  test::write_bytes(root / "b/x.png", test::encode_png(test::synthetic_image(4, 4, 1)));
  std::vector<std::string> warnings;
  ImageFolder folder(root.string(), [&](const std::string& m) { warnings.push_back(m); });
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find((root / "a").string()) != std::string::npos);
  CHECK(folder.classes().size() == 2);
  CHECK(folder.size() == 1);
  CHECK(folder[0].label == 1);
}

TEST_CASE("data image folder: a named pipe listed as an image is refused, without waiting for a writer") {
  const fs::path root = test::process_temp_dir("data_image_folder_fifo");
  fs::create_directories(root / "a");
  const fs::path fifo = root / "a/pipe.jpg";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  ImageFolder folder(root.string(), [](const std::string&) {});
  REQUIRE(folder.size() == 1);  // listed, as torchvision lists it
  std::promise<std::string> result;
  std::future<std::string> error = result.get_future();
  std::thread reader([&] {
    std::vector<uint8_t> bytes;
    try {
      read_file(folder[0].path, bytes);
      result.set_value("read");
    } catch (const Error& e) {
      result.set_value(e.what());
    }
  });
  const bool done = error.wait_for(std::chrono::seconds(2)) == std::future_status::ready;
  CHECK(done);
  if (!done) ::close(::open(fifo.c_str(), O_WRONLY));  // the reader was stuck in open(): let it go
  reader.join();
  CHECK(error.get().find("pipe.jpg: not a regular file") != std::string::npos);
}

}  // TEST_SUITE
