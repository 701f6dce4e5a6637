// The gradient checker itself: it must pass a correct backward, fail a wrong one, and skip kinks.
#include "layers/gradcheck.h"
#include "tests/helpers.h"

using namespace mpncov;

namespace {

// y = w * x^2 + relu(x) per element, with w one parameter per element; `wrong` breaks the x-gradient.
class ToyLayer : public Layer {
 public:
  explicit ToyLayer(bool wrong) : wrong_(wrong) {}
  std::string type() const override { return "toy"; }
  std::vector<Shape> setup(const std::vector<Shape>& in, const SetupContext& ctx) override {
    Parameter& w = add_parameter("weight", in.at(0), ctx);
    ops::fill_uniform(w.value, 0.5, 1.5, ctx.seed, stream_of(ctx.name, "weight"));
    return {in[0]};
  }
  void forward(const std::vector<Tensor>& in, const std::vector<Tensor>& out) override {
    const double* x = in[0].data<double>();
    const double* w = parameters()[0].value.data<double>();
    double* y = out[0].data<double>();
    for (int64_t i = 0; i < in[0].numel(); ++i) y[i] = w[i] * x[i] * x[i] + (x[i] > 0 ? x[i] : 0);
  }
  void backward(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& dout,
                const std::vector<Tensor>& din) override {
    const double* x = in[0].data<double>();
    const double* w = parameters()[0].value.data<double>();
    const double* g = dout[0].data<double>();
    double* gw = parameters()[0].grad.data<double>();
    for (int64_t i = 0; i < in[0].numel(); ++i) {
      gw[i] += g[i] * x[i] * x[i];
      if (din[0].defined()) din[0].data<double>()[i] = g[i] * (2 * w[i] * x[i] * (wrong_ ? 1.01 : 1.0) + (x[i] > 0));
    }
  }

 private:
  bool wrong_;
};

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("gradcheck: passes a correct backward, fails a wrong one, counts kinks") {
  Tensor x = test::random_tensor({2, 3, 4}, DType::F64, 5);
  x.data<double>()[7] = 0.0;  // exactly on relu's kink
  ToyLayer good(false);
  GradCheckReport r = gradcheck(good, {x});
  CHECK(r.pass());
  REQUIRE(r.rows.size() == 2);
  CHECK(r.rows[0].tensor == "input 0");
  CHECK(r.rows[0].kinks == 1);
  CHECK(r.rows[0].checked == 23);
  CHECK(r.rows[1].tensor == "weight");
  CHECK(r.rows[1].checked == 24);
  CHECK(r.table().find("pass") != std::string::npos);

  ToyLayer bad(true);
  GradCheckReport rb = gradcheck(bad, {x});
  CHECK_FALSE(rb.pass());
  CHECK_FALSE(rb.rows[0].pass);
  CHECK(rb.rows[1].pass);
  CHECK(rb.table().find("FAIL") != std::string::npos);

  GradCheckOptions sample;
  sample.max_elements = 5;
  ToyLayer sampled(false);
  GradCheckReport rs = gradcheck(sampled, {x}, sample);
  CHECK(rs.rows[1].checked == 5);
  CHECK(rs.rows[1].elements == 24);
}

TEST_CASE("gradcheck: checking nothing is a failure, not a pass") {
  CHECK_FALSE(GradCheckReport{}.pass());
  ToyLayer on_kinks(false);
  const GradCheckReport r = gradcheck(on_kinks, {Tensor::zeros({2, 3}, DType::F64)});  // all on relu's kink
  REQUIRE(r.rows.size() == 2);
  CHECK(r.rows[0].checked == 0);
  CHECK(r.rows[0].kinks == 6);
  CHECK_FALSE(r.rows[0].pass);
  CHECK(r.rows[1].checked == 6);
  CHECK(r.rows[1].pass);
  CHECK_FALSE(r.pass());
  CHECK(r.table().find("FAIL: nothing checked") != std::string::npos);
}

TEST_CASE("config: typed reads, unknown keys with suggestions, file and line in errors") {
  YAML::Node node = YAML::Load("kernel: 3\nstride: [2, 1]\nbias: false\nname: c1\nkernal_size: 4\nlr: abc\n");
  Config c(node, "net.yaml", "layer 'c1' (conv)");
  CHECK(c.get<int>("kernel", 1) == 3);
  CHECK(c.get_pair("stride", {1, 1}) == std::pair<int64_t, int64_t>{2, 1});
  CHECK(c.get<bool>("bias", true) == false);
  CHECK(c.get<int>("padding", 7) == 7);
  CHECK_THROWS_WITH_AS(c.get<double>("lr", 0.0), doctest::Contains("net.yaml:6: layer 'c1' (conv): key 'lr' expected a number"), Error);
  CHECK_THROWS_WITH_AS(c.require<int>("groups"), doctest::Contains("key 'groups' is required"), Error);
  c.ignore("name");
  CHECK_THROWS_WITH_AS(c.finish(), doctest::Contains("net.yaml:5: layer 'c1' (conv): unknown key 'kernal_size', did you mean 'kernel'?"), Error);
}

}  // TEST_SUITE
