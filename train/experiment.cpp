#include "train/experiment.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <tuple>

#include "core/config.h"
#include "core/config_error.h"
#include "core/context.h"
#include "core/device.h"
#include "core/error.h"
#include "core/text.h"
#include "data/presets.h"
#include "data/transform_list.h"
#include "nets/weights.h"

namespace mpncov {

namespace {

// A copy of a --set value whose nodes have no place in any file, so an error inside it (a schedule's key,
// a transform step) names --set instead of the experiment file's line of the same number.
YAML::Node without_marks(const YAML::Node& v) {
  switch (v.Type()) {
    case YAML::NodeType::Scalar: {
      YAML::Node out(v.Scalar());
      out.SetTag(v.Tag());
      return out;
    }
    case YAML::NodeType::Sequence: {
      YAML::Node out(YAML::NodeType::Sequence);
      for (const YAML::Node& item : v) out.push_back(without_marks(item));
      out.SetStyle(v.Style());  // config.yaml writes it as it was given
      return out;
    }
    case YAML::NodeType::Map: {
      YAML::Node out(YAML::NodeType::Map);
      for (const auto& kv : v) out[without_marks(kv.first)] = without_marks(kv.second);
      out.SetStyle(v.Style());
      return out;
    }
    default: return YAML::Node(v.Type());
  }
}

}  // namespace

void apply_overrides(YAML::Node& root, const std::vector<std::string>& overrides) {
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError(str("--set expects key=value (e.g. solver.lr=0.01), got '", o, "'"));
    const std::string path = o.substr(0, eq);
    YAML::Node value;
    try {
      value = without_marks(YAML::Load(o.substr(eq + 1)));
    } catch (const YAML::Exception& e) {
      throw ConfigError(str("--set ", path, ": the value is not valid YAML: ", e.msg));
    }
    // Walk the dotted path with fresh handles so each step descends, creating mappings as needed.
    std::vector<YAML::Node> chain = {root};
    size_t start = 0;
    while (true) {
      const size_t dot = path.find('.', start);
      const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (key.empty()) throw ConfigError(str("--set: bad key '", path, "'"));
      YAML::Node parent = chain.back();
      if (!parent.IsMap() && !parent.IsNull())
        throw ConfigError(str("--set ", path, ": '", key, "' is inside a value that is not a mapping"));
      if (dot == std::string::npos) {
        parent.remove(key);  // a fresh key node: errors about it then name --set (Config::where)
        parent[key] = value;
        break;
      }
      if (!parent[key]) parent[key] = YAML::Node(YAML::NodeType::Map);
      chain.push_back(parent[key]);
      start = dot + 1;
    }
  }
}

