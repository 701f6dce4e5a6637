#include "train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/context.h"
#include "core/ops.h"
#include "data/presets.h"
#include "layers/accuracy.h"
#include "nets/inspect.h"
#include "nets/model.h"
#include "nets/weights.h"
#include "optim/param_group.h"
#include "optim/sgd.h"
#include "train/checkpoint.h"
#include "train/curves.h"

namespace mpncov {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::atomic<int> g_signal{0};
extern "C" void on_signal(int sig) { g_signal.store(sig); }

std::string fmt_fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = static_cast<int64_t>(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(t / 3600), static_cast<long long>(t % 3600 / 60));
  else std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(t / 60), static_cast<long long>(t % 60));
  return buf;
}

// Writes a file atomically enough for text artefacts (write, then rename).
void write_text(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp);
    if (!out) throw Error(str("cannot write '", tmp.string(), "'"));
    out << text;
  }
  fs::rename(tmp, path);
}

// Lines for the terminal and the run's log file; progress lines overwrite each other on a terminal.
class Log {
 public:
  Log(const fs::path& file, bool quiet) : file_(file, std::ios::app), quiet_(quiet), tty_(isatty(fileno(stdout))) {}
  void line(const std::string& text) {
    clear_progress();
    if (!quiet_) std::printf("%s\n", text.c_str());
    std::fflush(stdout);
    file_ << text << "\n";
    file_.flush();
  }
  // A progress line: rewritten in place on a terminal; kept (and logged) when `keep`.
  void progress(const std::string& text, bool keep) {
    if (keep) return line(text);
    if (quiet_ || !tty_) return;
    std::printf("\r%s\033[K", text.c_str());
    std::fflush(stdout);
    pending_ = true;
  }

 private:
  void clear_progress() {
    if (pending_) std::printf("\r\033[K");
    pending_ = false;
  }
  std::ofstream file_;
  bool quiet_, tty_, pending_ = false;
};

// Sum of a tensor's elements (non-finite when any element is).
bool finite(const Tensor& t) {
  if (t.numel() == 0) return true;
  return std::isfinite(ops::reduce(ops::Reduce::Sum, t.reshape({-1}), {0}).item());
}

// Names the first layer whose output (forward) is not finite (of those that keep their own output).
std::string first_bad_output(const Net& net) {
  for (int i = 0; i < net.size(); ++i)
    if (!net.runs_in_place(i) && !net.shares_storage(i) && !finite(net.output(net.layer_spec(i).name)))
      return net.layer_spec(i).name;
  return "(none: only the loss)";
}

struct Meter {
  double loss = 0, top1 = 0, top5 = 0;
  int64_t images = 0;
  void add(double batch_loss, int64_t n, int64_t correct1, int64_t correct5) {
    loss += batch_loss * static_cast<double>(n);
    top1 += static_cast<double>(correct1);
    top5 += static_cast<double>(correct5);
    images += n;
  }
  double mean_loss() const { return images ? loss / static_cast<double>(images) : NAN; }
  double acc1() const { return images ? 100.0 * top1 / static_cast<double>(images) : NAN; }
  double acc5() const { return images ? 100.0 * top5 / static_cast<double>(images) : NAN; }
};

std::unique_ptr<Layer> make_loss(double smoothing) {
  YAML::Node node(YAML::NodeType::Map);
  node["label_smoothing"] = smoothing;
  Config c(node, "(experiment)", "loss");
  return make_layer("softmax_cross_entropy", c);
}

// Images of a batch on the device, reshaped for the net: (B * crops, 3, H, W). The copy from the loader's
// pinned buffer is queued without waiting; the caller keeps the batch alive until the step reads its loss
// back, which waits for the stream.
Tensor images_on(const data::Batch& b, Device device) {
  const Tensor& x = b.images;
  const Tensor flat = x.ndim() == 5 ? x.reshape({x.dim(0) * x.dim(1), x.dim(2), x.dim(3), x.dim(4)}) : x;
  return flat.to_async(device);
}

void ensure_setup(Net& net, const Shape& input, Device device, uint64_t seed) {
  if (!net.is_setup() || net.input_shape() != input) net.setup(input, DType::F32, device, seed);
}

}  // namespace

Device resolve_device(const std::string& name) {
  if (name == "auto") return cuda_device_count() > 0 ? Device::cuda(0) : Device::cpu();
  const Device d = Device::parse(name);
  require_device(d);
  return d;
}

