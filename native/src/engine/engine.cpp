#include "engine/engine.h"

#include <omp.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <string_view>

#include "io/binary.h"
#include "io/stream.h"
#include "sampler/protocol.h"
#include "score/score.h"

namespace sdt::engine {

using io::Json;

namespace {

// Buffered reads of stdin that can look ahead: a request line may be followed by a binary message.
class Input {
 public:
  explicit Input(int fd) : fd_(fd) {}

  // The byte `k` places ahead, or -1 when input ends before it.
  int peek(size_t k = 0) {
    while (buf_.size() - pos_ <= k) {
      if (!fill()) return -1;
    }
    return buf_[pos_ + k];
  }

  void skip_blank() {
    for (int c = peek(); c == ' ' || c == '\n' || c == '\r' || c == '\t'; c = peek()) ++pos_;
  }

  // Looks no further than the first byte unless it can start the magic, so a JSON line that comes
  // next is seen without waiting for more input.
  bool at_magic() {
    if (peek() != static_cast<uint8_t>(io::kStreamMagic[0])) return false;
    for (size_t i = 1; i < 8; ++i) {
      if (peek(i) != static_cast<uint8_t>(io::kStreamMagic[i])) return false;
    }
    return true;
  }

  // Up to the next newline (consumed, not returned) or the end of input. A line longer than max_bytes is
  // consumed but not kept (*too_long is set), so one oversized request cannot grow the process unboundedly.
  std::string line(size_t max_bytes, bool* too_long) {
    std::string s;
    *too_long = false;
    for (;;) {
      if (pos_ == buf_.size() && !fill()) return s;
      const auto* start = buf_.data() + pos_;
      const auto* nl = static_cast<const uint8_t*>(std::memchr(start, '\n', buf_.size() - pos_));
      const size_t n = nl ? static_cast<size_t>(nl - start) : buf_.size() - pos_;
      if (!*too_long && s.size() + n > max_bytes) {
        *too_long = true;
        std::string().swap(s);
      }
      if (!*too_long) s.append(reinterpret_cast<const char*>(start), n);
      pos_ += n;
      if (nl) {
        ++pos_;
        return s;
      }
    }
  }

  // Reads what has already arrived, without waiting, while less than kLookaheadBytes are unread.
  void read_available() {
    if (buf_.size() - pos_ >= kLookaheadBytes) return;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0) fill();
  }

  // Finds the first complete line ahead of the reading position that is a cancel message, takes it out
  // of the input and returns it in *line; the messages before it stay where they are. Stops (false) at
  // the first message that has not fully arrived.
  bool take_cancel_line(std::string* line) {
    size_t p = std::max(scan_, pos_);
    for (;;) {
      while (p < buf_.size() && (buf_[p] == ' ' || buf_[p] == '\n' || buf_[p] == '\r' || buf_[p] == '\t')) ++p;
      scan_ = p;
      if (p == buf_.size()) return false;
      const size_t have = buf_.size() - p;
      const size_t magic = std::min<size_t>(have, 8);
      if (std::memcmp(buf_.data() + p, io::kStreamMagic, magic) == 0) {
        // A binary message (or the start of one): skipped whole once its header and payload are here.
        if (have < io::kStreamHeaderBytes + io::kFrameHeaderBytes) return false;
        const size_t len = io::kStreamHeaderBytes + io::kFrameHeaderBytes + io::get_u32(buf_.data() + p + 28);
        if (have < len) return false;
        p += len;
        continue;
      }
      const auto* start = buf_.data() + p;
      const auto* nl = static_cast<const uint8_t*>(std::memchr(start, '\n', have));
      if (nl == nullptr) return false;
      const size_t n = static_cast<size_t>(nl - start);
      const std::string_view text(reinterpret_cast<const char*>(start), n);
      if (text.find("cancel") != std::string_view::npos && is_cancel(text)) {
        line->assign(text);
        buf_.erase(buf_.begin() + static_cast<std::ptrdiff_t>(p), buf_.begin() + static_cast<std::ptrdiff_t>(p + n + 1));
        return true;
      }
      p += n + 1;
    }
  }

