#include "data/loader.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>

#include "core/cuda_backend.h"
#include "core/error.h"
#include "data/file.h"

namespace mpncov::data {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
constexpr int64_t kMaxSubstitutes = 1000;  // consecutive bad files before the loader gives up
constexpr size_t kSummaryNames = 5;        // bad files named in an epoch's summary line
}  // namespace

namespace {

// The GPU check's switch MPNCOV_CHECK_BATCH_COPIES=1 (docs/gpu.md): each device copy of a batch is
// checked when the batch goes (after its copies finished, before its slot is refilled): its bytes, read
// back, against the checksum the host buffer had when the copy was queued; printed with the allocator's
// counters.
bool check_copies() {
  static const bool on = [] {
    const char* v = std::getenv("MPNCOV_CHECK_BATCH_COPIES");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}

// FNV-1a of a (contiguous) tensor's bytes, read on the host (a device tensor is copied back first).
uint64_t checksum(const Tensor& t) {
  const Tensor h = t.device().is_cpu() ? t : t.to(Device::cpu());
  const auto* p = static_cast<const unsigned char*>(h.raw());
  uint64_t hash = 1469598103934665603ull;
  for (size_t i = 0; i < h.nbytes(); ++i) hash = (hash ^ p[i]) * 1099511628211ull;
  return hash;
}

}  // namespace

// A batch's hold on its slot: the slot goes back to the workers when the last copy of the Batch goes,
// after every asynchronous copy out of it has finished.
struct Batch::Lease {
  struct Copy {
    void* event;
    Tensor device_copy;  // kept for the check only
    uint64_t host_sum = 0;
  };
  Lease(std::function<void()> release, int64_t epoch, int64_t index)
      : release(std::move(release)), epoch(epoch), index(index) {}
  ~Lease() {
#ifdef MPNCOV_HAS_CUDA
    for (const Copy& c : copies) cuda::finish_event(c.event);
#endif
    if (check_copies()) report();
    release();
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  void report() const noexcept {
    try {
      for (const Copy& c : copies) {
        const uint64_t device_sum = checksum(c.device_copy);
        const AllocatorStats a = allocator_stats(c.device_copy.device());
        std::printf("RESULT batch_copy epoch=%lld batch=%lld numel=%lld host=%016llx device=%016llx match=%d "
                    "device_mallocs=%llu in_use=%llu\n",
                    static_cast<long long>(epoch), static_cast<long long>(index),
                    static_cast<long long>(c.device_copy.numel()), static_cast<unsigned long long>(c.host_sum),
                    static_cast<unsigned long long>(device_sum), device_sum == c.host_sum,
                    static_cast<unsigned long long>(a.device_mallocs), static_cast<unsigned long long>(a.in_use_bytes));
      }
      std::fflush(stdout);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "mpncov: batch copy check failed: %s\n", e.what());
    }
  }

  std::function<void()> release;
  int64_t epoch, index;
  std::mutex mutex;
  std::vector<Copy> copies;
};

Tensor Batch::to_device_async(const Tensor& t, Device device) const {
  Tensor out = t.to_async(device);  // refuses a CUDA device in a build without CUDA
#ifdef MPNCOV_HAS_CUDA
  if (lease_ && device.is_cuda() && t.device().is_cpu()) {
    Lease::Copy c{cuda::record_event(device.index), Tensor(), 0};
    if (check_copies()) {
      c.device_copy = out;
      c.host_sum = checksum(t);  // the host buffer now, as the copy reads it
    }
    std::lock_guard<std::mutex> lock(lease_->mutex);
    lease_->copies.push_back(std::move(c));
  }
#endif
  return out;
}

struct Loader::Slot {
  Tensor images, labels;
  std::vector<int64_t> indices;
  int64_t batch = -1, size = 0, filled = 0;
  std::string error;  // the first failure among its samples (strict mode's bad file, or a bug)
};

struct Loader::Shared {
  std::mutex mutex;
  std::mutex log_mutex;  // log lines come from workers and next(): one at a time
  std::condition_variable work_cv, ready_cv, idle_cv;
  std::vector<std::unique_ptr<Slot>> slots;
  std::vector<int> free_slots;
  std::map<int64_t, int> filling;  // batch -> slot, for batches being filled or ready

