#include "io/npy.h"

#include <cstring>
#include <limits>
#include <stdexcept>

#include "io/binary.h"

namespace sdt::io {

namespace {

const char kMagic[] = "\x93NUMPY";

size_t item_size(const std::string& descr) {
  if (descr == "<i4" || descr == "<f4") return 4;
  if (descr == "<i8") return 8;
  return 0;
}

// Finds `'key':` in the header dict and returns the text after it.
size_t find_key(const std::string& h, const std::string& key) {
  const size_t at = h.find("'" + key + "'");
  if (at == std::string::npos) return at;
  const size_t colon = h.find(':', at);
  return colon == std::string::npos ? colon : colon + 1;
}

void write_npy(const std::string& path, const char* descr, size_t isize, const std::vector<int64_t>& shape,
               const void* data) {
  std::string dict = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (";
  int64_t numel = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    dict += std::to_string(shape[i]);
    if (shape.size() == 1 || i + 1 < shape.size()) dict += ",";
    if (i + 1 < shape.size()) dict += " ";
    numel *= shape[i];
  }
  dict += "), }";
  // magic(6) + version(2) + len(2) + dict + padding + '\n' is a multiple of 64.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::vector<uint8_t> out;
  put_bytes(out, kMagic, 6);
  out.push_back(1);
  out.push_back(0);
  const auto hl = static_cast<uint16_t>(dict.size());
  put_bytes(out, &hl, 2);
  put_bytes(out, dict.data(), dict.size());
  put_bytes(out, data, static_cast<size_t>(numel) * isize);
  write_file_atomic(path, out.data(), out.size());
}

}  // namespace

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;
  return n;
}

std::vector<int32_t> NpyArray::to_i32() const {
  const auto n = static_cast<size_t>(numel());
  std::vector<int32_t> out(n);
  if (descr == "<i4") {
    std::memcpy(out.data(), bytes.data(), n * 4);
  } else if (descr == "<i8") {
    for (size_t i = 0; i < n; ++i) {
      int64_t v;
      std::memcpy(&v, bytes.data() + 8 * i, 8);
      if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
        throw std::runtime_error("int64 value " + std::to_string(v) + " at flat index " + std::to_string(i) +
                                 " does not fit in int32");
      }
      out[i] = static_cast<int32_t>(v);
    }
  } else {
    throw std::runtime_error("expected an integer array (<i4 or <i8), found " + descr);
  }
  return out;
}

std::vector<float> NpyArray::to_f32() const {
  if (descr != "<f4") throw std::runtime_error("expected a float32 array (<f4), found " + descr);
  std::vector<float> out(static_cast<size_t>(numel()));
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

NpyArray read_npy(const std::string& path) {
  const std::vector<uint8_t> buf = read_binary_file(path);
  const std::string hint = " Write it with numpy.save (C order, int32/int64/float32).";
  if (buf.size() < 10 || std::memcmp(buf.data(), kMagic, 6) != 0) {
    throw std::runtime_error(path + ": not a .npy file (bad magic)." + hint);
  }
  const uint8_t major = buf[6];
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    uint16_t hl;
    std::memcpy(&hl, buf.data() + 8, 2);
    header_len = hl;
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (buf.size() < 12) throw std::runtime_error(path + ": truncated .npy header." + hint);
    header_len = get_u32(buf.data() + 8);
    header_start = 12;
  } else {
    throw std::runtime_error(path + ": unsupported .npy version " + std::to_string(major) + "." + hint);
  }
  if (header_start + header_len > buf.size()) throw std::runtime_error(path + ": truncated .npy header." + hint);
  const std::string h(reinterpret_cast<const char*>(buf.data()) + header_start, header_len);

  NpyArray arr;
  size_t at = find_key(h, "descr");
  const size_t q1 = at == std::string::npos ? at : h.find('\'', at);
  const size_t q2 = q1 == std::string::npos ? q1 : h.find('\'', q1 + 1);
  if (q2 == std::string::npos) throw std::runtime_error(path + ": .npy header has no 'descr'." + hint);
  arr.descr = h.substr(q1 + 1, q2 - q1 - 1);
  const size_t isize = item_size(arr.descr);
  if (isize == 0) throw std::runtime_error(path + ": unsupported dtype '" + arr.descr + "'." + hint);

  at = find_key(h, "fortran_order");
  if (at == std::string::npos) throw std::runtime_error(path + ": .npy header has no 'fortran_order'." + hint);
  if (h.compare(h.find_first_not_of(' ', at), 4, "True") == 0) {
    throw std::runtime_error(path + ": Fortran-order arrays are not supported; save a C-contiguous array." + hint);
  }
  at = find_key(h, "shape");
  const size_t open = at == std::string::npos ? at : h.find('(', at);
  const size_t close = open == std::string::npos ? open : h.find(')', open);
  if (close == std::string::npos) throw std::runtime_error(path + ": .npy header has no 'shape'." + hint);
  const std::string dims = h.substr(open + 1, close - open - 1);
  size_t p = 0;
  while (p < dims.size()) {
    while (p < dims.size() && (dims[p] == ' ' || dims[p] == ',')) ++p;
    if (p >= dims.size()) break;
    size_t used = 0;
    arr.shape.push_back(std::stoll(dims.substr(p), &used));
    p += used;
  }
  const size_t data_start = header_start + header_len;
  const auto expect = static_cast<size_t>(arr.numel()) * isize;
  if (buf.size() - data_start != expect) {
    throw std::runtime_error(path + ": data is " + std::to_string(buf.size() - data_start) + " bytes but shape and dtype need " +
                             std::to_string(expect) + " (truncated?)." + hint);
  }
  arr.bytes.assign(buf.begin() + static_cast<std::ptrdiff_t>(data_start), buf.end());
  return arr;
}

void write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  write_npy(path, "<f4", 4, shape, data);
}
void write_npy_i32(const std::string& path, const std::vector<int64_t>& shape, const int32_t* data) {
  write_npy(path, "<i4", 4, shape, data);
}
void write_npy_i64(const std::string& path, const std::vector<int64_t>& shape, const int64_t* data) {
  write_npy(path, "<i8", 8, shape, data);
}

}  // namespace sdt::io