  // Copies up to n bytes; fewer only at the end of input.
  size_t read(uint8_t* dst, size_t n) {
    size_t got = 0;
    while (got < n) {
      if (pos_ == buf_.size() && !fill()) break;
      const size_t k = std::min(n - got, buf_.size() - pos_);
      std::memcpy(dst + got, buf_.data() + pos_, k);
      pos_ += k;
      got += k;
    }
    return got;
  }

 private:
  static bool is_cancel(std::string_view text) {
    try {
      const Json j = Json::parse(std::string(text));
      const Json* op = j.is_object() ? j.get("op") : nullptr;
      return op != nullptr && op->is_string() && op->as_string() == "cancel";
    } catch (const std::exception&) {
      return false;
    }
  }

  bool fill() {
    if (pos_ > 0) {
      buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
      scan_ = scan_ > pos_ ? scan_ - pos_ : 0;
      pos_ = 0;
    }
    const size_t at = buf_.size();
    buf_.resize(at + (1u << 16));
    ssize_t r;
    do {
      r = ::read(fd_, buf_.data() + at, 1u << 16);
    } while (r < 0 && errno == EINTR);
    buf_.resize(at + static_cast<size_t>(r > 0 ? r : 0));
    return r > 0;
  }

  int fd_;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;
  size_t scan_ = 0;  // take_cancel_line has looked at the complete messages before this offset
};

class RequestError : public std::runtime_error {
 public:
  RequestError(const char* c, const std::string& message) : std::runtime_error(message), code(c) {}
  const char* code;
};

// Reads one binary message (stream header, then one frame) whose magic is next in `in`. Returns ""
// and fills `b`, or what is wrong; a damaged message is consumed as far as its length says.
std::string read_batch_message(Input& in, io::StreamBatch& b) {
  uint8_t h[io::kStreamHeaderBytes + io::kFrameHeaderBytes];
  const size_t got = in.read(h, sizeof h);
  if (got < sizeof h) return "truncated binary message (" + std::to_string(got) + " of 36 header bytes)";
  const uint32_t version = io::get_u32(h + 8);
  const uint32_t flags = io::get_u32(h + 12);
  const uint64_t first = io::get_u64(h + 16);
  const uint32_t kind = io::get_u32(h + 24);
  const uint32_t len = io::get_u32(h + 28);
  const uint32_t crc_expected = io::get_u32(h + 32);
  if (len > io::kMaxFramePayload) return "frame length " + std::to_string(len) + " exceeds 1 GiB";
  std::vector<uint8_t> payload(len);
  const size_t pgot = in.read(payload.data(), len);
  if (pgot < len) return "truncated frame: payload has " + std::to_string(pgot) + " of " + std::to_string(len) + " bytes";
  if (version != io::kStreamVersion) {
    return "frame version " + std::to_string(version) + ", but this sdt-native reads version " +
           std::to_string(io::kStreamVersion) + "; use a client from the same checkout (npm run build:native)";
  }
  if (flags != 0 || first != 0) return "the header's flags and first_train_frame must be 0 in an engine message";
  uint32_t crc = io::crc32(h + io::kStreamHeaderBytes, 8);
  crc = io::crc32(payload.data(), len, crc);
  if (crc != crc_expected) return "CRC-32 mismatch (the batch was damaged on the way)";
  if (kind != static_cast<uint32_t>(io::FrameKind::Request)) {
    return "frame kind " + std::to_string(kind) + " where a request batch (kind 5) was expected";
  }
  return io::decode_batch_payload(payload.data(), len, b);
}

std::vector<uint8_t> tensor_message(const std::vector<uint32_t>& dims, const float* data) {
  size_t n = 1;
  for (uint32_t d : dims) n *= d;
  std::vector<uint8_t> payload;
  io::put_u32(payload, 1);  // dtype: float32
  io::put_u32(payload, static_cast<uint32_t>(dims.size()));
  for (uint32_t d : dims) io::put_u32(payload, d);
  io::put_bytes(payload, data, n * 4);
  std::vector<uint8_t> out = io::encode_stream_header({});
  const std::vector<uint8_t> f = io::encode_frame(io::FrameKind::Tensor, payload);
  out.insert(out.end(), f.begin(), f.end());
  return out;
}

struct BatchRequest {
  Json id;
  std::string op;
  AttentionMode mode;
  int threads = -1;  // OpenMP threads for this request; 0: every processor; -1: the engine's own
};

// Sets the OpenMP team size for one request and restores it: the CE sums are reduced across threads, so a
// batch op asked to run like the one-shot commands (every processor) gives their numbers exactly.
class ThreadScope {
 public:
  explicit ThreadScope(int threads) : saved_(omp_get_max_threads()) {
    if (threads >= 0) omp_set_num_threads(threads == 0 ? omp_get_num_procs() : threads);
  }
  ~ThreadScope() { omp_set_num_threads(saved_); }
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int saved_;
};

void check_device(const Json& v, Device running) {
  if (!v.is_string()) throw RequestError(kBadRequest, "field \"device\" must be \"cpu\" or \"cuda\"");
  Device want;
  try {
    want = parse_device(v.as_string());
  } catch (const std::invalid_argument&) {
    throw RequestError(kBadRequest, "field \"device\" must be \"cpu\" or \"cuda\", got \"" + v.as_string() + "\"");
  }
  if (want == running) return;
  std::string why = device_problem(want);
  if (why.empty()) why = "start another engine with --device " + std::string(device_name(want));
  throw RequestError(kDevice, std::string("this engine runs on ") + device_name(running) + "; " + why);
}

BatchRequest parse_batch_request(const Json& j, const std::string& op, const Backend& backend) {
  BatchRequest r;
  r.op = op;
  r.mode = backend.config().attention_mode;
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string& k = j.key(i);
    const Json& v = j.at(i);
    if (k == "id") {
      if (!v.is_string() && !v.is_number()) throw RequestError(kBadRequest, "field \"id\" must be a string or a number");
      r.id = v;
    } else if (k == "op") {
      continue;
    } else if (k == "attention") {
      if (!v.is_string() || !parse_attention_mode(v.as_string(), &r.mode))
        throw RequestError(kBadRequest, "field \"attention\" must be \"bidirectional\", \"causal\" or \"block\"");
    } else if (k == "device") {
      check_device(v, backend.device());
    } else if (k == "threads") {
      int64_t n = -1;
      try {
        n = v.as_int();
      } catch (const io::JsonError&) {
      }
      if (n < 0 || n > 4096) throw RequestError(kBadRequest, "field \"threads\" must be an integer in [0, 4096]");
      r.threads = static_cast<int>(n);
    } else {
      std::string known;
      for (const std::string& f : batch_request_fields()) known += (known.empty() ? "" : ", ") + f;
      throw RequestError(kBadRequest, "unknown field \"" + k + "\" for op \"" + op + "\" (known: " + known + ")");
    }
  }
  return r;
}

