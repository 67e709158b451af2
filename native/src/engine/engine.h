// `sdt-native serve`: one process per loaded checkpoint answering generate, score, loss and logits
// requests (schemas/engine.md). Requests, results and events are JSON lines; the batch of a score,
// loss or logits request and the tensors of their results are binary messages framed as the trainer
// stream is (magic, version, kind, length, CRC-32). Bad input gets a named error and serving goes on.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "io/json.h"

namespace sdt::engine {

// The longest request line the engine reads; a longer one is answered with bad_request and skipped.
constexpr size_t kMaxRequestLineBytes = size_t(4) << 20;

// The error codes a response's "code" field takes (schemas/engine.md).
constexpr const char* kBadJson = "bad_json";          // the line is not JSON
constexpr const char* kBadRequest = "bad_request";    // unknown field, bad value, unknown op
constexpr const char* kDevice = "device";             // a device this engine does not run on
constexpr const char* kBadFrame = "bad_frame";        // magic, version, kind, length, CRC or shape
constexpr const char* kMissingFrame = "missing_frame";  // a batch op not followed by its frame
constexpr const char* kStrayFrame = "stray_frame";    // a frame no request line announced
constexpr const char* kBadBatch = "bad_batch";        // a batch the model rejects (an id out of range)
constexpr const char* kCancelled = "cancelled";       // a generate request whose every prompt was cancelled

// How far the engine reads ahead while it decodes, looking for cancel lines; input beyond waits.
constexpr size_t kLookaheadBytes = size_t(8) << 20;

// The fields of score, loss and logits requests (generate's are parse_request's, sampler/protocol.h).
const std::vector<std::string>& batch_request_fields();
// The fields of a cancel message.
const std::vector<std::string>& cancel_fields();

// Serves requests read from `in_fd` until its end, writing to `out`; `source` names the model in the
// ready line. Returns the process exit code (0).
int serve(const Backend& backend, const std::string& source, int in_fd, std::FILE* out);

}  // namespace sdt::engine