namespace {

DataConfig read_data(const YAML::Node& node, const std::string& file) {
  Config c(node, file, "data");
  DataConfig d;
  d.train = c.require<std::string>("train");
  d.val = c.get<std::string>("val", "");
  d.preset = c.get<std::string>("preset", d.preset);
  if (d.preset != "plain") {
    try {
      data::preset(d.preset, data::Stage::Train);
    } catch (const Error& e) {
      c.fail("preset", e.what());
    }
  }
  d.image_size = c.get<int64_t>("image_size", 0);
  c.check(d.preset != "plain" || d.image_size > 0 || (node["train_transform"] && node["val_transform"]),
          "image_size", "is required (and positive) with preset: plain");
  d.batch = c.get<int64_t>("batch", d.batch);
  c.check(d.batch >= 1, "batch", "must be at least 1");
  d.val_batch = c.get<int64_t>("val_batch", 0);
  c.check(d.val_batch >= 0, "val_batch", "must be 0 (same as batch) or more");
  d.workers = c.get<int>("workers", d.workers);
  c.check(d.workers >= 0, "workers", "must be 0 or more");
  d.eval_crops = c.get<int64_t>("eval_crops", 0);
  c.check(d.eval_crops == 0 || d.eval_crops == 1 || d.eval_crops == 2 || d.eval_crops == 10, "eval_crops",
          "must be 0 (none), 1, 2 or 10");
  d.strict = c.get<bool>("strict", false);
  d.drop_last = c.get<bool>("drop_last", false);
  // Transform lists: the file's, else the preset's (resolved now, so a bad preset fails at load time).
  const int size = static_cast<int>(d.image_size);
  for (const auto& [key, stage, slot] : {std::tuple{"train_transform", data::Stage::Train, &d.train_transform},
                                         std::tuple{"val_transform", data::Stage::Val, &d.val_transform}}) {
    c.ignore(key);
    if (node[key]) {
      *slot = data::read_transform_list(node[key], file, str("data.", key));
      continue;
    }
    try {
      *slot = data::preset(d.preset, stage, size);
    } catch (const Error& e) {
      c.fail("preset", e.what());
    }
  }
  if (d.eval_crops > 1) {
    try {
      data::multi_crop_evaluation(*d.val_transform, static_cast<int>(d.eval_crops));
    } catch (const Error& e) {
      c.fail("eval_crops", str("cannot follow val_transform: ", e.what()));
    }
  }
  c.finish();
  return d;
}

RunConfig read_run(const YAML::Node& node, const std::string& file) {
  Config c(node, file, "run");
  RunConfig r;
  r.device = c.get<std::string>("device", r.device);
  if (r.device != "auto") {
    try {
      Device::parse(r.device);
    } catch (const Error&) {
      c.fail("device", str("must be auto, cpu, cuda or cuda:N, got '", r.device, "'"));
    }
  }
  r.seed = c.get<uint64_t>("seed", r.seed);
  r.out = c.get<std::string>("out", "runs/" + std::filesystem::path(file).stem().string());
  r.print_every = c.get<int64_t>("print_every", r.print_every);
  c.check(r.print_every >= 1, "print_every", "must be at least 1");
  r.keep_every_epoch = c.get<bool>("keep_every_epoch", false);
  r.resume = c.get<std::string>("resume", "");
  r.threads = c.get<int>("threads", 0);
  c.check(r.threads >= 0, "threads", "must be 0 (all cores) or more");
  r.bucket_mb = c.get<double>("bucket_mb", r.bucket_mb);
  c.check(r.bucket_mb > 0, "bucket_mb", "must be positive");
  r.dist_timeout = c.get<double>("dist_timeout", r.dist_timeout);
  c.check(r.dist_timeout >= 0, "dist_timeout", "must be 0 (wait forever) or a number of seconds");
  c.finish();
  return r;
}

}  // namespace

namespace {
Experiment read_experiment(const std::string& path, const std::vector<std::string>& overrides) {
  Experiment e;
  e.file = path;
  try {
    e.root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw ConfigError(str("cannot open experiment file '", path, "'"));
  } catch (const YAML::ParserException& ex) {
    throw ConfigError(str(path, ":", ex.mark.line + 1, ": YAML syntax error: ", ex.msg));
  }
  const int line = e.root.Mark().line + 1;  // where the top level starts (0: an empty file)
  const std::string where = line > 0 ? str(path, ":", line) : path;
  if (!e.root.IsMap()) throw ConfigError(str(where, ": an experiment is a mapping with model, data, solver and run"));
  apply_overrides(e.root, overrides);
  // A key given no value (`resume:`, `~`, `null`, or --set run.resume=) takes its default, as if absent:
  // read as text it would be the string "null" (run.out: ~ trained into a folder named null).
  for (const char* name : {"model", "data", "solver", "run"}) {
    YAML::Node section = e.root[name];
    if (!section || !section.IsMap()) continue;
    std::vector<std::string> empty;
    for (const auto& kv : section)
      if (kv.first.IsScalar() && kv.second.IsNull()) empty.push_back(kv.first.Scalar());
    for (const std::string& key : empty) section.remove(key);
  }
  Config top(e.root, path, "experiment");
  for (const char* section : {"model", "data", "solver", "run", "description"}) top.ignore(section);
  top.finish();
  if (!e.root["model"]) throw ConfigError(str(where, ": the experiment needs a model section (model: {net: ...})"));
  if (!e.root["data"]) throw ConfigError(str(where, ": the experiment needs a data section (data: {train: ..., val: ...})"));
  e.model = read_model_config(e.root["model"], path);
  e.data = read_data(e.root["data"], path);
  Config solver(e.root["solver"], path, "solver");
  e.solver = SolverConfig::from_config(solver);
  e.run = read_run(e.root["run"], path);
  return e;
}
}  // namespace

