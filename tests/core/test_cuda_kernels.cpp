// CUDA kernels where a reading found the GPU could part from the CPU: the max-pool NaN rule and the
// pooling backwards (a gather: reproducible, the CPU's float32 bits), sums that overflow to infinity,
// irfft on spectra that are not Hermitian (against FFTW), the bounded cuFFT plan cache, the one host
// thread rule; and, in the "gpu-large" suite, the 64-bit index paths on tensors above 2^31 elements.
// Skipped without a CUDA device.
#include <cmath>
#include <limits>
#include <thread>

#include "core/allocator.h"
#include "core/fft.h"
#include "core/nn_ops.h"
#include "tests/helpers.h"
#ifdef MPNCOV_HAS_CUDA
#include "core/cuda/fft_plans.h"
#endif

using namespace mpncov;

namespace {

const Device kGpu = Device::cuda(0);

// The same value in every element, NaN matching NaN and infinities matching by sign.
bool same_values(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_vector(), y = b.to_vector();
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (!(x[i] == y[i] || (std::isnan(x[i]) && std::isnan(y[i])))) return false;
  return true;
}

// Small integers (many ties), NaNs (several in some windows) and -inf.
Tensor pool_input(const Shape& s, uint64_t seed) {
  Tensor x = test::random_tensor(s, DType::F32, seed, 0, 1);
  float* p = x.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float u = p[i];
    p[i] = u < 0.04f ? std::numeric_limits<float>::quiet_NaN() : u < 0.08f ? -INFINITY : std::floor(u * 4);
  }
  return x;
}

ops::Pool2dParams pool(int64_t k, int64_t stride, int64_t pad, bool ceil_mode, bool include_pad = true) {
  ops::Pool2dParams p;
  p.kernel_h = p.kernel_w = k;
  p.stride_h = p.stride_w = stride;
  p.pad_h = p.pad_w = pad;
  p.ceil_mode = ceil_mode;
  p.count_include_pad = include_pad;
  return p;
}

}  // namespace