data::Pipeline make_pipeline(const DataConfig& d, bool train, int64_t crops) {
  std::string preset = d.preset;
  for (char& ch : preset) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (preset != "plain") {
    if (train) return data::preset(preset, data::Stage::Train);
    if (crops == 1) return data::preset(preset, data::Stage::Val);
  }
  // Multi-crop evaluation (and every stage of `plain`): the val resize, then the crops.
  data::Pipeline p;
  int size = 224;
  if (preset == "plain") {
    size = static_cast<int>(d.image_size);
    p.resize(size, size);
    if (train) return p.random_hflip();
    if (crops == 1) return p;
  } else if (preset.rfind("imagenet", 0) == 0) {
    p.resize(256);
  } else if (preset.rfind("cub", 0) == 0) {
    p.resize(448);
    size = 448;
  } else if (preset.rfind("aircraft", 0) == 0) {
    p.resize(512, 512);
    size = 448;
  } else {  // cars
    p.resize(448, 448);
    size = 448;
  }
  return crops == 10 ? p.ten_crop(size) : p.center_crop_with_flip(size);
}

EvalResult evaluate(Net& net, data::Loader& loader, Device device, int64_t epoch,
                    const std::function<void(int64_t, int64_t)>& progress) {
  net.set_training(false);
  std::unique_ptr<Layer> loss = make_loss(0.0);
  Meter meter;
  loader.start_epoch(epoch);
  const int64_t total = loader.batches_per_epoch();
  int64_t done = 0;
  const uint64_t seed = 1;
  while (std::optional<data::Batch> batch = loader.next()) {
    const int64_t n = batch->size();
    const int64_t crops = batch->images.ndim() == 5 ? batch->images.dim(1) : 1;
    const Tensor x = images_on(*batch, device);
    ensure_setup(net, x.shape(), device, seed);
    Tensor logits = net.forward(x);
    if (crops > 1) logits = ops::reduce(ops::Reduce::Mean, logits.reshape({n, crops, -1}), {1});
    const Tensor labels = batch->labels.to_async(device);
    SetupContext ctx;
    ctx.device = device;
    ctx.name = "loss";
    loss->setup({logits.shape(), labels.shape()}, ctx);
    Tensor value = Tensor::empty(Shape(std::vector<int64_t>{}), DType::F32, device);
    loss->forward({logits, labels}, {value});
    const std::vector<int64_t> correct = topk_correct(logits, labels, {1, 5});
    meter.add(value.item(), n, correct[0], correct[1]);
    if (progress) progress(++done, total);
  }
  return {meter.mean_loss(), meter.acc1(), meter.acc5(), meter.images};
}

