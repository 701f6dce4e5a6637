// cbp: compact bilinear pooling by Tensor Sketch (Gao et al., CVPR 2016), as fast-MPN-COV's CBP module:
//   for each position s of x (B, C, M): the count sketches u_s = S1^T x_s and v_s = S2^T x_s (length D,
//   S_k[c, h_k(c)] = s_k(c)); y = sum_s IFFT(FFT(u_s) FFT(v_s)) with the 1/D of the inverse transform (the
//   circular convolution of u_s and v_s); not averaged over positions; then sign(y) sqrt(|y| + thresh) and
//   L2 normalisation. Output (B, D). Keys: dim (8192), thresh (1e-8).
//
// Forward: real FFTs (FFTW / cuFFT, core/fft.h) of every sketch, the products summed over positions in the
// frequency domain (the inverse FFT is linear), then one inverse FFT per sample. Samples go in chunks so
// the spectra stay within a bounded workspace.
// Backward: y is a hashing of the Gram matrix G = X X^T, y[k] = sum of s1(c) s2(c') G[c, c'] over
// h1(c) + h2(c') = k (mod D), so dL/dG[c, c'] = s1(c) s2(c') g[h1(c) + h2(c')] and dL/dX = (dG + dG^T) X:
// one gather and one GEMM per sample, exact, and cheaper than the 2M inverse FFTs of autograd's route.
//
// The hashes and signs are buffers (hash1, sign1, hash2, sign2; float values), drawn once at the first
// setup from the run seed and the layer's name with Philox, and saved with the weights, so a model reloads
// identically. They differ from the seed's torch.randint draws after torch.manual_seed(1); to reproduce a
// PyTorch model exactly, load its hashes into these buffers.
#include <cmath>

#include "core/fft.h"
#include "core/matrix_ops.h"
#include "core/ops.h"
#include "core/philox.h"
#include "core/sketch_ops.h"
#include "layers/layer_util.h"

namespace mpncov {
namespace {

constexpr double kNormEps = 1e-12;
constexpr int64_t kWorkspaceElements = int64_t(1) << 25;  // sketches and spectra of one chunk of samples

class CbpLayer : public Layer {
 public:
  explicit CbpLayer(Config& c) : dim_(c.get<int64_t>("dim", 8192)), thresh_(get_finite(c, "thresh", 1e-8)) {
    c.check(dim_ >= 2 && dim_ <= (int64_t(1) << 24), "dim", "must be in [2, 2^24]");
    c.check(thresh_ >= 0, "thresh", "must be non-negative");
  }
  std::string type() const override { return "cbp"; }

  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext& ctx) override {
    check_arity(*this, in, 1);
    const Shape& s = in[0];
    MPNCOV_CHECK(s.ndim() == 3 || s.ndim() == 4, "cbp layer takes (B, C, H, W) or (B, C, L), got ", s.str());
    batch_ = s[0];
    channels_ = s[1];
    positions_ = s.numel() / std::max<int64_t>(1, batch_ * channels_);
    MPNCOV_CHECK(channels_ > 0 && positions_ > 0, "cbp layer: empty feature map ", s.str());
    if (buffers().empty()) draw_hashes(ctx);
    MPNCOV_CHECK(buffer("hash1").value.numel() == channels_, "cbp layer '", ctx.name, "': its hashes are for ",
                 buffer("hash1").value.numel(), " channels, the input has ", channels_);
    return {Shape({batch_, dim_})};
  }

  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    const Tensor x = in[0].reshape({batch_, channels_, positions_});
    const DType dt = x.dtype();
    const Device dev = x.device();
    const int64_t bins = dim_ / 2 + 1, chunk = chunk_size();
    ensure_tensor(z_, {batch_, dim_}, dt, dev);
    ensure_tensor(norm_, {batch_}, dt, dev);
    ensure_tensor(u_, {chunk, positions_, dim_}, dt, dev);
    ensure_tensor(v_, {chunk, positions_, dim_}, dt, dev);
    ensure_tensor(uf_, {chunk, positions_, bins, 2}, dt, dev);
    ensure_tensor(vf_, {chunk, positions_, bins, 2}, dt, dev);
    ensure_tensor(sf_, {chunk, bins, 2}, dt, dev);
    const Tensor h1 = hash("hash1", dev), s1 = hash("sign1", dev), h2 = hash("hash2", dev), s2 = hash("sign2", dev);
    for (int64_t b0 = 0; b0 < batch_; b0 += chunk) {
      const int64_t nb = std::min(chunk, batch_ - b0);
      const Tensor u = u_.slice(0, nb), v = v_.slice(0, nb), uf = uf_.slice(0, nb), vf = vf_.slice(0, nb);
      const Tensor sf = sf_.slice(0, nb);
      const Tensor xb = x.slice(b0, b0 + nb);
      ops::count_sketch(xb, h1, s1, u);
      ops::count_sketch(xb, h2, s2, v);
      ops::rfft(u, uf);
      ops::rfft(v, vf);
      ops::spectrum_product_sum(uf, vf, sf);
      ops::irfft(sf, z_.slice(b0, b0 + nb));
    }
    ops::binary_scalar(ops::Binary::Mul, z_, 1.0 / static_cast<double>(dim_), z_);
    ops::signed_sqrt(z_, thresh_, out[0]);
    ops::l2_normalize_rows(out[0], kNormEps, out[0], norm_);
  }

