// The loader's pinned batches copied to a device without waiting (Batch::to_device_async, as the trainer
// does): a batch's slot goes back to the workers only after an event recorded after its copy, so the copies
// arrive intact however soon the batch is dropped and its slot refilled. Skipped without a CUDA device.
#include <memory>

#include "data/loader.h"
#include "tests/data/image_files.h"
#include "tests/helpers.h"

using namespace mpncov;

TEST_SUITE("gpu") {

TEST_CASE("cuda batches: asynchronous copies of pinned batches arrive intact while workers refill the slots" *
          doctest::skip(!mpncov::test::gpu_present())) {
  const auto root = test::process_temp_dir("cuda_batches_folder");
  test::make_test_folder(root, false);
  const auto folder = std::make_shared<const data::ImageFolder>(root.string());
  data::LoaderOptions o;
  o.batch_size = 2;
  o.workers = 3;
  o.prefetch_batches = 1;  // few slots: each is refilled as soon as it is back
  o.seed = 1;
  o.log = [](const std::string&) {};
  data::Loader loader(folder, data::Pipeline().random_resized_crop(64).random_hflip(), o);
  int64_t batches = 0;
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    std::vector<Tensor> images, labels;
    std::vector<std::vector<double>> host_images, host_labels;
    loader.start_epoch(epoch);
    while (std::optional<data::Batch> b = loader.next()) {
      CHECK(b->images.pinned());
      images.push_back(b->to_device_async(b->images, Device::cuda(0)));
      labels.push_back(b->to_device_async(b->labels, Device::cuda(0)));
      host_images.push_back(b->images.to_vector());  // read while the copies run: both only read
      host_labels.push_back(b->labels.to_vector());
    }  // each batch goes at the end of its iteration, its copies possibly still queued
    for (size_t i = 0; i < images.size(); ++i) {
      INFO("epoch ", epoch, " batch ", i);
      CHECK(images[i].to(Device::cpu()).to_vector() == host_images[i]);
      CHECK(labels[i].to(Device::cpu()).to_vector() == host_labels[i]);
    }
    batches += static_cast<int64_t>(images.size());
  }
  CHECK(batches == 2 * loader.batches_per_epoch());
}

}  // TEST_SUITE("gpu")