  bool running = false, quitting = false;
  std::string fatal;  // a worker failed outside any sample (e.g. no memory for a batch): next() throws it
  int64_t epoch = 0, num_batches = 0, next_batch = 0, next_position = 0, end_position = 0;
  std::vector<int64_t> order;
  int busy = 0;  // samples being made right now

  LoaderStats stats;
  std::set<std::string> warned;
  std::vector<std::string> epoch_bad_names;
  bool summary_logged = false;

  void release(int slot) {
    std::lock_guard<std::mutex> lock(mutex);
    free_slots.push_back(slot);
    work_cv.notify_all();
  }
};

struct Loader::WorkerScratch {
  std::vector<uint8_t> bytes;
  PipelineScratch pipeline;
};

Loader::Loader(const ImageFolder& dataset, Pipeline pipeline, LoaderOptions options)
    : Loader(std::make_shared<const ImageFolder>(dataset), std::move(pipeline), std::move(options)) {}

Loader::Loader(std::shared_ptr<const ImageFolder> dataset, Pipeline pipeline, LoaderOptions options)
    : dataset_(std::move(dataset)), pipeline_(std::move(pipeline)), options_(std::move(options)),
      shared_(std::make_shared<Shared>()) {
  MPNCOV_CHECK(dataset_ && dataset_->size() > 0, "loader over an empty dataset");
  MPNCOV_CHECK(options_.batch_size > 0, "loader batch size must be positive, got ", options_.batch_size);
  MPNCOV_CHECK(options_.workers >= 0, "loader workers must be >= 0, got ", options_.workers);
  MPNCOV_CHECK(options_.prefetch_batches >= 1, "loader prefetch_batches must be >= 1");
  MPNCOV_CHECK(options_.world_size >= 1 && options_.rank >= 0 && options_.rank < options_.world_size,
               "loader rank ", options_.rank, " is not in [0, world size ", options_.world_size, ")");
  (void)pipeline_.sample_numel();  // throws now if the output size is not fixed
  if (options_.workers == 0) inline_scratch_ = std::make_unique<WorkerScratch>();
  for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { worker_main(); });
}

Loader::~Loader() {
  {
    std::unique_lock<std::mutex> lock(shared_->mutex);
    shared_->quitting = true;
    shared_->running = false;
    shared_->work_cv.notify_all();
  }
  for (std::thread& t : threads_) t.join();
}

void Loader::log(const std::string& message) const {
  std::lock_guard<std::mutex> lock(shared_->log_mutex);
  if (options_.log) options_.log(message);
  else std::cerr << message << std::endl;
}

int64_t Loader::samples_per_epoch() const {
  const int64_t per_rank = shard_size(dataset_->size(), {options_.shuffle, options_.seed, options_.rank,
                                                          options_.world_size, options_.pad_shards});
  return options_.drop_last ? per_rank / options_.batch_size * options_.batch_size : per_rank;
}

int64_t Loader::batches_per_epoch() const {
  return (samples_per_epoch() + options_.batch_size - 1) / options_.batch_size;
}

Shape Loader::batch_shape() const {
  const Size s = pipeline_.output_size();
  if (pipeline_.crops() == 1) return Shape{options_.batch_size, 3, s.height, s.width};
  return Shape{options_.batch_size, pipeline_.crops(), 3, s.height, s.width};
}

LoaderPosition Loader::position() const {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  return LoaderPosition{shared_->epoch, shared_->next_batch};
}

LoaderStats Loader::stats() const {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  return shared_->stats;
}

void Loader::halt_locked(std::unique_lock<std::mutex>& lock) {
  Shared& s = *shared_;
  s.running = false;
  s.idle_cv.wait(lock, [&] { return s.busy == 0; });
  for (const auto& [batch, slot] : s.filling) s.free_slots.push_back(slot);
  s.filling.clear();
}

void Loader::stop() {
  std::unique_lock<std::mutex> lock(shared_->mutex);
  halt_locked(lock);
}

