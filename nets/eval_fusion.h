// Evaluation-mode fusion: a convolution whose output only a batch norm reads (4-D, not synced), and the
// ReLU that runs in place on that batch norm's output, run as one convolution in evaluation mode. Batch
// norm on its running statistics is a per-channel affine map, out = scale * in + shift: the convolution
// runs with its weights scaled per output channel (as oneDNN's reorder copies them into the kernel's
// layout, at no extra pass), the shift in its bias, and the ReLU as a post-op: the two passes over the
// activation that the batch norm and the ReLU would cost are gone. scale and shift are computed from the
// batch norm's current parameters and statistics at every forward (C values each), so nothing cached can
// go stale after an SGD step or a weights load; the net's weights are not touched. With keep_prepared on
// (Net::set_weights_fixed: the caller vouches for the weights) the scaled weights made for the kernel are
// kept between forwards, made again when the scale or shift moved (ops::PreparedConv).
//
// A residual add joins the run where the batch norm is the later of an add's two inputs and its only
// reader, the other computed before the convolution, the add runs in place on its first input and both inputs are in a kernel layout (not NCHW),
// with the ReLU after the add when that runs in place on it: the convolution then adds the other input
// before the ReLU (a post-op, core/nn_ops.h), and the add's pass is gone too. Where the batch norm is
// the add's second input (a downsampling block's shortcut), the add's output is the first input's storage:
// the residual is already there and the kernel adds to what it overwrites. Where the kernel would lose its
// Winograd algorithm to the add, or where no kernel takes it in the output's layout (an NCHW input into
// NHWC), the add (and ReLU) runs in a pass of its own after the folded convolution (a run that adds in
// place on its shortcut then stays unfused).
//
// Where the batch norm is the add's first input (an identity block: the shortcut is the block's input) and
// no layer reads the shortcut after the add, evaluation writes the add's output (and what runs in place on
// it) onto the shortcut's storage instead of the batch norm's (Net keeps a second map of the outputs for
// such forwards): the kernel adds to what it overwrites as in a downsampling block, one stream over the
// activation less than reading the shortcut beside a fresh output (in resnet50 at batch 8, 0.2-0.6 ms per
// block). The shortcut's own output is gone after such a forward (Net::output refuses it); training, which
// reads the shortcut again in its backward pass, keeps the storage it had.
//
// An average pooling that runs after its pointwise convolution (nets/commuted_pooling.h) joins that
// convolution's run, there being no residual add: the convolution (batch norm scale folded in) runs first
// on the pooling's input and the pooling after it, over the convolution's fewer output channels, then the
// batch norm's shift and the ReLU in one pass (ops::channel_bias). The shift comes after the pooling because a
// pooling that counts the padding in its divisor does not keep constants at the borders. The convolution's
// output is left unwritten; its result before pooling lives in the commuted pooling's scratch. Where such a
// run cannot fuse, the pair runs commuted as in training and the batch norm
// and ReLU on their own.
//
// Only where one kernel does it all: CPU float32 nets with float32 precision, the convolution in oneDNN
// (core/nn_ops.h conv2d_forward_affine: every layout but NHWC 1x1). Elsewhere, in training, with in-place
// execution off (Net::set_in_place(false), as extract does, to keep every layer's output) or with
// MPNCOV_EVAL_FUSION=0 in the environment, the layers run one by one. A fused convolution writes the final output (the ReLU's,
// or the batch norm's without one); the convolution's own output is left unwritten, so Net::output of it
// refuses until an unfused forward, and a backward after a fused forward first runs the forward again
// unfused.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/nn_ops.h"
#include "layers/layer.h"
#include "nets/commuted_pooling.h"

