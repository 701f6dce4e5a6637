// The CUDA backend against the CPU backend: every op of ops.h on random shapes (odd, prime and degenerate
// sizes), copies and pinned tensors, the caching allocator's counters. Without a CUDA device the "gpu"
// tests are skipped (doctest::skip), and CTest reports them as skipped, never as passed.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "core/allocator.h"
#include "tests/helpers.h"
#ifdef MPNCOV_HAS_CUDA
#include "core/cuda/caching_allocator.h"
#include "core/cuda/cuda_context.h"
#endif

using namespace mpncov;
using mpncov::test::max_rel_diff;
using mpncov::test::random_tensor;

#define GPU_TEST_CASE(name) \
  TEST_CASE(name * doctest::skip(!mpncov::test::gpu_present()) * doctest::description("needs a CUDA device"))

namespace {

const Device kGpu = Device::cuda(0);

// A float32 CPU tensor of uniform values in [low, high).
Tensor random_f32(const Shape& shape, uint64_t seed, double low = -1, double high = 1) {
  return random_tensor(shape, DType::F32, seed, low, high);
}

// Largest relative difference, with NaN matching NaN (and only NaN).
double rel_diff_nan(const Tensor& got, const Tensor& want) {
  std::vector<double> g = got.to_vector(), w = want.to_vector();
  REQUIRE(g.size() == w.size());
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(g[i]) || std::isnan(w[i])) {
      if (std::isnan(g[i]) != std::isnan(w[i])) return INFINITY;
      continue;
    }
    if (g[i] == w[i]) continue;  // equal infinities included
    worst = std::max(worst, std::abs(g[i] - w[i]) / std::max(1.0, std::abs(w[i])));
  }
  return worst;
}

// The value of every element equal, bit for bit (NaN matching NaN).
bool identical(const Tensor& a, const Tensor& b) { return rel_diff_nan(a, b) == 0.0; }

// Values that exercise the corner cases of the maps: signed zeros, NaN, infinities, tiny and huge values.
Tensor special_values(int64_t n, uint64_t seed) {
  Tensor t = random_f32({n}, seed, -3, 3);
  float* p = t.data<float>();
  const float specials[] = {0.0f, -0.0f, std::numeric_limits<float>::quiet_NaN(), INFINITY, -INFINITY, 1e-30f,
                            -1e30f, 1.0f, -1.0f, 88.0f, -100.0f};
  for (int64_t i = 0; i < n; i += 7) p[i] = specials[(i / 7) % (sizeof specials / sizeof specials[0])];
  return t;
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("cuda: asking for a CUDA device that is not there is a clear error naming it") {
  const int count = cuda_device_count();  // 0 here when there is no driver, no device or no CUDA build
  // The summary `mpncov info` prints tells the same story as the count.
  CHECK((backends_summary().find("device(s)") != std::string::npos) == (count > 0));
  const Device missing = Device::cuda(count);
  const std::string name = missing.str();
  if (!cuda_built()) {  // one refusal for every way in: it names the device and says what is missing
    CHECK(count == 0);
    CHECK_THROWS_WITH_AS(Tensor::empty({2}, DType::F32, missing), doctest::Contains("has no CUDA backend"), Error);
    CHECK_THROWS_WITH_AS(synchronize(missing), doctest::Contains("has no CUDA backend"), Error);
    CHECK_THROWS_WITH_AS(reset_peak(missing), doctest::Contains("has no CUDA backend"), Error);
    CHECK_THROWS_WITH_AS(cuda_device_name(0), doctest::Contains("cuda:0 asked for"), Error);
  }
  CHECK_THROWS_WITH_AS(Tensor::empty({2, 3}, DType::F32, missing), doctest::Contains(name.c_str()), Error);
  CHECK_THROWS_WITH_AS(Tensor::empty({0}, DType::F32, missing), doctest::Contains(name.c_str()), Error);
  CHECK_THROWS_WITH_AS(Tensor::zeros({4}).to(missing), doctest::Contains(name.c_str()), Error);
  CHECK_THROWS_WITH_AS(synchronize(missing), doctest::Contains(name.c_str()), Error);
  CHECK_THROWS_WITH_AS(allocator_stats(missing), doctest::Contains(name.c_str()), Error);
  CHECK_THROWS_WITH_AS(require_device(missing), doctest::Contains(name.c_str()), Error);
  if (count == 0) {
    // Without a device, pinned tensors fall back to ordinary host memory.
    Tensor p = Tensor::empty_pinned({3});
    CHECK_FALSE(p.pinned());
    p.fill(2);
    CHECK(p.to_vector() == std::vector<double>(3, 2.0));
  }
}

#ifdef MPNCOV_HAS_CUDA
TEST_CASE("cuda: caching allocator size classes") {
  using cuda::CachingAllocator;
  CHECK(CachingAllocator::size_class(0) == 512);
  CHECK(CachingAllocator::size_class(1) == 512);
  CHECK(CachingAllocator::size_class(512) == 512);
  CHECK(CachingAllocator::size_class(513) == 1024);
  CHECK(CachingAllocator::size_class(size_t(1) << 20) == size_t(1) << 20);
  CHECK(CachingAllocator::size_class((size_t(1) << 20) + 1) == (size_t(1) << 20) + (size_t(1) << 16));
  CHECK(CachingAllocator::size_class((size_t(3) << 20) + 5) == (size_t(3) << 20) + (size_t(1) << 17));
  std::mt19937_64 rng(3);
  for (int i = 0; i < 2000; ++i) {
    const size_t n = rng() % (size_t(1) << (i % 36));
    const size_t c = CachingAllocator::size_class(n);
    CHECK(c >= std::max<size_t>(n, 1));
    CHECK(c % 512 == 0);
    CHECK(static_cast<double>(c - n) <= std::max(512.0, static_cast<double>(n) / 16));
    CHECK(CachingAllocator::size_class(c) == c);  // a class is its own class
  }
  // Monotone: a larger request never gets a smaller class.
  for (size_t n = 1; n < (size_t(1) << 23); n = n * 5 / 4 + 1)
    CHECK(CachingAllocator::size_class(n) <= CachingAllocator::size_class(n + 1));
}
#endif

}  // TEST_SUITE("unit")