Experiment load_experiment(const std::string& path, const std::vector<std::string>& overrides) {
  try {
    return read_experiment(path, overrides);
  } catch (const YAML::Exception& e) {  // a value of the wrong kind (a list where a name goes, ...)
    if (e.mark.is_null()) throw ConfigError(str(path, ": ", e.msg));
    throw ConfigError(str(path, ":", e.mark.line + 1, ": a value of the wrong type here (", e.msg, ")"));
  }
}

namespace {

// The shortest decimal that reads back as the same double: 0.9, not 0.90000000000000002; a whole number
// as one (1800, not %g's 1.8e+03).
std::string shortest(double v) {
  char buf[32];
  if (v == std::floor(v) && std::abs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

// Sets section[key] unless the file (or --set) gave it.
template <typename T>
void fill(YAML::Node section, const std::string& key, const T& value) {
  if (!section[key]) section[key] = value;
}
void fill_number(YAML::Node section, const std::string& key, double value) { fill(section, key, shortest(value)); }

// A mapping of the resolved root, created when the file had none.
YAML::Node section_of(YAML::Node& root, const std::string& name) {
  if (!root[name] || root[name].IsNull()) root[name] = YAML::Node(YAML::NodeType::Map);
  return root[name];
}

// The names of an image folder's class folders, sorted (as data::ImageFolder takes them).
std::vector<std::string> class_folders(const std::string& root) {
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec))
    if (std::filesystem::is_directory(entry.path(), ec)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

int64_t count_class_folders(const std::string& root) { return static_cast<int64_t>(class_folders(root).size()); }

std::string resolved_config(const Experiment& e) {
  // The file as given (with the overrides), every absent key filled with its default, so the text is
  // itself an experiment: `mpncov train config.yaml` repeats the run. Keys the file gave keep their text.
  YAML::Node root = YAML::Clone(e.root);
  YAML::Node model = section_of(root, "model");
  // Resolved: the class folders of data.train (0, "the folders'", only while that folder does not exist).
  model["classes"] = e.model.classes > 0 ? e.model.classes : count_class_folders(e.data.train);
  fill(model, "weights", e.model.weights);
  fill(model, "freeze", e.model.freeze);
  fill(model, "classifier", e.model.classifier);
  fill(model, "sync_bn", e.model.sync_bn);
  const DataConfig& d = e.data;
  YAML::Node data = section_of(root, "data");
  fill(data, "val", d.val);
  fill(data, "preset", d.preset);
  if (d.image_size > 0) fill(data, "image_size", d.image_size);
  fill(data, "batch", d.batch);
  data["val_batch"] = d.val_batch ? d.val_batch : d.batch;
  fill(data, "workers", d.workers);
  fill(data, "eval_crops", d.eval_crops);
  fill(data, "strict", d.strict);
  fill(data, "drop_last", d.drop_last);
  // The lists in use, every argument written out (the preset's where the file has none); multi-crop
  // evaluation derives from val's.
  if (d.train_transform) data["train_transform"] = data::transform_list_yaml(*d.train_transform);
  if (d.val_transform) data["val_transform"] = data::transform_list_yaml(*d.val_transform);
  const SolverConfig& s = e.solver;
  YAML::Node solver = section_of(root, "solver");
  fill_number(solver, "lr", s.lr);
  fill_number(solver, "momentum", s.momentum);
  fill_number(solver, "weight_decay", s.weight_decay);
  fill(solver, "nesterov", s.nesterov);
  fill_number(solver, "classifier_lr_mult", s.classifier_lr_mult);
  if (s.classifier_weight_decay) fill_number(solver, "classifier_weight_decay", *s.classifier_weight_decay);
  else fill(solver, "classifier_weight_decay", std::string("auto"));
  fill_number(solver, "label_smoothing", s.label_smoothing);
  fill(solver, "precision", std::string(precision_name(s.precision)));
  fill(solver, "epochs", s.epochs);
  fill(solver, "scale_lr", s.scale_lr);
  if (!solver["schedule"]) {
    YAML::Node constant(YAML::NodeType::Map);
    constant["type"] = "constant";
    solver["schedule"] = constant;
  }
  const RunConfig& r = e.run;
  YAML::Node run = section_of(root, "run");
  fill(run, "device", r.device);
  fill(run, "seed", r.seed);
  fill(run, "out", r.out);
  fill(run, "print_every", r.print_every);
  fill(run, "keep_every_epoch", r.keep_every_epoch);
  fill(run, "resume", r.resume);
  fill(run, "threads", r.threads);
  fill_number(run, "bucket_mb", r.bucket_mb);
  fill_number(run, "dist_timeout", r.dist_timeout);
  for (const char* section : {"model", "data", "solver", "run"}) root[section].SetStyle(YAML::EmitterStyle::Block);
  std::string header = str("the resolved configuration of ", e.file, ": every key with its value; an experiment itself\n",
                           "(mpncov train THIS_FILE --set run.out=ANOTHER_FOLDER repeats the run)");
  // The final multi-crop evaluation's steps, which derive from val_transform and appear nowhere else.
  if (d.val_transform && d.eval_crops > 1)
    header += str("\ndata.eval_crops ", d.eval_crops, " evaluates the best model with: ",
                  data::multi_crop_evaluation(*d.val_transform, static_cast<int>(d.eval_crops)).describe());
  YAML::Emitter out;
  out << YAML::Comment(header) << YAML::Newline << root;
  return std::string(out.c_str()) + "\n";
}

void check_experiment(const Experiment& e, bool resuming) {
  Config data(e.root["data"], e.file, "data");
  std::string preset;
  for (char ch : e.data.preset) preset += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::vector<std::string> presets = data::preset_names();
  if (std::find(presets.begin(), presets.end(), "plain") == presets.end()) presets.push_back("plain");
  bool known = false;
  for (const std::string& p : presets) known = known || preset.rfind(p, 0) == 0;
  if (!known)
    data.fail("preset", str("names an unknown preset '", e.data.preset, "'", did_you_mean(preset, presets), " (one of ",
                            join(presets, ", "), ")"));
  for (const auto& [key, folder] : {std::pair<std::string, std::string>{"train", e.data.train}, {"val", e.data.val}}) {
    if (!folder.empty() && !std::filesystem::is_directory(folder))
      data.fail(key, str("names image folder '", folder, "', which does not exist",
                         std::filesystem::exists(folder) ? " (it is a file)" : ""));
  }
  Config model(e.root["model"], e.file, "model");
  const int64_t folders = count_class_folders(e.data.train);
  if (e.model.classes > 0 && e.model.classes != folders)
    model.fail("classes", str("is ", e.model.classes, " but ", e.data.train, " has ", folders, " class folders"));
  if (!e.data.val.empty() && class_folders(e.data.val) != class_folders(e.data.train))
    data.fail("val", str("has other class folders than data.train (", count_class_folders(e.data.val), " vs ", folders,
                         "): both need the same class names"));
  // A run that starts from a checkpoint does not read the pretrained weights (they may have moved since).
  const bool reads_weights = !e.model.weights.empty() && !resuming && e.run.resume.empty();
  if (reads_weights && !std::filesystem::is_regular_file(e.model.weights))
    model.fail("weights", str("names '", e.model.weights, "', which is not a file"));
  if (reads_weights) {
    try {
      check_not_pytorch_file(e.model.weights);
    } catch (const Error& err) {
      model.fail("weights", str("names a file that cannot be used as it is: ", err.what()));
    }
  }
  Config run(e.root["run"], e.file, "run");
  if (std::filesystem::exists(e.run.out) && !std::filesystem::is_directory(e.run.out))
    run.fail("out", str("names '", e.run.out, "', which is a file: the run folder must be a folder"));
  if (!e.run.resume.empty() && !std::filesystem::is_regular_file(e.run.resume))
    run.fail("resume", str("names '", e.run.resume, "', which is not a file"));
  if (e.run.device != "auto") {
    try {
      require_device(Device::parse(e.run.device));
    } catch (const Error& err) {
      run.fail("device", str("'", e.run.device, "' cannot be used here: ", err.what(), " (auto takes a GPU when there is one)"));
    }
  }
  compose_model(e.model);  // the net, representation and freeze count: errors name the file and key
}

std::vector<std::string> experiment_keys() {
  Experiment e;
  e.file = "experiment.yaml";
  e.root = YAML::Load("{model: {net: x, representation: none}, data: {train: x, preset: plain, image_size: 1}}");
  const YAML::Node resolved = YAML::Load(resolved_config(e));
  std::vector<std::string> keys;
  for (const auto& section : resolved)
    for (const auto& key : section.second) keys.push_back(section.first.as<std::string>() + "." + key.first.as<std::string>());
  return keys;
}

}  // namespace mpncov
