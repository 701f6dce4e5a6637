#include "core/tensor.h"

#include <cstring>

#include "core/allocator.h"
#include "core/context.h"
#include "core/cuda_backend.h"
#include "core/ops.h"

namespace mpncov {

// Page-locked memory comes from the CUDA backend (a build without it refuses, core/cuda_backend.h).
Storage::Storage(Device d, size_t n, bool pin) : device(d), nbytes(n), pinned(pin), ptr(nullptr) {
  if (!pinned) ptr = allocate(d, n);
  else if constexpr (cuda::kBuilt) ptr = cuda::allocate_pinned(n);
  else cuda::absent(Device::cuda());
}
Storage::~Storage() {
  if (!pinned) deallocate(device, ptr, nbytes);
  else if constexpr (cuda::kBuilt) cuda::deallocate_pinned(ptr);
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.device_ = device;
  t.storage_ = std::make_shared<Storage>(device, t.nbytes());
  return t;
}

Tensor Tensor::empty_pinned(const Shape& shape, DType dtype) {
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  const bool pin = cuda_device_count() > 0;
  t.storage_ = std::make_shared<Storage>(Device::cpu(), t.nbytes(), pin);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill(value);
  return t;
}

Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, DType dtype) {
  MPNCOV_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "from_vector: ", values.size(),
               " values for shape ", shape.str());
  Tensor t = empty(shape, dtype);
  for (size_t i = 0; i < values.size(); ++i) {
    switch (dtype) {
      case DType::F32: t.data<float>()[i] = static_cast<float>(values[i]); break;
      case DType::F64: t.data<double>()[i] = values[i]; break;
      case DType::I64: t.data<int64_t>()[i] = static_cast<int64_t>(values[i]); break;
      default: MPNCOV_FAIL("from_vector: unsupported dtype ", dtype_name(dtype));
    }
  }
  return t;
}

void* Tensor::raw() const {
  MPNCOV_CHECK(defined(), "use of an undefined tensor");
  return static_cast<char*>(storage_->ptr) + offset_;
}

Tensor Tensor::reshape(const std::vector<int64_t>& new_dims) const {
  std::vector<int64_t> dims = new_dims;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == -1) {
      MPNCOV_CHECK(infer < 0, "reshape: more than one -1 in the new shape");
      infer = static_cast<int>(i);
    } else {
      known *= dims[i];
    }
  }
  if (infer >= 0) {
    MPNCOV_CHECK(known > 0 && numel() % known == 0, "reshape: cannot infer -1 reshaping ", shape_.str());
    dims[static_cast<size_t>(infer)] = numel() / known;
  }
  Shape target(dims);
  MPNCOV_CHECK(target.numel() == numel(), "reshape: ", shape_.str(), " has ", numel(),
               " elements, ", target.str(), " has ", target.numel());
  MPNCOV_CHECK(layout_ == Layout::NCHW || target == shape_, "reshape: ", str(), " is in layout ",
               layout_name(layout_), ", convert it to nchw before reshaping to ", target.str());
  Tensor t = *this;
  t.shape_ = target;
  return t;
}

Tensor Tensor::with_layout(Layout layout) const {
  MPNCOV_CHECK(layout == Layout::NCHW || (ndim() == 4 && layout_fits(layout, dim(1))), "with_layout: ", str(),
               " cannot be held in layout ", layout_name(layout));
  Tensor t = *this;
  t.layout_ = layout;
  return t;
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  MPNCOV_CHECK(ndim() >= 1, "slice of a 0-d tensor");
  MPNCOV_CHECK(0 <= begin && begin <= end && end <= dim(0), "slice [", begin, ", ", end,
               ") out of range for ", shape_.str());
  Tensor t = *this;
  int64_t row = shape_.product(1, ndim());
  t.offset_ += static_cast<size_t>(begin * row) * dtype_size(dtype_);
  t.shape_[0] = end - begin;
  return t;
}

Tensor Tensor::view(DType dtype, const Shape& shape) const {
  MPNCOV_CHECK(defined(), "view of an undefined tensor");
  MPNCOV_CHECK(static_cast<size_t>(shape.numel()) * dtype_size(dtype) <= nbytes(), "view: ", shape.str(), " ",
               dtype_name(dtype), " does not fit in ", str());
  Tensor t = *this;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.layout_ = Layout::NCHW;
  return t;
}

Tensor Tensor::to(Device device) const {
  if (device == device_) return *this;
  Tensor t = empty(shape_, dtype_, device);
  t.copy_from(*this);
  t.layout_ = layout_;
  return t;
}

Tensor Tensor::to_async(Device device) const {
  if (!(device_.is_cpu() && device.is_cuda())) return to(device);
  Tensor t = empty(shape_, dtype_, device);  // refused in a build without CUDA
  if constexpr (cuda::kBuilt) cuda::copy_to_device_async(t.raw(), device.index, raw(), nbytes());
  return t;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor t = empty(shape_, dtype, device_);
  ops::cast(*this, t);  // element by element in storage order: the layout stays
  t.layout_ = layout_;
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_, device_);
  t.copy_from(*this);
  t.layout_ = layout_;
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  MPNCOV_CHECK(src.numel() == numel(), "copy_from: ", src.str(), " into ", str());
  MPNCOV_CHECK(src.dtype() == dtype_, "copy_from: ", src.str(), " into ", str(), " (use to(dtype))");
  if (nbytes() == 0) return;
  if (device_.is_cpu() && src.device_.is_cpu()) {
    if (raw() != src.raw()) std::memmove(raw(), src.raw(), nbytes());
    return;
  }
  // One side is a CUDA tensor, which only a build with CUDA can allocate.
  if constexpr (cuda::kBuilt) cuda::copy_bytes(raw(), device_, src.raw(), src.device_, nbytes());
  else cuda::absent(device_.is_cuda() ? device_ : src.device_);
}

void Tensor::fill(double value) { ops::fill(*this, value); }

std::vector<double> Tensor::to_vector() const {
  Tensor host = to(Device::cpu());
  // float16 and bfloat16 through float32 (exact), converted once for the whole tensor.
  if (dtype_ == DType::F16 || dtype_ == DType::BF16) host = host.to(DType::F32);
  std::vector<double> out(static_cast<size_t>(numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    switch (host.dtype()) {
      case DType::F32: out[i] = host.data<float>()[i]; break;
      case DType::F64: out[i] = host.data<double>()[i]; break;
      case DType::I64: out[i] = static_cast<double>(host.data<int64_t>()[i]); break;
      default: MPNCOV_FAIL("to_vector: unsupported dtype ", dtype_name(host.dtype()));
    }
  }
  return out;
}

double Tensor::item() const {
  MPNCOV_CHECK(numel() == 1, "item() of a tensor with ", numel(), " elements");
  return to_vector()[0];
}

std::string Tensor::str() const {
  if (!defined()) return "undefined tensor";
  return mpncov::str(dtype_name(dtype_), " ", shape_.str(), " on ", device_.str(),
                     layout_ == Layout::NCHW ? "" : mpncov::str(" (", layout_name(layout_), ")"));
}

}  // namespace mpncov
