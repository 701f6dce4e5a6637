// Argument checks and backend dispatch for core/optim_ops.h.
#include "core/optim_ops.h"

#include "core/cpu/optim_cpu.h"
#include "core/cuda_optim_backend.h"

namespace mpncov::ops {

void sgd_update(const Tensor& w, const Tensor& grad, const Tensor& buf, const SgdStep& step) {
  const bool use_buf = step.momentum != 0;
  MPNCOV_CHECK(w.defined() && grad.defined(), "sgd_update: undefined weight or gradient");
  MPNCOV_CHECK(!use_buf || buf.defined(), "sgd_update: momentum ", step.momentum, " needs a momentum buffer");
  MPNCOV_CHECK(!step.nesterov || use_buf, "sgd_update: Nesterov momentum needs momentum > 0");
  MPNCOV_CHECK(w.dtype() == DType::F32 || w.dtype() == DType::F64, "sgd_update: needs float32 or float64, got ",
               w.str());
  auto same = [&](const Tensor& t, const char* what) {
    MPNCOV_CHECK(t.device() == w.device() && t.dtype() == w.dtype() && t.numel() == w.numel(), "sgd_update: ",
                 what, " ", t.str(), " does not match the weight ", w.str());
  };
  same(grad, "gradient");
  if (use_buf) same(buf, "momentum buffer");
  if (w.numel() == 0) return;
  if (w.device().is_cuda()) {
    MPNCOV_CHECK(w.dtype() == DType::F32, "sgd_update: the CUDA backend computes float32 only, got ", w.str());
    return cuda::sgd_update(w.device().index, w.data<float>(), grad.data<float>(),
                            use_buf ? buf.data<float>() : nullptr, w.numel(), static_cast<float>(step.lr),
                            static_cast<float>(step.weight_decay), static_cast<float>(step.momentum),
                            step.nesterov, step.first);
  }
  if (w.dtype() == DType::F32)
    return cpu::sgd_update<float>(w.data<float>(), grad.data<float>(), use_buf ? buf.data<float>() : nullptr,
                                  w.numel(), static_cast<float>(step.lr), static_cast<float>(step.weight_decay),
                                  static_cast<float>(step.momentum), step.nesterov, step.first);
  cpu::sgd_update<double>(w.data<double>(), grad.data<double>(), use_buf ? buf.data<double>() : nullptr, w.numel(),
                          step.lr, step.weight_decay, step.momentum, step.nesterov, step.first);
}

}  // namespace mpncov::ops
