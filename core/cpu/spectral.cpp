#include "core/cpu/spectral.h"

#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <vector>

#include "core/cpu/parallel.h"

extern "C" {
// LAPACK (Fortran ABI; the trailing lengths are those of the character arguments).
void ssyevd_(const char* jobz, const char* uplo, const int* n, float* a, const int* lda, float* w, float* work,
             const int* lwork, int* iwork, const int* liwork, int* info, size_t, size_t);
void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w, double* work,
             const int* lwork, int* iwork, const int* liwork, int* info, size_t, size_t);
}

namespace mpncov::cpu {
namespace {

void syevd(int n, float* a, float* w, float* work, int lwork, int* iwork, int liwork, int* info) {
  ssyevd_("V", "L", &n, a, &n, w, work, &lwork, iwork, &liwork, info, 1, 1);
}
void syevd(int n, double* a, double* w, double* work, int lwork, int* iwork, int liwork, int* info) {
  dsyevd_("V", "L", &n, a, &n, w, work, &lwork, iwork, &liwork, info, 1, 1);
}

template <typename T>
void sym_eig_impl(const T* a, T* vectors, T* values, int64_t batch, int n) {
  // Workspace sizes from a query; one workspace per thread.
  T wq = 0;
  int iq = 0, info = 0;
  syevd(n, nullptr, nullptr, &wq, -1, &iq, -1, &info);
  const int lwork = static_cast<int>(wq) + 1, liwork = iq;
  const int64_t nn = static_cast<int64_t>(n) * n;
  auto sample = [&](int64_t b, T* work, int* iwork) {
    const T* ab = a + b * nn;
    T* v = vectors + b * nn;
    T* w = values + b * n;
    bool finite = true;
    for (int64_t e = 0; e < nn && finite; ++e) finite = std::isfinite(ab[e]);
    int status = 1;
    if (finite) {
      // Row-major a is its own transpose, so LAPACK's column-major view is the same matrix; the
      // eigenvectors come back as columns, i.e. as our rows.
      std::memcpy(v, ab, sizeof(T) * static_cast<size_t>(nn));
      syevd(n, v, w, work, lwork, iwork, liwork, &status);
    }
    if (status != 0) {
      for (int64_t e = 0; e < nn; ++e) v[e] = std::numeric_limits<T>::quiet_NaN();
      for (int i = 0; i < n; ++i) w[i] = std::numeric_limits<T>::quiet_NaN();
    }
  };
  // One sample per thread: OpenBLAS (its OpenMP build) runs single-threaded inside a parallel region. Fewer
  // samples than threads (batch 1) run there too, the other threads idle: syevd at n = 256 is a long chain
  // of small BLAS-2 calls, and letting OpenBLAS thread each of them made it slower than one thread: 5-80 ms
  // against 2.4 ms on a busy machine, where every call waits for a sleeping thread to wake.
  if (free_threads() > 1) {
#pragma omp parallel
    {
      std::vector<T> work(static_cast<size_t>(lwork));
      std::vector<int> iwork(static_cast<size_t>(liwork));
#pragma omp for schedule(dynamic)
      for (int64_t b = 0; b < batch; ++b) sample(b, work.data(), iwork.data());
    }
  } else {
    std::vector<T> work(static_cast<size_t>(lwork));
    std::vector<int> iwork(static_cast<size_t>(liwork));
    for (int64_t b = 0; b < batch; ++b) sample(b, work.data(), iwork.data());
  }
}

}  // namespace

void sym_eig(const Tensor& a, const Tensor& vectors, const Tensor& values) {
  MPNCOV_CHECK(a.ndim() == 3 && a.dim(1) == a.dim(2), "sym_eig: needs (B, n, n), got ", a.str());
  MPNCOV_CHECK(!a.device().is_cuda() && !vectors.device().is_cuda() && !values.device().is_cuda(),
               "sym_eig: CPU tensors only");
  const int64_t batch = a.dim(0), n = a.dim(1);
  MPNCOV_CHECK(vectors.shape() == a.shape() && values.shape() == Shape({batch, n}) && vectors.dtype() == a.dtype() &&
                   values.dtype() == a.dtype(),
               "sym_eig: vectors ", vectors.str(), " and values ", values.str(), " do not fit ", a.str());
  if (batch == 0 || n == 0) return;
  if (a.dtype() == DType::F32)
    sym_eig_impl(a.data<float>(), vectors.data<float>(), values.data<float>(), batch, static_cast<int>(n));
  else if (a.dtype() == DType::F64)
    sym_eig_impl(a.data<double>(), vectors.data<double>(), values.data<double>(), batch, static_cast<int>(n));
  else
    MPNCOV_CHECK(false, "sym_eig: float or double only, got ", a.str());
}

}  // namespace mpncov::cpu