struct CancelRequest {
  Json id;
  Json request;                 // the generate request's id
  std::vector<size_t> sequences;  // empty: all of its prompts
};

CancelRequest parse_cancel(const Json& j) {
  CancelRequest c;
  bool have_request = false;
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string& k = j.key(i);
    const Json& v = j.at(i);
    if (k == "id" || k == "request") {
      if (!v.is_string() && !v.is_number())
        throw RequestError(kBadRequest, "field \"" + k + "\" must be a string or a number");
      (k == "id" ? c.id : c.request) = v;
      have_request = have_request || k == "request";
    } else if (k == "op") {
      continue;
    } else if (k == "sequences") {
      if (!v.is_array() || v.size() == 0)
        throw RequestError(kBadRequest, "field \"sequences\" must be a non-empty array of prompt indices");
      for (size_t s = 0; s < v.size(); ++s) {
        int64_t x = -1;
        try {
          x = v.at(s).as_int();
        } catch (const io::JsonError&) {
        }
        if (x < 0 || x > (int64_t(1) << 30))
          throw RequestError(kBadRequest, "field \"sequences\" must hold integers in [0, 2^30] (prompt indices)");
        c.sequences.push_back(static_cast<size_t>(x));
      }
    } else {
      std::string known;
      for (const std::string& f : cancel_fields()) known += (known.empty() ? "" : ", ") + f;
      throw RequestError(kBadRequest, "unknown field \"" + k + "\" for op \"cancel\" (known: " + known + ")");
    }
  }
  if (!have_request) throw RequestError(kBadRequest, "op \"cancel\" needs field \"request\": the id of a generate request");
  return c;
}

