// Our copy of float32 weight gradients from oneDNN's 16x16-tiled layouts to (O, I, kh, kw)
// (core/cpu/blocked_weights.cpp) gives oneDNN's own reorder bit for bit, written and accumulated, and takes
// only the layouts it can.
#include <dnnl.hpp>

#include <cstdint>
#include <vector>

#include "core/cpu/blocked_weights.h"
#include "core/cpu/onednn_support.h"
#include "tests/helpers.h"

using namespace mpncov;
using Tag = dnnl::memory::format_tag;
using dnnl::memory;

namespace {

std::vector<float> counting(size_t n, float start) {
  std::vector<float> v(n);
  for (size_t k = 0; k < n; ++k) v[k] = start + 0.25f * static_cast<float>(k % 1021) - static_cast<float>(k % 7);
  return v;
}

// oneDNN's reorder from one layout to another, with its sum post-op when accumulating.
void onednn_reorder(const memory::desc& from, const void* src, const memory::desc& to, void* dst, bool accumulate) {
  dnnl::engine& e = cpu::onednn_engine();
  dnnl::primitive_attr attr;
  if (accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  dnnl::stream s(e);
  memory a(from, e, const_cast<void*>(src)), b(to, e, dst);
  dnnl::reorder(dnnl::reorder::primitive_desc(e, from, e, to, attr)).execute(s, a, b);
  s.wait();
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("blocked weights: back from the 16x16-tiled layouts as oneDNN's reorder does it, written and added") {
  struct Shape {
    int64_t o, i, kh, kw;
  };
  for (const Shape sh : {Shape{32, 48, 1, 1}, Shape{16, 32, 3, 3}, Shape{48, 16, 1, 7}, Shape{64, 32, 5, 5}}) {
    for (const Tag tiled : {Tag::OIhw16i16o, Tag::IOhw16o16i, Tag::OIhw16o16i}) {
      CAPTURE(sh.o);
      CAPTURE(sh.i);
      CAPTURE(sh.kh);
      CAPTURE(static_cast<int>(tiled));
      const memory::dims dims{sh.o, sh.i, sh.kh, sh.kw};
      const memory::desc plain(dims, memory::data_type::f32, Tag::oihw), blocked(dims, memory::data_type::f32, tiled);
      REQUIRE(cpu::blocked_weights_fit(plain, blocked));
      const size_t n = static_cast<size_t>(sh.o * sh.i * sh.kh * sh.kw);
      const std::vector<float> w = counting(n, 1.0f);

      const std::vector<float> g = counting(n, -3.0f);  // a gradient in the tiled layout
      std::vector<float> written(n, 7.0f), want(n, 8.0f);
      cpu::weights_from_blocked(g.data(), written.data(), blocked, false);
      onednn_reorder(blocked, g.data(), plain, want.data(), false);
      CHECK(written == want);

      std::vector<float> added = w, want_added = w;
      cpu::weights_from_blocked(g.data(), added.data(), blocked, true);
      onednn_reorder(blocked, g.data(), plain, want_added.data(), true);
      CHECK(added == want_added);
      CHECK(added != w);
    }
  }
}

TEST_CASE("blocked weights: other layouts, types and channel counts are left to oneDNN") {
  const memory::dims dims{32, 32, 3, 3};
  const memory::desc plain(dims, memory::data_type::f32, Tag::oihw);
  CHECK_FALSE(cpu::blocked_weights_fit(plain, memory::desc(dims, memory::data_type::f32, Tag::Ohwi16o)));   // one block
  CHECK_FALSE(cpu::blocked_weights_fit(plain, memory::desc(dims, memory::data_type::f32, Tag::OIhw4i16o4i)));
  CHECK_FALSE(cpu::blocked_weights_fit(plain, memory::desc(dims, memory::data_type::bf16, Tag::OIhw16i16o)));
  // plain in another order than (O, I, kh, kw)
  CHECK_FALSE(cpu::blocked_weights_fit(memory::desc(dims, memory::data_type::f32, Tag::ohwi),
                                       memory::desc(dims, memory::data_type::f32, Tag::OIhw16i16o)));
  const memory::dims odd{24, 32, 3, 3};  // 24 outputs: the tiled layout pads them to 32
  CHECK_FALSE(cpu::blocked_weights_fit(memory::desc(odd, memory::data_type::f32, Tag::oihw),
                                       memory::desc(odd, memory::data_type::f32, Tag::OIhw16i16o)));
  const memory::dims grouped{2, 16, 16, 3, 3};
  CHECK_FALSE(cpu::blocked_weights_fit(memory::desc(grouped, memory::data_type::f32, Tag::goihw),
                                       memory::desc(grouped, memory::data_type::f32, Tag::gOIhw16i16o)));
}
}  // TEST_SUITE
