// NumPy .npy arrays (the input and output of `mpncov extract`). See docs/file-formats.md.
//
// Read: format versions 1.0, 2.0 and 3.0; little-endian '<f2', '<f4', '<f8', '<i8' as themselves, and
// '<i4', '<i2', '|i1', '|u1', '<u2', '<u4', '|b1' widened to int64. C order only: a Fortran-order array of
// two or more dimensions is rejected (with one or none the layouts are the same). The file must hold exactly
// the header and the array's bytes. Write: version 1.0 (2.0 only if the header needed it), '<f2', '<f4',
// '<f8' or '<i8', C order, atomically (see core/atomic_file.h).
#pragma once
#include <memory>
#include <string>

#include "core/shape.h"
#include "core/tensor.h"

namespace mpncov {

class AtomicFile;

// A new CPU tensor holding the array in path.
Tensor load_npy(const std::string& path);

// Writes t (any device) to path. bfloat16 has no NumPy type and is refused.
void save_npy(const std::string& path, const Tensor& t);

// Writes an array of known shape piece by piece (e.g. features of one batch at a time), so the whole
// array never needs to be in memory. Pieces follow each other in C order; commit() checks that exactly
// shape.numel() elements came, then renames the file into place. Without commit() nothing is written.
class NpyWriter {
 public:
  NpyWriter(const std::string& path, const Shape& shape, DType dtype);
  ~NpyWriter();
  NpyWriter(const NpyWriter&) = delete;
  NpyWriter& operator=(const NpyWriter&) = delete;

  void write(const Tensor& piece);  // any shape and device, the writer's dtype
  void commit();

 private:
  std::unique_ptr<AtomicFile> file_;
  DType dtype_;
  int64_t expected_ = 0, written_ = 0;
};

}  // namespace mpncov
