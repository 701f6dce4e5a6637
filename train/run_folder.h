// The run folder's guard: a run folder that holds a run is continued (--resume), replaced on request
// (--force, which removes the old run's files and nothing else), or left alone with an error that says
// these two ways and `--set run.out=...`. A run is never overwritten silently.
#pragma once
#include <string>
#include <vector>

namespace mpncov {

// The files a run writes into its folder (checkpoints named epoch-N.safetensors come on top).
const std::vector<std::string>& run_files();

// Throws when `out` holds a run and neither resume nor force is set; with force (and no resume), removes
// that run's files so the new run starts with a fresh log, metrics and iteration rows, unless one of them
// is `start_from` (run.resume's checkpoint, which the run is about to load: an error, nothing removed).
// Creates a missing `out` (an error naming run.out when it cannot be created).
void prepare_run_folder(const std::string& out, bool resume, bool force, const std::string& start_from = "");

}  // namespace mpncov