void Loader::start_epoch(int64_t epoch, int64_t first_batch) {
  MPNCOV_CHECK(epoch >= 0, "negative epoch ", epoch);
  SamplerOptions sampler{options_.shuffle, options_.seed, options_.rank, options_.world_size, options_.pad_shards};
  std::vector<int64_t> order = epoch_order(dataset_->size(), epoch, sampler);
  const int64_t samples = samples_per_epoch(), batches = batches_per_epoch();
  MPNCOV_CHECK(first_batch >= 0 && first_batch <= batches, "loader position: batch ", first_batch,
               " is not in [0, ", batches, "] for epoch ", epoch);
  if (batches == 0 && options_.drop_last && !order.empty())  // (a process's empty share is no surprise)
    log(str("loader: warning: drop_last leaves no batch (", order.size(), " samples, batch ", options_.batch_size,
            ")"));
  std::unique_lock<std::mutex> lock(shared_->mutex);
  Shared& s = *shared_;
  halt_locked(lock);
  s.order = std::move(order);
  s.epoch = epoch;
  s.num_batches = batches;
  s.next_batch = first_batch;
  s.next_position = first_batch * options_.batch_size;
  s.end_position = samples;
  s.stats.epoch_images = s.stats.epoch_skipped = 0;
  s.epoch_bad_names.clear();
  s.summary_logged = false;
  s.fatal.clear();
  s.running = true;
  s.work_cv.notify_all();
}

void Loader::worker_main() {
  WorkerScratch scratch;
  Shared& s = *shared_;
  std::unique_lock<std::mutex> lock(s.mutex);
  while (!s.quitting) {
    try {
      if (!work_one(lock, scratch)) s.work_cv.wait(lock);
    } catch (const std::exception& e) {
      if (!lock.owns_lock()) lock.lock();
      if (s.fatal.empty()) s.fatal = str("loader worker: ", e.what());
      s.running = false;
      s.ready_cv.notify_all();
    }
  }
}

bool Loader::work_one(std::unique_lock<std::mutex>& lock, WorkerScratch& scratch) {
  Shared& s = *shared_;
  if (!s.running || s.next_position >= s.end_position) return false;
  const int64_t B = options_.batch_size;
  const int64_t batch = s.next_position / B;
  auto it = s.filling.find(batch);
  if (it == s.filling.end()) {
    if (batch >= s.next_batch + options_.prefetch_batches) return false;  // far enough ahead
    int id;
    if (s.free_slots.empty()) {
      auto slot = std::make_unique<Slot>();
      Shape labels_shape{B};
      slot->images = options_.pin_memory ? Tensor::empty_pinned(batch_shape(), DType::F32)
                                         : Tensor::empty(batch_shape(), DType::F32);
      slot->labels = options_.pin_memory ? Tensor::empty_pinned(labels_shape, DType::I64)
                                         : Tensor::empty(labels_shape, DType::I64);
      s.slots.push_back(std::move(slot));
      id = static_cast<int>(s.slots.size()) - 1;
    } else {
      id = s.free_slots.back();
      s.free_slots.pop_back();
    }
    Slot& slot = *s.slots[id];
    slot.batch = batch;
    slot.size = std::min(B, s.end_position - batch * B);
    slot.filled = 0;
    slot.indices.assign(static_cast<size_t>(slot.size), -1);
    slot.error.clear();
    it = s.filling.emplace(batch, id).first;
  }
  Slot& slot = *s.slots[it->second];
  const int64_t position = s.next_position++;
  const int64_t index = s.order[static_cast<size_t>(position)];
  const int64_t epoch = s.epoch;
  ++s.busy;
  lock.unlock();

  std::string error;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    make_sample(index, epoch, slot, position - batch * B, scratch);
  } catch (const std::exception& e) {
    error = e.what();
  }
  const double took = seconds_since(t0);

  lock.lock();
  s.stats.worker_seconds += took;
  if (!error.empty() && slot.error.empty()) slot.error = error;
  if (error.empty()) {
    ++s.stats.images_decoded;
    ++s.stats.epoch_images;
  }
  if (++slot.filled == slot.size) s.ready_cv.notify_all();
  if (--s.busy == 0) s.idle_cv.notify_all();
  return true;
}

