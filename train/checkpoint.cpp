#include "train/checkpoint.h"

#include <cmath>
#include <cstdio>

#include "core/json.h"
#include "core/safetensors.h"
#include "nets/weights.h"

namespace mpncov {
namespace {

// JSON has no NaN: dump_json writes null, read back as NaN.
double number(const Json& j) { return j.is_null() ? NAN : j.get<double>(); }

// The training state stored in a checkpoint's metadata, read by f: a syntax error, a missing key or a value
// of the wrong type is an error naming the file.
template <typename F>
auto read_state(const std::string& path, const std::string& text, F&& f) {
  try {
    return f(parse_json(text));
  } catch (const Error& e) {
    throw Error(str(path, ": the training state is not valid JSON: ", e.what()));
  } catch (const nlohmann::json::exception& e) {
    throw Error(str(path, ": the training state is malformed: ", json_error_text(e)));
  }
}

Json to_json(const EpochMetrics& m) {
  return {{"epoch", m.epoch},
          {"train_loss", m.train_loss},
          {"train_top1", m.train_top1},
          {"train_top5", m.train_top5},
          {"val_loss", m.val_loss},
          {"val_top1", m.val_top1},
          {"val_top5", m.val_top5},
          {"lr", m.lr},
          {"seconds", m.seconds},
          {"images_per_second", m.images_per_second}};
}

EpochMetrics from_json(const Json& j) {
  EpochMetrics m;
  m.epoch = j.at("epoch").get<int64_t>();
  m.train_loss = number(j.at("train_loss"));
  m.train_top1 = number(j.at("train_top1"));
  m.train_top5 = number(j.at("train_top5"));
  m.val_loss = number(j.at("val_loss"));
  m.val_top1 = number(j.at("val_top1"));
  m.val_top5 = number(j.at("val_top5"));
  m.lr = number(j.at("lr"));
  m.seconds = number(j.at("seconds"));
  m.images_per_second = number(j.at("images_per_second"));
  return m;
}

}  // namespace

void save_checkpoint(const std::string& path, Net& net, const SGD* sgd, const TrainingState& state,
                     const std::string& experiment) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const NamedTensor& t : net.state()) tensors.emplace_back(t.name, t.tensor);
  Json history = Json::array();
  for (const EpochMetrics& m : state.history) history.push_back(to_json(m));
  Json s = {{"epoch", state.epoch},
            {"batch", state.batch},
            {"step", state.step},
            {"best_top1", state.best_top1},
            {"history", history},
            {"classes", state.classes},
            {"partial_loss", state.partial_loss},
            {"partial_top1", state.partial_top1},
            {"partial_top5", state.partial_top5},
            {"partial_images", state.partial_images},
            {"world_size", state.world_size},
            {"batch_size", state.batch_size},
            {"precision", state.precision}};
  if (sgd) {
    const SgdState o = sgd->state();
    for (const auto& [name, buffer] : o.momentum) tensors.emplace_back(kMomentumPrefix + name, buffer);
    s["group_lr"] = o.group_lr;
    s["optimizer_steps"] = o.steps;
  }
  save_safetensors(path, tensors,
                   {{"format", "mpncov-checkpoint-1"}, {"net", net.spec().name}, {"experiment", experiment},
                    {"state", dump_json(s)}});
}