namespace mpncov {

// Whether MPNCOV_EVAL_FUSION allows fusion (read once per process; anything but "0" does).
bool eval_fusion_enabled();

class EvalFusion {
 public:
  // Finds the runs: per layer its inputs and readers (net indices, -1 the net input), whether it runs in
  // place on its first input, and whether its output lives in storage shared by recomputed chains.
  // layouts: of each layer's output; pooling: the average poolings that run after their convolution.
  void plan(const std::vector<std::unique_ptr<Layer>>& layers, const std::vector<std::vector<int>>& inputs,
            const std::vector<std::vector<int>>& consumers, const std::vector<bool>& in_place,
            const std::vector<bool>& shared, const std::vector<Layout>& layouts, const CommutedPooling& pooling);
  // Starts a forward: fusion applies in it when `allowed` (evaluation, float32 CPU, in place on).
  void begin(bool allowed);
  // Whether the fused convolutions keep their prepared weights between forwards (Net::set_weights_fixed).
  // Either way, what was kept is dropped: the next fused forward prepares from the weights as they are.
  void keep_prepared(bool on);
  // Runs layer i's part in a fused run: the convolution with the epilogue (true), or nothing for a batch
  // norm or ReLU folded into it (true). False: layer i runs as usual (not in a run, or the run could not
  // fuse this time). pooling: the plan given to plan(), whose scratch a commuted run uses.
  bool forward(int i, const std::vector<std::unique_ptr<Layer>>& layers, const std::vector<Tensor>& in,
               const std::vector<Tensor>& outputs, const CommutedPooling& pooling);
  // Whether the last forward fused any run, and whether it ran layer i's part fused: the convolution, or a
  // commuted pooling before it.
  bool fused_any() const { return fused_any_; }
  bool ran_fused(int i) const {
    const int head = head_of_[static_cast<size_t>(i)];
    if (head == i) return fused_[static_cast<size_t>(i)];
    return head >= 0 && pooled_[static_cast<size_t>(head)] && runs_[static_cast<size_t>(head)].pool == i;
  }
  // Whether it left layer i's own output unwritten: those above, and a batch norm that is its add's second
  // input (the run wrote the add's output, which is the first input's storage), or the first one of an add
  // that writes onto its residual (the run wrote the add's output there).
  bool left_unwritten(int i) const {
    const int head = head_of_[static_cast<size_t>(i)];
    if (ran_fused(i)) return true;
    if (head < 0 || !fused_[static_cast<size_t>(head)]) return false;
    const Run& run = runs_[static_cast<size_t>(head)];
    return run.bn == i && (run.bn_apart || (run.onto && !run.bn_written));
  }
  // Whether the last forward ran layer i, a run's residual add, in a pass of its own after the folded
  // convolution (the kernel would not take it: see the header) rather than inside the kernel.
  bool added_apart(int i) const {
    const int head = head_of_[static_cast<size_t>(i)];
    return head >= 0 && runs_[static_cast<size_t>(head)].add == i && added_apart_[static_cast<size_t>(head)];
  }
  // The convolution a layer would be folded into in evaluation (-1: none); the convolution itself is its own.
  int head_of(int i) const { return head_of_[static_cast<size_t>(i)]; }
  // For an add whose run writes onto its residual's storage in evaluation (see the header): that residual
  // (its shortcut, the add's other input); else -1. The net then keeps the add's output (and what runs in
  // place on it) in the residual's storage in such forwards.
  int onto_residual_of(int add) const { return onto_residual_[static_cast<size_t>(add)]; }
  // Whether fusion applies in the current (last) forward.
  bool allowed() const { return allowed_; }

 private:
  struct Run {
    int bn = -1, relu = -1;  // the folded layers (relu -1: none; after the add when there is one)
    int add = -1;            // a folded residual add (-1: none)
    int residual = -1;       // the add's other input
    bool bn_apart = false;   // the batch norm is the add's second input: its own storage is not the add's
    bool onto = false;       // the add writes onto the residual's storage (onto_residual_of)
    bool bn_written = false;  // the last forward wrote the batch norm's own output (onto, the add apart)
    int pool = -1;           // a commuted average pooling before the convolution (-1: none)
    int last = -1;           // whose output the fused convolution writes
    Tensor scale, shift;
    std::shared_ptr<ops::PreparedConv> prepared;  // kept operands, with keep_prepared on
  };
  // The commuted run of convolution `conv`, at its pooling's turn (in: the pooling's input).
  bool forward_pooled(int conv, const std::vector<std::unique_ptr<Layer>>& layers, const std::vector<Tensor>& in,
                      const std::vector<Tensor>& outputs, const CommutedPooling& pooling);

  std::vector<int> head_of_;  // per layer: its run's convolution, or -1
  std::vector<int> onto_residual_;  // per add: the residual whose storage it writes in evaluation, or -1
  std::vector<Run> runs_;     // per layer: set for a run's convolution
  std::vector<bool> fused_;   // per convolution: whether the current (last) forward fused its run
  std::vector<bool> pooled_;  // per convolution: whether it ran commuted with its pooling (at the pooling's turn)
  std::vector<bool> added_apart_;  // per convolution: whether the last forward ran its run's add in a pass of its own
  Tensor zero_shift_;         // the convolution's (zero) shift in a commuted run
  bool allowed_ = false, fused_any_ = false, keep_ = false;
};

}  // namespace mpncov
