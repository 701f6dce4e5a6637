// The scratchpad oneDNN's Winograd and direct kernels ask for, per pass, for the 3x3 layers whose Winograd
// scratchpads bench/RESULTS.md quotes (Inception-v3's stem and 35x35 layers, ResNet's 56x56, 14x14 and 7x7
// ones), at a given batch: what the 64 MiB cap of core/cpu/conv_onednn.cpp is measured against.
//
// built with the project (scripts/build.sh): build/conv_scratchpad
// usage: conv_scratchpad [BATCH]   (default 32)
#include <cstdio>
#include <cstdlib>

#include <oneapi/dnnl/dnnl.hpp>

namespace {

struct Layer {
  const char* name;
  int in, out, side, pad;  // channels, input side, padding (3x3, stride 1)
};

const Layer kLayers[] = {
    {"inception_v3 Conv2d_2a_3x3", 32, 32, 149, 0}, {"inception_v3 Conv2d_2b_3x3", 32, 64, 147, 1},
    {"inception_v3 Conv2d_4a_3x3", 80, 192, 73, 0}, {"inception_v3 Mixed_5 3x3, 64 -> 96", 64, 96, 35, 1},
    {"inception_v3 Mixed_5 3x3, 96 -> 96", 96, 96, 35, 1}, {"resnet layer1 3x3", 64, 64, 56, 1},
    {"resnet50 layer3 3x3", 256, 256, 14, 1}, {"resnet50 layer4 3x3", 512, 512, 7, 1},
};

}  // namespace

int main(int argc, char** argv) {
  using namespace dnnl;
  const int batch = argc > 1 ? std::atoi(argv[1]) : 32;
  if (batch < 1) {
    std::fprintf(stderr, "usage: conv_scratchpad [BATCH]  (a positive batch size, default 32)\n");
    return 2;
  }
  engine eng(engine::kind::cpu, 0);
  primitive_attr attr;
  attr.set_scratchpad_mode(scratchpad_mode::user);
  const auto mb = [](const auto& pd) { return static_cast<double>(pd.scratchpad_desc().get_size()) / 1e6; };
  std::printf("batch %d; scratchpad MB, forward / input gradient / weight gradient\n", batch);
  for (const Layer& l : kLayers) {
    const int out_side = l.side + 2 * l.pad - 2;
    const memory::desc src({batch, l.in, l.side, l.side}, memory::data_type::f32, memory::format_tag::nChw16c);
    const memory::desc wei({l.out, l.in, 3, 3}, memory::data_type::f32, memory::format_tag::any);
    const memory::desc dst({batch, l.out, out_side, out_side}, memory::data_type::f32, memory::format_tag::nChw16c);
    const memory::dims stride{1, 1}, pad{l.pad, l.pad};
    std::printf("%-38s", l.name);
    for (algorithm a : {algorithm::convolution_winograd, algorithm::convolution_direct}) {
      try {
        const convolution_forward::primitive_desc fwd(
            {prop_kind::forward_training, a, src, wei, dst, stride, pad, pad}, attr, eng);
        const convolution_backward_data::primitive_desc data({a, src, wei, dst, stride, pad, pad}, attr, eng, fwd);
        const convolution_backward_weights::primitive_desc weights({a, src, wei, dst, stride, pad, pad}, attr, eng,
                                                                   fwd);
        std::printf("  %s %7.1f / %7.1f / %7.1f", a == algorithm::convolution_winograd ? "Winograd" : "direct",
                    mb(fwd), mb(data), mb(weights));
      } catch (const dnnl::error&) {
        std::printf("  %s (no kernel)", a == algorithm::convolution_winograd ? "Winograd" : "direct");
      }
    }
    std::printf("\n");
  }
  return 0;
}
