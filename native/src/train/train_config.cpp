#include "train/train_config.h"

#include <set>
#include <stdexcept>

namespace sdt::train {

using io::Json;

namespace {

void check_keys(const Json& j, const std::string& where, const std::set<std::string>& allowed) {
  if (!j.is_object()) throw std::runtime_error(where + " must be a JSON object");
  for (size_t i = 0; i < j.size(); ++i) {
    if (allowed.count(j.key(i)) == 0) {
      std::string list;
      for (const auto& k : allowed) list += (list.empty() ? "" : ", ") + k;
      throw std::runtime_error(where + ": unknown field \"" + j.key(i) + "\" (known: " + list + ")");
    }
  }
}

double num(const Json& j, const std::string& where, const char* key, double fallback) {
  const Json* v = j.get(key);
  if (v == nullptr) return fallback;
  if (!v->is_number()) throw std::runtime_error(where + ": field \"" + key + "\" must be a number");
  return v->as_number();
}

int64_t integer(const Json& j, const std::string& where, const char* key, int64_t fallback, int64_t lo) {
  const Json* v = j.get(key);
  if (v == nullptr) return fallback;
  int64_t x = 0;
  try {
    x = v->as_int();
  } catch (const io::JsonError& e) {
    throw std::runtime_error(where + ": field \"" + key + "\": " + e.what());
  }
  if (x < lo) throw std::runtime_error(where + ": field \"" + key + "\" must be >= " + std::to_string(lo));
  return x;
}

}  // namespace

TrainConfig train_config_from_json(const Json& j, const std::string& where) {
  check_keys(j, where,
             {"model", "tokenizer", "total_steps", "micro_batches", "optimizer", "schedule", "checkpoint_every",
              "keep_checkpoints", "seed", "threads", "max_nonfinite_steps", "layout"});
  TrainConfig c;
  const Json* model = j.get("model");
  if (model == nullptr) throw std::runtime_error(where + ": missing required field \"model\" (a config.json object)");
  c.model = io::model_config_from_json(*model, where + ": model", &c.model_extras);
  if (const Json* t = j.get("tokenizer"); t != nullptr && !t->is_null()) {
    if (!t->is_string()) throw std::runtime_error(where + ": field \"tokenizer\" must be a path string");
    c.tokenizer = t->as_string();
  }
  if (!j.has("total_steps")) throw std::runtime_error(where + ": missing required field \"total_steps\"");
  c.total_steps = integer(j, where, "total_steps", 0, 1);
  c.micro_batches = static_cast<int>(integer(j, where, "micro_batches", 1, 1));
  c.checkpoint_every = integer(j, where, "checkpoint_every", 0, 0);
  c.keep_checkpoints = static_cast<int>(integer(j, where, "keep_checkpoints", 3, 1));
  c.seed = static_cast<uint64_t>(integer(j, where, "seed", 0, 0));
  c.threads = static_cast<int>(integer(j, where, "threads", 0, 0));
  c.max_nonfinite_steps = static_cast<int>(integer(j, where, "max_nonfinite_steps", 5, 1));
  if (const Json* l = j.get("layout"); l != nullptr && !l->is_null()) {
    if (!l->is_string() || (l->as_string() != "single" && l->as_string() != "two-stream"))
      throw std::runtime_error(where + ": field \"layout\" must be \"single\" or \"two-stream\"");
    c.two_stream = l->as_string() == "two-stream";
    if (c.two_stream && c.model.attention_mode != AttentionMode::Block)
      throw std::runtime_error(where + ": layout \"two-stream\" trains block models; model.attention_mode is \"" +
                               attention_mode_name(c.model.attention_mode) + "\" (set it to \"block\")");
  }

  if (const Json* o = j.get("optimizer")) {
    const std::string w = where + ": optimizer";
    check_keys(*o, w, {"beta1", "beta2", "eps", "weight_decay", "grad_clip"});
    c.adamw.beta1 = num(*o, w, "beta1", c.adamw.beta1);
    c.adamw.beta2 = num(*o, w, "beta2", c.adamw.beta2);
    c.adamw.eps = num(*o, w, "eps", c.adamw.eps);
    c.adamw.weight_decay = num(*o, w, "weight_decay", c.adamw.weight_decay);
    c.grad_clip = num(*o, w, "grad_clip", c.grad_clip);
    if (!(c.adamw.beta1 >= 0 && c.adamw.beta1 < 1)) throw std::runtime_error(w + ": beta1 must be in [0, 1)");
    if (!(c.adamw.beta2 >= 0 && c.adamw.beta2 < 1)) throw std::runtime_error(w + ": beta2 must be in [0, 1)");
    if (!(c.adamw.eps > 0)) throw std::runtime_error(w + ": eps must be > 0");
    if (!(c.adamw.weight_decay >= 0)) throw std::runtime_error(w + ": weight_decay must be >= 0");
  }
  if (const Json* s = j.get("schedule")) {
    const std::string w = where + ": schedule";
    check_keys(*s, w, {"lr", "min_lr", "warmup_steps"});
    c.schedule.peak_lr = num(*s, w, "lr", c.schedule.peak_lr);
    c.schedule.min_lr = num(*s, w, "min_lr", c.schedule.min_lr);
    c.schedule.warmup_steps = integer(*s, w, "warmup_steps", 0, 0);
    if (!(c.schedule.peak_lr > 0)) throw std::runtime_error(w + ": lr must be > 0");
    if (!(c.schedule.min_lr >= 0 && c.schedule.min_lr <= c.schedule.peak_lr)) {
      throw std::runtime_error(w + ": min_lr must be in [0, lr]");
    }
  }
  c.schedule.total_steps = c.total_steps;
  return c;
}

TrainConfig read_train_config(const std::string& path) { return train_config_from_json(io::read_json_file(path), path); }

Json TrainConfig::to_json() const {
  Json j = Json::object();
  Json opt = Json::object();
  opt.set("beta1", Json(adamw.beta1))
      .set("beta2", Json(adamw.beta2))
      .set("eps", Json(adamw.eps))
      .set("weight_decay", Json(adamw.weight_decay))
      .set("grad_clip", Json(grad_clip));
  Json sched = Json::object();
  sched.set("lr", Json(schedule.peak_lr)).set("min_lr", Json(schedule.min_lr)).set("warmup_steps", Json(schedule.warmup_steps));
  j.set("model", io::model_config_to_json(model, model_extras))
      .set("tokenizer", tokenizer.empty() ? Json(nullptr) : Json(tokenizer))
      .set("total_steps", Json(total_steps))
      .set("micro_batches", Json(micro_batches))
      .set("optimizer", opt)
      .set("schedule", sched)
      .set("checkpoint_every", Json(checkpoint_every))
      .set("keep_checkpoints", Json(keep_checkpoints))
      .set("seed", Json(seed))
      .set("threads", Json(threads))
      .set("max_nonfinite_steps", Json(max_nonfinite_steps))
      .set("layout", Json(two_stream ? "two-stream" : "single"));
  return j;
}

}  // namespace sdt::train
