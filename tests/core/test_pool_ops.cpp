// The max-pooling op against a direct transcription of PyTorch's rule: each window scanned in row-major
// order, a value replacing the best when larger or NaN (so ties keep the first maximum, and a window
// with NaNs gives NaN at the last NaN's index, as torch 1.13 does on CPU and GPU); on inputs full of ties and NaNs, with
// padding, strides, ceil mode and windows that hang over the edge.
#include <cmath>
#include <limits>

#include "core/nn_ops.h"
#include "tests/helpers.h"

using namespace mpncov;

namespace {

// Small integers (many ties), a few NaNs, and -inf.
Tensor tricky_input(const Shape& shape, DType dt) {
  std::vector<double> v(static_cast<size_t>(shape.numel()));
  for (size_t i = 0; i < v.size(); ++i) {
    const uint64_t h = (i * 2654435761u) % 97;
    v[i] = h < 3 ? std::nan("") : h < 5 ? -INFINITY : static_cast<double>(h % 5);
  }
  return Tensor::from_vector(v, shape, dt);
}

void reference(const std::vector<double>& x, int64_t planes, int64_t h, int64_t w, const ops::Pool2dParams& p,
               int64_t oh, int64_t ow, std::vector<double>& y, std::vector<int64_t>& index) {
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox) {
        const int64_t y0 = std::max<int64_t>(oy * p.stride_h - p.pad_h, 0);
        const int64_t y1 = std::min(oy * p.stride_h - p.pad_h + p.kernel_h, h);
        const int64_t x0 = std::max<int64_t>(ox * p.stride_w - p.pad_w, 0);
        const int64_t x1 = std::min(ox * p.stride_w - p.pad_w + p.kernel_w, w);
        double best = -INFINITY;
        int64_t arg = y0 * w + x0;
        for (int64_t iy = y0; iy < y1; ++iy)
          for (int64_t ix = x0; ix < x1; ++ix) {
            const double v = x[static_cast<size_t>((pl * h + iy) * w + ix)];
            if (v > best || std::isnan(v)) {
              best = v;
              arg = iy * w + ix;
            }
          }
        y.push_back(best);
        index.push_back(arg);
      }
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("max pooling op: values and indices follow PyTorch's scan with ties, NaNs and edges, with or without indices") {
  struct Case { int64_t h, w, kh, kw, sh, sw, ph, pw; bool ceil; };
  const Case cases[] = {{8, 8, 2, 2, 2, 2, 0, 0, false}, {9, 11, 3, 3, 2, 2, 1, 1, false},
                        {7, 10, 3, 3, 2, 2, 0, 0, true},  {6, 7, 2, 3, 1, 2, 1, 1, false},
                        {5, 9, 3, 2, 3, 1, 1, 1, true},   {13, 13, 3, 3, 2, 2, 1, 1, true},
                        {1, 1, 1, 1, 1, 1, 0, 0, false}};
  for (DType dt : {DType::F32, DType::F64})
    for (const Case& k : cases) {
      CAPTURE(k.h); CAPTURE(k.w); CAPTURE(k.kh); CAPTURE(k.kw); CAPTURE(k.ceil);
      ops::Pool2dParams p;
      p.kernel_h = k.kh; p.kernel_w = k.kw; p.stride_h = k.sh; p.stride_w = k.sw;
      p.pad_h = k.ph; p.pad_w = k.pw; p.ceil_mode = k.ceil;
      const int64_t oh = ops::pool_output_size(k.h, k.kh, k.sh, k.ph, k.ceil);
      const int64_t ow = ops::pool_output_size(k.w, k.kw, k.sw, k.pw, k.ceil);
      const Tensor x = tricky_input({2, 3, k.h, k.w}, dt);
      Tensor y = Tensor::empty({2, 3, oh, ow}, dt), index = Tensor::empty({2, 3, oh, ow}, DType::I64);
      ops::max_pool2d_forward(x, y, index, p);
      std::vector<double> want_y;
      std::vector<int64_t> want_index;
      reference(x.to_vector(), 6, k.h, k.w, p, oh, ow, want_y, want_index);
      const std::vector<double> got_y = y.to_vector();
      const int64_t* got_index = index.data<int64_t>();
      int mismatches = 0;
      for (size_t i = 0; i < want_y.size(); ++i) {
        const bool same_value = std::isnan(want_y[i]) ? std::isnan(got_y[i]) : got_y[i] == want_y[i];
        if (!same_value || got_index[i] != want_index[i]) ++mismatches;
      }
      CHECK(mismatches == 0);
      // Without an index (evaluation) the same maxima.
      Tensor y_only = Tensor::empty({2, 3, oh, ow}, dt);
      ops::max_pool2d_forward(x, y_only, Tensor(), p);
      const std::vector<double> got_only = y_only.to_vector();
      int differing = 0;
      for (size_t i = 0; i < want_y.size(); ++i)
        if (std::isnan(want_y[i]) ? !std::isnan(got_only[i]) : got_only[i] != want_y[i]) ++differing;
      CHECK(differing == 0);
    }
}
}  // TEST_SUITE
