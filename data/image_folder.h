// ImageFolder: root/<class>/**/<image>, as torchvision's datasets.ImageFolder lists it, so sample i here
// is sample i there: classes are the sub-folders sorted by name and numbered from 0; each class folder is
// walked recursively (following links), folders in sorted path order, files sorted by name; a file is an
// image when its name ends, case-insensitively, in one of torchvision's extensions.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mpncov::data {

struct Sample {
  std::string path;
  int64_t label = 0;
};

class ImageFolder {
 public:
  using Warn = std::function<void(const std::string&)>;
  // Throws mpncov::Error with the path for a missing root, no class folders or no images at all; warns
  // (through warn, default stderr) about a class folder without images.
  explicit ImageFolder(const std::string& root, Warn warn = {});

  const std::string& root() const { return root_; }
  const std::vector<std::string>& classes() const { return classes_; }
  const std::vector<Sample>& samples() const { return samples_; }
  int64_t size() const { return static_cast<int64_t>(samples_.size()); }
  const Sample& operator[](int64_t i) const { return samples_[static_cast<size_t>(i)]; }
  // Images per class, indexed by label.
  std::vector<int64_t> class_counts() const;

  // .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp (torchvision's IMG_EXTENSIONS)
  static bool has_image_extension(const std::string& name);

 private:
  std::string root_;
  std::vector<std::string> classes_;
  std::vector<Sample> samples_;
};

}  // namespace mpncov::data
