// Argument checks and backend dispatch for core/matrix_ops.h.
#include "core/matrix_ops.h"

#include "core/cpu/matrix_cpu.h"
#include "core/cuda_matrix_backend.h"
#include "core/dispatch.h"

namespace mpncov::ops {
namespace {

// A batch of square matrices (B, n, n).
void check_square(const char* op, const Tensor& t) {
  MPNCOV_CHECK(t.ndim() == 3 && t.dim(1) == t.dim(2), op, ": needs a batch of square matrices (B, n, n), got ",
               t.str());
}

// An optional per-sample tensor of `batch` elements.
void check_per_sample(const char* op, const Tensor& t, int64_t batch) {
  if (!t.defined()) return;
  MPNCOV_CHECK(t.numel() == batch, op, ": per-sample tensor ", t.str(), " should hold ", batch, " elements");
}

}  // namespace

void square_matmul(const Tensor& a, const Tensor& b, const Tensor& c, Structure structure, bool trans_a,
                   bool trans_b, double alpha, double beta) {
  check_same("square_matmul", {&a, &b, &c});
  check_square("square_matmul", c);
  MPNCOV_CHECK(a.ndim() == 3 && b.ndim() == 3, "square_matmul: needs 3-D operands, got ", a.str(), ", ", b.str());
  const int64_t batch = c.dim(0), n = c.dim(1);
  const int64_t am = trans_a ? a.dim(2) : a.dim(1), k = trans_a ? a.dim(1) : a.dim(2);
  const int64_t bk = trans_b ? b.dim(2) : b.dim(1), bn = trans_b ? b.dim(1) : b.dim(2);
  MPNCOV_CHECK(a.dim(0) == batch && b.dim(0) == batch && am == n && bn == n && bk == k,
               "square_matmul: shapes do not agree: op(A) ", am, "x", k, ", op(B) ", bk, "x", bn, ", C ",
               c.shape().str(), " (batches ", a.dim(0), ", ", b.dim(0), ", ", batch, ")");
  if (batch == 0 || n == 0) return;
  dispatch(
      c,
      [&](auto) {  // cuBLAS has no strided-batched triangular product: the full one
        gemm(trans_a, trans_b, n, n, k, alpha, {a, 0, a.dim(2), a.dim(1) * a.dim(2)},
             {b, 0, b.dim(2), b.dim(1) * b.dim(2)}, beta, c, 0, n, n * n, batch);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::square_matmul<T>(trans_a, trans_b, n, k, static_cast<T>(alpha), a.data<T>(), a.dim(2),
                              a.dim(1) * a.dim(2), b.data<T>(), b.dim(2), b.dim(1) * b.dim(2), static_cast<T>(beta),
                              c.data<T>(), batch, structure);
      });
}

void add_identity(const Tensor& x, double alpha, double beta, const Tensor& out, const Tensor& p, const Tensor& q) {
  check_same("add_identity", {&x, &out, &p, &q});
  check_square("add_identity", x);
  MPNCOV_CHECK(out.shape() == x.shape(), "add_identity: out ", out.str(), " differs from x ", x.str());
  const int64_t batch = x.dim(0), n = x.dim(1);
  check_per_sample("add_identity", p, batch);
  check_per_sample("add_identity", q, batch);
  dispatch(
      x,
      [&](auto device) {
        cuda::add_identity(device, x.data<float>(), static_cast<float>(alpha), static_cast<float>(beta),
                           out.data<float>(), ptr<float>(p), ptr<float>(q), batch, n);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::add_identity<T>(x.data<T>(), static_cast<T>(alpha), static_cast<T>(beta), out.data<T>(), ptr<T>(p),
                             ptr<T>(q), batch, n);
      });
}

void symmetric_combine(double alpha, const Tensor& x, double beta, const Tensor& w, int sign, double gamma,
                       const Tensor& z, const Tensor& out) {
  check_same("symmetric_combine", {&w, &x, &z, &out});
  check_square("symmetric_combine", w);
  MPNCOV_CHECK(sign == 1 || sign == -1, "symmetric_combine: sign must be +1 or -1, got ", sign);
  for (const Tensor* t : {&x, &z, &out})
    MPNCOV_CHECK(!t->defined() || t->shape() == w.shape(), "symmetric_combine: ", t->str(), " differs from w ",
                 w.str());
  MPNCOV_CHECK(!out.same_storage(w), "symmetric_combine: out may not be w (it reads w transposed)");
  const int64_t batch = w.dim(0), n = w.dim(1);
  dispatch(
      w,
      [&](auto device) {
        cuda::symmetric_combine(device, static_cast<float>(alpha), ptr<float>(x), static_cast<float>(beta),
                                w.data<float>(), sign, static_cast<float>(gamma), ptr<float>(z),
                                out.data<float>(), batch, n);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::symmetric_combine<T>(static_cast<T>(alpha), ptr<T>(x), static_cast<T>(beta), w.data<T>(), sign,
                                  static_cast<T>(gamma), ptr<T>(z), out.data<T>(), batch, n);
      });
}

void trace(const Tensor& x, const Tensor& out) {
  check_same("trace", {&x, &out});
  check_square("trace", x);
  check_per_sample("trace", out, x.dim(0));
  dispatch(
      x, [&](auto device) { cuda::trace(device, x.data<float>(), out.data<float>(), x.dim(0), x.dim(1)); },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::trace<T>(x.data<T>(), out.data<T>(), x.dim(0), x.dim(1));
      });
}

