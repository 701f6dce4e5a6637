#include "train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/bf16_support.h"
#include "core/context.h"
#include "core/dist/communicator.h"
#include "core/ops.h"
#include "core/text.h"
#include "data/presets.h"
#include "layers/accuracy.h"
#include "nets/inspect.h"
#include "nets/model.h"
#include "nets/weights.h"
#include "optim/param_group.h"
#include "optim/sgd.h"
#include "train/checkpoint.h"
#include "train/curves.h"
#include "train/gradient_reducer.h"
#include "train/pipeline_config.h"
#include "train/run_folder.h"
#include "train/step.h"

namespace mpncov {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::atomic<int> g_signal{0};
extern "C" void on_signal(int sig) {
  g_signal.store(sig);
  dist::note_stop_signal(sig);  // a data-parallel run stops waiting for a process that is gone
}

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
  // A disabled log (the other ranks of a data-parallel run) writes nothing anywhere.
  Log(const fs::path& file, bool quiet, bool enabled = true)
      : quiet_(quiet || !enabled), tty_(isatty(fileno(stdout))), enabled_(enabled) {
    if (enabled_) file_.open(file, std::ios::app);
  }
  // A progress line still showing (an error is on its way) is ended, so the error starts a line of its own.
  ~Log() {
    if (pending_) std::printf("\n");
    std::fflush(stdout);
  }
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;
  void line(const std::string& text) {
    if (!enabled_) return;
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
  bool quiet_, tty_, enabled_, pending_ = false;
};

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

// SIGINT/SIGTERM set g_signal while a run is in progress; the previous handlers come back after it.
class SignalGuard {
 public:
  SignalGuard() : int_(std::signal(SIGINT, on_signal)), term_(std::signal(SIGTERM, on_signal)) { g_signal.store(0); }
  ~SignalGuard() {
    std::signal(SIGINT, int_);
    std::signal(SIGTERM, term_);
  }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;

 private:
  void (*int_)(int);
  void (*term_)(int);
};

// Images of a batch on the device, reshaped for the net: (B * crops, 3, H, W). The copy from the loader's
// pinned buffer is queued without waiting; the batch's buffers return to the loader only after it.
Tensor images_on(const data::Batch& b, Device device) {
  const Tensor& x = b.images;
  const Tensor flat = x.ndim() == 5 ? x.reshape({x.dim(0) * x.dim(1), x.dim(2), x.dim(3), x.dim(4)}) : x;
  return b.to_device_async(flat, device);
}

void ensure_setup(Net& net, const Shape& input, Device device) {
  if (!net.is_setup() || net.input_shape() != input) net.setup(input, DType::F32, device);  // the net's seed
}

}  // namespace

std::string resume_checkpoint(const Experiment& e, const TrainOptions& options) {
  if (!options.resume_path.empty())
    return fs::is_directory(options.resume_path) ? (fs::path(options.resume_path) / "last.safetensors").string()
                                                 : options.resume_path;
  if (options.resume) return (fs::path(e.run.out) / "last.safetensors").string();
  return e.run.resume;
}

Device resolve_device(const std::string& name, int local_rank) {
  if (name == "auto") return cuda_device_count() > 0 ? Device::cuda(local_rank % cuda_device_count()) : Device::cpu();
  const Device d = Device::parse(name);
  require_device(d);
  return d;
}

