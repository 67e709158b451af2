#ifdef SDT_HAVE_CUDA
#include "cuda/cublaslt.h"

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda/dynlib.h"
#include "device.cuh"

namespace sdt::cuda {
namespace {

// Our own declarations of the few cuBLASLt types and enum values used, from the public API
// documentation. Handles and descriptors are opaque pointers.
using LtHandle = void*;
using LtMatmulDesc = void*;
using LtMatrixLayout = void*;
using LtPreference = void*;
using Status = int;  // cublasStatus_t: 0 = CUBLAS_STATUS_SUCCESS

constexpr int kCudaR32F = 0;          // cudaDataType_t CUDA_R_32F
constexpr int kCudaR16BF = 14;        // CUDA_R_16BF
constexpr int kComputeType32F = 68;   // cublasComputeType_t CUBLAS_COMPUTE_32F
constexpr int kDescTransA = 3;        // cublasLtMatmulDescAttributes_t CUBLASLT_MATMUL_DESC_TRANSA
constexpr int kDescTransB = 4;        // CUBLASLT_MATMUL_DESC_TRANSB
constexpr int kPrefMaxWorkspace = 1;  // CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES
constexpr int kPrefMinAlignA = 5;     // CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES (uint32_t); B, C, D follow
constexpr int kOpN = 0;               // cublasOperation_t CUBLAS_OP_N
constexpr int kOpT = 1;               // CUBLAS_OP_T

struct MatmulAlgo {
  uint64_t data[8];
};
struct HeuristicResult {
  MatmulAlgo algo;
  size_t workspace_size;
  Status state;
  float waves_count;
  int reserved[4];
};

struct Api {
  Status (*create)(LtHandle*);
  Status (*destroy)(LtHandle);
  size_t (*get_version)();
  Status (*desc_create)(LtMatmulDesc*, int compute_type, int scale_type);
  Status (*desc_destroy)(LtMatmulDesc);
  Status (*desc_set)(LtMatmulDesc, int attr, const void* buf, size_t size);
  Status (*layout_create)(LtMatrixLayout*, int type, uint64_t rows, uint64_t cols, int64_t ld);
  Status (*layout_destroy)(LtMatrixLayout);
  Status (*pref_create)(LtPreference*);
  Status (*pref_destroy)(LtPreference);
  Status (*pref_set)(LtPreference, int attr, const void* buf, size_t size);
  Status (*heuristic)(LtHandle, LtMatmulDesc, LtMatrixLayout, LtMatrixLayout, LtMatrixLayout, LtMatrixLayout,
                      LtPreference, int requested, HeuristicResult* results, int* returned);
  Status (*matmul)(LtHandle, LtMatmulDesc, const void* alpha, const void* A, LtMatrixLayout, const void* B,
                   LtMatrixLayout, const void* beta, const void* C, LtMatrixLayout, void* D, LtMatrixLayout,
                   const MatmulAlgo* algo, void* workspace, size_t workspace_bytes, void* stream);
};

void check(Status s, const char* call) {
  if (s != 0) throw std::runtime_error(std::string("cuBLASLt ") + call + " failed with status " + std::to_string(s));
}

// SDT_CUBLASLT (a file path) is tried first: pip-installed CUDA libraries live outside the
// loader's search path.
std::vector<std::string> cublaslt_names() {
  std::vector<std::string> names;
  if (const char* env = std::getenv("SDT_CUBLASLT")) names.emplace_back(env);
  for (const char* n : {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"}) names.emplace_back(n);
  return names;
}

}  // namespace

// One planned product: descriptors in cuBLASLt's column-major terms and the chosen algorithm.
struct Plan {
  LtMatmulDesc desc = nullptr;
  LtMatrixLayout la = nullptr, lb = nullptr, lc = nullptr;
  MatmulAlgo algo{};
};

struct CublasLt::Impl {
  DynamicLibrary lib{"cuBLASLt", cublaslt_names()};
  Api api{};
  LtHandle handle = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  std::unordered_map<GemmKey, Plan, GemmKeyHash> plans;

  const Plan& plan_for(const GemmKey& k);
  void destroy(Plan& p) const {
    if (p.lc) api.layout_destroy(p.lc);
    if (p.lb) api.layout_destroy(p.lb);
    if (p.la) api.layout_destroy(p.la);
    if (p.desc) api.desc_destroy(p.desc);
  }
};

const Plan& CublasLt::Impl::plan_for(const GemmKey& k) {
  const auto found = plans.find(k);
  if (found != plans.end()) return found->second;
  const Api& a = api;
  // cuBLASLt is column-major. A row-major [R, C] matrix with leading dimension ld is the
  // column-major [C, R] one, so row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T:
  // swap the operands and the sizes, keep each operand's transpose flag.
  const int opB = k.trans_b ? kOpT : kOpN;  // first operand of the column-major product
  const int opA = k.trans_a ? kOpT : kOpN;
  // Stored shapes in column-major terms: B is [N, K] (or [K, N] when transposed), rows = ld dim.
  const uint64_t b_rows = static_cast<uint64_t>(k.trans_b ? k.K : k.N);
  const uint64_t b_cols = static_cast<uint64_t>(k.trans_b ? k.N : k.K);
  const uint64_t a_rows = static_cast<uint64_t>(k.trans_a ? k.M : k.K);
  const uint64_t a_cols = static_cast<uint64_t>(k.trans_a ? k.K : k.M);
  const int out_type = k.out == OutType::BF16 ? kCudaR16BF : kCudaR32F;
  Plan p;
  LtPreference pref = nullptr;
  try {
    check(a.desc_create(&p.desc, kComputeType32F, kCudaR32F), "cublasLtMatmulDescCreate");
    check(a.desc_set(p.desc, kDescTransA, &opB, sizeof opB), "cublasLtMatmulDescSetAttribute(TRANSA)");
    check(a.desc_set(p.desc, kDescTransB, &opA, sizeof opA), "cublasLtMatmulDescSetAttribute(TRANSB)");
    check(a.layout_create(&p.lb, kCudaR16BF, b_rows, b_cols, k.ldb), "cublasLtMatrixLayoutCreate(B)");
    check(a.layout_create(&p.la, kCudaR16BF, a_rows, a_cols, k.lda), "cublasLtMatrixLayoutCreate(A)");
    check(a.layout_create(&p.lc, out_type, static_cast<uint64_t>(k.N), static_cast<uint64_t>(k.M), k.ldc),
          "cublasLtMatrixLayoutCreate(C)");
    check(a.pref_create(&pref), "cublasLtMatmulPreferenceCreate");
    const uint64_t ws = workspace_bytes;
    check(a.pref_set(pref, kPrefMaxWorkspace, &ws, sizeof ws), "cublasLtMatmulPreferenceSetAttribute(workspace)");
    // Column-major operand order: "A" is our B, "B" our A; C and D are the same buffer.
    const uint32_t align[4] = {k.align_b, k.align_a, k.align_c, k.align_c};
    for (int i = 0; i < 4; ++i)
      check(a.pref_set(pref, kPrefMinAlignA + i, &align[i], sizeof align[i]),
            "cublasLtMatmulPreferenceSetAttribute(alignment)");
    // Room for more results than requested: the library's struct may have grown.
    HeuristicResult results[4] = {};
    int returned = 0;
    check(a.heuristic(handle, p.desc, p.lb, p.la, p.lc, p.lc, pref, 1, results, &returned),
          "cublasLtMatmulAlgoGetHeuristic");
    if (returned < 1)
      throw std::runtime_error("cuBLASLt has no algorithm for a bf16 GEMM of " + std::to_string(k.M) + "x" +
                               std::to_string(k.N) + "x" + std::to_string(k.K));
    p.algo = results[0].algo;
  } catch (...) {
    if (pref) a.pref_destroy(pref);
    destroy(p);
    throw;
  }
  a.pref_destroy(pref);
  return plans.emplace(k, p).first->second;
}

CublasLt::CublasLt(size_t workspace_bytes) : impl_(std::make_unique<Impl>()) {
  Api& a = impl_->api;
  const DynamicLibrary& lib = impl_->lib;
  lib.bind(a.create, "cublasLtCreate");
  lib.bind(a.destroy, "cublasLtDestroy");
  lib.bind(a.get_version, "cublasLtGetVersion");
  lib.bind(a.desc_create, "cublasLtMatmulDescCreate");
  lib.bind(a.desc_destroy, "cublasLtMatmulDescDestroy");
  lib.bind(a.desc_set, "cublasLtMatmulDescSetAttribute");
  lib.bind(a.layout_create, "cublasLtMatrixLayoutCreate");
  lib.bind(a.layout_destroy, "cublasLtMatrixLayoutDestroy");
  lib.bind(a.pref_create, "cublasLtMatmulPreferenceCreate");
  lib.bind(a.pref_destroy, "cublasLtMatmulPreferenceDestroy");
  lib.bind(a.pref_set, "cublasLtMatmulPreferenceSetAttribute");
  lib.bind(a.heuristic, "cublasLtMatmulAlgoGetHeuristic");
  lib.bind(a.matmul, "cublasLtMatmul");
  check(a.create(&impl_->handle), "cublasLtCreate");
  impl_->workspace_bytes = workspace_bytes;
  if (workspace_bytes) impl_->workspace = device_alloc(workspace_bytes);
}

CublasLt::~CublasLt() {
  for (auto& [key, plan] : impl_->plans) impl_->destroy(plan);
  if (impl_->handle) impl_->api.destroy(impl_->handle);
  device_free(impl_->workspace);
}

size_t CublasLt::version() const { return impl_->api.get_version(); }
const std::string& CublasLt::library_file() const { return impl_->lib.file_name(); }

size_t CublasLt::plans() const { return impl_->plans.size(); }

void CublasLt::matmul(bool transA, bool transB, int M, int N, int K, float alpha, const bf16* A, int lda,
                      const bf16* B, int ldb, float beta, void* C, OutType out, int ldc, Stream stream) {
  if (M <= 0 || N <= 0) return;
  const Plan& p = impl_->plan_for(gemm_key(transA, transB, M, N, K, A, lda, B, ldb, C, out, ldc));
  check(impl_->api.matmul(impl_->handle, p.desc, &alpha, B, p.lb, A, p.la, &beta, C, p.lc, C, p.lc, &p.algo,
                          impl_->workspace, impl_->workspace_bytes, stream),
        "cublasLtMatmul");
}

}  // namespace sdt::cuda
#endif  // SDT_HAVE_CUDA
