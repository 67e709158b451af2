// Helpers of the GPU parity harness: random inputs, bf16 round trips to the device, error
// measures and the result table. Host-only code; the kernels are reached through kernels/*.cuh.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "device.cuh"

namespace sdt::cuda::parity {

// SplitMix64 (sdt/splitmix64.h): the same stream on every platform for a given seed.
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
double max_abs_error(const std::vector<float>& got, const std::vector<float>& ref);
long count_nan(const std::vector<float>& v);

struct Row {
  std::string check;
  std::string shape;
  std::string type;  // "bf16", "fp32", "int", "u8"
  double error = 0.0;
  double tolerance = 0.0;
  double max_abs = -1.0;  // largest |got - ref|; -1: not measured
  long unwritten = -1;  // -1: not applicable (accumulating or in-place outputs)
  std::string note;
  bool pass() const;
};

// A named part of a flat output: columns [begin, end) of every row of `stride` elements (a
// whole-buffer slice is one row: stride = the buffer's size).
struct Part {
  std::string name;
  long begin = 0, end = 0;
};

// The dq, dk and dv columns of a fused [rows, (nh + 2 nkv) hd] qkv gradient.
std::vector<Part> qkv_parts(int nh, int nkv, int hd);

// Rows are printed as they are added (stdout line-buffered), so a crash later in the process
// loses none of them; print_summary() repeats the failing rows and the count at the end.
class Table {
 public:
  // Adds a row for an output compared with its reference; `poisoned` says whether the output was
  // filled with NaN before the run (then NaNs left are unwritten elements).
  void compare(const std::string& check, const std::string& shape, const std::string& type,
               const std::vector<float>& got, const std::vector<float>& ref, double tolerance, bool poisoned);
  // One row per part, named "<check> <part>".
  void compare_parts(const std::string& check, const std::string& shape, const std::string& type,
                     const std::vector<float>& got, const std::vector<float>& ref, const std::vector<Part>& parts,
                     long stride, double tolerance, bool poisoned);
  void add(const Row& row);
  void print_summary() const;
  int failures() const;
  const std::vector<Row>& rows() const { return rows_; }

 private:
  std::vector<Row> rows_;
};

// Gathers the elements of `part` (see Part) from a flat buffer.
std::vector<float> gather(const std::vector<float>& v, const Part& part, long stride);

constexpr double kBf16Tolerance = 1e-2;
constexpr double kF32Tolerance = 1e-4;

}  // namespace sdt::cuda::parity
