#include "train/run_folder.h"

#include <filesystem>

#include "core/error.h"

namespace mpncov {

namespace fs = std::filesystem;

const std::vector<std::string>& run_files() {
  static const std::vector<std::string> files = {
      "log.txt",    "config.yaml", "metrics.csv",      "iterations.csv",  "curves.svg",
      "net.dot",    "classes.txt", "last.safetensors", "best.safetensors", "failed.safetensors"};
  return files;
}

namespace {

bool is_epoch_checkpoint(const std::string& name) {
  return name.rfind("epoch-", 0) == 0 && name.size() > 17 && name.compare(name.size() - 12, 12, ".safetensors") == 0;
}

}  // namespace

void prepare_run_folder(const std::string& out, bool resume, bool force, const std::string& start_from) {
  if (!fs::is_directory(out)) {
    std::error_code ec;  // created here, so a folder that cannot be is named as the run folder
    fs::create_directories(out, ec);
    if (ec) throw Error(str("cannot create the run folder ", out, " (run.out): ", ec.message()));
    return;
  }
  if (resume) return;
  std::vector<fs::path> found;
  for (const std::string& f : run_files())
    if (fs::exists(fs::path(out) / f)) found.push_back(fs::path(out) / f);
  for (const auto& entry : fs::directory_iterator(out))
    if (is_epoch_checkpoint(entry.path().filename().string())) found.push_back(entry.path());
  if (found.empty()) return;
  if (!force) {
    std::string other = out;  // runs/x/ -> runs/x-2, not runs/x/-2 (a folder inside this one)
    while (other.size() > 1 && other.back() == '/') other.pop_back();
    throw Error(str("the run folder ", out, " already holds a run (", found.front().filename().string(),
                    found.size() > 1 ? str(" and ", found.size() - 1, " more files") : "", "); continue it with --resume, ",
                    "train into another folder with --set run.out=", other, "-2, or replace it with --force"));
  }
  std::error_code ec;
  for (const fs::path& p : found)
    if (!start_from.empty() && fs::equivalent(p, start_from, ec))
      throw Error(str("--force would remove ", p.string(), ", the checkpoint run.resume starts from: train into ",
                      "another folder (--set run.out=...) or copy the checkpoint out of ", out, " first"));
  for (const fs::path& p : found) fs::remove(p);
}

}  // namespace mpncov
