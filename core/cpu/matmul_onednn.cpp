// Batched float32 matrix products through oneDNN's matmul (core/cpu/cpu_ops.h, onednn_matmul; gemm.cpp
// sends float products here). oneDNN picks its kernels for the CPU it runs on (AVX-512 where there is one),
// while OpenBLAS runs those of the core type it is told, and this machine's environment names an older one
// (OPENBLAS_CORETYPE=Haswell): `mpncov time mpncov_resnet50 --inference --batch 32` shows the classifier at
// 10.2 against 14.4 ms (bench/RESULTS.md). Each shape gets its primitive once; strided operands are
// described as they lie, so nothing is copied.
#include <dnnl.hpp>

#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include "core/cpu/cpu_ops.h"
#include "core/cpu/onednn_support.h"

namespace mpncov::cpu {
namespace {

using dnnl::memory;

uint32_t bits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
}

// Everything a primitive depends on: transposes, sizes, leading dimensions, strides, alpha and beta.
using Key = std::array<int64_t, 14>;

struct Plan {
  std::unique_ptr<dnnl::matmul> primitive;  // null: oneDNN has only its reference kernel here
  memory::desc a, b, c, scratchpad;
};

Plan make_plan(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, int64_t lda, int64_t sa,
               int64_t ldb, int64_t sb, float beta, int64_t ldc, int64_t sc, int64_t batch) {
  Plan p;
  if (batch == 1) {  // the batch stride is unused then, and may be 0, which oneDNN refuses
    sa = lda * (ta ? k : m);
    sb = ldb * (tb ? n : k);
    sc = ldc * m;
  }
  // Row-major op(A) (m x k) and op(B) (k x n): a transposed operand is the same memory read by columns.
  p.a = memory::desc({batch, m, k}, memory::data_type::f32, ta ? memory::dims{sa, 1, lda} : memory::dims{sa, lda, 1});
  p.b = memory::desc({batch, k, n}, memory::data_type::f32, tb ? memory::dims{sb, 1, ldb} : memory::dims{sb, ldb, 1});
  p.c = memory::desc({batch, m, n}, memory::data_type::f32, memory::dims{sc, ldc, 1});
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // each thread's own: see scratchpad()
  if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
  if (beta != 0.0f) {
    dnnl::post_ops ops;
    ops.append_sum(beta);
    attr.set_post_ops(ops);
  }
  try {
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(p.a, p.b, p.c), attr, onednn_engine());
    if (std::strncmp(pd.impl_info_str(), "ref", 3) == 0) return p;
    p.primitive = std::make_unique<dnnl::matmul>(pd);
    p.scratchpad = pd.scratchpad_desc();
  } catch (const dnnl::error&) {  // a shape or stride it does not take: BLAS does it
  }
  return p;
}

// The calling thread's scratchpad for a primitive. oneDNN's own lives in the primitive, which would let
// two threads running the same product (one image each, conv.cpp's split route) overwrite each other's.
void* scratchpad(size_t bytes) {
  thread_local ScratchBuffer buffer;
  return buffer.reserve(bytes, "matrix product");
}

std::mutex plans_mutex;
std::map<Key, Plan> plans;

}  // namespace

bool onednn_matmul(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                   int64_t lda, int64_t stride_a, const float* b, int64_t ldb, int64_t stride_b, float beta, float* c,
                   int64_t ldc, int64_t stride_c, int64_t batch) {
  if (m == 0 || n == 0 || k == 0 || batch == 0) return false;
  const Key key{trans_a, trans_b, m, n, k, lda, stride_a, ldb, stride_b, ldc, stride_c, batch, bits(alpha), bits(beta)};
  const Plan* plan;
  {  // a map's entries stay put, and oneDNN primitives may run on several threads at once
    std::lock_guard<std::mutex> lock(plans_mutex);
    auto it = plans.find(key);
    if (it == plans.end())
      it = plans.emplace(key, make_plan(trans_a, trans_b, m, n, k, alpha, lda, stride_a, ldb, stride_b, beta, ldc,
                                        stride_c, batch))
               .first;
    plan = &it->second;
  }
  const Plan& p = *plan;
  if (!p.primitive) return false;
  dnnl::engine& e = onednn_engine();
  dnnl::stream s(e);
  memory am(p.a, e, const_cast<float*>(a)), bm(p.b, e, const_cast<float*>(b)), cm(p.c, e, c);
  memory pad(p.scratchpad, e, scratchpad(p.scratchpad.get_size()));
  p.primitive->execute(s, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}, {DNNL_ARG_SCRATCHPAD, pad}});
  s.wait();
  return true;
}

}  // namespace mpncov::cpu
