// Memory layouts of a 4-D activation (N, C, H, W). NCHW is the default and what every op assumes unless
// it says otherwise; the others are the orders oneDNN's convolution kernels run fastest on, kept between
// the layers that understand them (docs/layouts.md) so the kernels need no reorders:
//   NHWC       channels innermost (oneDNN's channels-last, what its bfloat16 kernels want)
//   Blocked16  nChw16c: channels in blocks of 16, each block a (N, H, W, 16) slab (its float32 kernels)
// All three are "channel blocks": image n, block cb (B channels), pixel p, channel-in-block ci at
//   ((n * C/B + cb) * H*W + p) * B + ci,   B = 1 (NCHW), C (NHWC) or 16 (Blocked16),
// so one loop written over channel blocks serves every layout. The shape stays (N, C, H, W) in all.
#pragma once
#include <cstdint>
#include <string>

namespace mpncov {

enum class Layout { NCHW, NHWC, Blocked16 };

inline const char* layout_name(Layout l) {
  switch (l) {
    case Layout::NCHW: return "nchw";
    case Layout::NHWC: return "nhwc";
    case Layout::Blocked16: return "nChw16c";
  }
  return "?";
}

// Channels per block for `channels` channels in layout l (see above).
inline int64_t layout_block(Layout l, int64_t channels) {
  switch (l) {
    case Layout::NCHW: return 1;
    case Layout::NHWC: return channels;
    case Layout::Blocked16: return 16;
  }
  return 1;
}

// Whether a tensor of `channels` channels can be held in layout l without padding.
inline bool layout_fits(Layout l, int64_t channels) { return l != Layout::Blocked16 || channels % 16 == 0; }

// Which layouts nets plan (the environment variable MPNCOV_LAYOUT, read once: nchw, the default, keeps
// every activation NCHW; auto picks per convolution what its kernels run fastest on here, nChw16c in
// float32 and NHWC in bfloat16 (bench/RESULTS.md); nhwc and blocked force one).
enum class LayoutMode { Off, Auto, NHWC, Blocked16 };
LayoutMode layout_mode();
void set_layout_mode(LayoutMode mode);  // overrides the environment (tests, benchmarks)
// The layout a convolution gives its output under the mode: float32 or bfloat16 multiplication,
// `channels` output channels.
Layout convolution_layout(bool bfloat16, int64_t channels);

}  // namespace mpncov