  void backward(const std::vector<Tensor>& in, const std::vector<Tensor>& out, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    if (!din[0].defined()) return;
    const Tensor x = in[0].reshape({batch_, channels_, positions_});
    const Tensor dx = din[0].reshape({batch_, channels_, positions_});
    const DType dt = x.dtype();
    const Device dev = x.device();
    const int64_t chunk = gram_chunk_size();
    ensure_tensor(g_, {batch_, dim_}, dt, dev);
    ensure_tensor(k_, {chunk, channels_, channels_}, dt, dev);
    ops::l2_normalize_rows_backward(out[0], norm_, dout[0], kNormEps, g_);
    ops::signed_sqrt_backward(z_, g_, thresh_, g_);
    const Tensor h1 = hash("hash1", dev), s1 = hash("sign1", dev), h2 = hash("hash2", dev), s2 = hash("sign2", dev);
    for (int64_t b0 = 0; b0 < batch_; b0 += chunk) {
      const int64_t nb = std::min(chunk, batch_ - b0);
      const Tensor k = k_.slice(0, nb);
      ops::sketch_gram_gather(g_.slice(b0, b0 + nb), h1, s1, h2, s2, k);
      ops::gemm(false, false, channels_, positions_, channels_, 1.0, {k, 0, channels_, channels_ * channels_},
                {x, b0 * channels_ * positions_, positions_, channels_ * positions_}, 0.0, dx,
                b0 * channels_ * positions_, positions_, channels_ * positions_, nb);
    }
  }

  double flops() const override {
    const double d = static_cast<double>(dim_), m = static_cast<double>(positions_);
    return static_cast<double>(batch_) * (2 * m * 2.5 * d * std::log2(d) + 4 * m * d + 2.5 * d * std::log2(d));
  }

 private:
  // Philox draws: hash uniform in [0, D), sign +-1 with probability 1/2, one stream per buffer.
  void draw_hashes(const SetupContext& ctx) {
    for (int k : {1, 2}) {
      std::vector<double> h(static_cast<size_t>(channels_)), s(h.size());
      const uint64_t hs = stream_of(ctx.name, str("hash", k)), ss = stream_of(ctx.name, str("sign", k));
      for (int64_t c = 0; c < channels_; ++c) {
        const double u = philox::uniform(ctx.seed, hs, static_cast<uint64_t>(c), true);
        h[static_cast<size_t>(c)] = std::min(std::floor(u * static_cast<double>(dim_)), static_cast<double>(dim_ - 1));
        s[static_cast<size_t>(c)] = philox::uniform(ctx.seed, ss, static_cast<uint64_t>(c), true) < 0.5 ? -1.0 : 1.0;
      }
      add_buffer(str("hash", k), {channels_}, ctx, 0.0).value.copy_from(Tensor::from_vector(h, {channels_}, ctx.dtype));
      add_buffer(str("sign", k), {channels_}, ctx, 0.0).value.copy_from(Tensor::from_vector(s, {channels_}, ctx.dtype));
    }
  }
  // The buffer on the inputs' device (buffers follow the layer's device; this only guards a mismatch).
  Tensor hash(const std::string& name, Device dev) {
    Buffer& b = buffer(name);
    if (b.value.device() != dev) b.value = b.value.to(dev);
    return b.value;
  }
  int64_t chunk_size() const {
    const int64_t per_sample = 4 * positions_ * (dim_ / 2 + 1);
    return std::max<int64_t>(1, std::min(batch_, kWorkspaceElements / std::max<int64_t>(1, per_sample)));
  }
  int64_t gram_chunk_size() const {
    return std::max<int64_t>(1, std::min(batch_, kWorkspaceElements / (channels_ * channels_)));
  }

  int64_t dim_;
  double thresh_;
  int64_t batch_ = 0, channels_ = 0, positions_ = 0;
  Tensor z_, norm_;                 // kept from forward to backward: y before the signed root, and the norms
  Tensor u_, v_, uf_, vf_, sf_;     // forward workspace (one chunk of samples)
  Tensor g_, k_;                    // backward workspace
};

}  // namespace

// Checks with C^2 well above dim, so every bin of the sketch gets contributions: an empty bin holds FFT
// rounding noise, which the signed root turns into a kink (the checker would skip every element).
MPNCOV_REGISTER_LAYER({"cbp",
                       "compact bilinear pooling (Tensor Sketch via FFT), signed square root, L2 normalisation "
                       "(keys dim, thresh)",
                       [](Config& c) -> std::unique_ptr<Layer> { return std::make_unique<CbpLayer>(c); },
                       {},
                       {{"{dim: 8}", {{2, 8, 3, 2}}},
                        {"{dim: 7}", {{2, 8, 3, 2}}}}});

}  // namespace mpncov
