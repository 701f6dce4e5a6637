// Loader: N worker threads decode and augment an ImageFolder into batches, ahead of the training thread.
//
//   Loader loader(folder, preset("imagenet", Stage::Train), options);  // batch_size, workers, seed, ...
//   for (int64_t epoch = start; epoch < epochs; ++epoch) {
//     loader.start_epoch(epoch);
//     while (std::optional<Batch> batch = loader.next()) { ... batch->images, batch->labels ... }
//   }
//
// Determinism: the epoch's order comes from (seed, epoch) (data/sampler.h) and each sample's crop and flip
// from (seed, epoch, dataset index) (data/sample_rng.h); a batch is always positions [b*B, (b+1)*B) of the
// order. So the batches are the same bit for bit whatever the number of workers, and a run resumed with
// start_epoch(position.epoch, position.batch) sees exactly the batches it would have seen.
//
// Bad files: a file that cannot be read or decoded (corrupt, truncated, zero bytes, not an image) is
// replaced by the next dataset index that decodes ((i + 1) % N, (i + 2) % N, ...), keeping sample i's random
// stream, and counted; a warning names it the first time, and the end of each epoch logs a summary line.
// With strict = true the first bad file stops the loader and next() throws an error naming it.
//
// Workers fill batches sample by sample, all of them working on the oldest unfinished batches, at most
// prefetch_batches ahead of the consumer, so the first batch comes as soon as possible.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "data/image_folder.h"
#include "data/pipeline.h"
#include "data/sampler.h"

namespace mpncov::data {

struct LoaderOptions {
  int64_t batch_size = 32;
  int workers = 4;           // 0: next() decodes on the calling thread
  bool shuffle = true;
  bool drop_last = false;    // drop the last, smaller batch of an epoch
  uint64_t seed = 0;
  int rank = 0, world_size = 1;  // this process's share of the data (see data/sampler.h)
  bool pad_shards = true;        // false: no padded duplicates, shares differ by one (validation)
  int prefetch_batches = 3;  // batches being filled or ready ahead of the one the consumer waits for
  bool strict = false;       // a bad file is an error instead of being skipped
  bool pin_memory = true;    // page-locked batches when a CUDA device is present (fast async copies)
  DecodeOptions decode;
  // Where warnings and the per-epoch summary go (default: stderr); called from one thread at a time.
  std::function<void(const std::string&)> log;
};

struct LoaderPosition {
  int64_t epoch = 0;
  int64_t batch = 0;  // the next batch next() returns
};

struct SkippedFile {
  std::string path;
  std::string reason;
};

struct LoaderStats {
  int64_t images_decoded = 0;    // samples produced since the loader was made
  int64_t files_skipped = 0;     // samples whose file was bad and was replaced (every epoch it comes up)
  int64_t batches = 0;           // batches handed out
  int64_t epoch_images = 0, epoch_skipped = 0;  // the same, for the current epoch
  double wait_seconds = 0;       // time next() spent waiting for workers
  double worker_seconds = 0;     // time workers spent reading, decoding and transforming
  std::vector<SkippedFile> skipped_files;  // each bad file once, with its first error
};

// One batch. images: (B, 3, H, W) float32, or (B, crops, 3, H, W) for a multi-crop pipeline; labels: (B)
// int64. The tensors live in the loader's reusable buffers, which go back to the loader when the last copy
// of this Batch is destroyed: clone the tensors (or copy them to the device) to keep them longer.
struct Batch {
  Tensor images, labels;
  std::vector<int64_t> indices;  // dataset index of each sample (the requested one, before any substitution)
  int64_t epoch = 0, index = 0;
  int64_t size() const { return images.defined() ? images.dim(0) : 0; }
  // `t` (images or labels of this batch, or a view of them) copied to `device` without waiting. The
  // copy reads the loader's (pinned) buffer after this returns, so an event recorded after it makes the
  // buffers' return to the loader wait until the copy is done, whenever and however this batch goes.
  Tensor to_device_async(const Tensor& t, Device device) const;

 private:
  friend class Loader;
  struct Lease;
  std::shared_ptr<Lease> lease_;  // returns the buffers to the loader
};

class Loader {
 public:
  Loader(std::shared_ptr<const ImageFolder> dataset, Pipeline pipeline, LoaderOptions options);
  Loader(const ImageFolder& dataset, Pipeline pipeline, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Begins (or resumes at first_batch) an epoch; stops whatever epoch was running.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  void resume(const LoaderPosition& position) { start_epoch(position.epoch, position.batch); }
  // The next batch of the epoch, or nothing at its end. Throws mpncov::Error (strict mode's bad file, or a
  // worker's failure).
  std::optional<Batch> next();
  // Stops the workers mid-epoch; returns when none is busy. start_epoch() starts again.
  void stop();

  LoaderPosition position() const;
  int64_t batches_per_epoch() const;
  int64_t samples_per_epoch() const;  // this rank's, after drop_last
  // Shape of one batch of full size: (B, 3, H, W) or (B, crops, 3, H, W).
  Shape batch_shape() const;
  LoaderStats stats() const;
  const ImageFolder& dataset() const { return *dataset_; }
  const Pipeline& pipeline() const { return pipeline_; }
  const LoaderOptions& options() const { return options_; }

 private:
  struct Slot;
  struct Shared;
  struct WorkerScratch;
  void worker_main();
  // Takes one sample under the lock and makes it with the lock released; false when there is none to take.
  bool work_one(std::unique_lock<std::mutex>& lock, WorkerScratch& scratch);
  // Writes sample `index` (or its substitute) into row `row` of the slot.
  void make_sample(int64_t index, int64_t epoch, Slot& slot, int64_t row, WorkerScratch& scratch);
  void halt_locked(std::unique_lock<std::mutex>& lock);
  void log(const std::string& message) const;

  std::shared_ptr<const ImageFolder> dataset_;
  Pipeline pipeline_;
  LoaderOptions options_;
  std::shared_ptr<Shared> shared_;  // the state workers and leases share
  std::vector<std::thread> threads_;
  std::unique_ptr<WorkerScratch> inline_scratch_;  // for workers == 0
};

}  // namespace mpncov::data
