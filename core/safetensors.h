// safetensors files (weights and checkpoints): an 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}},
// then the raw little-endian data. See docs/file-formats.md for the validation rules.
//
// dtypes: F32, F64, F16, BF16 and I64 load as themselves. BOOL, U8, I8, I16, U16, I32, U32 and U64 load
// widened to int64 (lossless; a U64 value above 2^63-1 is an error). F8_E4M3 and F8_E5M2 load as float16
// and F8_E8M0 as float32 (all exact). C64 is recognised and validated, but reading it is an error naming
// the tensor. Any other dtype string is rejected when the header is read.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/shape.h"
#include "core/tensor.h"

namespace mpncov {

class FileReader;

// One tensor's header entry.
struct SafetensorsEntry {
  std::string name;
  std::string file_dtype;  // as the header spells it: "F32", "I32", "F8_E4M3", ...
  DType dtype;             // what reading it gives (see above)
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte range within the data section
};

// Opens a file and validates its whole header; reads each tensor's bytes only when asked, straight
// into the tensor's memory (no copy of the whole file).
class SafetensorsReader {
 public:
  explicit SafetensorsReader(const std::string& path);
  ~SafetensorsReader();
  SafetensorsReader(SafetensorsReader&&) noexcept;
  SafetensorsReader& operator=(SafetensorsReader&&) noexcept;

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }  // header order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return index_.count(name) > 0; }
  const SafetensorsEntry& entry(const std::string& name) const;  // throws naming file and tensor
  // A new CPU tensor holding the named tensor.
  Tensor read(const std::string& name) const;

 private:
  std::string path_;
  std::unique_ptr<FileReader> file_;
  uint64_t data_start_ = 0;  // 8 + header length
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// A whole file in memory (CPU tensors).
struct SafetensorsFile {
  std::vector<std::string> names;  // header order
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

SafetensorsFile load_safetensors(const std::string& path);

// Writes the tensors (any device; copied to the host one at a time) in the given order, the header
// padded with spaces to a multiple of 8 bytes, atomically (see core/atomic_file.h). Names must be
// unique, non-empty and not "__metadata__".
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// The header's dtype string for a DType ("F32", "F64", "F16", "BF16", "I64").
const char* safetensors_dtype_name(DType dtype);

}  // namespace mpncov