TEST_SUITE("gpu") {

GPU_TEST_CASE("cuda: runtime basics (device name and synchronize and context handles)") {
  CHECK(cuda_built());
  CHECK(cuda_device_count() >= 1);
  CHECK_FALSE(cuda_device_name(0).empty());
  CHECK_NOTHROW(synchronize(kGpu));
  CHECK(backends_summary().find("device(s)") != std::string::npos);
  CHECK_NOTHROW(require_device(kGpu));
#ifdef MPNCOV_HAS_CUDA
  cuda::Context& ctx = cuda::context(0);
  CHECK(&ctx == &cuda::context(0));
  CHECK(ctx.stream() != nullptr);
  CHECK(ctx.cublas() != nullptr);
  CHECK(ctx.cudnn() != nullptr);
  CHECK(ctx.multiprocessors() > 0);
  void* w1 = ctx.workspace(1000);
  CHECK(w1 != nullptr);
  CHECK(ctx.workspace(10) == w1);  // big enough already
  void* w2 = ctx.workspace(size_t(3) << 20);
  CHECK(w2 != nullptr);
  CHECK(ctx.workspace(size_t(1) << 20) == w2);
#endif
}

GPU_TEST_CASE("cuda: copies round trip between host and devices and pinned tensors") {
  for (DType dt : {DType::F32, DType::F64, DType::I64}) {
    std::vector<double> values(3 * 37 * 5);
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i % 97) - 40.0;
    Tensor h = Tensor::from_vector(values, {3, 37, 5}, dt);
    Tensor d = h.to(kGpu);
    CHECK(d.device() == kGpu);
    Tensor d2 = d.clone();  // device to device
    CHECK(d2.to(Device::cpu()).to_vector() == values);
    Tensor back = Tensor::empty(h.shape(), dt);
    back.copy_from(d2);
    CHECK(back.to_vector() == values);
    // Views: a slice of a device tensor copies just its rows.
    CHECK(d.slice(1, 2).to(Device::cpu()).to_vector() ==
          std::vector<double>(values.begin() + 185, values.begin() + 370));
  }
  // Empty tensors.
  Tensor e = Tensor::empty({0, 4}, DType::F32, kGpu);
  CHECK(e.to(Device::cpu()).numel() == 0);
  // Pinned host memory: fast copies in both directions.
  Tensor pinned = Tensor::empty_pinned({1000, 3});
  CHECK(pinned.pinned());
  CHECK(pinned.device() == Device::cpu());
  ops::fill_uniform(pinned, -2, 2, 5, 0);
  Tensor on_gpu = pinned.to(kGpu);
  Tensor pinned_back = Tensor::empty_pinned({1000, 3});
  pinned_back.copy_from(on_gpu);
  CHECK(pinned_back.to_vector() == pinned.to_vector());
  CHECK(Tensor::empty_pinned({0}).numel() == 0);
  if (cuda_device_count() >= 2) {
    const Device other = Device::cuda(1);
    Tensor src = random_f32({1001}, 9).to(kGpu);
    Tensor there = src.to(other);
    CHECK(there.device() == other);
    CHECK(there.to(kGpu).to_vector() == src.to_vector());
  }
}

