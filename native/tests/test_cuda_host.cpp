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
#include <unordered_set>
#include <vector>

#include "cuda/cublaslt.h"
#include "cuda/dynlib.h"
#include "cuda/gemm_plan.h"
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

// pointer_alignment against a brute-force answer: the largest power of two up to 256 dividing the address.
TEST(cuda_host_pointer_alignment_is_the_largest_dividing_power_of_two) {
  for (uintptr_t a = 0; a < 4096; ++a) {
    uint32_t want = 1;
    for (uint32_t p = 256; p >= 1; p >>= 1) {
      if (a % p == 0) {
        want = p;
        break;
      }
    }
    CHECK_EQ(sdt::cuda::pointer_alignment(reinterpret_cast<const void*>(a)), want);
  }
}

// Every field of a GEMM key tells plans apart; equal inputs give equal keys and hashes.
TEST(cuda_host_gemm_keys_differ_in_every_field) {
  using sdt::cuda::gemm_key;
  using sdt::cuda::OutType;
  const auto* base = reinterpret_cast<const char*>(uintptr_t{1} << 20);
  const auto key = [&](bool ta, bool tb, int M, int N, int K, int lda, int ldb, int ldc, OutType out, int offa,
                       int offb, int offc) {
    return gemm_key(ta, tb, M, N, K, base + offa, lda, base + offb, ldb, base + offc, out, ldc);
  };
  const sdt::cuda::GemmKey k0 = key(false, true, 64, 96, 128, 128, 128, 96, OutType::BF16, 0, 0, 0);
  const std::vector<sdt::cuda::GemmKey> variants = {
      key(true, true, 64, 96, 128, 128, 128, 96, OutType::BF16, 0, 0, 0),
      key(false, false, 64, 96, 128, 128, 128, 96, OutType::BF16, 0, 0, 0),
      key(false, true, 65, 96, 128, 128, 128, 96, OutType::BF16, 0, 0, 0),
      key(false, true, 64, 97, 128, 128, 128, 96, OutType::BF16, 0, 0, 0),
      key(false, true, 64, 96, 129, 128, 128, 96, OutType::BF16, 0, 0, 0),
      key(false, true, 64, 96, 128, 136, 128, 96, OutType::BF16, 0, 0, 0),
      key(false, true, 64, 96, 128, 128, 136, 96, OutType::BF16, 0, 0, 0),
      key(false, true, 64, 96, 128, 128, 128, 104, OutType::BF16, 0, 0, 0),
      key(false, true, 64, 96, 128, 128, 128, 96, OutType::F32, 0, 0, 0),
      key(false, true, 64, 96, 128, 128, 128, 96, OutType::BF16, 16, 0, 0),
      key(false, true, 64, 96, 128, 128, 128, 96, OutType::BF16, 0, 2, 0),
      key(false, true, 64, 96, 128, 128, 128, 96, OutType::BF16, 0, 0, 64),
  };
  const sdt::cuda::GemmKeyHash hash;
  std::unordered_set<size_t> hashes = {hash(k0)};
  for (const auto& v : variants) {
    CHECK(!(v == k0));
    hashes.insert(hash(v));
  }
  CHECK_EQ(hashes.size(), variants.size() + 1);  // FNV-1a separates these
  // The same shape at another 256-aligned address is the same plan.
  const sdt::cuda::GemmKey again = key(false, true, 64, 96, 128, 128, 128, 96, OutType::BF16, 512, 256, 1024);
  CHECK(again == k0);
  CHECK_EQ(hash(again), hash(k0));
}

// The parity table's slicing: qkv parts cover each row's columns once, in order; gather picks them.
TEST(cuda_host_parity_parts_gather_the_right_columns) {
  using namespace sdt::cuda::parity;
  const int nh = 4, nkv = 2, hd = 8, S = (nh + 2 * nkv) * hd, rows = 3;
  const std::vector<Part> parts = qkv_parts(nh, nkv, hd);
  CHECK_EQ(parts.size(), size_t{3});
  CHECK_EQ(parts[0].begin, 0L);
  CHECK_EQ(parts[2].end, static_cast<long>(S));
  for (size_t i = 1; i < parts.size(); ++i) CHECK_EQ(parts[i].begin, parts[i - 1].end);
  std::vector<float> v(static_cast<size_t>(rows) * S);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  const std::vector<float> dk = gather(v, parts[1], S);
  CHECK_EQ(dk.size(), static_cast<size_t>(rows * nkv * hd));
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < nkv * hd; ++c)
      CHECK_EQ(dk[static_cast<size_t>(r * nkv * hd + c)], static_cast<float>(r * S + nh * hd + c));
  // max_abs_error: the largest elementwise gap, NaN when a value is NaN.
  CHECK_EQ(max_abs_error({1.0f, 2.0f, 3.0f}, {1.0f, 2.5f, 2.0f}), 1.0);
  CHECK(std::isnan(max_abs_error({1.0f, std::nanf("")}, {1.0f, 1.0f})));
}

#endif  // SDT_HAVE_CUDA