double target_weight_sum(const io::StreamBatch& b) {
  double s = 0.0;
  for (size_t i = 0; i < b.weights.size(); ++i) s += b.target_ids[i] >= 0 ? b.weights[i] : 0.0f;
  return s;
}

class Server {
 public:
  Server(const Backend& backend, int fd, std::FILE* out) : backend_(backend), in_(fd), out_(out) {}

  void run(const std::string& source) {
    Json ready = sampler::ready_json(backend_.config(), source);
    ready.set("device", device_name(backend_.device()));
    ready.set("engine_version", static_cast<int>(io::kStreamVersion));
    // Whether prompts of any length share a lockstep group under aligned blocks (docs/sample.md, Batching).
    ready.set("mixed_length_groups", backend_.ragged_chunks());
    write_line(ready.dump());
    for (;;) {
      in_.skip_blank();
      if (in_.peek() < 0) return;
      if (in_.at_magic()) {
        io::StreamBatch ignored;
        const std::string problem = read_batch_message(in_, ignored);
        error(Json(), kStrayFrame,
              "a binary message with no request line before it" + (problem.empty() ? "" : " (" + problem + ")") +
                  "; send {\"op\":\"score\"|\"loss\"|\"logits\",...} first");
        continue;
      }
      bool too_long = false;
      std::string line = in_.line(kMaxRequestLineBytes, &too_long);
      if (too_long) {
        error(Json(), kBadRequest,
              "request line longer than " + std::to_string(kMaxRequestLineBytes >> 20) +
                  " MiB (the engine's limit); split the batch, or send score/loss/logits rows as a binary frame");
        continue;
      }
      handle(line);
    }
  }