GPU_TEST_CASE("cuda: caching allocator counters and reuse without cudaMalloc after warm-up and out of memory") {
  synchronize(kGpu);
  const AllocatorStats start = allocator_stats(kGpu);
  {
    Tensor t = Tensor::empty({1000}, DType::F32, kGpu);  // 4000 bytes -> a 4096-byte block
    const AllocatorStats s = allocator_stats(kGpu);
    CHECK(s.in_use_bytes == start.in_use_bytes + 4096);
    CHECK(s.allocations == start.allocations + 1);
    CHECK(s.peak_bytes >= s.in_use_bytes);
    CHECK(s.cached_bytes >= s.in_use_bytes);
  }
  CHECK(allocator_stats(kGpu).in_use_bytes == start.in_use_bytes);

  // One "training step": tensors of many sizes, ops that use temporaries, everything released at the end.
  auto step = [](int seed) {
    Tensor x = random_f32({8, 3, 17, 19}, static_cast<uint64_t>(seed)).to(kGpu);
    Tensor w = random_f32({5, 3 * 3 * 3}, 2).to(kGpu);
    ops::ConvGeometry g;
    g.channels = 3; g.height = 17; g.width = 19; g.kernel_h = 3; g.kernel_w = 3; g.pad_h = 1; g.pad_w = 1;
    Tensor col = Tensor::empty({8, g.col_rows(), g.col_cols()}, DType::F32, kGpu);
    ops::im2col(x, g, col);
    Tensor y = Tensor::empty({8, 5, g.col_cols()}, DType::F32, kGpu);
    ops::gemm(false, false, 5, g.col_cols(), g.col_rows(), 1.0, {w, 0, g.col_rows(), 0},
              {col, 0, g.col_cols(), g.col_rows() * g.col_cols()}, 0.0, y, 0, g.col_cols(), 5 * g.col_cols(), 8);
    Tensor per_channel = ops::reduce(ops::Reduce::Sum, y, {0, 2});  // split reduction: temporaries
    Tensor big = Tensor::empty({3 << 20}, DType::F32, kGpu);
    ops::fill_normal(big, 0, 1, 1, static_cast<uint64_t>(seed));
    Tensor total = ops::reduce(ops::Reduce::Max, big, {0});
    ops::unary(ops::Unary::Relu, y, y);
    return per_channel.to(Device::cpu()).numel() + total.to(Device::cpu()).numel();
  };
  step(1);  // warm-up
  const AllocatorStats warm = allocator_stats(kGpu);
  for (int i = 0; i < 5; ++i) CHECK(step(i) == 6);
  const AllocatorStats after = allocator_stats(kGpu);
  CHECK(after.device_mallocs == warm.device_mallocs);  // every block came from the cache
  CHECK(after.allocations > warm.allocations);
  CHECK(after.in_use_bytes == warm.in_use_bytes);
  CHECK(after.cached_bytes == warm.cached_bytes);

  // Peak and cache management.
  reset_peak(kGpu);
  CHECK(allocator_stats(kGpu).peak_bytes == allocator_stats(kGpu).in_use_bytes);
  {
    Tensor big = Tensor::empty({1 << 22}, DType::F32, kGpu);
    CHECK(allocator_stats(kGpu).peak_bytes >= allocator_stats(kGpu).in_use_bytes);
    CHECK(allocator_stats(kGpu).peak_bytes >= (size_t(1) << 24));
  }
  empty_cache(kGpu);
  const AllocatorStats emptied = allocator_stats(kGpu);
  CHECK(emptied.cached_bytes == emptied.in_use_bytes);
  CHECK(emptied.peak_bytes >= (size_t(1) << 24));

  // Out of memory: a clear error with the numbers, and the allocator still works afterwards.
  CHECK_THROWS_WITH_AS(Tensor::empty({int64_t(1) << 50}, DType::F32, kGpu), doctest::Contains("out of memory"),
                       Error);
  CHECK_THROWS_WITH_AS(Tensor::empty({int64_t(1) << 50}, DType::F32, kGpu), doctest::Contains("in use"), Error);
  Tensor fine = Tensor::full({10}, 3.0, DType::F32, kGpu);
  CHECK(fine.to_vector() == std::vector<double>(10, 3.0));
  CHECK(allocator_stats(kGpu).in_use_bytes == emptied.in_use_bytes + 512);
}

