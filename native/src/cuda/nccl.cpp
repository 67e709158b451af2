#ifdef SDT_HAVE_CUDA
#include "cuda/nccl.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cuda/dynlib.h"

namespace sdt::cuda {
namespace {

// Our own declarations from the public NCCL API documentation.
using Comm = void*;      // ncclComm_t
using Result = int;      // ncclResult_t: 0 = ncclSuccess
constexpr int kFloat32 = 7;  // ncclDataType_t ncclFloat32
constexpr int kFloat64 = 8;  // ncclDataType_t ncclFloat64
constexpr int kSum = 0;      // ncclRedOp_t ncclSum
struct UniqueId {
  char internal[128];  // ncclUniqueId: NCCL_UNIQUE_ID_BYTES opaque bytes, passed by value
};

struct Api {
  Result (*comm_init_all)(Comm* comms, int ndev, const int* devlist);
  Result (*get_unique_id)(UniqueId*);
  Result (*comm_init_rank)(Comm*, int nranks, UniqueId id, int rank);
  Result (*comm_destroy)(Comm);
  Result (*all_reduce)(const void* send, void* recv, size_t count, int type, int op, Comm, void* stream);
  Result (*group_start)();
  Result (*group_end)();
  Result (*get_version)(int*);
  const char* (*error_string)(Result);
};

// SDT_NCCL (a file path) is tried first, as SDT_CUBLASLT for cuBLASLt.
std::vector<std::string> nccl_names() {
  std::vector<std::string> names;
  if (const char* env = std::getenv("SDT_NCCL")) names.emplace_back(env);
  for (const char* n : {"libnccl.so.2", "libnccl.so"}) names.emplace_back(n);
  return names;
}

}  // namespace

struct Nccl::Impl {
  DynamicLibrary lib{"NCCL", nccl_names()};
  Api api{};
  std::vector<Comm> comms;
  int world = 0;

  void bind_common() {
    lib.bind(api.error_string, "ncclGetErrorString");
    lib.bind(api.comm_destroy, "ncclCommDestroy");
    lib.bind(api.all_reduce, "ncclAllReduce");
    lib.bind(api.group_start, "ncclGroupStart");
    lib.bind(api.group_end, "ncclGroupEnd");
    lib.bind(api.get_version, "ncclGetVersion");
  }

  void check(Result r, const char* call) const {
    if (r != 0) {
      throw std::runtime_error(std::string("NCCL ") + call + " failed: " +
                               (api.error_string ? api.error_string(r) : "unknown error") + " (" + std::to_string(r) +
                               ")");
    }
  }
};

Nccl::Nccl(const std::vector<int>& devices) : impl_(std::make_unique<Impl>()) {
  Api& a = impl_->api;
  impl_->bind_common();
  impl_->lib.bind(a.comm_init_all, "ncclCommInitAll");
  if (devices.empty()) throw std::invalid_argument("NCCL: no devices given");
  impl_->comms.assign(devices.size(), nullptr);
  impl_->world = static_cast<int>(devices.size());
  impl_->check(a.comm_init_all(impl_->comms.data(), static_cast<int>(devices.size()), devices.data()),
               "ncclCommInitAll");
}

Nccl::Nccl(const dist::RankEnv& env, int timeout_ms) : impl_(std::make_unique<Impl>()) {
  Api& a = impl_->api;
  impl_->bind_common();
  impl_->lib.bind(a.get_unique_id, "ncclGetUniqueId");
  impl_->lib.bind(a.comm_init_rank, "ncclCommInitRank");
  UniqueId id{};
  if (env.rank == 0) impl_->check(a.get_unique_id(&id), "ncclGetUniqueId");
  const std::vector<uint8_t> mine(reinterpret_cast<const uint8_t*>(&id), reinterpret_cast<const uint8_t*>(&id) + sizeof id);
  const std::vector<uint8_t> shared = dist::share_from_rank0(env, mine, timeout_ms);
  if (shared.size() != sizeof id)
    throw std::runtime_error("NCCL: rank 0 sent a unique id of " + std::to_string(shared.size()) + " bytes, not " +
                             std::to_string(sizeof id));
  std::memcpy(&id, shared.data(), sizeof id);
  impl_->comms.assign(1, nullptr);
  impl_->world = env.world_size;
  impl_->check(a.comm_init_rank(&impl_->comms[0], env.world_size, id, env.rank), "ncclCommInitRank");
}

Nccl::~Nccl() {
  for (Comm c : impl_->comms)
    if (c) impl_->api.comm_destroy(c);
}

int Nccl::ranks() const { return static_cast<int>(impl_->comms.size()); }
int Nccl::world() const { return impl_->world; }

void Nccl::all_reduce_sum(int rank, float* buffer, size_t count, Stream stream) {
  all_reduce(rank, buffer, count, kFloat32, stream);
}

void Nccl::all_reduce_sum(int rank, double* buffer, size_t count, Stream stream) {
  all_reduce(rank, buffer, count, kFloat64, stream);
}

void Nccl::all_reduce(int rank, void* buffer, size_t count, int type, Stream stream) {
  if (rank < 0 || rank >= ranks())
    throw std::out_of_range("NCCL all_reduce_sum: rank " + std::to_string(rank) + " of " + std::to_string(ranks()));
  impl_->check(impl_->api.all_reduce(buffer, buffer, count, type, kSum, impl_->comms[static_cast<size_t>(rank)], stream),
               "ncclAllReduce");
}

void Nccl::group_start() { impl_->check(impl_->api.group_start(), "ncclGroupStart"); }
void Nccl::group_end() { impl_->check(impl_->api.group_end(), "ncclGroupEnd"); }

std::string Nccl::version() const {
  int v = 0;
  impl_->check(impl_->api.get_version(&v), "ncclGetVersion");
  // Since NCCL 2.9 the code is major * 10000 + minor * 100 + patch.
  return std::to_string(v / 10000) + "." + std::to_string((v / 100) % 100) + "." + std::to_string(v % 100);
}

}  // namespace sdt::cuda
#endif  // SDT_HAVE_CUDA