void batched_dot(const Tensor& x, const Tensor& y, const Tensor& out) {
  check_same("batched_dot", {&x, &y, &out});
  MPNCOV_CHECK(x.ndim() >= 1 && x.shape() == y.shape(), "batched_dot: shapes differ: ", x.str(), ", ", y.str());
  const int64_t batch = x.dim(0), per = batch ? x.numel() / batch : 0;
  check_per_sample("batched_dot", out, batch);
  dispatch(
      x,
      [&](auto device) {
        cuda::batched_dot(device, x.data<float>(), y.data<float>(), out.data<float>(), batch, per);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::batched_dot<T>(x.data<T>(), y.data<T>(), out.data<T>(), batch, per);
      });
}

void trace_guard(const Tensor& trace, double eps, const Tensor& used, const Tensor& keep) {
  check_same("trace_guard", {&trace, &used, &keep});
  MPNCOV_CHECK(eps > 0, "trace_guard: eps must be positive, got ", eps);
  const int64_t batch = trace.numel();
  check_per_sample("trace_guard", used, batch);
  check_per_sample("trace_guard", keep, batch);
  dispatch(
      trace,
      [&](auto device) {
        cuda::trace_guard(device, trace.data<float>(), eps, used.data<float>(), keep.data<float>(), batch);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::trace_guard<T>(trace.data<T>(), eps, used.data<T>(), keep.data<T>(), batch);
      });
}

void center_rows(const Tensor& x, const Tensor& out) {
  check_same("center_rows", {&x, &out});
  MPNCOV_CHECK(x.ndim() >= 1 && out.shape() == x.shape(), "center_rows: ", x.str(), " into ", out.str());
  const int64_t cols = x.dim(x.ndim() - 1), rows = cols ? x.numel() / cols : 0;
  if (rows == 0) return;
  dispatch(
      x, [&](auto device) { cuda::center_rows(device, x.data<float>(), out.data<float>(), rows, cols); },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::center_rows<T>(x.data<T>(), out.data<T>(), rows, cols);
      });
}

void triu_gather(const Tensor& x, const Tensor& scale, const Tensor& out) {
  check_same("triu_gather", {&x, &scale, &out});
  check_square("triu_gather", x);
  const int64_t batch = x.dim(0), n = x.dim(1);
  MPNCOV_CHECK(out.numel() == batch * n * (n + 1) / 2, "triu_gather: out ", out.str(), " should hold (", batch, ", ",
               n * (n + 1) / 2, ")");
  check_per_sample("triu_gather", scale, batch);
  dispatch(
      x,
      [&](auto device) {
        cuda::triu_gather(device, x.data<float>(), ptr<float>(scale), out.data<float>(), batch, n);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::triu_gather<T>(x.data<T>(), ptr<T>(scale), out.data<T>(), batch, n);
      });
}

