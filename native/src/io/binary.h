// Little-endian byte helpers, CRC-32 and atomic file writes shared by the file formats.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace sdt::io {

// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as zlib.crc32 computes it.
// `crc` is the running value of a previous call (0 to start).
uint32_t crc32(const void* data, size_t n, uint32_t crc = 0);

// All our formats are little-endian; so are the hosts we build for (checked at compile time).
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "sdt file formats assume a little-endian host");

inline void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  const size_t n = out.size();
  out.resize(n + 4);
  std::memcpy(out.data() + n, &v, 4);
}
inline void put_u64(std::vector<uint8_t>& out, uint64_t v) {
  const size_t n = out.size();
  out.resize(n + 8);
  std::memcpy(out.data() + n, &v, 8);
}
inline void put_bytes(std::vector<uint8_t>& out, const void* p, size_t n) {
  const size_t at = out.size();
  out.resize(at + n);
  if (n > 0) std::memcpy(out.data() + at, p, n);
}
inline uint32_t get_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t get_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Writes `data` to `path` through a temporary file in the same directory and a rename, so a
// reader never sees a torn file. Throws std::runtime_error naming the path.
void write_file_atomic(const std::string& path, const void* data, size_t n);
inline void write_file_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}
// Reads a whole binary file; throws std::runtime_error naming the path.
std::vector<uint8_t> read_binary_file(const std::string& path);

}  // namespace sdt::io
