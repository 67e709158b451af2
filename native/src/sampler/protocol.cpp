#include "sampler/protocol.h"

#include <chrono>
#include <cmath>
#include <stdexcept>

namespace sdt::sampler {

using io::Json;

namespace {

int as_int_field(const Json& v, const std::string& name, int64_t lo, int64_t hi) {
  int64_t x = 0;
  try {
    x = v.as_int();
  } catch (const io::JsonError&) {
    throw std::invalid_argument("field \"" + name + "\" must be an integer");
  }
  if (x < lo || x > hi)
    throw std::invalid_argument("field \"" + name + "\" must be in [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "], got " + std::to_string(x));
  return static_cast<int>(x);
}

float as_float_field(const Json& v, const std::string& name) {
  if (!v.is_number()) throw std::invalid_argument("field \"" + name + "\" must be a number");
  const double x = v.as_number();
  if (!std::isfinite(x)) throw std::invalid_argument("field \"" + name + "\" must be finite");
  return static_cast<float>(x);
}

bool as_bool_field(const Json& v, const std::string& name) {
  if (!v.is_bool()) throw std::invalid_argument("field \"" + name + "\" must be true or false");
  return v.as_bool();
}

std::vector<int32_t> as_tokens(const Json& v, const std::string& name, const ModelConfig& c) {
  if (!v.is_array()) throw std::invalid_argument("field \"" + name + "\" must be an array of token ids");
  std::vector<int32_t> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    out.push_back(as_int_field(v.at(i), name + "[" + std::to_string(i) + "]", 0, c.vocab_size - 1));
  }
  if (static_cast<int>(out.size()) >= c.max_position_embeddings)
    throw std::invalid_argument("field \"" + name + "\" has " + std::to_string(out.size()) +
                                " tokens but the context holds " + std::to_string(c.max_position_embeddings) +
                                "; shorten the prompt");
  return out;
}

Json int_array(const std::vector<int32_t>& v) {
  Json a = Json::array();
  for (int32_t x : v) a.push(Json(static_cast<int>(x)));
  return a;
}

Json float_array(const std::vector<float>& v) {
  Json a = Json::array();
  for (float x : v) a.push(Json(x));
  return a;
}

const char* step_kind_name(TrajectoryStep::Kind k) {
  switch (k) {
    case TrajectoryStep::Commit: return "commit";
    case TrajectoryStep::Remask: return "remask";
    case TrajectoryStep::Revise: return "revise";
  }
  return "?";
}

}  // namespace

Request parse_request(const Json& line, const ModelConfig& c) {
  if (!line.is_object()) throw std::invalid_argument("a request must be a JSON object");
  Request r;
  SamplerSettings& s = r.settings;
  bool have_prompt = false;
  const int big = 1 << 30;
  for (size_t i = 0; i < line.size(); ++i) {
    const std::string& k = line.key(i);
    const Json& v = line.at(i);
    if (k == "id") {
      if (!v.is_string() && !v.is_number()) throw std::invalid_argument("field \"id\" must be a string or a number");
      r.id = v;
    } else if (k == "prompt") {
      if (have_prompt) throw std::invalid_argument("give either \"prompt\" or \"prompts\", not both");
      r.prompts.push_back(as_tokens(v, k, c));
      have_prompt = true;
    } else if (k == "prompts") {
      if (have_prompt) throw std::invalid_argument("give either \"prompt\" or \"prompts\", not both");
      if (!v.is_array() || v.size() == 0)
        throw std::invalid_argument("field \"prompts\" must be a non-empty array of token-id arrays");
      for (size_t j = 0; j < v.size(); ++j) r.prompts.push_back(as_tokens(v.at(j), "prompts[" + std::to_string(j) + "]", c));
      have_prompt = true;
    } else if (k == "mode") {
      if (!v.is_string() || !parse_decode_mode(v.as_string(), &s.mode))
        throw std::invalid_argument("field \"mode\" must be \"diffusion\" or \"ar\"");
    } else if (k == "rule") {
      if (!v.is_string() || !parse_commit_rule(v.as_string(), &s.rule))
        throw std::invalid_argument("field \"rule\" must be \"threshold\", \"fixed\" or \"remask\"");
    } else if (k == "order") {
      if (!v.is_string() || !parse_commit_order(v.as_string(), &s.order))
        throw std::invalid_argument(
            "field \"order\" must be \"confidence\", \"margin\", \"entropy\", \"random\" or \"left-to-right\"");
    } else if (k == "max_new") {
      s.max_new = as_int_field(v, k, 0, big);
    } else if (k == "block") {
      s.block_size = as_int_field(v, k, 1, big);
    } else if (k == "threshold") {
      s.threshold = as_float_field(v, k);
    } else if (k == "max_per_step") {
      s.max_per_step = as_int_field(v, k, 0, big);
    } else if (k == "error_budget") {
      s.error_budget = as_float_field(v, k);
    } else if (k == "tokens_per_step") {
      s.tokens_per_step = as_int_field(v, k, 1, big);
    } else if (k == "steps_per_block") {
      s.steps_per_block = as_int_field(v, k, 0, big);
    } else if (k == "temperature") {
      s.temperature = as_float_field(v, k);
    } else if (k == "top_p") {
      s.top_p = as_float_field(v, k);
    } else if (k == "seed") {
      if (!v.is_number() || v.as_number() < 0 || v.as_number() > 9007199254740991.0 ||
          std::floor(v.as_number()) != v.as_number())
        throw std::invalid_argument("field \"seed\" must be a non-negative integer below 2^53");
      s.seed = static_cast<uint64_t>(v.as_number());
    } else if (k == "refresh_every") {
      s.refresh_every = as_int_field(v, k, 0, big);
    } else if (k == "align_blocks") {
      s.align_blocks = as_bool_field(v, k);
    } else if (k == "revise_passes") {
      s.revise_passes = as_int_field(v, k, 0, big);
    } else if (k == "revise_threshold") {
      s.revise_threshold = as_float_field(v, k);
    } else if (k == "trajectory") {
      s.record_trajectory = as_bool_field(v, k);
    } else if (k == "stream") {
      r.stream = as_bool_field(v, k);
    } else if (k == "eos") {
      s.eos_id = as_int_field(v, k, -2, c.vocab_size - 1);
    } else if (k == "op") {
      if (!v.is_string() || v.as_string() != "generate") throw std::invalid_argument("field \"op\" must be \"generate\" here");
    } else if (k == "device") {
      if (!v.is_string() || (v.as_string() != "cpu" && v.as_string() != "cuda"))
        throw std::invalid_argument("field \"device\" must be \"cpu\" or \"cuda\"");
    } else {
      throw std::invalid_argument("unknown field \"" + k +
                                  "\" (known: id, prompt, prompts, mode, rule, order, max_new, block, threshold, "
                                  "max_per_step, error_budget, tokens_per_step, steps_per_block, temperature, top_p, seed, "
                                  "refresh_every, align_blocks, revise_passes, revise_threshold, trajectory, stream, eos, op, device)");
    }
  }
  if (!have_prompt) throw std::invalid_argument("missing field \"prompt\" (token ids) or \"prompts\"");
  const std::string problem = validate_settings(s, c);
  if (!problem.empty()) throw std::invalid_argument(problem);
  return r;
}

