// The trainer stream (spec: schemas/stream.md; TS side: schemas/stream.ts). A 24-byte header
// then frames; every frame carries its length and a CRC-32 so truncation and corruption are
// detected at the frame that is bad.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace sdt::io {

constexpr char kStreamMagic[8] = {'S', 'D', 'T', 'S', 'T', 'R', 'M', '\0'};
constexpr uint32_t kStreamVersion = 1;
constexpr size_t kStreamHeaderBytes = 24;
constexpr size_t kFrameHeaderBytes = 12;
constexpr uint32_t kMaxFramePayload = 1u << 30;  // 1 GiB: a larger length means corruption
constexpr uint32_t kBatchHasSegments = 1u;

// Train..End make up a trainer stream. Request and Tensor are the engine's binary messages
// (schemas/engine.md): a stream header then one frame, a batch to run or a result tensor.
enum class FrameKind : uint32_t { Train = 1, Eval = 2, Checkpoint = 3, End = 4, Request = 5, Tensor = 6 };
const char* frame_kind_name(FrameKind k);

struct StreamHeader {
  uint32_t version = kStreamVersion;
  uint32_t flags = 0;
  // Number of train frames the run consumed before this stream's first train frame: 0 for a
  // fresh run; a feeder resuming at trainer_state.json's stream_position writes that value.
  uint64_t first_train_frame = 0;
};

struct StreamBatch {
  int B = 0;
  int T = 0;
  std::string tag;  // objective or eval group, e.g. "mask", "edit", "val/python"
  std::vector<int32_t> input_ids;   // [B*T]
  std::vector<int32_t> target_ids;  // [B*T]; negative: no loss here
  std::vector<float> weights;       // [B*T]
  std::vector<int32_t> segment_ids;  // [B*T] or empty
};

struct StreamFrame {
  FrameKind kind = FrameKind::End;
  StreamBatch batch;  // Train and Eval only
};

class StreamError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads a stream from a file or, for path "-", from stdin. Errors name the file, the frame
// index and the byte offset, and say what to run.
class StreamReader {
 public:
  explicit StreamReader(const std::string& path);
  ~StreamReader();
  StreamReader(const StreamReader&) = delete;
  StreamReader& operator=(const StreamReader&) = delete;

  const StreamHeader& header() const { return header_; }
  const std::string& path() const { return path_; }
  // false at a clean end of input (between frames); throws StreamError otherwise.
  // When `interruptible` and the stop flag (set_stop_flag) is raised while waiting for the first
  // byte of a frame (a signal interrupts the blocking read), returns false with interrupted().
  bool next(StreamFrame& frame, bool interruptible = false);
  void set_stop_flag(const std::atomic<bool>* stop) { stop_ = stop; }
  bool interrupted() const { return interrupted_; }
  uint64_t frames_read() const { return frames_; }
  uint64_t bytes_read() const { return offset_; }

 private:
  // Reads exactly n bytes; returns the number read (< n only at end of input).
  size_t read_fully(void* dst, size_t n, bool interruptible = false);
  [[noreturn]] void fail(const std::string& what) const;

  std::string path_;
  int fd_ = -1;
  bool owns_fd_ = false;
  StreamHeader header_;
  uint64_t frames_ = 0;
  uint64_t offset_ = 0;
  std::vector<uint8_t> payload_;
  const std::atomic<bool>* stop_ = nullptr;
  bool interrupted_ = false;
};

// Encodes frames (the C++ writer is for tests and tools; trainer/ writes with schemas/stream.ts).
std::vector<uint8_t> encode_stream_header(const StreamHeader& h);
// kind, payload length, CRC-32 over both and the payload, then the payload.
std::vector<uint8_t> encode_frame(FrameKind kind, const std::vector<uint8_t>& payload);
// Parses a batch payload (schemas/stream.md, "Batch payload") into `b`. Returns "" or what is wrong.
std::string decode_batch_payload(const uint8_t* p, size_t len, StreamBatch& b);
std::vector<uint8_t> encode_batch_frame(FrameKind kind, const StreamBatch& b);
std::vector<uint8_t> encode_control_frame(FrameKind kind);

class StreamWriter {
 public:
  // path "-" writes to stdout.
  StreamWriter(const std::string& path, const StreamHeader& h = {});
  ~StreamWriter();
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;
  void write_batch(FrameKind kind, const StreamBatch& b);
  void write_control(FrameKind kind);
  void close();

 private:
  void put(const std::vector<uint8_t>& bytes);
  std::string path_;
  std::FILE* f_ = nullptr;
};

}  // namespace sdt::io
