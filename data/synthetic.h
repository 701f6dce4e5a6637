// A small image-folder dataset made on the spot, for the quickstart and tests: colour textures whose
// classes share their mean colour and per-channel variance and differ only in how the channels co-vary
// (second-order statistics), which covariance pooling sees directly and average pooling does not.
#pragma once
#include <cstdint>
#include <string>

namespace mpncov::data {

struct SyntheticOptions {
  int classes = 4;
  int train_per_class = 100;
  int val_per_class = 25;
  int size = 64;         // images are size x size
  uint64_t seed = 1;
  int quality = 92;      // JPEG quality
};

// Writes root/train/<class>/<n>.jpg and root/val/<class>/<n>.jpg; returns the number of images written.
int64_t write_synthetic_dataset(const std::string& root, const SyntheticOptions& options = {});

}  // namespace mpncov::data
