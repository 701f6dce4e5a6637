// Linked instead of core/cuda/nn_*.cu when mpncov is built without CUDA: every entry point says so.
#include "core/cuda_nn_backend.h"
#include "core/error.h"

namespace mpncov::cuda {
namespace {
[[noreturn]] void absent() {
  throw Error("this build of mpncov has no CUDA backend; reconfigure with -DMPNCOV_CUDA=ON on a machine with the "
              "CUDA toolkit, or use --device cpu");
}
}  // namespace

void conv2d_forward(int, const float*, const float*, const float*, float*, int64_t, const ops::ConvGeometry&, int64_t,
                    int64_t) { absent(); }
void conv2d_backward(int, const float*, const float*, const float*, float*, float*, float*, int64_t,
                     const ops::ConvGeometry&, int64_t, int64_t) { absent(); }
void max_pool2d_forward(int, const float*, float*, int64_t*, const PoolShape&, const ops::Pool2dParams&) { absent(); }
void max_pool2d_backward(int, const float*, const int64_t*, float*, const PoolShape&, const ops::Pool2dParams&) {
  absent();
}
void avg_pool2d_forward(int, const float*, float*, const PoolShape&, const ops::Pool2dParams&) { absent(); }
void avg_pool2d_backward(int, const float*, float*, const PoolShape&, const ops::Pool2dParams&) { absent(); }
void adaptive_avg_pool2d_forward(int, const float*, float*, const PoolShape&) { absent(); }
void adaptive_avg_pool2d_backward(int, const float*, float*, const PoolShape&) { absent(); }
void batch_norm_forward(int, const float*, const float*, const float*, float*, float*, float*, float*, float*, int64_t,
                        int64_t, int64_t, bool, double, double) { absent(); }
void batch_norm_backward(int, const float*, const float*, const float*, const float*, const float*, float*, float*,
                         float*, int64_t, int64_t, int64_t, bool) { absent(); }
void lrn_forward(int, const float*, float*, float*, int64_t, int64_t, int64_t, const ops::LrnParams&) { absent(); }
void lrn_backward(int, const float*, const float*, const float*, const float*, float*, int64_t, int64_t, int64_t,
                  const ops::LrnParams&) { absent(); }
void softmax_cross_entropy_forward(int, const float*, const int64_t*, float*, float*, int64_t, int64_t, double) {
  absent();
}
void softmax_cross_entropy_backward(int, const float*, const int64_t*, const float*, float*, int64_t, int64_t,
                                    double) { absent(); }
void relu_backward(int, const float*, const float*, float*, int64_t) { absent(); }
void copy_channels(int, const float*, int64_t, int64_t, float*, int64_t, int64_t, int64_t, int64_t, int64_t) {
  absent();
}

}  // namespace mpncov::cuda