Json response_json(const Request& req, const std::vector<Generation>& results, double total_ms) {
  Json out = Json::object();
  out.set("id", req.id);
  out.set("ok", true);
  Json list = Json::array();
  for (const Generation& g : results) {
    Json r = Json::object();
    r.set("tokens", int_array(g.tokens));
    r.set("eos", g.hit_eos);
    r.set("context_clipped", g.context_clipped);
    r.set("steps", g.steps);
    r.set("forward_passes", g.forward_passes);
    r.set("group", g.group).set("group_forward_passes", g.group_forward_passes);
    r.set("cancelled", g.cancelled);
    Json blocks = Json::array();
    for (const BlockStats& b : g.blocks) {
      Json bj = Json::object();
      bj.set("start", b.start).set("size", b.size).set("steps", b.steps);
      bj.set("forward_passes", b.forward_passes).set("revised", b.revised);
      blocks.push(std::move(bj));
    }
    r.set("blocks", std::move(blocks));
    if (req.settings.record_trajectory) {
      Json traj = Json::array();
      for (const TrajectoryStep& t : g.trajectory) {
        Json tj = Json::object();
        tj.set("block", t.block).set("step", t.step).set("kind", step_kind_name(t.kind));
        tj.set("positions", int_array(t.positions)).set("tokens", int_array(t.tokens));
        tj.set("confidences", float_array(t.confidences));
        traj.push(std::move(tj));
      }
      r.set("trajectory", std::move(traj));
    }
    Json timings = Json::object();
    timings.set("prefill_ms", g.prefill_ms).set("decode_ms", g.decode_ms);
    r.set("timings", std::move(timings));
    list.push(std::move(r));
  }
  out.set("results", std::move(list));
  Json timings = Json::object();
  timings.set("total_ms", total_ms);
  out.set("timings", std::move(timings));
  return out;
}

Json step_json(const Json& id, size_t sequence, const TrajectoryStep& t) {
  Json tj = Json::object();
  tj.set("id", id).set("event", "step").set("sequence", static_cast<int64_t>(sequence));
  tj.set("block", t.block).set("step", t.step).set("kind", step_kind_name(t.kind));
  tj.set("positions", int_array(t.positions)).set("tokens", int_array(t.tokens));
  tj.set("confidences", float_array(t.confidences));
  return tj;
}

Json error_json(const Json& id, const std::string& message) {
  Json out = Json::object();
  out.set("id", id);
  out.set("ok", false);
  out.set("error", message);
  return out;
}

Json ready_json(const ModelConfig& c, const std::string& source) {
  Json out = Json::object();
  out.set("event", "ready");
  out.set("source", source);
  out.set("vocab_size", c.vocab_size);
  out.set("max_position_embeddings", c.max_position_embeddings);
  out.set("attention_mode", attention_mode_name(c.attention_mode));
  out.set("block_size", c.block_size);
  out.set("mask_token_id", c.mask_token_id);
  out.set("eos_token_id", c.eos_token_id);
  out.set("bos_token_id", c.bos_token_id);
  out.set("pad_token_id", c.pad_token_id);
  return out;
}

std::string handle_line(const LanguageModel& model, const std::string& line,
                        const std::function<void(const std::string&)>& emit_line) {
  Json parsed;
  try {
    parsed = Json::parse(line);
  } catch (const std::exception& e) {
    return error_json(Json(), std::string("malformed JSON: ") + e.what()).dump();
  }
  Json id;
  if (parsed.is_object() && parsed.get("id") != nullptr) id = *parsed.get("id");
  try {
    const auto t0 = std::chrono::steady_clock::now();
    const Request req = parse_request(parsed, model.config());
    StepObserver observer;
    if (req.stream && emit_line) {
      observer = [&](size_t sequence, const TrajectoryStep& t) { emit_line(step_json(req.id, sequence, t).dump()); };
    }
    const std::vector<Generation> results = generate_batch(model, req.prompts, req.settings, observer);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return response_json(req, results, ms).dump();
  } catch (const std::exception& e) {
    return error_json(id, e.what()).dump();
  }
}

}  // namespace sdt::sampler