TEST_SUITE("gpu") {

TEST_CASE("cuda pooling: max takes the last NaN as the CPU does and both backwards give the CPU's float32 bits" *
          doctest::skip(!mpncov::test::gpu_present())) {
  const Shape xs{2, 3, 17, 15};
  const ops::Pool2dParams params[] = {pool(3, 2, 1, false), pool(2, 1, 0, false), pool(3, 2, 0, true),
                                      pool(3, 1, 1, false), pool(3, 2, 1, true, false)};
  int seed = 0;
  for (const ops::Pool2dParams& p : params) {
    INFO("kernel ", p.kernel_h, " stride ", p.stride_h, " pad ", p.pad_h, " ceil ", p.ceil_mode);
    const Tensor x = pool_input(xs, static_cast<uint64_t>(++seed));
    const int64_t oh = ops::pool_output_size(xs[2], p.kernel_h, p.stride_h, p.pad_h, p.ceil_mode);
    const int64_t ow = ops::pool_output_size(xs[3], p.kernel_w, p.stride_w, p.pad_w, p.ceil_mode);
    const Shape ys{xs[0], xs[1], oh, ow};
    const Tensor dy = test::random_tensor(ys, DType::F32, 100 + static_cast<uint64_t>(seed));

    // max: forward values and indices, backward bits, twice the same
    const Tensor cy = Tensor::empty(ys), ci = Tensor::empty(ys, DType::I64), cdx = Tensor::empty(xs);
    ops::max_pool2d_forward(x, cy, ci, p);
    ops::max_pool2d_backward(dy, ci, cdx, p);
    const Tensor gy = Tensor::empty(ys, DType::F32, kGpu), gi = Tensor::empty(ys, DType::I64, kGpu);
    const Tensor gdx = Tensor::full(xs, 7, DType::F32, kGpu), gdx2 = Tensor::full(xs, -7, DType::F32, kGpu);
    ops::max_pool2d_forward(x.to(kGpu), gy, gi, p);
    CHECK(same_values(gy.to(Device::cpu()), cy));
    CHECK(gi.to(Device::cpu()).to_vector() == ci.to_vector());
    ops::max_pool2d_backward(dy.to(kGpu), gi, gdx, p);
    ops::max_pool2d_backward(dy.to(kGpu), gi, gdx2, p);
    CHECK(gdx.to(Device::cpu()).to_vector() == cdx.to_vector());
    CHECK(gdx2.to(Device::cpu()).to_vector() == cdx.to_vector());

    // average: backward bits (finite input: the forward is compared elsewhere)
    const Tensor adx = Tensor::empty(xs), gadx = Tensor::full(xs, 7, DType::F32, kGpu);
    ops::avg_pool2d_backward(dy, adx, p);
    ops::avg_pool2d_backward(dy.to(kGpu), gadx, p);
    CHECK(gadx.to(Device::cpu()).to_vector() == adx.to_vector());
  }
}

TEST_CASE("cuda reductions: a float sum that overflows is +-inf as on the CPU, not NaN" *
          doctest::skip(!mpncov::test::gpu_present())) {
  // Rows of 20 (one thread per output) and of 1000 (block strategies), and one long row (split).
  for (int64_t width : {int64_t(20), int64_t(1000), int64_t(1) << 20}) {
    INFO("width ", width);
    const int64_t rows = width > 1000 ? 1 : 4;
    Tensor x = Tensor::full({rows, width}, 1.0);
    float* p = x.data<float>();
    if (width > 1000) {
      for (int64_t i = 0; i < width; ++i) p[i] = 1e33f;  // sum 1e39: past FLT_MAX
    } else {
      p[0 * width + 1] = p[0 * width + width - 2] = 3e38f;       // +inf
      p[1 * width + 0] = p[1 * width + width / 2] = -3e38f;      // -inf
      p[2 * width + 3] = INFINITY;                               // +inf
      p[3 * width + 2] = INFINITY, p[3 * width + 5] = -INFINITY;  // NaN
    }
    const Tensor want = ops::reduce(ops::Reduce::Sum, x, {1});
    const Tensor got = ops::reduce(ops::Reduce::Sum, x.to(kGpu), {1}).to(Device::cpu());
    CHECK(same_values(got, want));
    CHECK(std::isinf(got.to_vector()[0]));
  }
}

TEST_CASE("cuda fft: irfft ignores the imaginary parts of bins 0 and n/2 as FFTW does and keeps its input" *
          doctest::skip(!mpncov::test::gpu_present())) {
  for (int64_t n : {int64_t(8), int64_t(9), int64_t(64), int64_t(100)}) {
    INFO("n ", n);
    const int64_t rows = 5, bins = n / 2 + 1;
    const Tensor y = test::random_tensor({rows, bins, 2}, DType::F32, static_cast<uint64_t>(n));  // imag of 0 and n/2 too
    const Tensor want = Tensor::empty({rows, n}), got = Tensor::empty({rows, n}, DType::F32, kGpu);
    ops::irfft(y, want);
    const Tensor gy = y.to(kGpu);
    ops::irfft(gy, got);
    CHECK(test::max_rel_diff(got.to(Device::cpu()), want) <= 1e-5);
    CHECK(gy.to(Device::cpu()).to_vector() == y.to_vector());
    // And the round trip: rfft then irfft is n x.
    const Tensor x = test::random_tensor({rows, n}, DType::F32, 7), spec = Tensor::empty({rows, bins, 2}, DType::F32, kGpu);
    const Tensor back = Tensor::empty({rows, n}, DType::F32, kGpu);
    ops::rfft(x.to(kGpu), spec);
    ops::irfft(spec, back);
    std::vector<double> b = back.to(Device::cpu()).to_vector(), a = x.to_vector();
    for (double& v : a) v *= static_cast<double>(n);
    CHECK(test::max_rel_diff(b, a) <= 1e-5);
  }
}

#ifdef MPNCOV_HAS_CUDA
TEST_CASE("cuda fft: plans stay bounded and a second epoch makes no plan and no cudaMalloc" *
          doctest::skip(!mpncov::test::gpu_present())) {
  const int64_t n = 128;
  // An "epoch" of compact bilinear pooling: full chunks, a partial one, then evaluation batch sizes.
  auto epoch = [&] {
    for (int rows : {64, 64, 64, 17, 40, 40, 9}) {
      const Tensor x = Tensor::full({rows, n}, 0.5, DType::F32, kGpu), y = Tensor::empty({rows, n / 2 + 1, 2}, DType::F32, kGpu);
      ops::rfft(x, y);
      ops::irfft(y, x);
    }
    synchronize(kGpu);
  };
  epoch();
  const cuda::FftPlanStats first = cuda::fft_plan_stats();
  const uint64_t mallocs = allocator_stats(kGpu).device_mallocs;
  epoch();
  CHECK(cuda::fft_plan_stats().made == first.made);
  CHECK(allocator_stats(kGpu).device_mallocs == mallocs);
  // Many row counts: the cache keeps at most kMaxFftPlans, and evicted plans leave results right.
  for (int64_t rows = 1; rows <= 3 * static_cast<int64_t>(cuda::kMaxFftPlans); ++rows) {
    const Tensor x = Tensor::full({rows, n}, 1.0, DType::F32, kGpu), y = Tensor::empty({rows, n / 2 + 1, 2}, DType::F32, kGpu);
    ops::rfft(x, y);
    const std::vector<double> v = y.to(Device::cpu()).to_vector();
    CHECK(v[0] == static_cast<double>(n));  // bin 0 of a constant row is its sum
    CHECK(v[v.size() - 2] == 0.0);
  }
  CHECK(cuda::fft_plan_stats().cached <= static_cast<int64_t>(cuda::kMaxFftPlans));
  CHECK(cuda::fft_plan_stats().made > first.made);
}
#endif

#ifndef NDEBUG
TEST_CASE("cuda: a second host thread driving a device is an error in debug builds" *
          doctest::skip(!mpncov::test::gpu_present())) {
  const Tensor a = Tensor::full({4}, 1.0, DType::F32, kGpu);  // this thread drives cuda:0
  std::string error;
  std::thread other([&] {
    try {
      ops::binary_scalar(ops::Binary::Add, a, 1.0, a);
    } catch (const Error& e) {
      error = e.what();
    }
  });
  other.join();
  CHECK(error.find("one host thread") != std::string::npos);
}
#endif

}  // TEST_SUITE("gpu")