void triu_scatter(const Tensor& g, const Tensor& scale, const Tensor& out, bool symmetric) {
  check_same("triu_scatter", {&g, &scale, &out});
  check_square("triu_scatter", out);
  const int64_t batch = out.dim(0), n = out.dim(1);
  MPNCOV_CHECK(g.numel() == batch * n * (n + 1) / 2, "triu_scatter: g ", g.str(), " should hold (", batch, ", ",
               n * (n + 1) / 2, ")");
  check_per_sample("triu_scatter", scale, batch);
  dispatch(
      g,
      [&](auto device) {
        cuda::triu_scatter(device, g.data<float>(), ptr<float>(scale), out.data<float>(), batch, n, symmetric);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::triu_scatter<T>(g.data<T>(), ptr<T>(scale), out.data<T>(), batch, n, symmetric);
      });
}

void signed_sqrt(const Tensor& x, double thresh, const Tensor& y) {
  check_same("signed_sqrt", {&x, &y});
  MPNCOV_CHECK(x.numel() == y.numel(), "signed_sqrt: ", x.str(), " into ", y.str());
  MPNCOV_CHECK(thresh >= 0, "signed_sqrt: thresh must be non-negative, got ", thresh);
  dispatch(
      x,
      [&](auto device) {
        cuda::signed_sqrt(device, x.data<float>(), static_cast<float>(thresh), y.data<float>(), x.numel());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::signed_sqrt<T>(x.data<T>(), static_cast<T>(thresh), y.data<T>(), x.numel());
      });
}

void signed_sqrt_backward(const Tensor& x, const Tensor& dy, double thresh, const Tensor& dx) {
  check_same("signed_sqrt_backward", {&x, &dy, &dx});
  MPNCOV_CHECK(x.numel() == dy.numel() && x.numel() == dx.numel(), "signed_sqrt_backward: sizes differ: ", x.str(),
               ", ", dy.str(), ", ", dx.str());
  dispatch(
      x,
      [&](auto device) {
        cuda::signed_sqrt_backward(device, x.data<float>(), dy.data<float>(), static_cast<float>(thresh),
                                   dx.data<float>(), x.numel());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::signed_sqrt_backward<T>(x.data<T>(), dy.data<T>(), static_cast<T>(thresh), dx.data<T>(), x.numel());
      });
}

void l2_normalize_rows(const Tensor& x, double eps, const Tensor& y, const Tensor& norm) {
  check_same("l2_normalize_rows", {&x, &y, &norm});
  MPNCOV_CHECK(x.ndim() >= 1 && x.numel() == y.numel(), "l2_normalize_rows: ", x.str(), " into ", y.str());
  const int64_t rows = x.dim(0), cols = rows ? x.numel() / rows : 0;
  check_per_sample("l2_normalize_rows", norm, rows);
  dispatch(
      x,
      [&](auto device) {
        cuda::l2_normalize_rows(device, x.data<float>(), static_cast<float>(eps), y.data<float>(), norm.data<float>(),
                                rows, cols);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::l2_normalize_rows<T>(x.data<T>(), static_cast<T>(eps), y.data<T>(), norm.data<T>(), rows, cols);
      });
}

void l2_normalize_rows_backward(const Tensor& y, const Tensor& norm, const Tensor& dy, double eps, const Tensor& dx) {
  check_same("l2_normalize_rows_backward", {&y, &norm, &dy, &dx});
  MPNCOV_CHECK(y.ndim() >= 1 && y.numel() == dy.numel() && y.numel() == dx.numel(),
               "l2_normalize_rows_backward: sizes differ: ", y.str(), ", ", dy.str(), ", ", dx.str());
  const int64_t rows = y.dim(0), cols = rows ? y.numel() / rows : 0;
  check_per_sample("l2_normalize_rows_backward", norm, rows);
  dispatch(
      y,
      [&](auto device) {
        cuda::l2_normalize_rows_backward(device, y.data<float>(), norm.data<float>(), dy.data<float>(),
                                         static_cast<float>(eps), dx.data<float>(), rows, cols);
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::l2_normalize_rows_backward<T>(y.data<T>(), norm.data<T>(), dy.data<T>(), static_cast<T>(eps), dx.data<T>(),
                                           rows, cols);
      });
}

}  // namespace mpncov::ops
