#ifdef SDT_HAVE_CUDA
#include "cuda/parity.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "sdt/splitmix64.h"

namespace sdt::cuda::parity {

uint64_t Random::next() { return splitmix64_next(state_); }

float Random::uniform(float lo, float hi) {
  const double u = static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0);
  return static_cast<float>(lo + (hi - lo) * u);
}

float Random::normal() {
  const double u1 = (static_cast<double>(next() >> 11) + 1.0) * (1.0 / 9007199254740993.0);
  const double u2 = static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0);
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

int Random::below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }

std::vector<float> Random::uniform_vector(size_t n, float lo, float hi) {
  std::vector<float> v(n);
  for (float& x : v) x = uniform(lo, hi);
  return v;
}

std::vector<float> Random::normal_vector(size_t n, float scale) {
  std::vector<float> v(n);
  for (float& x : v) x = scale * normal();
  return v;
}

void round_to_bf16(std::vector<float>& v) {
  for (float& x : v) x = bf16_to_float(bf16_from_float(x));
}

DeviceBuffer<bf16> upload_bf16(const std::vector<float>& v) {
  std::vector<bf16> bits(v.size());
  for (size_t i = 0; i < v.size(); ++i) bits[i] = bf16_from_float(v[i]);
  DeviceBuffer<bf16> d(v.size());
  d.upload(bits.data());
  return d;
}

std::vector<float> download_bf16(const DeviceBuffer<bf16>& d) {
  std::vector<bf16> bits(d.size());
  d.download(bits.data());
  std::vector<float> v(d.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = bf16_to_float(bits[i]);
  return v;
}

DeviceBuffer<float> upload_f32(const std::vector<float>& v) {
  DeviceBuffer<float> d(v.size());
  d.upload(v.data());
  return d;
}

std::vector<float> download_f32(const DeviceBuffer<float>& d) {
  std::vector<float> v(d.size());
  d.download(v.data());
  return v;
}

DeviceBuffer<int32_t> upload_i32(const std::vector<int32_t>& v) {
  DeviceBuffer<int32_t> d(v.size());
  d.upload(v.data());
  return d;
}

double relative_error(const std::vector<float>& got, const std::vector<float>& ref) {
  if (got.size() != ref.size()) return std::numeric_limits<double>::quiet_NaN();
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = static_cast<double>(got[i]) - static_cast<double>(ref[i]);
    diff += d * d;
    norm += static_cast<double>(ref[i]) * static_cast<double>(ref[i]);
  }
  return norm > 0.0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

double max_abs_error(const std::vector<float>& got, const std::vector<float>& ref) {
  if (got.size() != ref.size()) return std::numeric_limits<double>::quiet_NaN();
  double m = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(static_cast<double>(got[i]) - static_cast<double>(ref[i]));
    if (std::isnan(d)) return d;
    m = std::max(m, d);
  }
  return m;
}

long count_nan(const std::vector<float>& v) {
  long n = 0;
  for (const float x : v) n += std::isnan(x) ? 1 : 0;
  return n;
}

std::vector<Part> qkv_parts(int nh, int nkv, int hd) {
  const long q = static_cast<long>(nh) * hd, kv = static_cast<long>(nkv) * hd;
  return {{"dq", 0, q}, {"dk", q, q + kv}, {"dv", q + kv, q + 2 * kv}};
}

std::vector<float> gather(const std::vector<float>& v, const Part& part, long stride) {
  std::vector<float> out;
  if (stride <= 0) return out;
  const long rows = static_cast<long>(v.size()) / stride;
  out.reserve(static_cast<size_t>(rows * (part.end - part.begin)));
  for (long r = 0; r < rows; ++r)
    out.insert(out.end(), v.begin() + r * stride + part.begin, v.begin() + r * stride + part.end);
  return out;
}

bool Row::pass() const { return note.empty() && unwritten <= 0 && error <= tolerance; }

namespace {

void print_header() {
  std::printf("%-56s %-22s %-5s %10s %10s %7s %9s  %s\n", "check", "shape", "type", "rel_err", "max_abs", "tol",
              "unwritten", "result");
}

void print_row(const Row& r) {
  char unwritten[32], max_abs[32];
  if (r.unwritten < 0)
    std::snprintf(unwritten, sizeof unwritten, "-");
  else
    std::snprintf(unwritten, sizeof unwritten, "%ld", r.unwritten);
  if (r.max_abs < 0.0)
    std::snprintf(max_abs, sizeof max_abs, "-");
  else
    std::snprintf(max_abs, sizeof max_abs, "%.3e", r.max_abs);
  std::printf("%-56s %-22s %-5s %10.3e %10s %7.0e %9s  %s%s%s\n", r.check.c_str(), r.shape.c_str(), r.type.c_str(),
              r.error, max_abs, r.tolerance, unwritten, r.pass() ? "PASS" : "FAIL", r.note.empty() ? "" : ": ",
              r.note.c_str());
  std::fflush(stdout);
}

}  // namespace

void Table::add(const Row& row) {
  if (rows_.empty()) print_header();
  rows_.push_back(row);
  print_row(row);
}

void Table::compare(const std::string& check, const std::string& shape, const std::string& type,
                    const std::vector<float>& got, const std::vector<float>& ref, double tolerance, bool poisoned) {
  Row r;
  r.check = check;
  r.shape = shape;
  r.type = type;
  r.error = relative_error(got, ref);
  r.max_abs = max_abs_error(got, ref);
  r.tolerance = tolerance;
  r.unwritten = poisoned ? count_nan(got) - count_nan(ref) : -1;
  if (!poisoned && count_nan(got) > count_nan(ref)) r.note = "NaN in output";
  add(r);
}

void Table::compare_parts(const std::string& check, const std::string& shape, const std::string& type,
                          const std::vector<float>& got, const std::vector<float>& ref, const std::vector<Part>& parts,
                          long stride, double tolerance, bool poisoned) {
  for (const Part& p : parts)
    compare(check + " " + p.name, shape, type, gather(got, p, stride), gather(ref, p, stride), tolerance, poisoned);
}

void Table::print_summary() const {
  const int failed = failures();
  if (failed > 0) {
    std::printf("failing rows:\n");
    for (const Row& r : rows_)
      if (!r.pass()) print_row(r);
  }
  std::printf("%d checks, %d failed\n", static_cast<int>(rows_.size()), failed);
}

int Table::failures() const {
  int n = 0;
  for (const Row& r : rows_) n += r.pass() ? 0 : 1;
  return n;
}

}  // namespace sdt::cuda::parity
#endif  // SDT_HAVE_CUDA
