// Batched float32 matrix products through oneDNN's matmul (core/cpu/cpu_ops.h, onednn_matmul). oneDNN picks
// its kernels for the CPU it runs on (AVX-512 where there is one), while OpenBLAS runs the kernels its core
// type names, and this machine's environment often names an older one (OPENBLAS_CORETYPE=Haswell): a batch
// of eight 256 x 256 products, the representation's iSQRT iteration, takes 0.44-0.65 ms here against
// 1.25 ms. Each shape gets its primitive once; strided operands are described as they lie, so nothing is
// copied.
#include <dnnl.hpp>

#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include "core/cpu/cpu_ops.h"

namespace mpncov::cpu {
namespace {

using dnnl::memory;

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

uint32_t bits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
}

// Everything a primitive depends on: transposes, sizes, leading dimensions, strides, alpha and beta.
using Key = std::array<int64_t, 14>;

struct Plan {
  std::unique_ptr<dnnl::matmul> primitive;  // null: oneDNN has only its reference kernel here
  memory::desc a, b, c;
};

Plan make_plan(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, int64_t lda, int64_t sa,
               int64_t ldb, int64_t sb, float beta, int64_t ldc, int64_t sc, int64_t batch) {
  Plan p;
  // Row-major op(A) (m x k) and op(B) (k x n): a transposed operand is the same memory read by columns.
  p.a = memory::desc({batch, m, k}, memory::data_type::f32, ta ? memory::dims{sa, 1, lda} : memory::dims{sa, lda, 1});
  p.b = memory::desc({batch, k, n}, memory::data_type::f32, tb ? memory::dims{sb, 1, ldb} : memory::dims{sb, ldb, 1});
  p.c = memory::desc({batch, m, n}, memory::data_type::f32, memory::dims{sc, ldc, 1});
  dnnl::primitive_attr attr;
  if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
  if (beta != 0.0f) {
    dnnl::post_ops ops;
    ops.append_sum(beta);
    attr.set_post_ops(ops);
  }
  try {
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(p.a, p.b, p.c), attr, engine());
    if (std::strncmp(pd.impl_info_str(), "ref", 3) != 0) p.primitive = std::make_unique<dnnl::matmul>(pd);
  } catch (const dnnl::error&) {  // a shape or stride it does not take: BLAS does it
  }
  return p;
}

std::mutex plans_mutex;
std::map<Key, Plan> plans;

}  // namespace

bool onednn_matmul(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                   int64_t lda, int64_t stride_a, const float* b, int64_t ldb, int64_t stride_b, float beta, float* c,
                   int64_t ldc, int64_t stride_c, int64_t batch) {
  if (m == 0 || n == 0 || k == 0 || batch == 0) return false;
  const Key key{trans_a, trans_b, m, n, k, lda, stride_a, ldb, stride_b, ldc, stride_c, batch, bits(alpha), bits(beta)};
  std::lock_guard<std::mutex> lock(plans_mutex);
  auto it = plans.find(key);
  if (it == plans.end())
    it = plans.emplace(key, make_plan(trans_a, trans_b, m, n, k, alpha, lda, stride_a, ldb, stride_b, beta, ldc,
                                      stride_c, batch))
             .first;
  const Plan& p = it->second;
  if (!p.primitive) return false;
  dnnl::stream s(engine());
  memory am(p.a, engine(), const_cast<float*>(a)), bm(p.b, engine(), const_cast<float*>(b)), cm(p.c, engine(), c);
  p.primitive->execute(s, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
  s.wait();
  return true;
}

}  // namespace mpncov::cpu
