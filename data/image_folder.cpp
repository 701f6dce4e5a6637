#include "data/image_folder.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <iostream>

#include "core/error.h"

namespace fs = std::filesystem;

namespace mpncov::data {

bool ImageFolder::has_image_extension(const std::string& name) {
  static const char* const kExtensions[] = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"};
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* ext : kExtensions) {
    const size_t n = std::char_traits<char>::length(ext);
    if (lower.size() >= n && lower.compare(lower.size() - n, n, ext) == 0) return true;
  }
  return false;
}

namespace {

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);  // follows links, like os.scandir's is_dir()
}

// The image files of one class folder in os.walk order after torchvision's sorted(): every folder's path
// (as a string, so "a b" sorts before "a/x"), then its file names sorted.
std::vector<std::string> class_images(const fs::path& class_dir) {
  std::vector<std::string> folders{class_dir.string()};
  for (size_t i = 0; i < folders.size(); ++i) {
    std::error_code ec;
    for (fs::directory_iterator it(folders[i], ec), end; !ec && it != end; it.increment(ec))
      if (is_dir(it->path())) folders.push_back(it->path().string());
    MPNCOV_CHECK(folders.size() < 10000000, "too many folders under ", class_dir.string(), " (a link cycle?)");
  }
  std::sort(folders.begin(), folders.end());
  std::vector<std::string> images;
  for (const std::string& folder : folders) {
    std::vector<std::string> names;
    std::error_code ec;
    for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec))
      if (!is_dir(it->path())) names.push_back(it->path().filename().string());
    std::sort(names.begin(), names.end());
    for (const std::string& name : names)
      if (ImageFolder::has_image_extension(name)) images.push_back((fs::path(folder) / name).string());
  }
  return images;
}

}  // namespace

ImageFolder::ImageFolder(const std::string& root, Warn warn) : root_(root) {
  if (!warn) warn = [](const std::string& m) { std::cerr << "warning: " << m << "\n"; };
  MPNCOV_CHECK(fs::exists(root), "image folder ", root, " does not exist");
  MPNCOV_CHECK(is_dir(root), "image folder ", root, " is not a directory");
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
    if (is_dir(it->path())) classes_.push_back(it->path().filename().string());
  MPNCOV_CHECK(!ec, "cannot list ", root, ": ", ec.message());
  std::sort(classes_.begin(), classes_.end());
  MPNCOV_CHECK(!classes_.empty(), "image folder ", root, " has no class folders (expected root/<class>/<image>)");
  for (size_t label = 0; label < classes_.size(); ++label) {
    const fs::path dir = fs::path(root) / classes_[label];
    std::vector<std::string> images = class_images(dir);
    if (images.empty()) warn("class folder " + dir.string() + " has no images");
    for (std::string& path : images) samples_.push_back(Sample{std::move(path), static_cast<int64_t>(label)});
  }
  MPNCOV_CHECK(!samples_.empty(), "image folder ", root, " has no images (extensions: .jpg .jpeg .png .ppm .bmp ",
               ".pgm .tif .tiff .webp)");
}

std::vector<int64_t> ImageFolder::class_counts() const {
  std::vector<int64_t> counts(classes_.size(), 0);
  for (const Sample& s : samples_) ++counts[static_cast<size_t>(s.label)];
  return counts;
}

}  // namespace mpncov::data
