// Loader benchmark: images per second for decoding alone, for the ImageNet train and val transforms on
// one thread, and for the whole loader with 1 and 2 workers, each against torchvision on the same files
// (bench/loader_torchvision.py), interleaved (ours, torchvision, ours, torchvision) and reported as medians
// and ratios. Results go in bench/RESULTS.md.
//
// usage: loader_bench [--images DIR] [--count N] [--seconds S] [--rounds R] [--workers 1,2] [--no-torch]
//   Without --images, N photographs (default 512) are made once in /tmp/mpncov-loader-bench by
//   bench/make_loader_images.py (needs mate-backgrounds).
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "data/decode.h"
#include "data/file.h"
#include "data/image_folder.h"
#include "data/loader.h"
#include "data/presets.h"

using namespace mpncov;
using namespace mpncov::data;
using Clock = std::chrono::steady_clock;

namespace {

std::string run(const std::string& command) {
  std::string out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) throw Error("cannot run " + command);
  std::array<char, 4096> buf;
  while (fgets(buf.data(), static_cast<int>(buf.size()), pipe)) out += buf.data();
  if (pclose(pipe) != 0) throw Error("failed: " + command + "\n" + out);
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Images per second of work(i) over the files, repeated for at least `seconds`.
template <typename Work>
double timed(size_t files, double seconds, Work work) {
  for (size_t i = 0; i < std::min<size_t>(files, 8); ++i) work(i);  // warm up
  const auto t0 = Clock::now();
  size_t done = 0;
  double elapsed = 0;
  while (elapsed < seconds) {
    for (size_t i = 0; i < files; ++i) work(i);
    done += files;
    elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  return static_cast<double>(done) / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  std::string images, workers_list = "1,2";
  int count = 512, rounds = 2;
  double seconds = 3.0;
  bool torch = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw Error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--images") images = value();
    else if (a == "--count") count = std::stoi(value());
    else if (a == "--seconds") seconds = std::stod(value());
    else if (a == "--rounds") rounds = std::stoi(value());
    else if (a == "--workers") workers_list = value();
    else if (a == "--no-torch") torch = false;
    else {
      std::cerr << "usage: loader_bench [--images DIR] [--count N] [--seconds S] [--rounds R] [--workers 1,2] "
                   "[--no-torch]\n";
      return 2;
    }
  }
  const std::string src = MPNCOV_SOURCE_DIR;
  if (images.empty()) {
    images = "/tmp/mpncov-loader-bench";
    if (!std::filesystem::exists(images))
      std::cout << run("/usr/bin/python3 " + src + "/bench/make_loader_images.py " + images + " " +
                       std::to_string(count));
  }
  ImageFolder folder(images);
  size_t total_bytes = 0;
  for (const Sample& s : folder.samples()) {
    std::vector<uint8_t> b;
    read_file(s.path, b);
    total_bytes += b.size();
  }
  std::printf("%lld images in %s, %.0f KB on average\n", static_cast<long long>(folder.size()), images.c_str(),
              total_bytes / 1024.0 / static_cast<double>(folder.size()));

  auto torch_rate = [&](const std::string& mode, int workers) {
    const std::string out = run("/usr/bin/python3 " + src + "/bench/loader_torchvision.py " + images + " " + mode +
                                " " + std::to_string(workers) + " " + std::to_string(seconds));
    return std::stod(out.substr(out.rfind(' ') + 1));
  };

  const size_t n = static_cast<size_t>(folder.size());
  std::vector<uint8_t> bytes;
  Decoded decoded;
  const Pipeline train = preset("imagenet", Stage::Train), val = preset("imagenet", Stage::Val);
  std::vector<float> out(static_cast<size_t>(train.sample_numel()));
  PipelineScratch scratch;
  auto ours_single = [&](const std::string& mode, const DecodeOptions& options) {
    const Pipeline& p = mode == "val" ? val : train;
    uint64_t counter = 0;
    return timed(n, seconds, [&](size_t i) {
      read_file(folder[static_cast<int64_t>(i)].path, bytes);
      if (mode == "decode") {
        decode(bytes.data(), bytes.size(), decoded);
      } else {
        SampleRng rng(1, 0, counter++);
        p.run(bytes.data(), bytes.size(), rng, options, out.data(), scratch);
      }
    });
  };
  auto ours_loader = [&](int workers) {
    LoaderOptions o;
    o.batch_size = 64;
    o.workers = workers;
    o.drop_last = true;
    o.seed = 1;
    o.log = [](const std::string&) {};
    Loader loader(folder, train, o);
    int64_t done = 0, epoch = 0;
    Clock::time_point t0;
    bool started = false;
    double elapsed = 0;
    while (elapsed < seconds) {
      loader.start_epoch(epoch++);
      while (std::optional<Batch> b = loader.next()) {
        if (!started) {  // from the first batch on, as for torchvision
          started = true;
          t0 = Clock::now();
          continue;
        }
        done += b->size();
      }
      elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    }
    return static_cast<double>(done) / elapsed;
  };

  struct Row {
    std::string name;
    std::vector<double> ours, theirs;
  };
  std::vector<Row> rows;
  const DecodeOptions fast, exact{false, false, 2.0};
  for (int r = 0; r < rounds; ++r) {
    auto add = [&](const std::string& name, double ours, double theirs) {
      auto it = std::find_if(rows.begin(), rows.end(), [&](const Row& row) { return row.name == name; });
      if (it == rows.end()) it = rows.insert(rows.end(), Row{name, {}, {}});
      it->ours.push_back(ours);
      if (theirs > 0) it->theirs.push_back(theirs);
    };
    add("decode only, 1 thread", ours_single("decode", fast), torch ? torch_rate("decode", 1) : 0);
    add("train transform, 1 thread", ours_single("train", fast), torch ? torch_rate("train", 1) : 0);
    add("train transform, 1 thread, exact decode", ours_single("train", exact), 0);
    add("val transform, 1 thread", ours_single("val", fast), torch ? torch_rate("val", 1) : 0);
    for (size_t pos = 0; pos < workers_list.size();) {
      const size_t comma = workers_list.find(',', pos);
      const int w = std::stoi(workers_list.substr(pos, comma - pos));
      add("loader, train, batch 64, " + std::to_string(w) + " worker" + (w > 1 ? "s" : ""), ours_loader(w),
          torch ? torch_rate("loader", w) : 0);
      pos = comma == std::string::npos ? workers_list.size() : comma + 1;
    }
  }
  std::printf("\n| images/s (median of %d) | mpncov | torchvision | ratio |\n|---|---|---|---|\n", rounds);
  for (const Row& row : rows) {
    const double o = median(row.ours), t = median(row.theirs);
    if (t > 0) std::printf("| %s | %.0f | %.0f | %.2fx |\n", row.name.c_str(), o, t, o / t);
    else std::printf("| %s | %.0f | | |\n", row.name.c_str(), o);
  }
  return 0;
}
