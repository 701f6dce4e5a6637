// Argument checks and backend dispatch for core/optim_ops.h.
#include "core/optim_ops.h"

#include "core/cpu/optim_cpu.h"
#include "core/cuda_optim_backend.h"
#include "core/dispatch.h"

namespace mpncov::ops {

void sgd_update(const Tensor& w, const Tensor& grad, const Tensor& buf, const SgdStep& step) {
  const bool use_buf = step.momentum != 0;
  const Tensor momentum_buf = use_buf ? buf : Tensor();  // read only with momentum
  check_same("sgd_update", {&w, &grad, &momentum_buf});
  MPNCOV_CHECK(grad.defined(), "sgd_update: undefined gradient");
  MPNCOV_CHECK(!use_buf || buf.defined(), "sgd_update: momentum ", step.momentum, " needs a momentum buffer");
  MPNCOV_CHECK(!step.nesterov || use_buf, "sgd_update: Nesterov momentum needs momentum > 0");
  MPNCOV_CHECK(grad.numel() == w.numel() && (!use_buf || buf.numel() == w.numel()), "sgd_update: gradient ",
               grad.str(), " or momentum buffer ", momentum_buf.str(), " does not match the weight ", w.str());
  if (w.numel() == 0) return;
  dispatch(
      w,
      [&](auto device) {
        cuda::sgd_update(device, w.data<float>(), grad.data<float>(), ptr<float>(momentum_buf),
                         w.numel(), static_cast<float>(step.lr), static_cast<float>(step.weight_decay),
                         static_cast<float>(step.momentum), step.nesterov, step.first);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::sgd_update<T>(w.data<T>(), grad.data<T>(), ptr<T>(momentum_buf), w.numel(),
                           static_cast<T>(step.lr), static_cast<T>(step.weight_decay), static_cast<T>(step.momentum),
                           step.nesterov, step.first);
      });
}

}  // namespace mpncov::ops