int train(const Experiment& e, const TrainOptions& options) {
  if (e.run.threads > 0) set_num_threads(e.run.threads);
  const Device device = resolve_device(e.run.device);
  const fs::path out = e.run.out;
  fs::create_directories(out);
  Log log(out / "log.txt", options.quiet);
  log.line(str("mpncov train ", e.file, " -> ", out.string(), " on ", device.str(), " (", backends_summary(), ")"));

  // ---- data ----
  auto warn = [&](const std::string& m) { log.line("warning: " + m); };
  auto train_set = std::make_shared<const data::ImageFolder>(e.data.train, warn);
  std::shared_ptr<const data::ImageFolder> val_set;
  if (!e.data.val.empty()) {
    val_set = std::make_shared<const data::ImageFolder>(e.data.val, warn);
    if (val_set->classes() != train_set->classes())
      throw Error(str(e.file, ": data.val has other class folders than data.train (", val_set->classes().size(), " vs ",
                      train_set->classes().size(), ")"));
  }
  const int64_t classes = static_cast<int64_t>(train_set->classes().size());
  if (e.model.classes > 0 && e.model.classes != classes)
    throw Error(str(e.file, ": model.classes is ", e.model.classes, " but ", e.data.train, " has ", classes, " class folders"));
  data::LoaderOptions lo;
  lo.batch_size = e.data.batch;
  lo.workers = e.data.workers;
  lo.seed = e.run.seed;
  lo.drop_last = e.data.drop_last;
  lo.strict = e.data.strict;
  lo.log = [&](const std::string& m) { log.line(m); };
  data::Loader train_loader(train_set, make_pipeline(e.data, true, 1), lo);
  std::unique_ptr<data::Loader> val_loader;
  if (val_set) {
    data::LoaderOptions vo = lo;
    vo.shuffle = false;
    vo.drop_last = false;
    vo.batch_size = e.data.val_batch ? e.data.val_batch : e.data.batch;
    val_loader = std::make_unique<data::Loader>(val_set, make_pipeline(e.data, false, 1), vo);
  }

  // ---- model ----
  ModelConfig mc = e.model;
  mc.classes = classes;
  Net net(compose_model(mc));
  const Shape batch_shape = train_loader.batch_shape();
  net.setup(batch_shape, DType::F32, device, e.run.seed);
  net.freeze(mc.freeze);
  const bool resuming = options.resume || !e.run.resume.empty();
  if (!mc.weights.empty() && !resuming) {
    WeightsLoadOptions wo;
    wo.strict = false;
    const WeightsLoadReport r = load_weights(net, mc.weights, wo);
    std::vector<std::string> bad;
    for (const std::string& name : r.missing) {
      const int layer = net.index_of(name.substr(0, name.rfind('.')));
      if (net.layer_spec(layer).part != NetPart::Classifier) bad.push_back(name + " (missing)");
    }
    for (const std::string& m : r.mismatched) {
      const std::string name = m.substr(0, m.find(':'));
      if (net.layer_spec(net.index_of(name.substr(0, name.rfind('.')))).part != NetPart::Classifier) bad.push_back(m);
    }
    if (!bad.empty()) {
      std::string list;
      for (const std::string& b : bad) list += "\n  " + b;
      throw Error(str(mc.weights, ": the pretrained weights do not fit the features of the model:", list));
    }
    log.line(str("weights: ", mc.weights, ": ", r.summary()));
  }

  // ---- optimiser ----
  std::vector<NamedParameter> parts[3];
  for (const NetParameter& p : net.parameters())
    parts[static_cast<int>(p.part)].push_back({p.name, p.parameter});
  const GroupSettings gs = e.solver.group_settings(!mc.weights.empty(), net.spec().name);
  SGD sgd(seed_groups(parts[0], parts[1], parts[2], gs));

  // ---- state ----
  TrainingState state;
  state.classes = train_set->classes();
  if (resuming) {
    const std::string path = !options.resume_path.empty() ? options.resume_path
                             : options.resume          ? (out / "last.safetensors").string()
                                                       : e.run.resume;
    const TrainingState saved = load_checkpoint(path, net, &sgd);
    if (saved.classes != state.classes)
      throw Error(str(path, ": the checkpoint was trained on other classes (", saved.classes.size(), ") than ", e.data.train,
                      " (", state.classes.size(), ")"));
    state = saved;
    log.line(str("resumed from ", path, " at epoch ", state.epoch + 1, state.batch ? str(", batch ", state.batch + 1) : ""));
  }

  write_text(out / "config.yaml", resolved_config(e));
  std::string class_list;
  for (const std::string& c : state.classes) class_list += c + "\n";
  write_text(out / "classes.txt", class_list);
  write_text(out / "net.dot", topology_dot(net));

  log.line(str("model: ", net.spec().name, ", ", net.parameter_count(), " parameters, ", classes, " classes, input ",
               batch_shape.str(), ", freeze ", mc.freeze));
  log.line(str("data: ", train_set->size(), " training images", val_set ? str(", ", val_set->size(), " validation images") : "",
               "; train ", train_loader.pipeline().describe(), "; ", e.data.workers, " workers"));
  log.line(str("solver: SGD momentum ", e.solver.momentum, e.solver.nesterov ? " (Nesterov)" : "", ", ", e.solver.epochs,
               " epochs, schedule ", e.solver.schedule.describe()));
  for (const ParamGroup& g : sgd.groups()) {
    int64_t count = 0, trainable = 0;
    for (const NamedParameter& p : g.params) {
      count += p.param->value.numel();
      if (!p.param->frozen) trainable += p.param->value.numel();
    }
    log.line(str("  group ", g.name, ": ", g.params.size(), " tensors, ", count, " parameters (", trainable,
                 " trainable), lr ", g.base_lr, ", weight decay ", g.weight_decay));
  }

  std::unique_ptr<Layer> loss = make_loss(e.solver.label_smoothing);
  g_signal.store(0);
  auto previous_int = std::signal(SIGINT, on_signal);
  auto previous_term = std::signal(SIGTERM, on_signal);
  struct Restore {
    decltype(previous_int) a, b;
    ~Restore() {
      std::signal(SIGINT, a);
      std::signal(SIGTERM, b);
    }
  } restore{previous_int, previous_term};

  const int64_t iterations = train_loader.batches_per_epoch();
  std::ofstream iteration_log(out / "iterations.csv", std::ios::app);
  if (fs::file_size(out / "iterations.csv") == 0) iteration_log << "epoch,iteration,loss,top1,top5,lr\n";
  Tensor loss_value = Tensor::empty(Shape(std::vector<int64_t>{}), DType::F32, device);
  Tensor one = Tensor::full(Shape(std::vector<int64_t>{}), 1.0, DType::F32, device);
  Tensor dlogits;
  const auto save = [&](const fs::path& path) { save_checkpoint(path.string(), net, &sgd, state, e.file); };

  for (; state.epoch < e.solver.epochs; ++state.epoch) {
    const int64_t epoch = state.epoch;
    net.set_training(true);
    sgd.apply(e.solver.schedule, {epoch, state.batch, iterations});
    train_loader.start_epoch(epoch, state.batch);
    Meter meter;
    meter.loss = state.partial_loss;
    meter.top1 = state.partial_top1;
    meter.top5 = state.partial_top5;
    meter.images = state.partial_images;
    const auto started = Clock::now();
    const int64_t first_batch = state.batch;
    const double wait_before = train_loader.stats().wait_seconds;
    int64_t images_this_run = 0;
    while (std::optional<data::Batch> batch = train_loader.next()) {
      const int64_t it = batch->index;
      if (e.solver.schedule.per_iteration()) sgd.apply(e.solver.schedule, {epoch, it, iterations});
      const Tensor x = images_on(*batch, device);
      const Tensor labels = batch->labels.to_async(device);
      ensure_setup(net, x.shape(), device, e.run.seed);
      net.set_step(static_cast<uint64_t>(state.step));
      const Tensor& logits = net.forward(x);
      SetupContext ctx;
      ctx.device = device;
      ctx.name = "loss";
      loss->setup({logits.shape(), labels.shape()}, ctx);
      loss->forward({logits, labels}, {loss_value});
      const double value = loss_value.item();
      if (!std::isfinite(value)) {
        save(out / "failed.safetensors");
        throw Error(str("epoch ", epoch + 1, " iteration ", it + 1, ": the loss is ", value,
                        "; the first layer with a non-finite output is ", first_bad_output(net),
                        ". The last good checkpoint is ", (out / "last.safetensors").string(),
                        " (this state is in failed.safetensors); try a lower solver.lr"));
      }
      if (!dlogits.defined() || dlogits.shape() != logits.shape()) dlogits = Tensor::empty(logits.shape(), DType::F32, device);
      sgd.zero_grad();
      loss->backward({logits, labels}, {loss_value}, {one}, {dlogits, Tensor()});
      net.backward(dlogits);
      for (int i = net.size() - 1; i >= 0; --i)
        for (const Parameter& p : net.layer(i).parameters())
          if (!p.frozen && !finite(p.grad))
            throw Error(str("epoch ", epoch + 1, " iteration ", it + 1, ": the gradient of ", net.layer_spec(i).name, ".",
                            p.name, " is not finite (the first such layer going backward); the last good checkpoint is ",
                            (out / "last.safetensors").string(), "; try a lower solver.lr"));
      sgd.step();
      ++state.step;
      const std::vector<int64_t> correct = topk_correct(logits, labels, {1, 5});
      const int64_t n = batch->size();
      meter.add(value, n, correct[0], correct[1]);
      images_this_run += n;
      state.batch = it + 1;
      state.partial_loss = meter.loss;
      state.partial_top1 = meter.top1;
      state.partial_top5 = meter.top5;
      state.partial_images = meter.images;

      const double elapsed = seconds_since(started);
      const double rate = static_cast<double>(images_this_run) / std::max(elapsed, 1e-9);
      const double wait = train_loader.stats().wait_seconds - wait_before;
      const bool keep = (it + 1) % e.run.print_every == 0 || it + 1 == iterations;
      const double eta = elapsed / static_cast<double>(it + 1 - first_batch) * static_cast<double>(iterations - it - 1);
      log.progress(str("epoch ", epoch + 1, "/", e.solver.epochs, " [", it + 1, "/", iterations, "] loss ",
                       fmt_fixed(meter.mean_loss(), 4), " top1 ", fmt_fixed(meter.acc1(), 2), " top5 ", fmt_fixed(meter.acc5(), 2),
                       " lr ", sgd.groups()[0].lr, " | ", fmt_fixed(rate, 1), " img/s, data wait ",
                       fmt_fixed(100 * wait / std::max(elapsed, 1e-9), 0), "%, ETA ", duration(eta)),
                   keep);
      if (keep) iteration_log << epoch + 1 << "," << it + 1 << "," << value << "," << 100.0 * correct[0] / n << ","
                              << 100.0 * correct[1] / n << "," << sgd.groups()[0].lr << "\n" << std::flush;
      if (g_signal.load() != 0 || (options.stop_after_steps >= 0 && state.step >= options.stop_after_steps)) {
        train_loader.stop();
        save(out / "last.safetensors");
        const int sig = g_signal.load() != 0 ? g_signal.load() : SIGINT;
        log.line(str("interrupted (", sig == SIGINT ? "SIGINT" : "SIGTERM", ") at epoch ", epoch + 1, " iteration ", it + 1,
                     ": checkpoint saved to ", (out / "last.safetensors").string(), "; continue with --resume"));
        return 128 + sig;
      }
    }
    const double seconds = seconds_since(started);
    EpochMetrics m;
    m.epoch = epoch + 1;
    m.train_loss = meter.mean_loss();
    m.train_top1 = meter.acc1();
    m.train_top5 = meter.acc5();
    m.lr = sgd.groups()[0].lr;
    m.seconds = seconds;
    m.images_per_second = static_cast<double>(images_this_run) / std::max(seconds, 1e-9);
    m.val_loss = m.val_top1 = m.val_top5 = NAN;
    if (val_loader) {
      const EvalResult r = evaluate(net, *val_loader, device, 0, [&](int64_t done, int64_t total) {
        log.progress(str("validating [", done, "/", total, "]"), false);
      });
      m.val_loss = r.loss;
      m.val_top1 = r.top1;
      m.val_top5 = r.top5;
    }
    log.line(str("epoch ", epoch + 1, "/", e.solver.epochs, ": train loss ", fmt_fixed(m.train_loss, 4), " top1 ",
                 fmt_fixed(m.train_top1, 2), " top5 ", fmt_fixed(m.train_top5, 2),
                 val_loader ? str(" | val loss ", fmt_fixed(m.val_loss, 4), " top1 ", fmt_fixed(m.val_top1, 2), " top5 ",
                                  fmt_fixed(m.val_top5, 2))
                            : "",
                 " | ", duration(seconds), ", ", fmt_fixed(m.images_per_second, 1), " img/s"));
    state.history.push_back(m);
    state.batch = 0;
    state.partial_loss = state.partial_top1 = state.partial_top5 = 0;
    state.partial_images = 0;
    const double score = val_loader ? m.val_top1 : m.train_top1;
    const bool best = score > state.best_top1;
    if (best) state.best_top1 = score;
    ++state.epoch;  // the checkpoint records the epoch to run next
    save(out / "last.safetensors");
    if (best) save(out / "best.safetensors");
    if (e.run.keep_every_epoch) save(out / str("epoch-", epoch + 1, ".safetensors"));
    --state.epoch;
    write_text(out / "metrics.csv", metrics_csv(state.history));
    write_text(out / "curves.svg", curves_svg(state.history, str(net.spec().name, ": ", e.file)));
  }

  if (e.data.eval_crops > 1 && val_set) {
    load_checkpoint((out / "best.safetensors").string(), net, nullptr);
    data::LoaderOptions vo = lo;
    vo.shuffle = false;
    vo.batch_size = std::max<int64_t>(1, (e.data.val_batch ? e.data.val_batch : e.data.batch) / e.data.eval_crops);
    data::Loader crops_loader(val_set, make_pipeline(e.data, false, e.data.eval_crops), vo);
    const EvalResult r = evaluate(net, crops_loader, device, 0);
    log.line(str("best model, ", e.data.eval_crops, "-crop evaluation: loss ", fmt_fixed(r.loss, 4), " top1 ",
                 fmt_fixed(r.top1, 2), " top5 ", fmt_fixed(r.top5, 2), " on ", r.images, " images"));
  }
  log.line(str("done: best top-1 ", fmt_fixed(state.best_top1, 2), "%; run folder ", out.string()));
  return 0;
}

}  // namespace mpncov
