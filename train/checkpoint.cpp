#include "train/checkpoint.h"

#include <cmath>

#include "core/json.h"
#include "core/safetensors.h"
#include "nets/weights.h"

namespace mpncov {
namespace {

Json number(double v) { return std::isfinite(v) ? Json(v) : Json(); }  // JSON has no NaN: null
double number(const Json& j) { return j.is_null() ? NAN : j.as_double(); }

Json to_json(const EpochMetrics& m) {
  Json j = Json::object();
  j.set("epoch", m.epoch);
  j.set("train_loss", number(m.train_loss));
  j.set("train_top1", number(m.train_top1));
  j.set("train_top5", number(m.train_top5));
  j.set("val_loss", number(m.val_loss));
  j.set("val_top1", number(m.val_top1));
  j.set("val_top5", number(m.val_top5));
  j.set("lr", number(m.lr));
  j.set("seconds", number(m.seconds));
  j.set("images_per_second", number(m.images_per_second));
  return j;
}

EpochMetrics from_json(const Json& j) {
  EpochMetrics m;
  m.epoch = j.at("epoch").as_int64();
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
  Json s = Json::object();
  s.set("epoch", state.epoch);
  s.set("batch", state.batch);
  s.set("step", state.step);
  s.set("best_top1", state.best_top1);
  Json history = Json::array();
  for (const EpochMetrics& m : state.history) history.push_back(to_json(m));
  s.set("history", history);
  Json classes = Json::array();
  for (const std::string& c : state.classes) classes.push_back(c);
  s.set("classes", classes);
  s.set("partial_loss", state.partial_loss);
  s.set("partial_top1", state.partial_top1);
  s.set("partial_top5", state.partial_top5);
  s.set("partial_images", state.partial_images);
  s.set("world_size", state.world_size);
  if (sgd) {
    const SgdState o = sgd->state();
    for (const auto& [name, buffer] : o.momentum) tensors.emplace_back(kMomentumPrefix + name, buffer);
    Json lr = Json::object();
    for (const auto& [group, rate] : o.group_lr) lr.set(group, rate);
    s.set("group_lr", lr);
    s.set("optimizer_steps", o.steps);
  }
  save_safetensors(path, tensors,
                   {{"format", "mpncov-checkpoint-1"}, {"net", net.spec().name}, {"experiment", experiment},
                    {"state", s.dump()}});
}

TrainingState load_checkpoint(const std::string& path, Net& net, SGD* sgd) {
  load_weights(net, path);  // strict: the net's tensors must all be there with their shapes
  SafetensorsReader file(path);
  const auto meta = file.metadata().find("state");
  if (meta == file.metadata().end())
    throw Error(str(path, " is a weights file, not a checkpoint (it has no training state); use it as model.weights"));
  const Json s = parse_json(meta->second);
  TrainingState state;
  state.epoch = s.at("epoch").as_int64();
  state.batch = s.at("batch").as_int64();
  state.step = s.at("step").as_int64();
  state.best_top1 = s.at("best_top1").as_double();
  for (const Json& m : s.at("history").as_array()) state.history.push_back(from_json(m));
  for (const Json& c : s.at("classes").as_array()) state.classes.push_back(c.as_string());
  state.partial_loss = s.at("partial_loss").as_double();
  state.partial_top1 = s.at("partial_top1").as_double();
  state.partial_top5 = s.at("partial_top5").as_double();
  state.partial_images = s.at("partial_images").as_int64();
  if (const Json* w = s.find("world_size")) state.world_size = w->as_int64();  // older checkpoints: 1
  if (sgd) {
    SgdState o;
    const std::string prefix = kMomentumPrefix;
    for (const SafetensorsEntry& e : file.entries()) {
      if (e.name.rfind(prefix, 0) != 0) continue;
      const std::string name = e.name.substr(prefix.size());
      bool known = false;
      for (const ParamGroup& g : sgd->groups())
        for (const NamedParameter& p : g.params) known = known || p.name == name;
      if (known) o.momentum[name] = file.read(e.name);  // a buffer of a parameter now gone is dropped
    }
    if (const Json* lr = s.find("group_lr"))
      for (const auto& [group, rate] : lr->items()) o.group_lr[group] = rate.as_double();
    if (const Json* steps = s.find("optimizer_steps")) o.steps = steps->as_int64();
    sgd->load_state(o);
  }
  return state;
}

namespace {

// The training state in a file's metadata, or null for a weights file.
Json state_of(const std::string& path) {
  check_not_pytorch_file(path);
  SafetensorsReader file(path);
  const auto meta = file.metadata().find("state");
  return meta == file.metadata().end() ? Json() : parse_json(meta->second);
}

}  // namespace

std::string describe_weights_file(const std::string& path) {
  const Json s = state_of(path);
  if (s.is_null()) return path + " (weights file)";
  const int64_t epoch = s.at("epoch").as_int64(), batch = s.at("batch").as_int64();
  std::string what = batch ? str("checkpoint interrupted in epoch ", epoch + 1, " after batch ", batch)
                           : str("checkpoint after epoch ", epoch);
  const auto& history = s.at("history").as_array();
  if (!batch && !history.empty()) {
    const EpochMetrics m = from_json(history.back());
    what += std::isfinite(m.val_top1) ? str(", val top-1 ", m.val_top1, "%") : str(", train top-1 ", m.train_top1, "%");
  }
  return str(path, " (", what, ")");
}

std::vector<std::string> checkpoint_classes(const std::string& path) {
  const Json s = state_of(path);
  std::vector<std::string> classes;
  if (!s.is_null())
    for (const Json& c : s.at("classes").as_array()) classes.push_back(c.as_string());
  return classes;
}

}  // namespace mpncov