GPU_TEST_CASE("cuda: gemm matches the CPU with transposes and offsets and strides and batches and k = 0") {
  std::mt19937 rng(17);
  for (int trial = 0; trial < 60; ++trial) {
    std::uniform_int_distribution<int> size(1, trial < 50 ? 13 : 131);
    const int64_t m = size(rng), n = size(rng), k = (trial % 10 == 0 || trial % 10 == 7) ? 0 : size(rng);
    const int64_t batch = trial % 4 + 1;
    const bool ta = trial & 1, tb = (trial >> 1) & 1;
    const double alpha = trial % 4 == 0 ? 1.0 : 0.75, beta = trial % 5 == 0 ? 0.0 : (trial % 3 ? -0.5 : 1.0);
    const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
    const int64_t lda = a_cols + trial % 3, ldb = b_cols + 1, ldc = n + trial % 2;
    const int64_t as = trial % 7 == 3 ? 0 : a_rows * lda + 2;  // stride 0: one A for every batch entry
    const int64_t bs = b_rows * ldb, cs = m * ldc + 1;
    const int64_t ao = 3, bo = 1, co = 2;
    Tensor a = random_f32({ao + batch * std::max<int64_t>(as, a_rows * lda) + 1}, 1 + trial);
    Tensor b = random_f32({bo + batch * bs + 1}, 100 + trial);
    Tensor c = random_f32({co + batch * cs + 1}, 200 + trial);
    if (beta == 0) c.fill(NAN);  // beta = 0 ignores C, NaN included
    Tensor ga = a.to(kGpu), gb = b.to(kGpu), gc = c.to(kGpu);
    ops::gemm(ta, tb, m, n, k, alpha, {a, ao, lda, as}, {b, bo, ldb, bs}, beta, c, co, ldc, cs, batch);
    ops::gemm(ta, tb, m, n, k, alpha, {ga, ao, lda, as}, {gb, bo, ldb, bs}, beta, gc, co, ldc, cs, batch);
    INFO("m=", m, " n=", n, " k=", k, " batch=", batch, " ta=", ta, " tb=", tb, " beta=", beta);
    CHECK(rel_diff_nan(gc.to(Device::cpu()), c) < 1e-5 * std::max<double>(1.0, std::sqrt(static_cast<double>(k))));
  }
  // matmul, batched.
  Tensor a = random_f32({3, 4, 5}, 1), b = random_f32({3, 5, 2}, 2), c = Tensor::zeros({3, 4, 2});
  Tensor gc = Tensor::zeros({3, 4, 2}, DType::F32, kGpu);
  ops::matmul(a, b, c);
  ops::matmul(a.to(kGpu), b.to(kGpu), gc);
  CHECK(max_rel_diff(gc, c) < 1e-6);
}