// Tensors above 2^31 elements (8 GiB of float32 each): the 64-bit index paths of the reductions, the
// per-channel binary ops and im2col. Checked on the rows where 32-bit indices would have wrapped.
TEST_SUITE("gpu-large") {

TEST_CASE("cuda large: reductions and per-channel ops and im2col past 2^31 elements" *
          doctest::skip(!mpncov::test::gpu_present())) {
  const int64_t cols = 64, rows = (int64_t(1) << 25) + 7;  // 2^31 + 448 elements
  {
    const Tensor x = Tensor::empty({rows, cols}, DType::F32, kGpu);
    ops::fill_uniform(x, -1, 1, 5, 1);
    const int64_t tail = 1000;
    const Tensor last = x.slice(rows - tail, rows).to(Device::cpu());
    // Row sums (the int64 path of the block strategies).
    const Tensor sums = ops::reduce(ops::Reduce::Sum, x, {1}).slice(rows - tail, rows).to(Device::cpu());
    std::vector<double> want(static_cast<size_t>(tail), 0.0);
    const std::vector<double> v = last.to_vector();
    for (int64_t r = 0; r < tail; ++r)
      for (int64_t c = 0; c < cols; ++c) want[static_cast<size_t>(r)] += v[static_cast<size_t>(r * cols + c)];
    CHECK(test::max_rel_diff(sums.to_vector(), want) <= 1e-5);
    // Column maxima over 2^25 rows, with the maximum planted in the last row.
    x.slice(rows - 1, rows).copy_from(Tensor::full({1, cols}, 2.0));
    const Tensor index = Tensor::empty({cols}, DType::I64, kGpu), best = Tensor::empty({cols}, DType::F32, kGpu);
    ops::reduce(ops::Reduce::Max, x, {0}, best, &index);
    CHECK(index.to(Device::cpu()).to_vector() == std::vector<double>(static_cast<size_t>(cols), static_cast<double>(rows - 1)));
    // A per-channel add, in place, seen as (rows, 64): the channel is the column.
    const Tensor b = test::random_tensor({cols}, DType::F32, 9);
    const Tensor before = x.slice(rows - tail, rows).to(Device::cpu());
    ops::binary(ops::Binary::Add, x, b.to(kGpu), x);
    const std::vector<double> after = x.slice(rows - tail, rows).to(Device::cpu()).to_vector(), pre = before.to_vector();
    const std::vector<double> bv = b.to_vector();
    bool exact = true;
    for (size_t i = 0; i < after.size(); ++i)
      exact = exact && after[i] == static_cast<double>(static_cast<float>(pre[i] + bv[i % static_cast<size_t>(cols)]));
    CHECK(exact);
  }
  {
    // im2col of (1, 64, 2048, 2048) with a 3x3 kernel: col is (1, 576, 2048 * 2048), 2.4e9 elements.
    ops::ConvGeometry g;
    g.channels = 64;
    g.height = g.width = 2048;
    g.kernel_h = g.kernel_w = 3;
    g.pad_h = g.pad_w = 1;
    const Tensor x = Tensor::empty({1, 64, 2048, 2048}, DType::F32, kGpu);
    ops::fill_uniform(x, -1, 1, 6, 1);
    const Tensor col = Tensor::empty({1, g.col_rows(), g.col_cols()}, DType::F32, kGpu);
    ops::im2col(x, g, col);
    const std::vector<double> xv = x.to(Device::cpu()).to_vector();
    const Tensor rows2d = col.reshape({g.col_rows(), g.col_cols()});
    bool exact = true;
    for (int64_t r : {int64_t(0), g.col_rows() / 2, g.col_rows() - 1}) {
      const std::vector<double> got = rows2d.slice(r, r + 1).to(Device::cpu()).to_vector();
      const int64_t ch = r / 9, ky = (r / 3) % 3, kx = r % 3;
      for (int64_t q = g.col_cols() - 5000; q < g.col_cols(); ++q) {
        const int64_t iy = q / 2048 - 1 + ky, ix = q % 2048 - 1 + kx;
        const double want = iy < 0 || iy >= 2048 || ix < 0 || ix >= 2048
                                 ? 0.0
                                 : xv[static_cast<size_t>((ch * 2048 + iy) * 2048 + ix)];
        exact = exact && got[static_cast<size_t>(q)] == want;
      }
    }
    CHECK(exact);
  }
}

}  // TEST_SUITE("gpu-large")
