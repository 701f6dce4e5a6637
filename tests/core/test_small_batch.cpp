// Small batches: with fewer images than threads, convolution and the linear layer's products take
// another route (images one after another, each product cut into blocks over all threads; core/cpu/conv.cpp,
// core/cpu/gemm.cpp) than with a full batch (threads split the images). Both must give the same numbers:
// batches of 1, 2 and 3 against the per-sample slices of a batch of 8. Four threads make batches 1-3 small
// and 8 two full rounds; a batch of 5 is one round and one image left over. (Correct on any core count:
// four threads just share the cores.)
#include "core/nn_ops.h"
#include "tests/helpers.h"

using namespace mpncov;
using test::max_rel_diff;
using test::random_tensor;

namespace {

constexpr int64_t kFull = 8;
constexpr int kThreads = 4;

// Sets the thread count for a scope.
class Threads {
 public:
  explicit Threads(int n) : saved_(num_threads()) { set_num_threads(n); }
  ~Threads() { set_num_threads(saved_); }
  Threads(const Threads&) = delete;
  Threads& operator=(const Threads&) = delete;

 private:
  int saved_;
};

// dy with the samples from `keep` on set to zero: the batch-8 weight and bias gradients then sum over the
// first `keep` samples only, as a batch of `keep` does.
Tensor first_samples_only(const Tensor& dy, int64_t keep) {
  Tensor t = dy.clone();
  t.slice(keep, t.dim(0)).zero();
  return t;
}

double tolerance(DType dt) { return dt == DType::F32 ? 2e-5 : 1e-12; }

struct ConvCase {
  const char* name;
  DType dtype;
  int64_t c, h, w, o, k, stride, pad, groups;
  bool bias;
};

struct Results {
  Tensor y, dx, dw, db;
};

Results conv(const ConvCase& k, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& dy_full,
                 const ops::Conv2dParams& p, int64_t n) {
  const Tensor xs = x.slice(0, n).clone();
  const ops::ConvGeometry g = ops::conv_geometry(xs.shape(), w.shape(), p);
  Results r;
  r.y = Tensor::full({n, k.o, g.out_h(), g.out_w()}, 7.0, k.dtype);
  ops::conv2d_forward(xs, w, b, r.y, p);
  r.dx = Tensor::full(xs.shape(), 9.0, k.dtype);
  // Non-zero starting gradients: both routes must accumulate into them.
  r.dw = random_tensor(w.shape(), DType::F64, 25).to(k.dtype);
  if (k.bias) r.db = random_tensor({k.o}, DType::F64, 26).to(k.dtype);
  ops::conv2d_backward(xs, w, dy_full.slice(0, n).clone(), r.dx, r.dw, r.db, p);
  return r;
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("small batches: convolution at batch 1, 2, 3 and 5 equals the batch-8 route's per-sample results") {
  const Threads threads(kThreads);
  const ConvCase cases[] = {
      {"1x1 float32 (GEMM route)", DType::F32, 64, 14, 14, 64, 1, 1, 0, 1, false},
      {"1x1 float64 with bias (GEMM route)", DType::F64, 48, 12, 12, 80, 1, 1, 0, 1, true},
      {"3x3 float64 (im2col route)", DType::F64, 16, 16, 16, 32, 3, 1, 1, 1, true},
      {"3x3 stride 2, groups 2, float64", DType::F64, 16, 15, 13, 24, 3, 2, 1, 2, false},
      {"3x3 float32 (oneDNN: direct at batch 1 and 2, Winograd from 3)", DType::F32, 16, 16, 16, 32, 3, 1, 1, 1, true},
      {"3x3 float32, 28x28 (oneDNN Winograd at every batch)", DType::F32, 32, 28, 28, 32, 3, 1, 1, 1, false},
      {"3x3 stride 2 float32 (oneDNN direct)", DType::F32, 16, 16, 16, 32, 3, 2, 1, 1, true},
  };
  for (const ConvCase& k : cases) {
    CAPTURE(std::string(k.name));
    ops::Conv2dParams p;
    p.stride_h = p.stride_w = k.stride;
    p.pad_h = p.pad_w = k.pad;
    p.groups = k.groups;
    const Tensor x = random_tensor({kFull, k.c, k.h, k.w}, DType::F64, 21).to(k.dtype);
    const Tensor w = random_tensor({k.o, k.c / k.groups, k.k, k.k}, DType::F64, 22).to(k.dtype);
    const Tensor b = k.bias ? random_tensor({k.o}, DType::F64, 23).to(k.dtype) : Tensor();
    const ops::ConvGeometry g = ops::conv_geometry(x.shape(), w.shape(), p);
    const Tensor dy = random_tensor({kFull, k.o, g.out_h(), g.out_w()}, DType::F64, 24).to(k.dtype);
    for (int64_t n : {1, 2, 3, 5}) {
      CAPTURE(n);
      const Results small = conv(k, x, w, b, dy, p, n);
      const Results full = conv(k, x, w, b, first_samples_only(dy, n), p, kFull);
      // Float32 3x3 stride-1 kernels may change algorithm with the batch (direct / Winograd, whose
      // roundings differ by a few 1e-5: tests/core/test_conv_winograd.cpp).
      const double tol = k.dtype == DType::F32 && k.k == 3 && k.stride == 1 ? 1e-4 : tolerance(k.dtype);
      CHECK(max_rel_diff(small.y, full.y.slice(0, n)) < tol);
      CHECK(max_rel_diff(small.dx, full.dx.slice(0, n)) < tol);
      CHECK(max_rel_diff(small.dw, full.dw) < tol);
      if (k.bias) CHECK(max_rel_diff(small.db, full.db) < tol);
    }
  }
}

TEST_CASE("small batches: the linear layer's products at batch 1, 2 and 3 equal the batch-8 results") {
  const Threads threads(kThreads);
  constexpr int64_t in = 1024, out = 512;
  for (DType dt : {DType::F32, DType::F64}) {
    CAPTURE(dtype_name(dt));
    const Tensor x = random_tensor({kFull, in}, DType::F64, 31).to(dt);
    const Tensor w = random_tensor({out, in}, DType::F64, 32).to(dt);
    const Tensor dy_all = random_tensor({kFull, out}, DType::F64, 33).to(dt);
    const Tensor ones = Tensor::full({kFull}, 1.0, dt);
    // What layers/linear.cpp computes: y = x W^T, dx = dy W, dW += dy^T x, db += 1^T dy.
    auto linear = [&](const Tensor& dy_full, int64_t rows) {
      const Tensor xs = x.slice(0, rows).clone(), dy = dy_full.slice(0, rows).clone();
      Results r;
      r.y = Tensor::full({rows, out}, 7.0, dt);
      r.dx = Tensor::full({rows, in}, 9.0, dt);
      r.dw = random_tensor({out, in}, DType::F64, 34).to(dt);
      r.db = random_tensor({out}, DType::F64, 35).to(dt);
      ops::gemm(false, true, rows, out, in, 1.0, {xs, 0, in, 0}, {w, 0, in, 0}, 0.0, r.y, 0, out, 0);
      ops::gemm(false, false, rows, in, out, 1.0, {dy, 0, out, 0}, {w, 0, in, 0}, 0.0, r.dx, 0, in, 0);
      ops::gemm(true, false, out, in, rows, 1.0, {dy, 0, out, 0}, {xs, 0, in, 0}, 1.0, r.dw, 0, in, 0);
      ops::gemm(false, false, 1, out, rows, 1.0, {ones, 0, rows, 0}, {dy, 0, out, 0}, 1.0, r.db, 0, out, 0);
      return r;
    };
    for (int64_t n : {1, 2, 3}) {
      CAPTURE(n);
      const Results small = linear(dy_all, n);
      const Results full = linear(first_samples_only(dy_all, n), kFull);
      const double tol = tolerance(dt);
      CHECK(max_rel_diff(small.y, full.y.slice(0, n)) < tol);
      CHECK(max_rel_diff(small.dx, full.dx.slice(0, n)) < tol);
      CHECK(max_rel_diff(small.dw, full.dw) < tol);
      CHECK(max_rel_diff(small.db, full.db) < tol);
    }
  }
}
}
