// Device management for plain C++ callers (see device.cuh).
#include <cuda_runtime.h>

#include <cstdio>
#include <string>

#include "device.cuh"
#include "internal/check.cuh"
#include "internal/warp.cuh"

namespace sdt::cuda {

using detail::as_stream;

int device_count() {
  int n = 0;
  // No driver or no device is a normal answer on a CPU machine, not an error.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

std::string device_description(int device) {
  cudaDeviceProp p{};
  SDT_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  char buf[320];
  std::snprintf(buf, sizeof buf, "%s (sm_%d%d, %d SMs, %.1f GiB)", p.name, p.major, p.minor, p.multiProcessorCount,
                static_cast<double>(p.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

void set_device(int device) { SDT_CUDA_CHECK(cudaSetDevice(device)); }

void* device_alloc(size_t bytes) {
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes);
  if (err != cudaSuccess) {
    detail::throw_cuda(("cudaMalloc of " + std::to_string(bytes) + " bytes").c_str(), err);
  }
  return p;
}

void device_free(void* p) {
  if (p) cudaFree(p);  // errors here would only hide an earlier one; nothing useful to do
}

void copy_to_device(void* dst, const void* src, size_t bytes) {
  SDT_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

void copy_to_host(void* dst, const void* src, size_t bytes) {
  SDT_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

void copy_on_device(void* dst, const void* src, size_t bytes, Stream stream) {
  SDT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, as_stream(stream)));
}

namespace {

template <class T>
__global__ void fill_kernel(T* dst, T bits, long count) {
  for (long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long>(gridDim.x) * blockDim.x)
    dst[i] = bits;
}

}  // namespace

void fill_u32(void* dst, uint32_t bits, size_t count, Stream stream) {
  if (!count) return;
  const long n = static_cast<long>(count);
  fill_kernel<<<detail::grid_for(n, 256), 256, 0, as_stream(stream)>>>(static_cast<uint32_t*>(dst), bits, n);
  check_launch("fill_u32");
}

void fill_u16(void* dst, uint16_t bits, size_t count, Stream stream) {
  if (!count) return;
  const long n = static_cast<long>(count);
  fill_kernel<<<detail::grid_for(n, 256), 256, 0, as_stream(stream)>>>(static_cast<uint16_t*>(dst), bits, n);
  check_launch("fill_u16");
}

void synchronize() { SDT_CUDA_CHECK(cudaDeviceSynchronize()); }

Stream stream_create_ordered() {
  cudaStream_t s = nullptr;
  SDT_CUDA_CHECK(cudaStreamCreate(&s));
  return s;
}

Stream stream_create() {
  cudaStream_t s = nullptr;
  SDT_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}

void stream_destroy(Stream s) {
  if (s) cudaStreamDestroy(as_stream(s));
}

void stream_synchronize(Stream s) { SDT_CUDA_CHECK(cudaStreamSynchronize(as_stream(s))); }

void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) detail::throw_cuda((std::string("launch of ") + what).c_str(), err);
}

EventTimer::EventTimer() {
  cudaEvent_t a = nullptr, b = nullptr;
  SDT_CUDA_CHECK(cudaEventCreate(&a));
  SDT_CUDA_CHECK(cudaEventCreate(&b));
  start_ = a;
  stop_ = b;
}

EventTimer::~EventTimer() {
  cudaEventDestroy(static_cast<cudaEvent_t>(start_));
  cudaEventDestroy(static_cast<cudaEvent_t>(stop_));
}

void EventTimer::start(Stream stream) {
  SDT_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(start_), as_stream(stream)));
}

void EventTimer::stop(Stream stream) {
  SDT_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(stop_), as_stream(stream)));
}

float EventTimer::elapsed_ms() {
  SDT_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(stop_)));
  float ms = 0.0f;
  SDT_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start_), static_cast<cudaEvent_t>(stop_)));
  return ms;
}

StreamGraph::~StreamGraph() { reset(); }

void StreamGraph::reset() {
  if (exec_) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
  exec_ = nullptr;
}

void StreamGraph::begin(Stream stream) {
  reset();
  SDT_CUDA_CHECK(cudaStreamBeginCapture(as_stream(stream), cudaStreamCaptureModeThreadLocal));
}

void StreamGraph::end(Stream stream) {
  cudaGraph_t graph = nullptr;
  SDT_CUDA_CHECK(cudaStreamEndCapture(as_stream(stream), &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  SDT_CUDA_CHECK(err);
  exec_ = exec;
}

void StreamGraph::abandon(Stream stream) {
  cudaGraph_t graph = nullptr;
  if (cudaStreamEndCapture(as_stream(stream), &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
  (void)cudaGetLastError();  // the failed capture's error is the one the body threw
}

void StreamGraph::launch(Stream stream) {
  SDT_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec_), as_stream(stream)));
}

}  // namespace sdt::cuda