TrainingState parse_training_state(const std::string& json, const std::string& path, SgdState* sgd) {
  TrainingState state;
  read_state(path, json, [&](const Json& s) {
    state.epoch = s.at("epoch").get<int64_t>();
    state.batch = s.at("batch").get<int64_t>();
    state.step = s.at("step").get<int64_t>();
    state.best_top1 = number(s.at("best_top1"));
    for (const Json& m : s.at("history")) state.history.push_back(from_json(m));
    state.classes = s.at("classes").get<std::vector<std::string>>();
    state.partial_loss = number(s.at("partial_loss"));
    state.partial_top1 = number(s.at("partial_top1"));
    state.partial_top5 = number(s.at("partial_top5"));
    state.partial_images = s.at("partial_images").get<int64_t>();
    if (s.contains("world_size")) state.world_size = s.at("world_size").get<int64_t>();  // older ones: 1
    if (s.contains("batch_size")) state.batch_size = s.at("batch_size").get<int64_t>();  // older ones: unknown
    if (s.contains("precision")) state.precision = s.at("precision").get<std::string>();  // older ones: unknown
    if (sgd && s.contains("group_lr")) sgd->group_lr = s.at("group_lr").get<std::map<std::string, double>>();
    if (sgd && s.contains("optimizer_steps")) sgd->steps = s.at("optimizer_steps").get<int64_t>();
  });
  // Counters index batches and random streams: a negative one is a damaged file, not a position.
  if (state.epoch < 0 || state.batch < 0 || state.step < 0 || state.partial_images < 0 || state.world_size < 1 ||
      state.batch_size < 0)
    throw Error(str(path, ": the checkpoint's training state is damaged: epoch, batch, step and partial_images must "
                          "not be negative, world_size at least 1"));
  return state;
}

namespace {

// The training state's JSON in a checkpoint's metadata; an error for a weights file.
const std::string& state_of_checkpoint(const SafetensorsReader& file, const std::string& path) {
  const auto meta = file.metadata().find("state");
  if (meta == file.metadata().end())
    throw Error(str(path, " is a weights file, not a checkpoint (it has no training state); use it as model.weights"));
  return meta->second;
}

}  // namespace

void check_checkpoint_file(const std::string& path) {
  check_not_pytorch_file(path);
  const SafetensorsReader file(path);  // validates the header
  parse_training_state(state_of_checkpoint(file, path), path);
}

TrainingState load_checkpoint(const std::string& path, Net& net, SGD* sgd) {
  load_weights(net, path);  // strict: the net's tensors must all be there with their shapes
  SafetensorsReader file(path);
  const std::string& meta = state_of_checkpoint(file, path);
  SgdState o;
  TrainingState state = parse_training_state(meta, path, sgd ? &o : nullptr);
  if (sgd) {
    const std::string prefix = kMomentumPrefix;
    for (const SafetensorsEntry& e : file.entries()) {
      if (e.name.rfind(prefix, 0) != 0) continue;
      const std::string name = e.name.substr(prefix.size());
      bool known = false;
      for (const ParamGroup& g : sgd->groups())
        for (const NamedParameter& p : g.params) known = known || p.name == name;
      if (known) o.momentum[name] = file.read(e.name);  // a buffer of a parameter now gone is dropped
    }
    sgd->load_state(o);
  }
  return state;
}

namespace {

// The training state in a file's metadata, or "" for a weights file.
std::string state_text(const std::string& path) {
  check_not_pytorch_file(path);
  SafetensorsReader file(path);
  const auto meta = file.metadata().find("state");
  return meta == file.metadata().end() ? "" : meta->second;
}

}  // namespace

std::string describe_weights_file(const std::string& path) {
  const std::string text = state_text(path);
  if (text.empty()) return path + " (weights file)";
  return read_state(path, text, [&](const Json& s) {
    const int64_t epoch = s.at("epoch").get<int64_t>(), batch = s.at("batch").get<int64_t>();
    std::string what = batch ? str("checkpoint interrupted in epoch ", epoch + 1, " after batch ", batch)
                             : str("checkpoint after epoch ", epoch);
    const Json& history = s.at("history");
    if (!batch && !history.empty()) {
      const EpochMetrics m = from_json(history.back());
      // Two decimals, as the run's log prints accuracies (66.67%, not 66.6667%).
      char top1[32];
      std::snprintf(top1, sizeof top1, "%.2f%%", std::isfinite(m.val_top1) ? m.val_top1 : m.train_top1);
      what += str(std::isfinite(m.val_top1) ? ", val top-1 " : ", train top-1 ", top1);
    }
    return str(path, " (", what, ")");
  });
}

std::vector<std::string> checkpoint_classes(const std::string& path) {
  const std::string text = state_text(path);
  if (text.empty()) return {};
  return read_state(path, text, [](const Json& s) { return s.at("classes").get<std::vector<std::string>>(); });
}

}  // namespace mpncov
