// The JSON-line protocol of `sdt-native serve` / `generate` (documented in docs/sample.md).
// One request per line in, one response per line out, matched by "id".
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "io/json.h"
#include "sampler/decode.h"

namespace sdt::sampler {

struct Request {
  io::Json id;  // echoed as given (string or number); null when absent
  std::vector<std::vector<int32_t>> prompts;
  SamplerSettings settings;
  bool stream = false;  // emit {"id","event":"step",...} lines while decoding
};

// Throws std::invalid_argument naming the field at fault (unknown fields included) or the value
// that is out of range; `context` is the model's max_position_embeddings.
Request parse_request(const io::Json& line, const ModelConfig& config);

// {"id", "ok": true, "results": [...], "timings": {...}}.
io::Json response_json(const Request& req, const std::vector<Generation>& results, double total_ms);
// {"id", "ok": false, "error": message}.
io::Json error_json(const io::Json& id, const std::string& message);
// The first line serve prints: what the client needs to know about the loaded checkpoint.
io::Json ready_json(const ModelConfig& config, const std::string& source);

// {"id", "event": "step", "sequence", "block", "step", "kind", "positions", "tokens", "confidences"}.
io::Json step_json(const io::Json& id, size_t sequence, const TrajectoryStep& step);

// Handles one line of input: parse, decode, respond. Never throws for bad input; the returned
// line is always one JSON object. With "stream": true each step is first passed to `emit_line`
// as a step event line (when emit_line is set).
std::string handle_line(const LanguageModel& model, const std::string& line,
                        const std::function<void(const std::string&)>& emit_line = nullptr);

}  // namespace sdt::sampler
