// Argument checks and backend dispatch for core/sketch_ops.h.
#include "core/sketch_ops.h"

#include "core/cpu/matrix_cpu.h"
#include "core/cuda_matrix_backend.h"
#include "core/dispatch.h"

namespace mpncov::ops {
namespace {

// Hashes and signs: one value per channel, hashes in [0, dim) (checked on the CPU only, where it is free).
void check_hash(const char* op, const Tensor& hash, const Tensor& sign, int64_t channels, int64_t dim) {
  MPNCOV_CHECK(hash.numel() == channels && sign.numel() == channels, op, ": hash ", hash.str(), " and sign ",
               sign.str(), " need one value per channel (", channels, ")");
  if (!hash.device().is_cpu()) return;
  const std::vector<double> h = hash.to_vector();
  for (double v : h)
    MPNCOV_CHECK(v >= 0 && v < static_cast<double>(dim) && v == static_cast<double>(static_cast<int64_t>(v)), op,
                 ": hash value ", v, " is not an integer in [0, ", dim, ")");
}

}  // namespace

void count_sketch(const Tensor& x, const Tensor& hash, const Tensor& sign, const Tensor& out) {
  check_same("count_sketch", {&x, &hash, &sign, &out});
  MPNCOV_CHECK(x.ndim() == 3 && out.ndim() == 3 && out.dim(0) == x.dim(0) && out.dim(1) == x.dim(2),
               "count_sketch: x (B, C, M) ", x.str(), " needs out (B, M, D), got ", out.str());
  const int64_t batch = x.dim(0), channels = x.dim(1), positions = x.dim(2), dim = out.dim(2);
  check_hash("count_sketch", hash, sign, channels, dim);
  dispatch(
      x,
      [&](auto device) {
        cuda::count_sketch(device, x.data<float>(), hash.data<float>(), sign.data<float>(), out.data<float>(), batch,
                           channels, positions, dim);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::count_sketch<T>(x.data<T>(), hash.data<T>(), sign.data<T>(), out.data<T>(), batch, channels, positions,
                             dim);
      });
}

void spectrum_product_sum(const Tensor& a, const Tensor& b, const Tensor& out) {
  check_same("spectrum_product_sum", {&a, &b, &out});
  MPNCOV_CHECK(a.ndim() == 4 && a.dim(3) == 2 && a.shape() == b.shape() && out.ndim() == 3 &&
                   out.dim(0) == a.dim(0) && out.dim(1) == a.dim(2) && out.dim(2) == 2,
               "spectrum_product_sum: needs a, b (B, M, F, 2) and out (B, F, 2), got ", a.str(), ", ", b.str(), ", ",
               out.str());
  const int64_t batch = a.dim(0), positions = a.dim(1), bins = a.dim(2);
  dispatch(
      a,
      [&](auto device) {
        cuda::spectrum_product_sum(device, a.data<float>(), b.data<float>(), out.data<float>(), batch, positions, bins);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::spectrum_product_sum<T>(a.data<T>(), b.data<T>(), out.data<T>(), batch, positions, bins);
      });
}

void sketch_gram_gather(const Tensor& g, const Tensor& h1, const Tensor& s1, const Tensor& h2, const Tensor& s2,
                        const Tensor& out) {
  check_same("sketch_gram_gather", {&g, &h1, &s1, &h2, &s2, &out});
  MPNCOV_CHECK(g.ndim() == 2 && out.ndim() == 3 && out.dim(0) == g.dim(0) && out.dim(1) == out.dim(2),
               "sketch_gram_gather: needs g (B, D) and out (B, C, C), got ", g.str(), ", ", out.str());
  const int64_t batch = g.dim(0), dim = g.dim(1), channels = out.dim(1);
  check_hash("sketch_gram_gather", h1, s1, channels, dim);
  check_hash("sketch_gram_gather", h2, s2, channels, dim);
  dispatch(
      g,
      [&](auto device) {
        cuda::sketch_gram_gather(device, g.data<float>(), h1.data<float>(), s1.data<float>(), h2.data<float>(),
                                 s2.data<float>(), out.data<float>(), batch, channels, dim);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::sketch_gram_gather<T>(g.data<T>(), h1.data<T>(), s1.data<T>(), h2.data<T>(), s2.data<T>(), out.data<T>(),
                                   batch, channels, dim);
      });
}

}  // namespace mpncov::ops