GPU_TEST_CASE("cuda: im2col and col2im match the CPU over a batch") {
  struct Case { int64_t n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw; };
  const Case cases[] = {{1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1},  {2, 3, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1},
                        {3, 2, 11, 13, 5, 3, 2, 3, 2, 0, 1, 2}, {2, 4, 6, 6, 1, 1, 2, 2, 0, 0, 1, 1},
                        {1, 1, 5, 7, 3, 2, 1, 2, 3, 1, 2, 1},   {5, 2, 2, 2, 3, 3, 1, 1, 1, 1, 1, 1},
                        {2, 3, 31, 29, 7, 7, 2, 2, 3, 3, 1, 1}, {1, 2, 9, 9, 3, 3, 3, 3, 0, 0, 1, 1},
                        {3, 1, 17, 1, 4, 1, 3, 1, 2, 0, 2, 1}};
  for (const Case& k : cases) {
    ops::ConvGeometry g;
    g.channels = k.c; g.height = k.h; g.width = k.w; g.kernel_h = k.kh; g.kernel_w = k.kw;
    g.stride_h = k.sh; g.stride_w = k.sw; g.pad_h = k.ph; g.pad_w = k.pw; g.dilation_h = k.dh; g.dilation_w = k.dw;
    INFO("n=", k.n, " c=", k.c, " ", k.h, "x", k.w, " kernel ", k.kh, "x", k.kw, " stride ", k.sh, "x", k.sw);
    Tensor x = random_f32({k.n, k.c, k.h, k.w}, 3);
    Tensor col = Tensor::empty({k.n, g.col_rows(), g.col_cols()});
    Tensor gcol = Tensor::full(col.shape(), NAN, DType::F32, kGpu);  // every entry must be written
    ops::im2col(x, g, col);
    ops::im2col(x.to(kGpu), g, gcol);
    CHECK(identical(gcol, col));
    // col2im accumulates onto the image's old values.
    Tensor y = random_f32(col.shape(), 4);
    Tensor z = random_f32(x.shape(), 5);
    Tensor gz = z.to(kGpu);
    ops::col2im(y, g, z);
    ops::col2im(y.to(kGpu), g, gz);
    CHECK(max_rel_diff(gz, z) < 1e-6);
  }
}

GPU_TEST_CASE("cuda: unary maps match the CPU on special values in place and out of place") {
  const ops::Unary all[] = {ops::Unary::Copy,   ops::Unary::Neg,  ops::Unary::Abs, ops::Unary::Sign,
                            ops::Unary::Square, ops::Unary::Sqrt, ops::Unary::Exp, ops::Unary::Log,
                            ops::Unary::Reciprocal, ops::Unary::Relu};
  for (int64_t n : {int64_t(1), int64_t(7), int64_t(1000), int64_t(100003)}) {
    Tensor x = special_values(n, static_cast<uint64_t>(n));
    for (ops::Unary op : all) {
      INFO("op ", static_cast<int>(op), " n ", n);
      Tensor want = Tensor::empty(x.shape());
      ops::unary(op, x, want);
      Tensor gx = x.to(kGpu), gy = Tensor::empty(x.shape(), DType::F32, kGpu);
      ops::unary(op, gx, gy);
      // exp and log may differ from the host's libm by an ulp or two; the rest are exact.
      const bool transcendental = op == ops::Unary::Exp || op == ops::Unary::Log;
      CHECK(rel_diff_nan(gy.to(Device::cpu()), want) <= (transcendental ? 1e-6 : 0.0));
      ops::unary(op, gx, gx);  // in place
      CHECK(rel_diff_nan(gx.to(Device::cpu()), want) <= (transcendental ? 1e-6 : 0.0));
    }
  }
  // The sign of zero and of NaN, as on the CPU: 0.
  Tensor z = Tensor::from_vector({-0.0, 0.0, NAN, -2, 3}, {5}).to(kGpu);
  ops::unary(ops::Unary::Sign, z, z);
  CHECK(z.to_vector() == std::vector<double>({0, 0, 0, -1, 1}));
}

