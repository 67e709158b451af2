#ifdef SDT_HAVE_CUDA
#include "cuda/parity.h"

#include <cmath>
#include <cstdio>
#include <limits>

namespace sdt::cuda::parity {

uint64_t Random::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

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

long count_nan(const std::vector<float>& v) {
  long n = 0;
  for (const float x : v) n += std::isnan(x) ? 1 : 0;
  return n;
}

bool Row::pass() const { return note.empty() && unwritten <= 0 && error <= tolerance; }

void Table::compare(const std::string& check, const std::string& shape, const std::string& type,
                    const std::vector<float>& got, const std::vector<float>& ref, double tolerance, bool poisoned) {
  Row r;
  r.check = check;
  r.shape = shape;
  r.type = type;
  r.error = relative_error(got, ref);
  r.tolerance = tolerance;
  r.unwritten = poisoned ? count_nan(got) - count_nan(ref) : -1;
  if (!poisoned && count_nan(got) > count_nan(ref)) r.note = "NaN in output";
  rows_.push_back(r);
}

void Table::print() const {
  std::printf("%-34s %-24s %-5s %11s %8s %9s  %s\n", "check", "shape", "type", "rel_err", "tol", "unwritten",
              "result");
  for (const Row& r : rows_) {
    char unwritten[32];
    if (r.unwritten < 0)
      std::snprintf(unwritten, sizeof unwritten, "-");
    else
      std::snprintf(unwritten, sizeof unwritten, "%ld", r.unwritten);
    std::printf("%-34s %-24s %-5s %11.3e %8.0e %9s  %s%s%s\n", r.check.c_str(), r.shape.c_str(), r.type.c_str(),
                r.error, r.tolerance, unwritten, r.pass() ? "PASS" : "FAIL", r.note.empty() ? "" : ": ",
                r.note.c_str());
  }
  std::printf("%d checks, %d failed\n", static_cast<int>(rows_.size()), failures());
}

int Table::failures() const {
  int n = 0;
  for (const Row& r : rows_) n += r.pass() ? 0 : 1;
  return n;
}

}  // namespace sdt::cuda::parity
#endif  // SDT_HAVE_CUDA
