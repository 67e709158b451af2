// The safetensors format (Hugging Face): u64 little-endian header length N, N bytes of JSON
// header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}} padded
// with spaces so the data starts 8-byte aligned, then the raw little-endian tensor bytes.
// We write F32 only (checkpoints are fp32) and read F32, I32 and I64.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sdt::io {

struct TensorToWrite {
  std::string name;
  std::vector<int64_t> shape;
  const float* data = nullptr;  // numel(shape) floats
};

// Writes atomically (temporary file + rename). Tensors are stored in the order given.
// metadata: string -> string pairs stored under "__metadata__".
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

struct TensorInfo {
  std::string dtype;  // "F32", "I32", "I64", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets into the data section
  uint64_t end = 0;
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Reads and validates the whole file: header length within the file, JSON well-formed,
  // offsets in range, non-overlapping, and end - begin == numel * dtype size. Errors name the
  // file and the tensor and say what to do.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return path_; }
  // Tensor names in file order.
  const std::vector<std::string>& names() const { return names_; }
  bool has(const std::string& name) const { return info_.count(name) != 0; }
  // Throws naming the file when absent.
  const TensorInfo& info(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Copies an F32 tensor into `out`, checking its shape equals `expected_shape`.
  void read_f32(const std::string& name, const std::vector<int64_t>& expected_shape, float* out) const;
  // Any of F32/I32/I64 converted to float / int64 vectors (for tests and tools).
  std::vector<float> to_f32(const std::string& name) const;

 private:
  const uint8_t* bytes(const TensorInfo& ti) const { return data_.data() + data_start_ + ti.begin; }

  std::string path_;
  std::vector<uint8_t> data_;
  size_t data_start_ = 0;
  std::vector<std::string> names_;
  std::map<std::string, TensorInfo> info_;
  std::map<std::string, std::string> metadata_;
};

std::string shape_to_string(const std::vector<int64_t>& shape);

}  // namespace sdt::io
