// A tensor's extents, outermost first (NCHW for images). Up to 8 dimensions.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace mpncov {

class Shape {
 public:
  static constexpr int kMaxDims = 8;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(std::vector<int64_t> dims);

  int ndim() const { return static_cast<int>(dims_.size()); }
  int64_t numel() const;
  // Dimension i; negative i counts from the end.
  int64_t operator[](int i) const;
  int64_t& operator[](int i);
  const std::vector<int64_t>& dims() const { return dims_; }
  // Product of dims [begin, end).
  int64_t product(int begin, int end) const;
  std::string str() const;  // "(2, 3, 4)"

  bool operator==(const Shape& o) const { return dims_ == o.dims_; }
  bool operator!=(const Shape& o) const { return dims_ != o.dims_; }

 private:
  void validate() const;
  std::vector<int64_t> dims_;
};

}  // namespace mpncov
