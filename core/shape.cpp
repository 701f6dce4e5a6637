#include "core/shape.h"

#include "core/error.h"

namespace mpncov {

Shape::Shape(std::initializer_list<int64_t> dims) : dims_(dims) { validate(); }
Shape::Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) { validate(); }

void Shape::validate() const {
  MPNCOV_CHECK(ndim() <= kMaxDims, "shape ", str(), " has more than ", kMaxDims, " dimensions");
  for (int64_t d : dims_) MPNCOV_CHECK(d >= 0, "shape ", str(), " has a negative dimension");
  // Every product of dimensions (numel, strides) must fit in int64: then no size computation overflows.
  int64_t n = 1;
  for (int64_t d : dims_)
    MPNCOV_CHECK(d == 0 || !__builtin_mul_overflow(n, d, &n), "shape ", str(), " has more than 2^63 elements");
}

int64_t Shape::numel() const { return product(0, ndim()); }

int64_t Shape::product(int begin, int end) const {
  int64_t n = 1;
  for (int i = begin; i < end; ++i) n *= dims_[static_cast<size_t>(i)];
  return n;
}

int64_t Shape::operator[](int i) const {
  int k = i < 0 ? i + ndim() : i;
  MPNCOV_CHECK(k >= 0 && k < ndim(), "dimension ", i, " out of range for shape ", str());
  return dims_[static_cast<size_t>(k)];
}

int64_t& Shape::operator[](int i) {
  int k = i < 0 ? i + ndim() : i;
  MPNCOV_CHECK(k >= 0 && k < ndim(), "dimension ", i, " out of range for shape ", str());
  return dims_[static_cast<size_t>(k)];
}

std::string Shape::str() const {
  std::string s = "(";
  for (size_t i = 0; i < dims_.size(); ++i) s += (i ? ", " : "") + std::to_string(dims_[i]);
  if (dims_.size() == 1) s += ",";
  return s + ")";
}

}  // namespace mpncov
