// Helpers of the GPU parity harness: random inputs, bf16 round trips to the device, error
// measures and the result table. Host-only code; the kernels are reached through kernels/*.cuh.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "device.cuh"

namespace sdt::cuda::parity {

// splitmix64-based generator: the same stream on every platform for a given seed.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t next();
  float uniform(float lo, float hi);
  float normal();  // Box-Muller
  int below(int n);  // uniform in [0, n)
  std::vector<float> uniform_vector(size_t n, float lo, float hi);
  std::vector<float> normal_vector(size_t n, float scale);

 private:
  uint64_t state_;
};

// Rounds every value to the nearest bf16 in place (so the CPU reference sees the device's inputs).
void round_to_bf16(std::vector<float>& v);
DeviceBuffer<bf16> upload_bf16(const std::vector<float>& v);  // values must already be rounded
std::vector<float> download_bf16(const DeviceBuffer<bf16>& d);
DeviceBuffer<float> upload_f32(const std::vector<float>& v);
std::vector<float> download_f32(const DeviceBuffer<float>& d);
DeviceBuffer<int32_t> upload_i32(const std::vector<int32_t>& v);

// ||got - ref|| / ||ref|| in double (||got - ref|| when ref is all zeros). NaN anywhere gives NaN.
double relative_error(const std::vector<float>& got, const std::vector<float>& ref);
long count_nan(const std::vector<float>& v);

struct Row {
  std::string check;
  std::string shape;
  std::string type;  // "bf16", "fp32", "int", "u8"
  double error = 0.0;
  double tolerance = 0.0;
  long unwritten = -1;  // -1: not applicable (accumulating or in-place outputs)
  std::string note;
  bool pass() const;
};

class Table {
 public:
  // Adds a row for an output compared with its reference; `poisoned` says whether the output was
  // filled with NaN before the run (then NaNs left are unwritten elements).
  void compare(const std::string& check, const std::string& shape, const std::string& type,
               const std::vector<float>& got, const std::vector<float>& ref, double tolerance, bool poisoned);
  void add(const Row& row) { rows_.push_back(row); }
  void print() const;
  int failures() const;

 private:
  std::vector<Row> rows_;
};

constexpr double kBf16Tolerance = 1e-2;
constexpr double kF32Tolerance = 1e-4;

}  // namespace sdt::cuda::parity
