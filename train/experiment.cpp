#include "train/experiment.h"

#include <filesystem>
#include <sstream>

#include "core/config.h"
#include "core/device.h"
#include "core/error.h"

namespace mpncov {

void apply_overrides(YAML::Node& root, const std::vector<std::string>& overrides) {
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error(str("--set expects key=value (e.g. solver.lr=0.01), got '", o, "'"));
    const std::string path = o.substr(0, eq);
    YAML::Node value;
    try {
      value = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      throw Error(str("--set ", path, ": the value is not valid YAML: ", e.msg));
    }
    // Walk the dotted path with fresh handles so each step descends, creating mappings as needed.
    std::vector<YAML::Node> chain = {root};
    size_t start = 0;
    while (true) {
      const size_t dot = path.find('.', start);
      const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (key.empty()) throw Error(str("--set: bad key '", path, "'"));
      YAML::Node parent = chain.back();
      if (!parent.IsMap() && !parent.IsNull())
        throw Error(str("--set ", path, ": '", key, "' is inside a value that is not a mapping"));
      if (dot == std::string::npos) {
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
  d.image_size = c.get<int64_t>("image_size", 0);
  c.check(d.preset != "plain" || d.image_size > 0, "image_size", "is required (and positive) with preset: plain");
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
  c.finish();
  return r;
}

}  // namespace

Experiment load_experiment(const std::string& path, const std::vector<std::string>& overrides) {
  Experiment e;
  e.file = path;
  try {
    e.root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw Error(str("cannot open experiment file '", path, "'"));
  } catch (const YAML::ParserException& ex) {
    throw Error(str(path, ":", ex.mark.line + 1, ": YAML syntax error: ", ex.msg));
  }
  if (!e.root.IsMap()) throw Error(str(path, ": an experiment is a mapping with model, data, solver and run"));
  apply_overrides(e.root, overrides);
  Config top(e.root, path, "experiment");
  for (const char* section : {"model", "data", "solver", "run", "description"}) top.ignore(section);
  top.finish();
  if (!e.root["model"]) throw Error(str(path, ": the experiment needs a model section (model: {net: ...})"));
  if (!e.root["data"]) throw Error(str(path, ": the experiment needs a data section (data: {train: ..., val: ...})"));
  e.model = read_model_config(e.root["model"], path);
  e.data = read_data(e.root["data"], path);
  Config solver(e.root["solver"], path, "solver");
  e.solver = SolverConfig::from_config(solver);
  e.run = read_run(e.root["run"], path);
  return e;
}

std::string resolved_config(const Experiment& e) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "net" << YAML::Value << e.model.net;
  out << YAML::Key << "representation" << YAML::Value;
  if (e.model.representation) out << e.model.representation;
  else out << "(the net's own)";
  out << YAML::Key << "classes" << YAML::Value << e.model.classes;
  out << YAML::Key << "weights" << YAML::Value << e.model.weights;
  out << YAML::Key << "freeze" << YAML::Value << e.model.freeze;
  out << YAML::Key << "classifier" << YAML::Value << e.model.classifier;
  out << YAML::Key << "sync_bn" << YAML::Value << e.model.sync_bn << YAML::EndMap;
  const DataConfig& d = e.data;
  out << YAML::Key << "data" << YAML::Value << YAML::BeginMap << YAML::Key << "train" << YAML::Value << d.train
      << YAML::Key << "val" << YAML::Value << d.val << YAML::Key << "preset" << YAML::Value << d.preset << YAML::Key
      << "image_size" << YAML::Value << d.image_size << YAML::Key << "batch" << YAML::Value << d.batch << YAML::Key
      << "val_batch" << YAML::Value << (d.val_batch ? d.val_batch : d.batch) << YAML::Key << "workers" << YAML::Value
      << d.workers << YAML::Key << "eval_crops" << YAML::Value << d.eval_crops << YAML::Key << "strict" << YAML::Value
      << d.strict << YAML::Key << "drop_last" << YAML::Value << d.drop_last << YAML::EndMap;
  const SolverConfig& s = e.solver;
  out << YAML::Key << "solver" << YAML::Value << YAML::BeginMap << YAML::Key << "lr" << YAML::Value << s.lr << YAML::Key
      << "momentum" << YAML::Value << s.momentum << YAML::Key << "weight_decay" << YAML::Value << s.weight_decay
      << YAML::Key << "nesterov" << YAML::Value << s.nesterov << YAML::Key << "classifier_lr_mult" << YAML::Value
      << s.classifier_lr_mult << YAML::Key << "classifier_weight_decay" << YAML::Value;
  if (s.classifier_weight_decay) out << *s.classifier_weight_decay;
  else out << "auto";
  out << YAML::Key << "label_smoothing" << YAML::Value << s.label_smoothing << YAML::Key << "epochs" << YAML::Value
      << s.epochs << YAML::Key << "schedule" << YAML::Value << s.schedule.describe() << YAML::Key << "scale_lr"
      << YAML::Value << s.scale_lr << YAML::EndMap;
  const RunConfig& r = e.run;
  out << YAML::Key << "run" << YAML::Value << YAML::BeginMap << YAML::Key << "device" << YAML::Value << r.device
      << YAML::Key << "seed" << YAML::Value << r.seed << YAML::Key << "out" << YAML::Value << r.out << YAML::Key
      << "print_every" << YAML::Value << r.print_every << YAML::Key << "keep_every_epoch" << YAML::Value
      << r.keep_every_epoch << YAML::Key << "resume" << YAML::Value << r.resume << YAML::Key << "threads"
      << YAML::Value << r.threads << YAML::Key << "bucket_mb" << YAML::Value << r.bucket_mb << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace mpncov
