// The communication layer across 2 processes: all-reduce and broadcast over float32, float64 and int64,
// odd sizes, zero-size and many small tensors in flight at once, checked against the sum one process
// computes from every rank's data.
#include <doctest/doctest.h>

#include "core/dist/communicator.h"
#include "tests/helpers.h"

using namespace mpncov;

namespace {

// Rank r's data for a test: uniform values from a seed that depends on r (any rank can make anyone's).
Tensor data_of(int rank, int64_t n, DType dtype, uint64_t salt) {
  Tensor t = test::random_tensor(Shape({n}), DType::F64, 1000 * salt + static_cast<uint64_t>(rank) + 1, -100, 100);
  if (dtype == DType::I64) {
    std::vector<double> v = t.to_vector();
    for (double& x : v) x = std::floor(x * 1e6);
    return Tensor::from_vector(v, Shape({n}), DType::I64);
  }
  return t.to(dtype);
}

// The sum over ranks as one process computes it, in the tensor's own dtype.
Tensor expected_sum(int size, int64_t n, DType dtype, uint64_t salt) {
  if (dtype == DType::I64) {  // exact in double at these magnitudes
    std::vector<double> sum(static_cast<size_t>(n), 0.0);
    for (int r = 0; r < size; ++r) {
      const std::vector<double> v = data_of(r, n, dtype, salt).to_vector();
      for (size_t i = 0; i < v.size(); ++i) sum[i] += v[i];
    }
    return Tensor::from_vector(sum, Shape({n}), DType::I64);
  }
  Tensor sum = data_of(0, n, dtype, salt).clone();
  for (int r = 1; r < size; ++r)
    if (n) ops::binary(ops::Binary::Add, sum, data_of(r, n, dtype, salt), sum);
  return sum;
}

}  // namespace

TEST_SUITE("dist-comm") {

TEST_CASE("dist: ranks are distinct and the world is 2 processes") {
  dist::Communicator& comm = dist::world();
  REQUIRE(comm.size() == 2);
  Tensor t = Tensor::from_vector({static_cast<double>(comm.rank()), 1.0}, Shape({2}), DType::F64);
  comm.all_reduce(t);
  CHECK(t.to_vector() == std::vector<double>{1.0, 2.0});  // ranks 0 and 1, two processes
  CHECK(comm.local_size() == 2);
  CHECK(comm.local_rank() == comm.rank());
  CHECK(comm.describe().find("MPI") != std::string::npos);
}

TEST_CASE("dist: all-reduce sums float32, float64 and int64 tensors of odd and zero sizes exactly") {
  dist::Communicator& comm = dist::world();
  uint64_t salt = 0;
  for (DType dtype : {DType::F32, DType::F64, DType::I64}) {
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{1001}, int64_t{65537}}) {
      INFO(std::string(dtype_name(dtype)), " n=", n);
      ++salt;
      Tensor t = data_of(comm.rank(), n, dtype, salt);
      comm.all_reduce(t);
      CHECK(t.to_vector() == expected_sum(comm.size(), n, dtype, salt).to_vector());
    }
  }
}

TEST_CASE("dist: many small all-reduces in flight at once finish in order with the right sums") {
  dist::Communicator& comm = dist::world();
  std::vector<Tensor> tensors;
  std::vector<dist::WorkHandle> works;
  for (int i = 0; i < 300; ++i) {
    tensors.push_back(data_of(comm.rank(), 1 + i % 5, i % 2 ? DType::F32 : DType::F64, 500 + static_cast<uint64_t>(i)));
    works.push_back(comm.all_reduce_async(tensors.back()));
  }
  for (int i = 0; i < 300; ++i) {
    works[static_cast<size_t>(i)]->wait();
    CHECK(tensors[static_cast<size_t>(i)].to_vector() ==
          expected_sum(comm.size(), 1 + i % 5, i % 2 ? DType::F32 : DType::F64, 500 + static_cast<uint64_t>(i)).to_vector());
  }
}

TEST_CASE("dist: broadcast copies the root's tensor to every rank, from either root") {
  dist::Communicator& comm = dist::world();
  for (int root = 0; root < comm.size(); ++root) {
    for (DType dtype : {DType::F32, DType::F64, DType::I64}) {
      for (int64_t n : {int64_t{0}, int64_t{3}, int64_t{4099}}) {
        INFO("root ", root, " ", std::string(dtype_name(dtype)), " n=", n);
        Tensor t = data_of(comm.rank(), n, dtype, 77);
        comm.broadcast(t, root);
        CHECK(t.to_vector() == data_of(root, n, dtype, 77).to_vector());
      }
    }
  }
  Tensor t = Tensor::zeros(Shape({1}));
  CHECK_THROWS_WITH(comm.broadcast(t, 2), doctest::Contains("root 2 is not a rank"));
}

TEST_CASE("dist: a barrier returns on both ranks; the single-process communicator is the identity") {
  dist::world().barrier();
  std::unique_ptr<dist::Communicator> one = dist::single_process();
  CHECK(one->size() == 1);
  Tensor t = data_of(0, 9, DType::F32, 3);
  const std::vector<double> before = t.to_vector();
  one->all_reduce(t);
  one->broadcast(t, 0);
  CHECK(t.to_vector() == before);
}

TEST_CASE("dist: all-reduce and broadcast of CUDA tensors (NCCL, or MPI through host copies), one GPU per rank" *
          doctest::skip(!test::gpu_present())) {
  dist::Communicator& comm = dist::world();
  if (cuda_device_count() < comm.local_size()) {
    MESSAGE("fewer GPUs than processes on this machine: NCCL needs one GPU per process");
    return;
  }
  const Device gpu = Device::cuda(comm.local_rank());
  for (int64_t n : {int64_t{0}, int64_t{5}, int64_t{100003}}) {
    INFO("n=", n);
    Tensor t = data_of(comm.rank(), n, DType::F32, 900).to(gpu);
    comm.all_reduce(t);
    CHECK(t.to(Device::cpu()).to_vector() == expected_sum(comm.size(), n, DType::F32, 900).to_vector());
    Tensor b = data_of(comm.rank(), n, DType::F32, 901).to(gpu);
    comm.broadcast(b, 1);
    CHECK(b.to(Device::cpu()).to_vector() == data_of(1, n, DType::F32, 901).to_vector());
  }
}

}  // TEST_SUITE
