// NumPy .npy files (format versions 1.0-3.0): little-endian int32, int64 and float32 arrays in C
// order — enough for token batches in and logits out of `sdt-native forward`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sdt::io {

struct NpyArray {
  std::string descr;  // "<i4", "<i8" or "<f4"
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // numel * item size, C order
  int64_t numel() const;
  // Converting accessors; to_i32 throws when an int64 value does not fit.
  std::vector<int32_t> to_i32() const;
  std::vector<float> to_f32() const;
};

// Throws std::runtime_error naming the file on a bad magic, an unsupported dtype or Fortran order,
// or a size that does not match the header.
NpyArray read_npy(const std::string& path);

// Writes version 1.0 atomically, header padded to a multiple of 64 bytes as NumPy does.
void write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data);
void write_npy_i32(const std::string& path, const std::vector<int64_t>& shape, const int32_t* data);
void write_npy_i64(const std::string& path, const std::vector<int64_t>& shape, const int64_t* data);

}  // namespace sdt::io