EvalResult evaluate(Net& net, data::Loader& loader, Device device, int64_t epoch,
                    const std::function<void(int64_t, int64_t)>& progress, dist::Communicator* shards) {
  const FixedWeights fixed(net);  // nothing updates the weights during the pass
  std::unique_ptr<Layer> loss = make_loss(0.0);
  Meter meter;
  loader.start_epoch(epoch);
  const int64_t total = loader.batches_per_epoch();
  int64_t done = 0;
  while (std::optional<data::Batch> batch = loader.next()) {
    const int64_t n = batch->size();
    const int64_t crops = batch->images.ndim() == 5 ? batch->images.dim(1) : 1;
    const Tensor x = images_on(*batch, device);
    ensure_setup(net, x.shape(), device);
    Tensor logits = net.forward(x);
    if (crops > 1) logits = ops::reduce(ops::Reduce::Mean, logits.reshape({n, crops, -1}), {1});
    const Tensor labels = batch->to_device_async(batch->labels, device);
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
  if (shards && shards->size() > 1) {  // the sums over every process's shard: each image counted once
    Tensor sums = Tensor::from_vector({meter.loss, meter.top1, meter.top5, static_cast<double>(meter.images)}, Shape({4}),
                                      DType::F64);
    shards->all_reduce(sums);
    const std::vector<double> s = sums.to_vector();
    meter = Meter{s[0], s[1], s[2], static_cast<int64_t>(s[3])};
  }
  return {meter.mean_loss(), meter.acc1(), meter.acc5(), meter.images};
}

namespace {

// The samples the covariance layers guarded in the last forward (their trace below eps: Layer::diagnostics).
int64_t guarded_samples(Net& net) {
  double total = 0;
  for (int i = 0; i < net.size(); ++i) {
    const std::map<std::string, double> d = net.layer(i).diagnostics();
    if (auto it = d.find("guarded_samples"); it != d.end()) total += it->second;
  }
  return static_cast<int64_t>(total);
}

// Everything one run holds. The constructor is the setup (data, model, weights, optimiser, resumed
// state, the run folder's files); run() is the loop: an epoch of steps, validation, the end-of-epoch
// bookkeeping.
class Training {
 public:
  Training(const Experiment& e, const TrainOptions& options)
      : e_(e), options_(options), comm_(dist::world()), writer_(comm_.rank() == 0),
        device_(resolve_device(e.run.device, comm_.local_rank())), out_(e.run.out),
        log_((writer_ && fs::create_directories(out_), out_ / "log.txt"), options.quiet, writer_) {
    if (e.run.threads > 0) set_num_threads(e.run.threads);
    else if (comm_.local_size() > 1)  // the CPUs the launcher gave this process, or the machine's shared out
      set_num_threads(dist::cpus_per_process(comm_.local_size()));
    log_.line(str("mpncov train ", e.file, " -> ", out_.string(), " on ", device_.str(), " (", backends_summary(), ")"));
    if (comm_.size() > 1) log_.line(str("data-parallel: ", comm_.describe(), "; rank 0 on ", device_.str()));
    setup_data();
    if (comm_.size() > 1) same_data();
    setup_model();
    setup_state();
    if (comm_.size() > 1) same_start();
    write_run_files();
  }

  int run() {
    SignalGuard signals;
    // --stop-after N with N steps already done (0: the initial state) stops before another step.
    if (options_.stop_after_steps >= 0 && state_.step >= options_.stop_after_steps && state_.epoch < e_.solver.epochs)
      return interrupt(state_.epoch, state_.batch - 1, 0);
    try {
      for (; state_.epoch < e_.solver.epochs; ++state_.epoch) {
        if (const int code = train_epoch()) return code;
        end_epoch(validate());
      }
      finish();
    } catch (const SignalDuringEvaluation&) {
      return interrupt_evaluation();
    }
    return 0;
  }

 private:
  void setup_data() {
    auto warn = [&](const std::string& m) { log_.line("warning: " + m); };
    train_set_ = std::make_shared<const data::ImageFolder>(e_.data.train, warn);
    if (!e_.data.val.empty()) {
      val_set_ = std::make_shared<const data::ImageFolder>(e_.data.val, warn);
      if (val_set_->classes() != train_set_->classes())
        throw Error(str(e_.file, ": data.val has other class folders than data.train (", val_set_->classes().size(),
                        " vs ", train_set_->classes().size(), ")"));
    }
    classes_ = static_cast<int64_t>(train_set_->classes().size());
    if (e_.model.classes > 0 && e_.model.classes != classes_)
      throw Error(str(e_.file, ": model.classes is ", e_.model.classes, " but ", e_.data.train, " has ", classes_,
                      " class folders"));
    loader_options_.batch_size = e_.data.batch;
    loader_options_.workers = e_.data.workers;
    loader_options_.seed = e_.run.seed;
    loader_options_.drop_last = e_.data.drop_last;
    loader_options_.strict = e_.data.strict;
    loader_options_.rank = comm_.rank();
    loader_options_.world_size = comm_.size();
    loader_options_.log = [&](const std::string& m) { log_.line(m); };
    train_loader_ = std::make_unique<data::Loader>(train_set_, make_pipeline(e_.data, true, 1), loader_options_);
    if (train_loader_->batches_per_epoch() == 0)  // an epoch without a step: nothing would train
      throw Error(str(e_.file, ": data.drop_last leaves no training batch: ", e_.data.train, " gives ",
                      comm_.size() > 1 ? "each process " : "", (train_set_->size() + comm_.size() - 1) / comm_.size(),
                      " images, fewer than data.batch ", e_.data.batch, " (turn drop_last off or lower the batch)"));
    if (val_set_) {
      data::LoaderOptions vo = loader_options_;
      vo.shuffle = false;
      vo.drop_last = false;
      vo.pad_shards = false;  // every validation image counted once over all processes
      vo.batch_size = e_.data.val_batch ? e_.data.val_batch : e_.data.batch;
      vo.log = [&](const std::string& m) { log_.line("val " + m); };  // "val loader: ...", not the train loader's
      val_loader_ = std::make_unique<data::Loader>(val_set_, make_pipeline(e_.data, false, 1), vo);
    }
  }

  void setup_model() {
    ModelConfig mc = e_.model;
    mc.classes = classes_;
    net_ = std::make_unique<Net>(compose_model(mc));
    net_->set_precision(e_.solver.precision);
    apply_precision(e_.solver.precision, device_);
    const std::string notice = bf16_notice_once(e_.solver.precision, device_);
    if (!notice.empty()) log_.line(notice);
    net_->setup(train_loader_->batch_shape(), DType::F32, device_, e_.run.seed);
    net_->set_batch_rows(comm_.rank(), comm_.size());  // the loader's share: every size-th row from rank
    net_->freeze(mc.freeze);
    if (!mc.weights.empty() && !resuming()) load_backbone(mc.weights);
    std::vector<NamedParameter> parts[3];
    for (const NetParameter& p : net_->parameters()) parts[static_cast<int>(p.part)].push_back({p.name, p.parameter});
    GroupSettings gs = e_.solver.group_settings(!mc.weights.empty(), net_->spec().name);
    if (e_.solver.scale_lr == "linear") gs.lr *= comm_.size();  // the linear scaling rule for the global batch
    sgd_ = std::make_unique<SGD>(seed_groups(parts[0], parts[1], parts[2], gs));
    StepOptions so;
    so.label_smoothing = e_.solver.label_smoothing;
    if (comm_.size() > 1) {
      GradientReducerOptions ro;
      ro.bucket_mb = e_.run.bucket_mb;
      reducer_ = std::make_unique<GradientReducer>(*net_, comm_, ro);
      so.gradients = reducer_.get();
    }
    step_ = std::make_unique<TrainStep>(*net_, *sgd_, so);
  }

  // Pretrained weights (nets/weights.h): the backbone must fit; new representation and classifier layers
  // start afresh, and the log names them, the tensors of the file left unused and any prefix stripped.
  void load_backbone(const std::string& path) {
    const NetSpec original = load_net(resolve_net_path(e_.model.net));
    for (const std::string& line : load_pretrained(*net_, path, &original).lines())
      log_.line(line.rfind("warning:", 0) == 0 ? line : str("weights: ", path, ": ", line));
  }

  bool resuming() const { return !resume_checkpoint(e_, options_).empty(); }

  // Where solver.precision came from, for the log.
  std::string precision_source() const {
    const std::string& from = e_.solver.precision_from;
    if (from.empty()) return "the default (the experiment sets no solver.precision)";
    if (ends_with(from, " (--set)"))  // Config::where of a key given on the command line
      return "the command line (--precision or --set solver.precision)";
    return "the experiment (solver.precision at " + from + ")";
  }

  void setup_state() {
    state_.classes = train_set_->classes();
    state_.world_size = comm_.size();
    state_.batch_size = e_.data.batch;
    state_.precision = precision_name(e_.solver.precision);
    if (!resuming()) return;
    const std::string path = resume_checkpoint(e_, options_);
    const TrainingState saved = load_checkpoint(path, *net_, sgd_.get());
    if (saved.classes != state_.classes)
      throw Error(str(path, ": the checkpoint was trained on other classes (", saved.classes.size(), ") than ",
                      e_.data.train, " (", state_.classes.size(), ")"));
    state_ = saved;
    if (writer_) drop_iteration_rows_after(saved.epoch + 1, saved.batch);
    // best_top1 is the score of this folder's best.safetensors: a run started from another run's checkpoint
    // (a second stage) has none yet, and would never write one unless it beat the first stage.
    if (!fs::exists(out_ / "best.safetensors")) state_.best_top1 = -1;
    // Other processes, another data.batch or fewer training images: the interrupted epoch's batches differ,
    // so it continues after about as many images as it had seen (older checkpoints do not record data.batch).
    const int64_t batches = train_loader_->batches_per_epoch();
    const bool other_processes = saved.world_size != comm_.size();
    const bool other_batch = state_.batch > 0 && saved.batch_size > 0 && saved.batch_size != e_.data.batch;
    const bool past_end = state_.batch > batches;
    if (other_processes || other_batch || past_end) {
      const int64_t global = e_.data.batch * comm_.size();
      state_.batch = std::min((state_.partial_images + global - 1) / global, batches);
    }
    if (other_processes)
      log_.line(str("the checkpoint was saved by ", saved.world_size, " process(es), this run has ", comm_.size(),
                    ": weights, momentum and epoch continue, the data order changed"));
    if (other_batch)
      log_.line(str("the checkpoint was saved with data.batch ", saved.batch_size, ", this run has ", e_.data.batch,
                    ": weights, momentum and epoch continue, the batches changed"));
    if (past_end && !other_processes && !other_batch)
      log_.line(str("the checkpoint stopped at batch ", saved.batch, " of an epoch that has ", batches,
                    " batches here (the training images changed): the interrupted epoch continues from batch ",
                    state_.batch + 1));
    state_.world_size = comm_.size();
    state_.batch_size = e_.data.batch;
    state_.precision = precision_name(e_.solver.precision);
    // The experiment decides the precision, as it does data.batch; a checkpoint trained in another one
    // would otherwise switch silently (a run started with --precision bfloat16, resumed without it).
    if (saved.precision.empty())
      log_.line(str("the checkpoint does not record the precision it was trained in (an older mpncov): this run uses ",
                    state_.precision, ", from ", precision_source()));
    else if (saved.precision == state_.precision)
      log_.line(str("the checkpoint was trained in ", saved.precision, " too: the precision continues"));
    else
      log_.line(str("warning: the checkpoint was trained in ", saved.precision, ", but this run continues in ",
                    state_.precision, ", from ", precision_source(), ": resume with --precision ", saved.precision,
                    " to continue as it was trained"));
    log_.line(str("resumed from ", path, " at epoch ", state_.epoch + 1,
                  state_.batch ? str(", batch ", state_.batch + 1) : ""));
  }

  // Rows of iterations.csv after a checkpoint's position (1-based epoch, batches done) were written by a run
  // killed after that checkpoint; the resumed run writes them again, so they go.
  void drop_iteration_rows_after(int64_t epoch, int64_t batches) {
    const fs::path path = out_ / "iterations.csv";
    if (!fs::exists(path)) return;
    std::ifstream in(path);
    std::string kept, row;
    while (std::getline(in, row)) {
      long long e = 0, i = 0;
      const bool numbered = std::sscanf(row.c_str(), "%lld,%lld", &e, &i) == 2;  // not the header
      if (numbered && (e > epoch || (e == epoch && i > batches))) continue;
      kept += row + "\n";
    }
    in.close();
    write_text(path, kept);
  }

  // Every process starts from rank 0's parameters and buffers.
  // Every process must read the same folders: a process with other images (a machine's incomplete copy of
  // the data) would run other steps than the others, and their collectives would not match (a crash, a hang
  // or silently wrong shards). Rank 0's counts and a hash of the file names, compared before any other
  // collective; a process that differs stops the run, naming what it found.
  void same_data() {
    const auto fingerprint = [](const data::ImageFolder* folder, std::vector<double>& out) {
      uint64_t hash = 1469598103934665603ull;  // FNV-1a over the class names and each sample's path below the root
      const auto add = [&](const std::string& text) {
        for (const unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
        hash = (hash ^ 0xffu) * 1099511628211ull;  // a separator no name contains
      };
      if (folder) {
        for (const std::string& c : folder->classes()) add(c);
        const std::string& root = folder->root();  // the names below it: no file system call per image
        for (const data::Sample& sample : folder->samples())
          add(sample.path.compare(0, root.size(), root) == 0 ? sample.path.substr(root.size()) : sample.path);
      }
      out.push_back(folder ? static_cast<double>(folder->size()) : 0.0);
      out.push_back(static_cast<double>(hash >> 32));  // two exact halves in float64
      out.push_back(static_cast<double>(hash & 0xffffffffu));
    };
    std::vector<double> mine;
    fingerprint(train_set_.get(), mine);
    fingerprint(val_set_.get(), mine);
    Tensor first = Tensor::from_vector(mine, Shape({static_cast<int64_t>(mine.size())}), DType::F64);
    comm_.broadcast(first, 0);
    const std::vector<double> rank0 = first.to_vector();
    for (size_t part = 0; part < 2; ++part) {
      const size_t at = part * 3;
      if (std::equal(mine.begin() + at, mine.begin() + at + 3, rank0.begin() + at)) continue;
      const std::string key = part == 0 ? "data.train" : "data.val", folder = part == 0 ? e_.data.train : e_.data.val;
      const int64_t here = static_cast<int64_t>(mine[at]), there = static_cast<int64_t>(rank0[at]);
      throw Error(str(key, " (", folder, "): this process (rank ", comm_.rank(), ") finds ", here, " images, rank 0 ", there,
                      here == there ? " but with other file or class names" : "",
                      ": every process must read the same images (the same files at the same paths on every machine)"));
    }
  }

  void same_start() {
    for (const NamedTensor& t : net_->state()) comm_.broadcast(t.tensor, 0);
    net_->state_written();
  }

  void write_run_files() {
    if (!writer_) return;
    write_text(out_ / "config.yaml", resolved_config(e_));
    std::string class_list;
    for (const std::string& c : state_.classes) class_list += c + "\n";
    write_text(out_ / "classes.txt", class_list);
    write_text(out_ / "net.dot", topology_dot(*net_));
    // A resumed run's metrics as its checkpoint holds them: a kill after a checkpoint was saved and before
    // these files were written would leave them an epoch short, which no later epoch would write again.
    if (!state_.history.empty()) write_metrics();
    iteration_log_.open(out_ / "iterations.csv", std::ios::app);
    if (fs::file_size(out_ / "iterations.csv") == 0)  // this batch's figures, then the epoch's running means
      iteration_log_ << "epoch,iteration,batch_loss,batch_top1,batch_top5,mean_loss,mean_top1,mean_top5,lr\n";

    std::string table = topology_table(*net_);
    if (!table.empty() && table.back() == '\n') table.pop_back();
    log_.line(table);
    log_.line(str("model: ", net_->spec().name, ", ", net_->parameter_count(), " parameters, ", classes_,
                  " classes, input ", net_->input_shape().str(), ", freeze ", e_.model.freeze));
    if (e_.model.freeze > 0) {
      std::string items;
      for (const std::string& item : frozen_items(net_->spec(), e_.model.freeze)) items += (items.empty() ? "" : ", ") + item;
      log_.line(str("frozen (freeze ", e_.model.freeze, "): ", items, " (no gradient, no update; batch-norm statistics still follow the data)"));
    }
    log_.line(str("data: ", train_set_->size(), " training images",
                  val_set_ ? str(", ", val_set_->size(), " validation images") : "", "; train ",
                  train_loader_->pipeline().describe(), "; ", e_.data.workers, " workers",
                  comm_.size() > 1 ? str("; global batch ", e_.data.batch * comm_.size(), " = ", e_.data.batch, " per process x ",
                                         comm_.size(), " processes")
                                   : ""));
    log_.line(str("solver: SGD momentum ", e_.solver.momentum, e_.solver.nesterov ? " (Nesterov)" : "", ", ",
                  e_.solver.epochs, " epochs, schedule ", e_.solver.schedule.describe(), ", precision ",
                  precision_name(e_.solver.precision), " from ", precision_source()));
    for (const ParamGroup& g : sgd_->groups()) {
      int64_t count = 0, trainable = 0;
      for (const NamedParameter& p : g.params) {
        count += p.param->value.numel();
        if (!p.param->frozen) trainable += p.param->value.numel();
      }
      log_.line(str("  group ", g.name, ": ", g.params.size(), " tensors, ", count, " parameters (", trainable,
                    " trainable), lr ", g.base_lr, ", weight decay ", g.weight_decay));
    }
  }

  void save(const std::string& file) {
    if (writer_) save_checkpoint((out_ / file).string(), *net_, sgd_.get(), state_, e_.file);
  }

  // One epoch of training steps (from state_.batch when resuming mid-epoch). Returns 0, or the exit
  // status of an interruption after its checkpoint is saved.
  int train_epoch() {
    const int64_t epoch = state_.epoch;
    const int64_t iterations = train_loader_->batches_per_epoch();
    net_->set_training(true);
    // A run resumed after the epoch's last step (stopped there, or in its validation) keeps that step's
    // rate: it is the epoch's rate in metrics.csv.
    sgd_->apply(e_.solver.schedule, {epoch, std::min(state_.batch, iterations - 1), iterations});
    train_loader_->start_epoch(epoch, state_.batch);
    meter_ = Meter{state_.partial_loss, state_.partial_top1, state_.partial_top5, state_.partial_images};
    epoch_started_ = Clock::now();
    images_this_run_ = 0;
    guarded_this_run_ = 0;
    const int64_t first_batch = state_.batch;
    const double wait_before = train_loader_->stats().wait_seconds;
    while (std::optional<data::Batch> batch = train_loader_->next()) {
      const int64_t it = batch->index;
      if (e_.solver.schedule.per_iteration()) sgd_->apply(e_.solver.schedule, {epoch, it, iterations});
      const Tensor x = images_on(*batch, device_);
      const Tensor labels = batch->to_device_async(batch->labels, device_);
      net_->set_step(static_cast<uint64_t>(state_.step));
      try {
        step_->run(x, labels);
      } catch (const NonFiniteError& bad) {
        save("failed.safetensors");
        if (comm_.size() > 1)
          throw StoppedEverywhere(str("epoch ", epoch + 1, " iteration ", it + 1, ", rank ", comm_.rank(), ": ", bad.what(),
                                      ". The last good checkpoint is ", (out_ / "last.safetensors").string(),
                                      "; try a lower solver.lr"));
        throw Error(str("epoch ", epoch + 1, " iteration ", it + 1, ": ", bad.what(), ". The last good checkpoint is ",
                        (out_ / "last.safetensors").string(), " (this state is in failed.safetensors); try a lower solver.lr"));
      } catch (const Error& err) {
        // A last batch of one image, whose maps are 1x1 where a batch norm reads them: as in PyTorch, no
        // batch statistics. The fix is the experiment's.
        const std::string what = err.what();
        if (batch->size() != 1 || what.find("more than one value per channel") == std::string::npos) throw;
        throw Error(str(what, " (epoch ", epoch + 1, " iteration ", it + 1, " holds one image",
                        comm_.size() > 1 ? " on this process" : "", ": data.drop_last: true drops a last batch "
                        "this small, or use a larger data.image_size)"));
      }
      ++state_.step;
      double value = step_->loss();
      std::vector<int64_t> correct = topk_correct(step_->logits(), labels, {1, 5});
      int64_t n = batch->size();
      int64_t guarded = guarded_samples(*net_);
      int stop_signal = g_signal.load();
      if (comm_.size() > 1) {  // the step's numbers over all processes, and whether any was signalled
        Tensor sums = Tensor::from_vector({value * static_cast<double>(n), static_cast<double>(correct[0]),
                                           static_cast<double>(correct[1]), static_cast<double>(n),
                                           static_cast<double>(stop_signal), static_cast<double>(guarded)},
                                          Shape({6}), DType::F64);
        comm_.all_reduce(sums);
        const std::vector<double> s = sums.to_vector();
        n = static_cast<int64_t>(s[3]);
        value = s[0] / s[3];
        correct = {static_cast<int64_t>(s[1]), static_cast<int64_t>(s[2])};
        if (stop_signal == 0 && s[4] > 0) stop_signal = s[4] >= SIGTERM ? SIGTERM : SIGINT;
        guarded = static_cast<int64_t>(s[5]);
      }
      guarded_this_run_ += guarded;
      meter_.add(value, n, correct[0], correct[1]);
      images_this_run_ += n;
      state_.batch = it + 1;
      state_.partial_loss = meter_.loss;
      state_.partial_top1 = meter_.top1;
      state_.partial_top5 = meter_.top5;
      state_.partial_images = meter_.images;

      const double elapsed = seconds_since(epoch_started_);
      const double rate = static_cast<double>(images_this_run_) / std::max(elapsed, 1e-9);
      const double wait = train_loader_->stats().wait_seconds - wait_before;
      const bool keep = (it + 1) % e_.run.print_every == 0 || it + 1 == iterations;
      const double eta = elapsed / static_cast<double>(it + 1 - first_batch) * static_cast<double>(iterations - it - 1);
      log_.progress(str("epoch ", epoch + 1, "/", e_.solver.epochs, " [", it + 1, "/", iterations, "] batch loss ",
                        fmt_fixed(value, 4), " | epoch mean loss ", fmt_fixed(meter_.mean_loss(), 4), " top1 ",
                        fmt_fixed(meter_.acc1(), 2), " top5 ", fmt_fixed(meter_.acc5(), 2), " | lr ",
                        sgd_->groups()[0].lr, " | ", fmt_fixed(rate, 1),
                        " img/s, data wait ", fmt_fixed(100 * wait / std::max(elapsed, 1e-9), 0), "%, ETA ", duration(eta)),
                    keep);
      if (keep && writer_)
        iteration_log_ << epoch + 1 << "," << it + 1 << "," << value << "," << 100.0 * correct[0] / n << ","
                       << 100.0 * correct[1] / n << "," << meter_.mean_loss() << "," << meter_.acc1() << ","
                       << meter_.acc5() << "," << sgd_->groups()[0].lr << "\n" << std::flush;
      if (stop_signal != 0 || (options_.stop_after_steps >= 0 && state_.step >= options_.stop_after_steps))
        return interrupt(epoch, it, stop_signal);
    }
    return 0;
  }

  // A validation or the final multi-crop evaluation stops at its next batch on SIGINT/SIGTERM (they may
  // take many minutes), where a data-parallel run's processes need not agree: validation only in a
  // single-process run (the others' would wait for it), the final evaluation (rank 0 alone) always.
  struct SignalDuringEvaluation {};
  void stop_evaluation_on_signal(bool alone) const {
    if (alone && g_signal.load() != 0) throw SignalDuringEvaluation{};
  }

  int interrupt_evaluation() {
    const int sig = g_signal.load();
    const char* name = sig == SIGINT ? "SIGINT" : "SIGTERM";
    if (state_.epoch < e_.solver.epochs) {  // in validation: the epoch's steps are done, its validation is not
      save("last.safetensors");
      log_.line(str("interrupted (", name, ") validating epoch ", state_.epoch + 1, ": checkpoint saved to ",
                    (out_ / "last.safetensors").string(), "; --resume validates it and continues"));
    } else {
      log_.line(str("interrupted (", name, ") in the best model's multi-crop evaluation: training is complete (",
                    (out_ / "last.safetensors").string(), "); --resume runs the evaluation again"));
    }
    return 128 + sig;
  }

  int interrupt(int64_t epoch, int64_t it, int signal) {
    train_loader_->stop();
    save("last.safetensors");
    const int sig = signal != 0 ? signal : SIGINT;
    log_.line(str("interrupted (", sig == SIGINT ? "SIGINT" : "SIGTERM", ") at epoch ", epoch + 1, " iteration ", it + 1,
                  ": checkpoint saved to ", (out_ / "last.safetensors").string(), "; continue with --resume"));
    return 128 + sig;
  }

  // The epoch's metrics, validated when there is a validation folder.
  EpochMetrics validate() {
    const double seconds = seconds_since(epoch_started_);
    EpochMetrics m;
    m.epoch = state_.epoch + 1;
    m.train_loss = meter_.mean_loss();
    m.train_top1 = meter_.acc1();
    m.train_top5 = meter_.acc5();
    m.lr = sgd_->groups()[0].lr;
    m.seconds = seconds;
    m.images_per_second = static_cast<double>(images_this_run_) / std::max(seconds, 1e-9);
    m.val_loss = m.val_top1 = m.val_top5 = NAN;
    if (comm_.size() > 1) {
      // Batch norm statistics are per process without sync_bn: every process takes rank 0's (those the
      // checkpoint keeps), as PyTorch DDP does. And the bad files every process skipped, in one line.
      for (const NamedTensor& t : net_->state())
        if (t.name.find("running_") != std::string::npos || t.name.find("num_batches") != std::string::npos)
          comm_.broadcast(t.tensor, 0);
      net_->state_written();
      Tensor skipped = Tensor::full(Shape({1}), static_cast<double>(train_loader_->stats().epoch_skipped), DType::F64);
      comm_.all_reduce(skipped);
      if (skipped.item() > 0)
        log_.line(str("bad files skipped this epoch over all ", comm_.size(), " processes: ", skipped.item()));
    }
    if (val_loader_) {
      const EvalResult r = evaluate(*net_, *val_loader_, device_, state_.epoch, [&](int64_t done, int64_t total) {
        log_.progress(str("validating [", done, "/", total, "]"), false);
        stop_evaluation_on_signal(comm_.size() == 1);
      }, &comm_);
      m.val_loss = r.loss;
      m.val_top1 = r.top1;
      m.val_top5 = r.top5;
    }
    return m;
  }

  // Logs the epoch, keeps its metrics and saves the checkpoints, metrics.csv and curves.svg.
  void end_epoch(const EpochMetrics& m) {
    if (guarded_this_run_ > 0)
      log_.line(str("warning: epoch ", m.epoch, ": ", guarded_this_run_, " of ", images_this_run_,
                    " training images reached a covariance layer with a trace below its eps (feature maps zero or "
                    "constant): their output there is 0 and no gradient passes it (docs/representations.md, "
                    "the trace guard)"));
    log_.line(str("epoch ", m.epoch, "/", e_.solver.epochs, ": train loss ", fmt_fixed(m.train_loss, 4), " top1 ",
                  fmt_fixed(m.train_top1, 2), " top5 ", fmt_fixed(m.train_top5, 2),
                  val_loader_ ? str(" | val loss ", fmt_fixed(m.val_loss, 4), " top1 ", fmt_fixed(m.val_top1, 2),
                                    " top5 ", fmt_fixed(m.val_top5, 2))
                              : "",
                  " | ", duration(m.seconds), ", ", fmt_fixed(m.images_per_second, 1), " img/s"));
    state_.history.push_back(m);
    state_.batch = 0;
    state_.partial_loss = state_.partial_top1 = state_.partial_top5 = 0;
    state_.partial_images = 0;
    const double score = val_loader_ ? m.val_top1 : m.train_top1;
    const bool best = score > state_.best_top1;
    if (best) state_.best_top1 = score;
    ++state_.epoch;  // the checkpoint records the epoch to run next
    save("last.safetensors");
    if (best) save("best.safetensors");
    if (e_.run.keep_every_epoch) save(str("epoch-", m.epoch, ".safetensors"));
    --state_.epoch;
    write_metrics();
  }

  // metrics.csv and curves.svg from the history (every finished epoch's metrics, kept in the checkpoints).
  void write_metrics() {
    if (!writer_) return;
    write_text(out_ / "metrics.csv", metrics_csv(state_.history));
    write_text(out_ / "curves.svg", curves_svg(state_.history, str(net_->spec().name, ": ", e_.file)));
  }

  // After the last epoch: the best model's multi-crop evaluation, when asked for.
  void finish() {
    // No epoch trained in this folder: a run started from another run's checkpoint at or past its epochs.
    if (writer_ && !fs::exists(out_ / "best.safetensors")) {
      log_.line(str("nothing to train: the checkpoint is at epoch ", state_.epoch, " and solver.epochs is ",
                    e_.solver.epochs, " (raise it to train on); no best model in ", out_.string(), " to evaluate"));
      return;
    }
    // The multi-crop evaluation of the best model runs on rank 0 alone (it wrote that checkpoint).
    if (e_.data.eval_crops > 1 && val_set_ && writer_) {
      load_checkpoint((out_ / "best.safetensors").string(), *net_, nullptr);
      data::LoaderOptions vo = loader_options_;
      vo.rank = 0;
      vo.world_size = 1;
      vo.shuffle = false;
      vo.batch_size = std::max<int64_t>(1, (e_.data.val_batch ? e_.data.val_batch : e_.data.batch) / e_.data.eval_crops);
      data::Loader crops_loader(val_set_, make_pipeline(e_.data, false, e_.data.eval_crops), vo);
      const EvalResult r = evaluate(*net_, crops_loader, device_, 0, [&](int64_t, int64_t) { stop_evaluation_on_signal(true); });
      log_.line(str("best model, ", e_.data.eval_crops, "-crop evaluation: loss ", fmt_fixed(r.loss, 4), " top1 ",
                    fmt_fixed(r.top1, 2), " top5 ", fmt_fixed(r.top5, 2), " on ", r.images, " images"));
    }
    log_.line(str("done: best top-1 ", fmt_fixed(state_.best_top1, 2), "%; run folder ", out_.string()));
  }

  const Experiment& e_;
  const TrainOptions options_;
  dist::Communicator& comm_;
  const bool writer_;  // rank 0: prints, writes the run folder and the checkpoints
  const Device device_;
  const fs::path out_;
  Log log_;
  std::shared_ptr<const data::ImageFolder> train_set_, val_set_;
  int64_t classes_ = 0;
  data::LoaderOptions loader_options_;
  std::unique_ptr<data::Loader> train_loader_, val_loader_;
  std::unique_ptr<Net> net_;
  std::unique_ptr<SGD> sgd_;
  std::unique_ptr<GradientReducer> reducer_;  // data-parallel runs
  std::unique_ptr<TrainStep> step_;
  TrainingState state_;
  std::ofstream iteration_log_;
  Meter meter_;
  Clock::time_point epoch_started_;
  int64_t images_this_run_ = 0;
  int64_t guarded_this_run_ = 0;  // samples the covariance layers guarded in this run's steps of the epoch
};

}  // namespace

int train(const Experiment& e, const TrainOptions& options) {
  check_experiment(e, !resume_checkpoint(e, options).empty());
  // Before anything is written: a failed --resume would leave a log.txt that makes the run folder refuse
  // the fresh start that follows it.
  const std::string resume = resume_checkpoint(e, options);
  if (!resume.empty()) {
    if (!fs::is_regular_file(resume)) {
      const std::string& named = options.resume_path;
      if (options.resume && named.empty())
        throw Error(str("nothing to resume: ", resume, " does not exist (start the run without --resume)"));
      if (!named.empty() && fs::is_directory(named))
        throw Error(str("--resume ", named, ": a run folder without a last.safetensors checkpoint to continue"));
      throw Error(str("the checkpoint to resume from, ", resume,
                      fs::exists(resume) ? ", is neither a file nor a run folder" : ", does not exist"));
    }
    check_checkpoint_file(resume);
  }
  // Data-parallel: rank 0 alone owns the run folder; the others wait until it has checked it (or ended
  // the run, tools/train.cpp), so none of them sees rank 0's new files as an earlier run's.
  dist::Communicator& comm = dist::world();
  comm.set_timeout(e.run.dist_timeout);
  if (comm.rank() == 0) prepare_run_folder(e.run.out, options.resume, options.force, resume);
  if (comm.size() > 1) comm.barrier();
  try {
    return Training(e, options).run();
  } catch (const Error& error) {  // the run folder's log tells why the run stopped
    if (comm.rank() == 0 && fs::exists(fs::path(e.run.out) / "log.txt"))
      std::ofstream(fs::path(e.run.out) / "log.txt", std::ios::app) << "error: " << error.what() << "\n";
    throw;
  }
}

}  // namespace mpncov
