// SHA-256 (FIPS 180-4) of files and buffers, hex encoded: checkpoints record it per file in COMPLETE so
// every reader can tell a damaged or replaced file from the one the trainer wrote.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace sdt::io {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  // Lower-case hex digest; the object must not be updated afterwards.
  std::string hex_digest();

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(const void* data, size_t n);
// Streams the file; throws std::runtime_error naming it when it cannot be read.
std::string sha256_file_hex(const std::string& path, uint64_t* bytes = nullptr);

}  // namespace sdt::io
