#include <algorithm>
#include <cstring>
#include <set>

#include <sys/stat.h>

#include "data/loader.h"
#include "data/presets.h"
#include "tests/data/image_files.h"
#include "tests/helpers.h"

using namespace mpncov;
using namespace mpncov::data;
namespace fs = std::filesystem;

namespace {

// The generated folder, made once per test run: 22 files, 4 of them bad (indices 11-14).
std::shared_ptr<const ImageFolder> test_folder() {
  static std::shared_ptr<const ImageFolder> folder = [] {
    const fs::path root = test::process_temp_dir("data_loader_folder");
    test::make_test_folder(root);
    return std::make_shared<const ImageFolder>(root.string());
  }();
  return folder;
}

struct Copy {
  std::vector<float> images;
  std::vector<int64_t> labels, indices;
  int64_t epoch, index;
  bool operator==(const Copy& o) const {
    return images == o.images && labels == o.labels && indices == o.indices && epoch == o.epoch && index == o.index;
  }
};

Copy copy_of(const Batch& b) {
  Copy c;
  const float* p = b.images.data<float>();
  c.images.assign(p, p + b.images.numel());
  const int64_t* l = b.labels.data<int64_t>();
  c.labels.assign(l, l + b.labels.numel());
  c.indices = b.indices;
  c.epoch = b.epoch;
  c.index = b.index;
  return c;
}

std::vector<Copy> run_epoch(Loader& loader, int64_t epoch) {
  std::vector<Copy> out;
  loader.start_epoch(epoch);
  while (std::optional<Batch> b = loader.next()) out.push_back(copy_of(*b));
  return out;
}

LoaderOptions options(int workers, int64_t batch = 4) {
  LoaderOptions o;
  o.batch_size = batch;
  o.workers = workers;
  o.seed = 42;
  o.log = [](const std::string&) {};
  return o;
}

// Every kind of draw: a random resized crop, a padded random crop, a flip, ColorJitter's order and factors.
Pipeline small_train() {
  ColorJitterRanges jitter;
  jitter.range = {std::array<double, 2>{0.6, 1.4}, std::array<double, 2>{0.6, 1.4}, std::nullopt,
                  std::array<double, 2>{-0.1, 0.1}};
  return Pipeline().random_resized_crop(52).random_crop(48, 48, {2, 2, 2, 2}).random_hflip().color_jitter(jitter);
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("data sampler: shuffles by seed and epoch and shards like DistributedSampler") {
  SamplerOptions o;
  o.seed = 3;
  const std::vector<int64_t> a = epoch_order(100, 0, o), b = epoch_order(100, 0, o), c = epoch_order(100, 1, o);
  CHECK(a == b);
  CHECK(a != c);
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 100; ++i) CHECK(sorted[i] == i);
  o.shuffle = false;
  CHECK(epoch_order(5, 7, o) == std::vector<int64_t>{0, 1, 2, 3, 4});
  o.world_size = 3;
  std::multiset<int64_t> all;
  for (int rank = 0; rank < 3; ++rank) {
    o.rank = rank;
    const std::vector<int64_t> mine = epoch_order(10, 0, o);
    CHECK(mine.size() == 4);
    all.insert(mine.begin(), mine.end());
  }
  CHECK(all.size() == 12);
  for (int64_t i = 0; i < 10; ++i) CHECK(all.count(i) >= 1);
  CHECK(all.count(0) == 2);  // padding wraps around to the start
  o.rank = 3;
  CHECK_THROWS(epoch_order(10, 0, o));
}

TEST_CASE("data loader: batches are identical with 0 or 1 or 3 workers") {
  auto folder = test_folder();
  std::vector<std::vector<Copy>> runs;
  for (int workers : {1, 3, 0}) {
    Loader loader(folder, small_train(), options(workers));
    CHECK(loader.batches_per_epoch() == 6);
    std::vector<Copy> both = run_epoch(loader, 0);
    for (Copy& c : run_epoch(loader, 1)) both.push_back(std::move(c));
    runs.push_back(std::move(both));
  }
  REQUIRE(runs[0].size() == 12);
  CHECK(runs[0] == runs[1]);
  CHECK(runs[0] == runs[2]);
  CHECK(runs[0][0].images.size() == 4 * 3 * 48 * 48);
  CHECK(runs[0][5].labels.size() == 2);  // 22 = 5 x 4 + 2
  CHECK(runs[0][0].images != runs[0][6].images);  // another epoch, another order and other crops
  // Another seed, other batches.
  LoaderOptions o = options(2);
  o.seed = 43;
  Loader other(folder, small_train(), o);
  CHECK(run_epoch(other, 0)[0].images != runs[0][0].images);
}

TEST_CASE("data loader: bad files are replaced by the next good one and counted and named") {
  auto folder = test_folder();
  std::vector<std::string> log;
  LoaderOptions o = options(2);
  o.shuffle = false;
  o.log = [&](const std::string& m) { log.push_back(m); };
  Loader loader(folder, Pipeline().resize(40, 40), o);
  for (int epoch = 0; epoch < 2; ++epoch) {
    const std::vector<Copy> batches = run_epoch(loader, epoch);
    // Positions 11-14 are the bad files; each is replaced by index 15 (dog/d09.jpg), label 1.
    const Copy& b3 = batches[3];  // positions 12-15
    CHECK(b3.indices == std::vector<int64_t>{12, 13, 14, 15});
    CHECK(b3.labels == std::vector<int64_t>{1, 1, 1, 1});
    const size_t n = 3 * 40 * 40;
    for (size_t k = 0; k < 3; ++k)
      CHECK(std::equal(b3.images.begin() + k * n, b3.images.begin() + (k + 1) * n, b3.images.begin() + 3 * n));
    CHECK(loader.stats().epoch_skipped == 4);
    CHECK(loader.stats().epoch_images == 22);
  }
  const LoaderStats stats = loader.stats();
  CHECK(stats.files_skipped == 8);
  CHECK(stats.images_decoded == 44);
  CHECK(stats.batches == 12);
  REQUIRE(stats.skipped_files.size() == 4);
  std::set<std::string> names;
  for (const SkippedFile& f : stats.skipped_files) names.insert(fs::path(f.path).filename().string());
  CHECK(names == std::set<std::string>{"d05_truncated.jpg", "d06_empty.jpg", "d07_text.jpg", "d08_truncated.png"});
  // One warning per bad file (not per epoch), and one summary line per epoch.
  int warnings = 0, summaries = 0;
  for (const std::string& line : log) {
    warnings += line.find("warning: skipping") != std::string::npos;
    if (line.find("bad files skipped") != std::string::npos) {
      ++summaries;
      // Epochs 0 and 1 of start_epoch are the run's epochs 1 and 2, as its log counts them.
      CHECK(line.rfind(str("loader: epoch ", summaries, ": "), 0) == 0);
      CHECK(line.find("22 images in 6 batches, 4 bad files skipped") != std::string::npos);
      CHECK(line.find("d05_truncated.jpg") != std::string::npos);
    }
  }
  CHECK(warnings == 4);
  CHECK(summaries == 2);
}

TEST_CASE("data loader: a file that cannot be read is named once in its warning") {
  const fs::path root = test::process_temp_dir("data_loader_unreadable");
  fs::create_directories(root / "a");
  test::write_bytes(root / "a/good.jpg", test::encode_jpeg(test::synthetic_image(8, 8, 1)));
  REQUIRE(::mkfifo((root / "a/pipe.jpg").c_str(), 0600) == 0);  // listed, but not a regular file
  std::vector<std::string> log;
  LoaderOptions o = options(0);
  o.log = [&](const std::string& m) { log.push_back(m); };
  Loader loader(std::make_shared<const ImageFolder>(root.string()), Pipeline().resize(8, 8), o);
  run_epoch(loader, 0);
  const std::string path = (root / "a/pipe.jpg").string();
  const auto warning = std::find_if(log.begin(), log.end(), [](const std::string& line) {
    return line.find("warning: skipping") != std::string::npos;
  });
  REQUIRE(warning != log.end());
  CHECK(*warning == "loader: warning: skipping " + path + ": not a regular file");
}

TEST_CASE("data loader: drop_last warns when it leaves no batch, an empty share does not") {
  const fs::path root = test::process_temp_dir("data_loader_no_batch");
  fs::create_directories(root / "a");
  for (const char* name : {"1.jpg", "2.jpg"})
    test::write_bytes(root / "a" / name, test::encode_jpeg(test::synthetic_image(8, 8, 1)));
  const auto warnings = [&](bool drop_last, int rank, int world_size) {
    std::vector<std::string> log;
    LoaderOptions o = options(0);
    o.batch_size = 4;
    o.drop_last = drop_last;
    o.rank = rank;
    o.world_size = world_size;
    o.pad_shards = false;
    o.log = [&](const std::string& m) { log.push_back(m); };
    Loader loader(std::make_shared<const ImageFolder>(root.string()), Pipeline().resize(8, 8), o);
    loader.start_epoch(0);
    return std::count_if(log.begin(), log.end(),
                         [](const std::string& line) { return line.find("drop_last leaves no batch") != std::string::npos; });
  };
  CHECK(warnings(true, 0, 1) == 1);   // 2 images, batch 4
  CHECK(warnings(false, 2, 3) == 0);  // validation's third process: no image of its own
  CHECK(warnings(false, 0, 1) == 0);
}

TEST_CASE("data loader: strict mode stops at the first bad file with its path") {
  LoaderOptions o = options(2);
  o.shuffle = false;
  o.strict = true;
  Loader loader(test_folder(), Pipeline().resize(40, 40), o);
  loader.start_epoch(0);
  CHECK(loader.next().has_value());
  CHECK(loader.next().has_value());
  CHECK_THROWS_WITH(loader.next(), doctest::Contains("d05_truncated.jpg"));
}

TEST_CASE("data loader: a transform that cannot apply to an image is an error naming the file") {
  const fs::path root = test::process_temp_dir("data_loader_small_image");
  test::write_bytes(root / "a/big.png", test::encode_png(test::synthetic_image(20, 20, 1)));
  test::write_bytes(root / "a/small one.png", test::encode_png(test::synthetic_image(8, 6, 2)));
  for (int workers : {0, 2}) {
    LoaderOptions o = options(workers, 1);
    o.shuffle = false;
    Loader loader(ImageFolder(root.string()), Pipeline().random_crop(16, 16), o);
    loader.start_epoch(0);
    CHECK(loader.next().has_value());
    std::string error;
    try {
      loader.next();
    } catch (const Error& e) {
      error = e.what();
    }
    CAPTURE(error);
    CHECK(error.find("small one.png") != std::string::npos);
    CHECK(error.find("larger than the 6x8 image") != std::string::npos);
  }
}

TEST_CASE("data loader: drop_last and position and stop and resume") {
  auto folder = test_folder();
  SUBCASE("drop_last") {
    LoaderOptions o = options(2);
    o.drop_last = true;
    Loader loader(folder, small_train(), o);
    CHECK(loader.batches_per_epoch() == 5);
    CHECK(loader.samples_per_epoch() == 20);
    const std::vector<Copy> batches = run_epoch(loader, 0);
    CHECK(batches.size() == 5);
    for (const Copy& b : batches) CHECK(b.labels.size() == 4);
  }
  SUBCASE("a resumed run sees the same remaining batches") {
    Loader full(folder, small_train(), options(3));
    const std::vector<Copy> expected = run_epoch(full, 2);
    LoaderPosition saved;
    {
      Loader first(folder, small_train(), options(2));
      first.start_epoch(2);
      for (int i = 0; i < 2; ++i) CHECK(copy_of(*first.next()) == expected[i]);
      saved = first.position();
      first.stop();  // mid-epoch, with batches in flight
      CHECK(first.position().batch == 2);
    }
    CHECK(saved.epoch == 2);
    CHECK(saved.batch == 2);
    Loader second(folder, small_train(), options(1));
    second.resume(saved);
    for (size_t i = 2; i < expected.size(); ++i) CHECK(copy_of(*second.next()) == expected[i]);
    CHECK_FALSE(second.next().has_value());
    CHECK(second.position().batch == 6);
  }
  SUBCASE("restarting an epoch mid-way and destroying a busy loader are clean") {
    Loader loader(folder, small_train(), options(3));
    loader.start_epoch(0);
    (void)loader.next();
    loader.start_epoch(1);
    std::optional<Batch> b = loader.next();
    CHECK(b->epoch == 1);
    CHECK(b->index == 0);
  }
}

TEST_CASE("data loader: held batches stay valid - sharding - multi-crop shapes") {
  auto folder = test_folder();
  SUBCASE("holding every batch of an epoch") {
    Loader loader(folder, small_train(), options(2));
    loader.start_epoch(0);
    std::vector<Batch> held;
    while (std::optional<Batch> b = loader.next()) held.push_back(std::move(*b));
    Loader again(folder, small_train(), options(1));
    const std::vector<Copy> expected = run_epoch(again, 0);
    REQUIRE(held.size() == expected.size());
    for (size_t i = 0; i < held.size(); ++i) CHECK(copy_of(held[i]) == expected[i]);
  }
  SUBCASE("ranks split the epoch") {
    std::multiset<int64_t> seen;
    for (int rank = 0; rank < 2; ++rank) {
      LoaderOptions o = options(2, 5);
      o.rank = rank;
      o.world_size = 2;
      Loader loader(folder, small_train(), o);
      CHECK(loader.samples_per_epoch() == 11);
      for (const Copy& c : run_epoch(loader, 4)) seen.insert(c.indices.begin(), c.indices.end());
    }
    CHECK(seen.size() == 22);
    for (int64_t i = 0; i < 22; ++i) CHECK(seen.count(i) == 1);
  }
  SUBCASE("two-crop and ten-crop batches") {
    LoaderOptions o = options(2, 3);
    o.shuffle = false;
    Loader cars(folder, preset("cars", Stage::Evaluate), o);
    CHECK(cars.batch_shape() == Shape{3, 2, 3, 448, 448});
    cars.start_epoch(0);
    std::optional<Batch> b = cars.next();
    CHECK(b->images.shape() == Shape{3, 2, 3, 448, 448});
    CHECK(b->labels.shape() == Shape{3});
    CHECK(b->labels.dtype() == DType::I64);
    // The second crop of a 448x448 resize is the mirror of the first.
    const float* p = b->images.data<float>();
    CHECK(p[0] == p[448 * 448 * 3 + 447]);
    Loader imagenet(folder, preset("imagenet", Stage::Evaluate), o);
    CHECK(imagenet.batch_shape() == Shape{3, 10, 3, 224, 224});
    cars.stop();
  }
}

}  // TEST_SUITE
