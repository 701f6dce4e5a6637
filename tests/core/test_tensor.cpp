#include "tests/helpers.h"

#include "core/allocator.h"

using namespace mpncov;
using mpncov::test::max_rel_diff;

TEST_SUITE("unit") {

TEST_CASE("tensor: creation, views, copies and fills") {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor t = Tensor::full({2, 3, 4}, 1.5, dt);
    CHECK(t.numel() == 24);
    CHECK(t.ndim() == 3);
    CHECK(t.dim(-1) == 4);
    CHECK(t.nbytes() == 24 * dtype_size(dt));
    CHECK(reinterpret_cast<uintptr_t>(t.raw()) % 64 == 0);
    for (double v : t.to_vector()) CHECK(v == 1.5);

    Tensor view = t.reshape({6, -1});
    CHECK(view.shape() == Shape({6, 4}));
    CHECK(view.raw() == t.raw());
    view.fill(2.0);
    CHECK(t.to_vector()[23] == 2.0);  // the view shares storage

    Tensor c = t.clone();
    CHECK(c.raw() != t.raw());
    c.fill(3.0);
    CHECK(t.to_vector()[0] == 2.0);

    Tensor s = t.slice(1, 2);
    CHECK(s.shape() == Shape({1, 3, 4}));
    s.fill(7.0);
    std::vector<double> v = t.to_vector();
    CHECK(v[11] == 2.0);
    CHECK(v[12] == 7.0);
    CHECK(v[23] == 7.0);
  }
}

TEST_CASE("tensor: misuse gives clear errors") {
  Tensor t = Tensor::zeros({2, 3});
  CHECK_THROWS_WITH_AS(t.reshape({4, 2}), doctest::Contains("has 6 elements"), Error);
  CHECK_THROWS_WITH_AS(t.reshape({-1, -1}), doctest::Contains("more than one -1"), Error);
  CHECK_THROWS_WITH_AS(t.data<double>(), doctest::Contains("tensor is float32"), Error);
  CHECK_THROWS_WITH_AS(t.slice(1, 3), doctest::Contains("out of range"), Error);
  CHECK_THROWS_WITH_AS(Tensor().raw(), doctest::Contains("undefined tensor"), Error);
  CHECK_THROWS_WITH_AS(Shape({1, 2, 3, 4, 5, 6, 7, 8, 9}), doctest::Contains("more than 8"), Error);
  CHECK_THROWS_AS(Shape({2, -3}), Error);
  CHECK_THROWS_WITH_AS(static_cast<void>(Tensor::zeros({2}).item()), doctest::Contains("2 elements"), Error);
}

TEST_CASE("tensor: dtype conversions round trip, including float16 and bfloat16") {
  Tensor x = Tensor::from_vector({0.0, -1.0, 0.5, 65504.0, 1e-7, 3.140625, -2.5e-5}, {7}, DType::F64);
  Tensor f32 = x.to(DType::F32);
  CHECK(f32.dtype() == DType::F32);
  CHECK(max_rel_diff(f32.to_vector(), x.to_vector()) < 1e-7);
  Tensor h = x.to(DType::F16);
  std::vector<double> hv = h.to_vector();
  CHECK(hv[0] == 0.0);
  CHECK(hv[1] == -1.0);
  CHECK(hv[3] == 65504.0);
  CHECK(hv[5] == 3.140625);
  CHECK(std::abs(hv[4] - 1e-7) < 6e-8);     // a float16 subnormal
  CHECK(std::abs(hv[6] + 2.5e-5) < 1e-7);   // another subnormal
  Tensor bf = x.to(DType::BF16);
  CHECK(bf.to_vector()[5] == 3.140625);
  CHECK(std::abs(bf.to_vector()[4] - 1e-7) / 1e-7 < 0.01);
  Tensor i = Tensor::from_vector({1, 2, -3}, {3}, DType::I64);
  CHECK(i.to(DType::F32).to_vector() == std::vector<double>{1, 2, -3});
}

TEST_CASE("device: parsing and errors") {
  CHECK(Device::parse("cpu").is_cpu());
  CHECK(Device::parse("cuda:1") == Device::cuda(1));
  CHECK(Device::parse("cuda").str() == "cuda:0");
  CHECK_THROWS_WITH_AS(Device::parse("tpu"), doctest::Contains("expected cpu, cuda or cuda:N"), Error);
  CHECK_THROWS_AS(Device::parse("cuda:x"), Error);
}

TEST_CASE("context: asking for an absent CUDA device is a clear error, CPU never is") {
  CHECK_NOTHROW(require_device(Device::cpu()));
  if (cuda_device_count() == 0) {
    CHECK_THROWS_WITH_AS(require_device(Device::cuda(0)), doctest::Contains("cuda:0"), Error);
  } else {
    CHECK_THROWS_WITH_AS(require_device(Device::cuda(cuda_device_count())), doctest::Contains("present"), Error);
  }
  CHECK(backends_summary().find("cpu") == 0);
}

TEST_CASE("allocator: CPU counters follow allocations") {
  const AllocatorStats before = allocator_stats(Device::cpu());
  {
    Tensor t = Tensor::empty({1000}, DType::F64);
    const AllocatorStats during = allocator_stats(Device::cpu());
    CHECK(during.in_use_bytes == before.in_use_bytes + 8000);
    CHECK(during.peak_bytes >= during.in_use_bytes);
  }
  CHECK(allocator_stats(Device::cpu()).in_use_bytes == before.in_use_bytes);
}

}  // TEST_SUITE
