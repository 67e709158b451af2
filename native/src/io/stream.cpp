#include "io/stream.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "io/binary.h"

namespace sdt::io {

namespace {

const char* kWhatToRun =
    " Regenerate the stream with `sdt train` (trainer/) or schemas/stream.ts StreamWriter, and check "
    "that its writer and this sdt-native come from the same checkout (`npm run build:native`).";

size_t pad4(size_t n) { return (4 - n % 4) % 4; }

}  // namespace

const char* frame_kind_name(FrameKind k) {
  switch (k) {
    case FrameKind::Train: return "train";
    case FrameKind::Eval: return "eval";
    case FrameKind::Checkpoint: return "checkpoint";
    case FrameKind::End: return "end";
    case FrameKind::Request: return "request";
    case FrameKind::Tensor: return "tensor";
  }
  return "?";
}

std::vector<uint8_t> encode_stream_header(const StreamHeader& h) {
  std::vector<uint8_t> out;
  put_bytes(out, kStreamMagic, 8);
  put_u32(out, h.version);
  put_u32(out, h.flags);
  put_u64(out, h.first_train_frame);
  return out;
}

std::vector<uint8_t> encode_frame(FrameKind kind, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> out;
  put_u32(out, static_cast<uint32_t>(kind));
  put_u32(out, static_cast<uint32_t>(payload.size()));
  // The CRC covers kind and length too, so a flipped length is caught as well as flipped data.
  uint32_t crc = crc32(out.data(), 8);
  crc = crc32(payload.data(), payload.size(), crc);
  put_u32(out, crc);
  put_bytes(out, payload.data(), payload.size());
  return out;
}

std::vector<uint8_t> encode_batch_frame(FrameKind kind, const StreamBatch& b) {
  const auto n = static_cast<size_t>(b.B) * static_cast<size_t>(b.T);
  if (b.input_ids.size() != n || b.target_ids.size() != n || b.weights.size() != n ||
      (!b.segment_ids.empty() && b.segment_ids.size() != n)) {
    throw std::invalid_argument("encode_batch_frame: arrays must hold B*T elements");
  }
  std::vector<uint8_t> p;
  put_u32(p, static_cast<uint32_t>(b.B));
  put_u32(p, static_cast<uint32_t>(b.T));
  put_u32(p, b.segment_ids.empty() ? 0u : kBatchHasSegments);
  put_u32(p, static_cast<uint32_t>(b.tag.size()));
  put_bytes(p, b.tag.data(), b.tag.size());
  p.resize(p.size() + pad4(b.tag.size()), 0);
  put_bytes(p, b.input_ids.data(), n * 4);
  put_bytes(p, b.target_ids.data(), n * 4);
  put_bytes(p, b.weights.data(), n * 4);
  if (!b.segment_ids.empty()) put_bytes(p, b.segment_ids.data(), n * 4);
  return encode_frame(kind, p);
}

std::vector<uint8_t> encode_control_frame(FrameKind kind) { return encode_frame(kind, {}); }

std::string decode_batch_payload(const uint8_t* payload, size_t len, StreamBatch& b) {
  if (len < 16) return "batch frame shorter than its 16-byte header";
  const uint32_t B = get_u32(payload);
  const uint32_t T = get_u32(payload + 4);
  const uint32_t flags = get_u32(payload + 8);
  const uint32_t tag_len = get_u32(payload + 12);
  if (B == 0 || T == 0 || B > (1u << 20) || T > (1u << 24)) {
    return "batch shape B=" + std::to_string(B) + ", T=" + std::to_string(T) + " is out of range";
  }
  if ((flags & ~kBatchHasSegments) != 0) return "unknown batch flags " + std::to_string(flags);
  const size_t n = static_cast<size_t>(B) * T;
  const size_t arrays = (flags & kBatchHasSegments) ? 4 : 3;
  const size_t tag_bytes = static_cast<size_t>(tag_len) + pad4(tag_len);
  if (tag_len > len || 16 + tag_bytes + arrays * n * 4 != len) {
    return "batch frame of B=" + std::to_string(B) + ", T=" + std::to_string(T) + " has " + std::to_string(len) +
           " payload bytes, which does not match its shape";
  }
  b.B = static_cast<int>(B);
  b.T = static_cast<int>(T);
  const uint8_t* p = payload + 16;
  b.tag.assign(reinterpret_cast<const char*>(p), tag_len);
  p += tag_bytes;
  b.input_ids.resize(n);
  b.target_ids.resize(n);
  b.weights.resize(n);
  std::memcpy(b.input_ids.data(), p, n * 4);
  std::memcpy(b.target_ids.data(), p + n * 4, n * 4);
  std::memcpy(b.weights.data(), p + 2 * n * 4, n * 4);
  if (flags & kBatchHasSegments) {
    b.segment_ids.resize(n);
    std::memcpy(b.segment_ids.data(), p + 3 * n * 4, n * 4);
  }
  return "";
}

StreamReader::StreamReader(const std::string& path) : path_(path == "-" ? "<stdin>" : path) {
  if (path == "-") {
    fd_ = 0;
  } else {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw StreamError(path + ": cannot open the trainer stream (" + std::strerror(errno) + ")");
    owns_fd_ = true;
  }
  uint8_t h[kStreamHeaderBytes];
  const size_t got = read_fully(h, sizeof h);
  if (got < sizeof h) {
    fail(got == 0 ? "empty input: no stream header" : "truncated stream header (" + std::to_string(got) + " of 24 bytes)");
  }
  if (std::memcmp(h, kStreamMagic, 8) != 0) fail("not an sdt trainer stream (bad magic; expected \"SDTSTRM\\0\")");
  header_.version = get_u32(h + 8);
  header_.flags = get_u32(h + 12);
  header_.first_train_frame = get_u64(h + 16);
  if (header_.version != kStreamVersion) {
    fail("stream format version " + std::to_string(header_.version) + ", but this sdt-native reads version " +
         std::to_string(kStreamVersion));
  }
  if (header_.flags != 0) fail("unknown header flags " + std::to_string(header_.flags));
}

StreamReader::~StreamReader() {
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
}

void StreamReader::fail(const std::string& what) const {
  throw StreamError(path_ + ": " + what + " at frame " + std::to_string(frames_) + ", byte offset " +
                    std::to_string(offset_) + "." + kWhatToRun);
}

size_t StreamReader::read_fully(void* dst, size_t n, bool interruptible) {
  auto* p = static_cast<uint8_t*>(dst);
  size_t got = 0;
  while (got < n) {
    if (interruptible && got == 0 && stop_ != nullptr) {
      // Between frames, wait in short slices so a stop request (SIGINT/SIGTERM, whichever thread
      // the signal landed on) is noticed even while the feeder sends nothing.
      pollfd pfd{fd_, POLLIN, 0};
      const int ready = ::poll(&pfd, 1, 200);
      if (stop_->load()) {
        interrupted_ = true;
        return 0;
      }
      if (ready <= 0) continue;
    }
    const ssize_t r = ::read(fd_, p + got, n - got);
    if (r < 0) {
      // Inside a frame keep reading after a signal: the trainer finishes the step it is on.
      if (errno == EINTR) continue;
      throw StreamError(path_ + ": read failed (" + std::strerror(errno) + ")");
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  offset_ += got;
  return got;
}

bool StreamReader::next(StreamFrame& frame, bool interruptible) {
  interrupted_ = false;
  uint8_t fh[kFrameHeaderBytes];
  const size_t got = read_fully(fh, sizeof fh, interruptible);
  if (got == 0) return false;
  if (got < sizeof fh) fail("truncated frame header (" + std::to_string(got) + " of 12 bytes)");
  const uint32_t kind = get_u32(fh);
  const uint32_t len = get_u32(fh + 4);
  const uint32_t crc_expected = get_u32(fh + 8);
  if (kind < 1 || kind > 4) fail("unknown frame kind " + std::to_string(kind) + " (corrupt stream?)");
  if (len > kMaxFramePayload) fail("frame length " + std::to_string(len) + " exceeds 1 GiB (corrupt stream?)");
  payload_.resize(len);
  const size_t pgot = read_fully(payload_.data(), len);
  if (pgot < len) {
    fail("truncated frame: payload has " + std::to_string(pgot) + " of " + std::to_string(len) + " bytes");
  }
  uint32_t crc = crc32(fh, 8);
  crc = crc32(payload_.data(), len, crc);
  if (crc != crc_expected) fail("CRC-32 mismatch (corrupt stream)");

  frame.kind = static_cast<FrameKind>(kind);
  StreamBatch& b = frame.batch;
  b = StreamBatch{};
  if (frame.kind == FrameKind::Checkpoint || frame.kind == FrameKind::End) {
    if (len != 0) fail(std::string("a ") + frame_kind_name(frame.kind) + " frame must have an empty payload");
    ++frames_;
    return true;
  }
  const std::string problem = decode_batch_payload(payload_.data(), len, b);
  if (!problem.empty()) fail(problem);
  ++frames_;
  return true;
}

StreamWriter::StreamWriter(const std::string& path, const StreamHeader& h) : path_(path) {
  f_ = path == "-" ? stdout : std::fopen(path.c_str(), "wb");
  if (f_ == nullptr) throw StreamError(path + ": cannot create the stream file");
  put(encode_stream_header(h));
}

StreamWriter::~StreamWriter() {
  if (f_ != nullptr && f_ != stdout) std::fclose(f_);
}

void StreamWriter::put(const std::vector<uint8_t>& bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), f_) != bytes.size()) throw StreamError(path_ + ": write failed");
}

void StreamWriter::write_batch(FrameKind kind, const StreamBatch& b) { put(encode_batch_frame(kind, b)); }
void StreamWriter::write_control(FrameKind kind) { put(encode_control_frame(kind)); }

void StreamWriter::close() {
  if (f_ == nullptr) return;
  const bool ok = f_ == stdout ? std::fflush(f_) == 0 : std::fclose(f_) == 0;
  f_ = nullptr;
  if (!ok) throw StreamError(path_ + ": write failed on close");
}

}  // namespace sdt::io