 private:
  void write_line(const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), out_);
    std::fputc('\n', out_);
    std::fflush(out_);
  }

  void write_bytes(const std::vector<uint8_t>& bytes) {
    std::fwrite(bytes.data(), 1, bytes.size(), out_);
    std::fflush(out_);
  }

  void error(const Json& id, const char* code, const std::string& message) {
    Json e = sampler::error_json(id, message);
    e.set("code", code);
    write_line(e.dump());
  }

  // A failed score/loss/logits request still owns the binary message that follows its line: the error
  // goes out first, then the message is consumed (waiting for it is waiting for the next input anyway).
  void fail_request(const Json& id, const char* code, const std::string& message, bool owns_frame) {
    error(id, code, message);
    if (owns_frame && in_.at_magic()) {
      io::StreamBatch ignored;
      read_batch_message(in_, ignored);
    }
  }

  void handle(const std::string& line) {
    Json j;
    try {
      j = Json::parse(line);
    } catch (const std::exception& e) {
      error(Json(), kBadJson, std::string("malformed JSON: ") + e.what());
      return;
    }
    Json id;
    if (j.is_object() && j.get("id") != nullptr) id = *j.get("id");
    std::string op = "generate";
    bool frame_follows = false;
    try {
      if (!j.is_object()) throw RequestError(kBadRequest, "a request must be a JSON object");
      if (const Json* o = j.get("op")) {
        if (!o->is_string()) throw RequestError(kBadRequest, "field \"op\" must be a string");
        op = o->as_string();
      }
      if (op == "generate") {
        if (const Json* d = j.get("device")) check_device(*d, backend_.device());
        generate(j);
      } else if (op == "cancel") {
        cancel(j);
      } else if (op == "score" || op == "loss" || op == "logits") {
        frame_follows = true;
        const BatchRequest r = parse_batch_request(j, op, backend_);
        // A missing frame shows when the next message begins (or input ends) and is not one.
        if (!in_.at_magic()) {
          frame_follows = false;
          throw RequestError(kMissingFrame, "op \"" + op +
                                                "\" needs its batch as a binary message right after the request line "
                                                "(schemas/engine.md); none came");
        }
        frame_follows = false;
        io::StreamBatch b;
        const std::string problem = read_batch_message(in_, b);
        if (!problem.empty()) throw RequestError(kBadFrame, problem);
        run_batch(r, b);
      } else {
        throw RequestError(kBadRequest, "unknown op \"" + op + "\" (known: generate, cancel, score, loss, logits)");
      }
    } catch (const RequestError& e) {
      fail_request(id, e.code, e.what(), frame_follows);
    } catch (const std::invalid_argument& e) {
      fail_request(id, op == "generate" ? kBadRequest : kBadBatch, e.what(), frame_follows);
    } catch (const std::exception& e) {
      fail_request(id, kBadRequest, e.what(), frame_follows);
    }
  }

  // Applies a cancel message: to the request decoding now when it names that one; read ahead while
  // another decodes, it is kept for a request still waiting in the input; otherwise its request has
  // been answered (or was never sent) and it changes nothing. Answered at once either way.
  void cancel(const Json& j) {
    const CancelRequest c = parse_cancel(j);
    const std::string target = c.request.dump();
    const bool decoding = decoding_.on && target == decoding_.id;
    if (decoding) {
      std::vector<uint8_t>& flags = decoding_.cancelled;
      for (size_t s : c.sequences) {
        if (s >= flags.size())
          throw RequestError(kBadRequest, "sequence " + std::to_string(s) + " is out of range: request " + target +
                                              " has " + std::to_string(flags.size()) + " prompts");
      }
      if (c.sequences.empty()) std::fill(flags.begin(), flags.end(), 1);
      for (size_t s : c.sequences) flags[s] = 1;
    } else if (decoding_.on) {
      kept_cancels_.push_back({target, c.sequences});
      if (kept_cancels_.size() > kMaxKeptCancels) kept_cancels_.pop_front();
    }
    Json out = Json::object();
    out.set("id", c.id).set("ok", true).set("op", "cancel").set("request", c.request).set("decoding", decoding);
    write_line(out.dump());
  }

  void generate(const Json& j) {
    const auto t0 = std::chrono::steady_clock::now();
    const sampler::Request req = sampler::parse_request(j, backend_.config());
    sampler::StepObserver observer;
    if (req.stream) {
      observer = [&](size_t sequence, const sampler::TrajectoryStep& t) {
        write_line(sampler::step_json(req.id, sequence, t).dump());
      };
    }
    decoding_.on = true;
    decoding_.id = req.id.dump();
    decoding_.cancelled.assign(req.prompts.size(), 0);
    for (auto it = kept_cancels_.begin(); it != kept_cancels_.end();) {
      if (it->request != decoding_.id) {
        ++it;
        continue;
      }
      if (it->sequences.empty()) std::fill(decoding_.cancelled.begin(), decoding_.cancelled.end(), 1);
      for (size_t s : it->sequences)
        if (s < decoding_.cancelled.size()) decoding_.cancelled[s] = 1;
      it = kept_cancels_.erase(it);
    }
    // Between model calls: cancel lines that have arrived are taken out of the input and applied.
    const sampler::CancelPoll poll = [&](std::vector<uint8_t>& cancelled) {
      in_.read_available();
      std::string line;
      while (in_.take_cancel_line(&line)) handle(line);
      for (size_t i = 0; i < cancelled.size(); ++i) cancelled[i] |= decoding_.cancelled[i];
    };
    std::vector<sampler::Generation> results;
    try {
      results = sampler::generate_batch(backend_, req.prompts, req.settings, observer, poll);
    } catch (...) {
      decoding_.on = false;
      throw;
    }
    decoding_.on = false;
    if (std::all_of(decoding_.cancelled.begin(), decoding_.cancelled.end(), [](uint8_t c) { return c != 0; })) {
      error(req.id, kCancelled, "request " + decoding_.id + " was cancelled (op \"cancel\") before it finished");
      return;
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    write_line(sampler::response_json(req, results, ms).dump());
  }

  void run_batch(const BatchRequest& r, const io::StreamBatch& b) {
    const ThreadScope threads(r.threads);
    const int32_t* seg = b.segment_ids.empty() ? nullptr : b.segment_ids.data();
    Json out = Json::object();
    out.set("id", r.id).set("ok", true).set("op", r.op).set("rows", b.B).set("T", b.T);
    out.set("attention", attention_mode_name(r.mode));
    if (r.op == "score") {
      // 16 rows per model call, as `sdt-native score` runs them, so both give the same numbers.
      const score::StepScores s =
          score::score_steps(backend_, b.input_ids.data(), b.target_ids.data(), seg, b.B, b.T, r.mode, 16);
      std::vector<float> logp(static_cast<size_t>(b.B));
      double total = 0.0;
      int64_t scored = 0;
      for (size_t i = 0; i < logp.size(); ++i) {
        logp[i] = static_cast<float>(s.logprob[i]);
        total += s.logprob[i];
        scored += s.counts[i];
      }
      out.set("targets", scored).set("total_logprob", total).set("frames", 1);
      write_line(out.dump());
      write_bytes(tensor_message({static_cast<uint32_t>(b.B)}, logp.data()));
    } else if (r.op == "loss") {
      Batch mb;
      mb.B = b.B;
      mb.T = b.T;
      mb.input_ids = b.input_ids.data();
      mb.target_ids = b.target_ids.data();
      mb.weights = b.weights.data();
      mb.segment_ids = seg;
      mb.mode = r.mode;
      const double norm = target_weight_sum(b);
      const LossStats st = backend_.forward_loss(mb, norm > 0 ? norm : 1.0, nullptr);
      out.set("loss", st.loss).set("weight_sum", st.weight_sum).set("targets", st.targets);
      write_line(out.dump());
    } else {
      const int V = backend_.config().vocab_size;
      std::vector<float> logits(static_cast<size_t>(b.B) * static_cast<size_t>(b.T) * static_cast<size_t>(V));
      backend_.forward_batch_logits(b.input_ids.data(), b.B, b.T, r.mode, seg, logits.data());
      out.set("vocab_size", V).set("frames", 1);
      write_line(out.dump());
      write_bytes(tensor_message({static_cast<uint32_t>(b.B), static_cast<uint32_t>(b.T), static_cast<uint32_t>(V)},
                                 logits.data()));
    }
  }

  const Backend& backend_;
  Input in_;
  std::FILE* out_;
  struct Decoding {
    bool on = false;
    std::string id;                  // the generate request's "id" as JSON text
    std::vector<uint8_t> cancelled;  // per prompt
  } decoding_;
  struct KeptCancel {
    std::string request;
    std::vector<size_t> sequences;
  };
  // Bounded: a cancel read ahead for a request that has already been answered is never claimed.
  static constexpr size_t kMaxKeptCancels = 1024;
  std::deque<KeptCancel> kept_cancels_;
};

}  // namespace

const std::vector<std::string>& batch_request_fields() {
  static const std::vector<std::string> fields = {"id", "op", "attention", "device", "threads"};
  return fields;
}

const std::vector<std::string>& cancel_fields() {
  static const std::vector<std::string> fields = {"id", "op", "request", "sequences"};
  return fields;
}

int serve(const Backend& backend, const std::string& source, int in_fd, std::FILE* out) {
  Server(backend, in_fd, out).run(source);
  return 0;
}

}  // namespace sdt::engine
