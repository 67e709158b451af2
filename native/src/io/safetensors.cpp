#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "io/binary.h"
#include "io/json.h"

namespace sdt::io {

namespace {

size_t dtype_size(const std::string& dtype) {
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "I64" || dtype == "F64") return 8;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16") return 2;
  if (dtype == "U8" || dtype == "I8" || dtype == "BOOL") return 1;
  return 0;
}

}  // namespace

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;
  return n;
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [k, v] : metadata) meta.set(k, Json(v));
    header.set("__metadata__", meta);
  }
  uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    int64_t numel = 1;
    Json shape = Json::array();
    for (const int64_t d : t.shape) {
      numel *= d;
      shape.push(Json(d));
    }
    const uint64_t bytes = static_cast<uint64_t>(numel) * 4u;
    Json offsets = Json::array();
    offsets.push(Json(offset)).push(Json(offset + bytes));
    Json entry = Json::object();
    entry.set("dtype", Json("F32")).set("shape", shape).set("data_offsets", offsets);
    header.set(t.name, entry);
    offset += bytes;
  }
  std::string text = header.dump();
  // Pad with spaces so 8 + header length is a multiple of 8: the data section starts aligned.
  while ((8 + text.size()) % 8 != 0) text += ' ';

  std::vector<uint8_t> out;
  out.reserve(8 + text.size() + offset);
  put_u64(out, text.size());
  put_bytes(out, text.data(), text.size());
  for (const TensorToWrite& t : tensors) {
    int64_t numel = 1;
    for (const int64_t d : t.shape) numel *= d;
    put_bytes(out, t.data, static_cast<size_t>(numel) * 4u);
  }
  write_file_atomic(path, out.data(), out.size());
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path), data_(read_binary_file(path)) {
  const std::string redo = " Re-create it (for a checkpoint: train again or pick an older step).";
  if (data_.size() < 8) throw std::runtime_error(path + ": not a safetensors file (shorter than 8 bytes)." + redo);
  const uint64_t n = get_u64(data_.data());
  if (n > data_.size() - 8) {
    throw std::runtime_error(path + ": safetensors header length " + std::to_string(n) +
                             " exceeds the file size (truncated or not a safetensors file)." + redo);
  }
  data_start_ = 8 + static_cast<size_t>(n);
  const uint64_t data_len = data_.size() - data_start_;
  Json header;
  try {
    header = Json::parse(std::string(reinterpret_cast<const char*>(data_.data()) + 8, static_cast<size_t>(n)));
  } catch (const JsonError& e) {
    throw std::runtime_error(path + ": safetensors header is not valid JSON (" + e.what() + ")." + redo);
  }
  if (!header.is_object()) throw std::runtime_error(path + ": safetensors header is not a JSON object." + redo);
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (size_t i = 0; i < header.size(); ++i) {
    const std::string& name = header.key(i);
    const Json& v = header.at(i);
    if (name == "__metadata__") {
      for (size_t k = 0; k < v.size(); ++k) metadata_[v.key(k)] = v.at(k).as_string();
      continue;
    }
    try {
      TensorInfo ti;
      ti.dtype = v.get("dtype") ? v.get("dtype")->as_string() : "";
      const Json* shape = v.get("shape");
      const Json* offs = v.get("data_offsets");
      if (shape == nullptr || offs == nullptr || offs->size() != 2) {
        throw std::runtime_error("needs \"shape\" and two \"data_offsets\"");
      }
      for (size_t k = 0; k < shape->size(); ++k) ti.shape.push_back(shape->at(k).as_int());
      ti.begin = static_cast<uint64_t>(offs->at(0).as_int());
      ti.end = static_cast<uint64_t>(offs->at(1).as_int());
      const size_t es = dtype_size(ti.dtype);
      if (es == 0) throw std::runtime_error("unknown dtype \"" + ti.dtype + "\"");
      if (ti.end < ti.begin || ti.end > data_len) throw std::runtime_error("data_offsets outside the data section");
      if (ti.end - ti.begin != static_cast<uint64_t>(ti.numel()) * es) {
        throw std::runtime_error("data_offsets span " + std::to_string(ti.end - ti.begin) + " bytes but shape " +
                                 shape_to_string(ti.shape) + " of " + ti.dtype + " needs " +
                                 std::to_string(static_cast<uint64_t>(ti.numel()) * es));
      }
      ranges.emplace_back(ti.begin, ti.end);
      names_.push_back(name);
      info_[name] = ti;
    } catch (const std::exception& e) {
      throw std::runtime_error(path + ": tensor \"" + name + "\": " + e.what() + "." + redo);
    }
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) {
      throw std::runtime_error(path + ": tensors overlap in the data section." + redo);
    }
  }
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = info_.find(name);
  if (it == info_.end()) throw std::runtime_error(path_ + ": no tensor named \"" + name + "\"");
  return it->second;
}

void SafetensorsFile::read_f32(const std::string& name, const std::vector<int64_t>& expected_shape,
                               float* out) const {
  const TensorInfo& ti = info(name);
  if (ti.dtype != "F32") throw std::runtime_error(path_ + ": tensor \"" + name + "\" is " + ti.dtype + ", expected F32");
  if (ti.shape != expected_shape) {
    throw std::runtime_error(path_ + ": tensor \"" + name + "\" has shape " + shape_to_string(ti.shape) +
                             ", the model expects " + shape_to_string(expected_shape) +
                             " (does config.json match this file?)");
  }
  std::memcpy(out, bytes(ti), static_cast<size_t>(ti.end - ti.begin));
}

std::vector<float> SafetensorsFile::to_f32(const std::string& name) const {
  const TensorInfo& ti = info(name);
  const auto n = static_cast<size_t>(ti.numel());
  std::vector<float> out(n);
  const uint8_t* p = bytes(ti);
  for (size_t i = 0; i < n; ++i) {
    if (ti.dtype == "F32") {
      std::memcpy(&out[i], p + 4 * i, 4);
    } else if (ti.dtype == "I32") {
      int32_t v;
      std::memcpy(&v, p + 4 * i, 4);
      out[i] = static_cast<float>(v);
    } else if (ti.dtype == "I64") {
      int64_t v;
      std::memcpy(&v, p + 8 * i, 8);
      out[i] = static_cast<float>(v);
    } else {
      throw std::runtime_error(path_ + ": tensor \"" + name + "\" has dtype " + ti.dtype + "; only F32/I32/I64 are read");
    }
  }
  return out;
}

}  // namespace sdt::io