void Loader::make_sample(int64_t index, int64_t epoch, Slot& slot, int64_t row, WorkerScratch& scratch) {
  const int64_t n = dataset_->size();
  float* out = slot.images.data<float>() + row * pipeline_.sample_numel();
  int64_t candidate = index;
  for (int64_t attempt = 0;; ++attempt) {
    const Sample& sample = (*dataset_)[candidate];
    std::string reason;
    try {
      read_file(sample.path, scratch.bytes);
    } catch (const Error& e) {
      reason = e.what();
      const std::string named = sample.path + ": ";  // the messages below name the file themselves
      if (reason.compare(0, named.size(), named) == 0) reason.erase(0, named.size());
    }
    if (reason.empty()) {
      try {
        SampleRng rng(options_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index));
        pipeline_.run(scratch.bytes.data(), scratch.bytes.size(), rng, options_.decode, out, scratch.pipeline);
        slot.labels.data<int64_t>()[row] = sample.label;
        slot.indices[static_cast<size_t>(row)] = index;
        return;
      } catch (const DecodeError& e) {
        reason = e.what();
      } catch (const Error& e) {
        // The file decodes but a step cannot apply to it (a crop larger than the image): not a bad file
        // to skip but an error, which must say which image.
        throw Error(str(sample.path, ": ", e.what()));
      }
    }
    // A bad file: count it, name it once, then stop (strict) or try the next dataset index.
    bool first_time;
    {
      std::lock_guard<std::mutex> lock(shared_->mutex);
      Shared& s = *shared_;
      if (attempt == 0) {  // counted once per sample replaced, not per substitute tried
        ++s.stats.files_skipped;
        ++s.stats.epoch_skipped;
        if (s.epoch_bad_names.size() < kSummaryNames) s.epoch_bad_names.push_back(sample.path);
      }
      first_time = s.warned.insert(sample.path).second;
      if (first_time) s.stats.skipped_files.push_back(SkippedFile{sample.path, reason});
    }
    if (options_.strict) throw Error(str("bad image file ", sample.path, ": ", reason, " (strict mode)"));
    if (first_time) log(str("loader: warning: skipping ", sample.path, ": ", reason));
    MPNCOV_CHECK(attempt + 1 < std::min(n, kMaxSubstitutes), "loader: ", attempt + 1,
                 " consecutive files from ", (*dataset_)[index].path, " cannot be decoded");
    candidate = (candidate + 1) % n;
  }
}

std::optional<Batch> Loader::next() {
  Shared& s = *shared_;
  std::unique_lock<std::mutex> lock(s.mutex);
  auto ready = [&] {
    if (!s.fatal.empty()) return true;
    auto it = s.filling.find(s.next_batch);
    return it != s.filling.end() && s.slots[it->second]->filled == s.slots[it->second]->size;
  };
  if (!s.fatal.empty()) throw Error(s.fatal);
  if (!s.running || s.next_batch >= s.num_batches) {
    if (s.running && !s.summary_logged) {
      s.summary_logged = true;
      std::string names;
      for (const std::string& p : s.epoch_bad_names) names += (names.empty() ? ": " : ", ") + p;
      if (s.stats.epoch_skipped > static_cast<int64_t>(s.epoch_bad_names.size())) names += ", ...";
      // Epochs counted from 1, as the run's own log lines count them.
      const std::string line = str("loader: epoch ", s.epoch + 1, ": ", s.stats.epoch_images, " images in ",
                                   s.num_batches, " batches, ", s.stats.epoch_skipped, " bad files skipped", names);
      s.running = false;
      lock.unlock();
      log(line);
    }
    return std::nullopt;
  }
  const auto t0 = std::chrono::steady_clock::now();
  while (!ready()) {
    if (options_.workers == 0) {
      if (!work_one(lock, *inline_scratch_)) MPNCOV_FAIL("internal error: loader has nothing to do");
    } else {
      s.ready_cv.wait(lock);
    }
  }
  s.stats.wait_seconds += seconds_since(t0);
  if (!s.fatal.empty()) throw Error(s.fatal);
  const int id = s.filling.at(s.next_batch);
  if (!s.slots[id]->error.empty()) {  // the loader stops here; start_epoch() clears it
    const std::string error = s.slots[id]->error;
    halt_locked(lock);
    throw Error(error);
  }
  s.filling.erase(s.next_batch);
  Slot& slot = *s.slots[id];
  Batch batch;
  batch.images = slot.size == options_.batch_size ? slot.images : slot.images.slice(0, slot.size);
  batch.labels = slot.size == options_.batch_size ? slot.labels : slot.labels.slice(0, slot.size);
  batch.indices = slot.indices;
  batch.epoch = s.epoch;
  batch.index = s.next_batch;
  batch.lease_ =
      std::make_shared<Batch::Lease>([shared = shared_, id] { shared->release(id); }, s.epoch, s.next_batch);
  ++s.next_batch;
  ++s.stats.batches;
  s.work_cv.notify_all();
  return batch;
}

}  // namespace mpncov::data
