// Host-only tests of the CUDA backend's glue (no GPU needed): run-time library loading and its
// errors, and the host bf16 conversion the parity harness relies on.
#ifdef SDT_HAVE_CUDA
#include <dlfcn.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/cublaslt.h"
#include "cuda/dynlib.h"
#include "cuda/nccl.h"
#include "cuda/parity.h"
#include "test_framework.h"
#include "types.cuh"

namespace {

std::string error_of(void (*fn)()) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

bool loadable(const char* name) {
  void* h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (h) dlclose(h);
  return h != nullptr;
}

// The nearest bf16 by exhaustive comparison of the two neighbours in double, ties to even.
uint16_t nearest_bf16(float f) {
  uint32_t u = 0;
  std::memcpy(&u, &f, sizeof u);
  const uint16_t lo = static_cast<uint16_t>(u >> 16);
  const uint16_t hi = static_cast<uint16_t>(lo + 1);
  const double x = f;
  const double dlo = std::fabs(x - sdt::cuda::bf16_to_float(lo));
  const double dhi = std::fabs(x - sdt::cuda::bf16_to_float(hi));
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1u) ? hi : lo;
}

}  // namespace

TEST(cuda_host_missing_library_error_names_library_and_files) {
  const std::string msg = error_of([] { sdt::cuda::DynamicLibrary lib("FooLib", {"libsdt-no-such-a.so", "libsdt-no-such-b.so"}); });
  CHECK(msg.find("FooLib") != std::string::npos);
  CHECK(msg.find("libsdt-no-such-a.so") != std::string::npos);
  CHECK(msg.find("libsdt-no-such-b.so") != std::string::npos);
  CHECK(msg.find("LD_LIBRARY_PATH") != std::string::npos);
}

TEST(cuda_host_symbol_table_binds_functions) {
  sdt::cuda::DynamicLibrary libm("libm", {"libsdt-no-such.so", "libm.so.6"});
  CHECK_EQ(libm.file_name(), std::string("libm.so.6"));
  double (*cosine)(double) = nullptr;
  libm.bind(cosine, "cos");
  CHECK(cosine != nullptr);
  CHECK_NEAR(cosine(0.5), std::cos(0.5), 0.0);
  std::string msg;
  try {
    libm.symbol("sdt_no_such_symbol");
  } catch (const std::exception& e) {
    msg = e.what();
  }
  CHECK(msg.find("sdt_no_such_symbol") != std::string::npos);
  CHECK(msg.find("libm.so.6") != std::string::npos);
}

TEST(cuda_host_cublaslt_and_nccl_missing_is_a_clear_error) {
  // Only meaningful where the libraries are absent (this build machine); elsewhere gpu-check
  // exercises them for real.
  if (!std::getenv("SDT_CUBLASLT") && !loadable("libcublasLt.so.13") && !loadable("libcublasLt.so.12") &&
      !loadable("libcublasLt.so")) {
    const std::string msg = error_of([] { sdt::cuda::CublasLt lt; });
    CHECK(msg.find("cuBLASLt could not be loaded") != std::string::npos);
    CHECK(msg.find("libcublasLt.so.13") != std::string::npos);
  }
  if (!std::getenv("SDT_NCCL") && !loadable("libnccl.so.2") && !loadable("libnccl.so")) {
    const std::string msg = error_of([] { sdt::cuda::Nccl nccl({0}); });
    CHECK(msg.find("NCCL could not be loaded") != std::string::npos);
  }
}

TEST(cuda_host_bf16_rounds_to_nearest_even) {
  uint64_t s = 12345;
  int mismatches = 0;
  for (int i = 0; i < 200000; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    uint32_t u = static_cast<uint32_t>(s >> 32);
    // Skip inf / NaN (checked below) and the top binade, where rounding up overflows to inf and
    // the distance comparison of the reference does not apply.
    if ((u & 0x7f800000u) >= 0x7f000000u) continue;
    if (i % 4 == 0) u = (u & 0xffff0000u) | 0x8000u;  // exact ties
    float f = 0.0f;
    std::memcpy(&f, &u, sizeof f);
    if (sdt::cuda::bf16_from_float(f) != nearest_bf16(f)) ++mismatches;
  }
  CHECK_EQ(mismatches, 0);
  CHECK(std::isnan(sdt::cuda::bf16_to_float(sdt::cuda::bf16_from_float(std::nanf("")))));
  CHECK(std::isnan(sdt::cuda::bf16_to_float(sdt::cuda::kBf16NaN)));
  CHECK_EQ(sdt::cuda::bf16_to_float(sdt::cuda::bf16_from_float(1.0f)), 1.0f);
}

TEST(cuda_host_parity_table_can_fail) {
  using sdt::cuda::parity::Table;
  const std::vector<float> ref = {3.0f, 4.0f};
  // ||(3, 4.05) - (3, 4)|| / ||(3, 4)|| = 0.05 / 5.
  CHECK_NEAR(sdt::cuda::parity::relative_error({3.0f, 4.05f}, ref), 0.01, 1e-6);
  Table ok;
  ok.compare("close", "2", "fp32", {3.0f, 4.0f + 1e-5f}, ref, 1e-4, true);
  CHECK_EQ(ok.failures(), 0);
  Table bad;
  bad.compare("too far", "2", "fp32", {3.0f, 4.05f}, ref, 1e-3, false);
  bad.compare("unwritten", "2", "fp32", {3.0f, std::nanf("")}, ref, 1e-3, true);
  bad.compare("nan, not poisoned", "2", "fp32", {3.0f, std::nanf("")}, ref, 1e-3, false);
  bad.compare("wrong size", "2", "fp32", {3.0f}, ref, 1e-3, false);
  CHECK_EQ(bad.failures(), 4);
}

TEST(cuda_host_parity_random_is_reproducible_and_uniform) {
  sdt::cuda::parity::Random a(7), b(7);
  double sum = 0.0;
  for (int i = 0; i < 10000; ++i) {
    const float x = a.uniform(-1.0f, 1.0f);
    CHECK_EQ(x, b.uniform(-1.0f, 1.0f));
    CHECK(x >= -1.0f && x < 1.0f);
    sum += x;
  }
  CHECK_NEAR(sum / 10000.0, 0.0, 0.03);
}

#endif  // SDT_HAVE_CUDA