GPU_TEST_CASE("cuda: binary ops match the CPU with same-shape and scalar and per-channel operands") {
  const ops::Binary all[] = {ops::Binary::Add, ops::Binary::Sub, ops::Binary::Mul,
                             ops::Binary::Div, ops::Binary::Max, ops::Binary::Min};
  const Shape shapes[] = {Shape({3, 5, 2, 7}), Shape({4, 3}), Shape({1, 1}), Shape({2, 13, 1, 1}),
                          Shape({17, 257, 9}), Shape({2, 0, 3})};
  for (const Shape& s : shapes) {
    Tensor a = special_values(s.numel(), 1).reshape(s.dims());
    Tensor same = special_values(s.numel(), 2).reshape(s.dims());
    Tensor scalar = Tensor::from_vector({1.5}, {1});
    Tensor channel = random_f32({s[1]}, 3, -2, 2);
    if (s[1] > 2) channel.data<float>()[1] = NAN;
    Tensor ga = a.to(kGpu), gsame = same.to(kGpu), gscalar = scalar.to(kGpu), gchannel = channel.to(kGpu);
    for (ops::Binary op : all) {
      INFO("op ", static_cast<int>(op), " shape ", s.str());
      Tensor want = Tensor::empty(s), got = Tensor::empty(s, DType::F32, kGpu);
      ops::binary(op, a, same, want);
      ops::binary(op, ga, gsame, got);
      CHECK(identical(got, want));
      ops::binary(op, a, scalar, want);
      ops::binary(op, ga, gscalar, got);
      CHECK(identical(got, want));
      ops::binary_scalar(op, a, -0.25, want);
      ops::binary_scalar(op, ga, -0.25, got);
      CHECK(identical(got, want));
      ops::binary_scalar(op, a, NAN, want);  // Max/Min keep a, the others give NaN
      ops::binary_scalar(op, ga, NAN, got);
      CHECK(identical(got, want));
      ops::binary(op, a, channel, want);
      ops::binary(op, ga, gchannel, got);
      CHECK(identical(got, want));
      // In place (out aliases a).
      Tensor ga2 = ga.clone(), a2 = a.clone();
      ops::binary(op, a2, channel, a2);
      ops::binary(op, ga2, gchannel, ga2);
      CHECK(identical(ga2, a2));
    }
  }
}

GPU_TEST_CASE("cuda: axpby and fill match the CPU") {
  for (int64_t n : {int64_t(1), int64_t(37), int64_t(65537)}) {
    Tensor x = random_f32({n}, 1), y = random_f32({n}, 2);
    Tensor gx = x.to(kGpu), gy = y.to(kGpu);
    ops::axpby(2.0, x, -0.5, y);
    ops::axpby(2.0, gx, -0.5, gy);
    CHECK(max_rel_diff(gy, y) <= 1e-6);  // rounded like the CPU: in practice identical
    y.fill(NAN);
    gy.fill(NAN);
    ops::axpby(3.0, x, 0.0, y);  // beta = 0 ignores NaN
    ops::axpby(3.0, gx, 0.0, gy);
    CHECK(identical(gy, y));
  }
  for (double v : {0.0, -0.0, -4.25, 1e30, static_cast<double>(NAN)}) {
    Tensor t = Tensor::empty({1001}, DType::F32, kGpu);
    t.fill(v);
    CHECK(identical(t, Tensor::full({1001}, v)));
    CHECK(std::signbit(t.to_vector()[5]) == std::signbit(v));
  }
  for (double v : {0.0, 7.0, -3.0}) {
    Tensor labels = Tensor::empty({13}, DType::I64, kGpu);
    labels.fill(v);
    CHECK(labels.to_vector() == std::vector<double>(13, v));
  }
  Tensor empty = Tensor::empty({0}, DType::F32, kGpu);
  CHECK_NOTHROW(empty.fill(1));
}

