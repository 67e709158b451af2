// Device management for plain C++ callers: memory, copies, streams, events and errors. Every
// function checks the CUDA return code and throws std::runtime_error naming the call and the
// CUDA error string, so callers never see a silent failure.
#pragma once

#include <cstddef>
#include <string>

#include "types.cuh"

namespace sdt::cuda {

// Number of visible CUDA devices; 0 (not an error) when there is no driver or no device.
int device_count();
// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)"; throws when `device` does not exist.
std::string device_description(int device);
void set_device(int device);

void* device_alloc(size_t bytes);  // cudaMalloc; throws with the size on failure
void device_free(void* p);         // nullptr is a no-op
void copy_to_device(void* dst, const void* src, size_t bytes);
void copy_to_host(void* dst, const void* src, size_t bytes);
void copy_on_device(void* dst, const void* src, size_t bytes, Stream stream);
// Fills `count` elements of 4 or 2 bytes with one bit pattern (NaN poisoning, zeroing).
void fill_u32(void* dst, uint32_t bits, size_t count, Stream stream);
void fill_u16(void* dst, uint16_t bits, size_t count, Stream stream);
void synchronize();  // the whole device; rethrows errors of earlier asynchronous work

Stream stream_create();
// A stream whose work is ordered with the legacy default stream, so the synchronous copies above
// (copy_to_device, copy_to_host, DeviceBuffer::upload/download) wait for its kernels and its
// kernels for them. An engine's own stream: no other caller's work runs on it.
Stream stream_create_ordered();
void stream_destroy(Stream s);
void stream_synchronize(Stream s);

// Throws when the last kernel launch failed (bad configuration, too much shared memory).
// `what` names the launcher in the message.
void check_launch(const char* what);

// A CUDA graph recorded from one stream and replayed on it. record(stream, body) captures what
// `body` enqueues on `stream` (thread-local capture mode: the body must not synchronize or copy
// through the legacy default stream) and instantiates it; a body that throws ends the capture and
// leaves the graph empty. launch() replays it.
class StreamGraph {
 public:
  StreamGraph() = default;
  ~StreamGraph();
  StreamGraph(const StreamGraph&) = delete;
  StreamGraph& operator=(const StreamGraph&) = delete;
  template <class Body>
  void record(Stream stream, Body&& body) {
    begin(stream);
    try {
      body();
    } catch (...) {
      abandon(stream);
      throw;
    }
    end(stream);
  }
  void launch(Stream stream);
  bool ready() const { return exec_ != nullptr; }
  void reset();

 private:
  void begin(Stream stream);
  void end(Stream stream);
  void abandon(Stream stream);
  void* exec_ = nullptr;
};

// Device-event timer: start() and stop() record on `stream`; elapsed_ms() waits for stop.
class EventTimer {
 public:
  EventTimer();
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  void start(Stream stream);
  void stop(Stream stream);
  float elapsed_ms();

 private:
  void* start_ = nullptr;
  void* stop_ = nullptr;
};

// An owning device buffer of T (T is a host-side type of the same size as the device one).
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count) ptr_ = static_cast<T*>(device_alloc(count * sizeof(T)));
  }
  ~DeviceBuffer() { device_free(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), count_(o.count_) {
    o.ptr_ = nullptr;
    o.count_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      device_free(ptr_);
      ptr_ = o.ptr_;
      count_ = o.count_;
      o.ptr_ = nullptr;
      o.count_ = 0;
    }
    return *this;
  }
  T* get() const { return ptr_; }
  size_t size() const { return count_; }
  void upload(const T* host) { copy_to_device(ptr_, host, count_ * sizeof(T)); }
  void download(T* host) const { copy_to_host(host, ptr_, count_ * sizeof(T)); }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

}  // namespace sdt::cuda
