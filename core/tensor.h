// Tensor: a contiguous, typed view into shared storage on one device. No autograd: gradients are
// separate tensors owned by whoever needs them. Copying a Tensor shares its storage (like a handle);
// clone() copies the data.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/layout.h"
#include "core/shape.h"

namespace mpncov {

// A block of device or host memory, freed when the last tensor using it goes.
struct Storage {
  Storage(Device device, size_t nbytes, bool pinned = false);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  Device device;
  size_t nbytes;
  bool pinned;  // page-locked host memory (CPU storage only)
  void* ptr;
};

class Tensor {
 public:
  Tensor() = default;  // undefined: no storage

  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  // A CPU tensor in page-locked memory when a CUDA device is present (fast, asynchronous copies to the
  // GPU), else ordinary aligned host memory.
  static Tensor empty_pinned(const Shape& shape, DType dtype = DType::F32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32,
                     Device device = Device::cpu());
  // A CPU tensor holding the values (converted to dtype).
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape,
                            DType dtype = DType::F32);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return shape_.ndim(); }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t numel() const { return shape_.numel(); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool pinned() const { return storage_ && storage_->pinned; }
  bool same_storage(const Tensor& o) const { return storage_ == o.storage_ && offset_ == o.offset_; }

  void* raw() const;
  template <typename T>
  T* data() const {
    MPNCOV_CHECK(dtype_ == dtype_of<T>::value, "tensor is ", dtype_name(dtype_), ", asked for ",
                 dtype_name(dtype_of<T>::value));
    return static_cast<T*>(raw());
  }

  // How a 4-D tensor's elements lie in memory (core/layout.h); NCHW unless a net planned otherwise.
  // The tag belongs to this handle: with_layout gives a handle on the same storage with another tag
  // (it moves no data; ops::to_layout converts).
  Layout layout() const { return layout_; }
  Tensor with_layout(Layout layout) const;

  // A view with another shape and the same elements; one dimension may be -1. Keeps the layout when the
  // shape stays; a tensor in another layout than NCHW cannot change shape.
  Tensor reshape(const std::vector<int64_t>& dims) const;
  // A view of rows [begin, end) along dimension 0.
  Tensor slice(int64_t begin, int64_t end) const;
  // A view of this tensor's first bytes as `shape` elements of `dtype`, NCHW (a buffer shared by
  // activations of several types, as a net's buffer plan does). They must fit in this tensor's bytes.
  Tensor view(DType dtype, const Shape& shape) const;

  Tensor to(Device device) const;  // shares storage when already there
  // Like to(device) for a CPU tensor going to a GPU, but queued without waiting: this tensor must stay
  // alive and unchanged until the device's stream has passed the copy (the next synchronisation, e.g.
  // reading a result back). Other cases are the same as to(device).
  Tensor to_async(Device device) const;
  Tensor to(DType dtype) const;    // converts (CPU), keeps the layout; shares storage when already that type
  Tensor clone() const;
  // Copies another tensor's elements (same numel and dtype, any devices).
  void copy_from(const Tensor& src);
  void fill(double value);
  void zero() { fill(0.0); }

  // Host copy of the elements as double (for tests and printing).
  std::vector<double> to_vector() const;
  double item() const;  // the single element of a one-element tensor

  std::string str() const;  // "float32 (2, 3) on cpu"

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;  // bytes
  Shape shape_;
  DType dtype_ = DType::F32;
  Device device_;
  Layout layout_ = Layout::NCHW;
};

}  // namespace mpncov