GPU_TEST_CASE("cuda: reductions match the CPU over any axes in every strategy and max picks the same index") {
  std::mt19937 rng(11);
  struct Case { Shape shape; std::vector<std::vector<int>> axes; };
  // Every axis set of small shapes, and larger ones that take the row, column and split strategies.
  std::vector<Case> cases;
  for (const Shape& s : {Shape({7}), Shape({3, 1, 5}), Shape({2, 3, 4, 5}), Shape({1, 1, 1}), Shape({4, 13, 1, 3}),
                         Shape({2, 0, 3}), Shape({5, 40}), Shape({40, 33}), Shape({3, 70, 2})}) {
    Case c{s, {}};
    for (int mask = 0; mask < (1 << s.ndim()); ++mask) {
      std::vector<int> axes;
      for (int d = 0; d < s.ndim(); ++d)
        if (mask & (1 << d)) axes.push_back(rng() % 2 ? d : d - s.ndim());
      c.axes.push_back(axes);
    }
    cases.push_back(c);
  }
  cases.push_back({Shape({16, 64, 13, 11}), {{0, 2, 3}, {1}, {0}, {2, 3}, {0, 1, 2, 3}}});  // BN-style, rows
  cases.push_back({Shape({300, 1000}), {{0}, {1}}});                                        // columns, rows
  cases.push_back({Shape({1 << 20}), {{0}}});                                               // one output, split
  cases.push_back({Shape({1031, 3, 257}), {{0, 2}, {0}, {1}}});
  int seed = 0;
  for (const Case& c : cases) {
    Tensor x = random_f32(c.shape, static_cast<uint64_t>(++seed));
    if (x.numel() > 50) {  // ties and NaNs: the index must still match the CPU's
      float* p = x.data<float>();
      for (int64_t i = 3; i < x.numel(); i += 41) p[i] = 0.999f;
      for (int64_t i = 5; i < x.numel(); i += 1009) p[i] = NAN;
    }
    Tensor gx = x.to(kGpu);
    for (const std::vector<int>& axes : c.axes) {
      const Shape out_shape = ops::reduced_shape(c.shape, axes, true);
      for (ops::Reduce op : {ops::Reduce::Sum, ops::Reduce::Mean, ops::Reduce::Max}) {
        INFO("shape ", c.shape.str(), " axes ", axes.size(), " op ", static_cast<int>(op));
        const int64_t reduced = out_shape.numel() ? c.shape.numel() / out_shape.numel() : 0;
        if (op == ops::Reduce::Max && reduced == 0) {
          if (out_shape.numel() > 0) CHECK_THROWS_AS(ops::reduce(op, gx, axes), Error);
          continue;
        }
        Tensor want = Tensor::empty(out_shape), want_index = Tensor::empty(out_shape, DType::I64);
        Tensor got = Tensor::full(out_shape, -7, DType::F32, kGpu);
        Tensor got_index = Tensor::full(out_shape, -7, DType::I64, kGpu);
        const bool max = op == ops::Reduce::Max;
        ops::reduce(op, x, axes, want, max ? &want_index : nullptr);
        ops::reduce(op, gx, axes, got, max ? &got_index : nullptr);
        if (max) {
          CHECK(identical(got, want));
          CHECK(got_index.to_vector() == want_index.to_vector());
        } else {
          // Float accumulation (compensated) against the CPU's double.
          CHECK(rel_diff_nan(got, want) < 1e-5);
        }
      }
    }
  }
}

GPU_TEST_CASE("cuda: random fills give the CPU values for the same seed and stream and index") {
  for (int64_t n : {int64_t(1), int64_t(1000), int64_t(100003)}) {
    for (uint64_t stream : {uint64_t(0), uint64_t(7), uint64_t(1) << 40}) {
      Tensor cu = Tensor::empty({n}), gu = Tensor::empty({n}, DType::F32, kGpu);
      ops::fill_uniform(cu, -1, 3, 42, stream);
      ops::fill_uniform(gu, -1, 3, 42, stream);
      CHECK(identical(gu, cu));
      Tensor cb = Tensor::empty({n}), gb = Tensor::empty({n}, DType::F32, kGpu);
      ops::fill_bernoulli(cb, 0.3, 9, stream);
      ops::fill_bernoulli(gb, 0.3, 9, stream);
      CHECK(identical(gb, cb));
      Tensor cn = Tensor::empty({n}), gn = Tensor::empty({n}, DType::F32, kGpu);
      ops::fill_normal(cn, 2, 0.5, 3, stream);
      ops::fill_normal(gn, 2, 0.5, 3, stream);
      // The device's log and cos may round differently from the host's in the last double bit.
      CHECK(rel_diff_nan(gn, cn) < 1e-6);
    }
  }
}

}  // TEST_SUITE("gpu")
