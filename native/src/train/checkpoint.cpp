#include "train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <stdexcept>

#include "io/binary.h"
#include "io/safetensors.h"
#include "io/sha256.h"

namespace sdt::train {

namespace fs = std::filesystem;
using io::Json;

namespace {

std::string hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, v);
  return buf;
}

uint64_t parse_hex64(const Json* j, const std::string& where) {
  if (j == nullptr || !j->is_string()) throw std::runtime_error(where + ": expected a hex string");
  return std::stoull(j->as_string(), nullptr, 16);
}

Json state_to_json(const TrainerState& s, const Json& train_config) {
  Json rng = Json::object();
  rng.set("algorithm", Json("splitmix64")).set("state", Json(hex64(s.rng_state)));
  Json j = Json::object();
  j.set("format", Json("sdt-trainer-state"))
      .set("version", Json(1))
      .set("step", Json(s.step))
      .set("updates", Json(s.updates))
      .set("tokens_seen", Json(s.tokens_seen))
      .set("stream_position", Json(s.stream_position))
      .set("nonfinite_in_a_row", Json(s.nonfinite_in_a_row))
      .set("seed", Json(hex64(s.seed)))
      .set("rng", rng)
      .set("last_loss", Json(s.last_loss))
      .set("last_lr", Json(s.last_lr));
  if (!train_config.is_null()) j.set("train_config", train_config);
  return j;
}

void copy_file(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) throw std::runtime_error(from + ": cannot copy the tokenizer into the checkpoint (" + ec.message() + ")");
}

}  // namespace

std::string checkpoint_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%06" PRId64, step);
  return buf;
}

std::string write_checkpoint_dir(const std::string& final_dir, const CheckpointWrite& w) {
  const fs::path final_path(final_dir);
  const fs::path parent = final_path.parent_path().empty() ? fs::path(".") : final_path.parent_path();
  fs::create_directories(parent);
  const fs::path tmp = parent / (".tmp-" + final_path.filename().string() + "-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  const Model& model = *w.model;

  io::write_file_atomic((tmp / "config.json").string(), io::model_config_to_json(model.config(), w.extras).dump(2) + "\n");
  std::vector<io::TensorToWrite> tensors;
  for (const ParamView& p : model.params()) tensors.push_back({p.name, p.shape, p.data});
  io::write_safetensors((tmp / "model.safetensors").string(), tensors, {{"format", "pt"}});
  if (w.optimizer != nullptr) {
    std::vector<io::TensorToWrite> moments;
    const AdamW& opt = *w.optimizer;
    for (const ParamView& p : model.params()) {
      moments.push_back({p.name + ".exp_avg", p.shape, opt.exp_avg().data() + p.offset});
      moments.push_back({p.name + ".exp_avg_sq", p.shape, opt.exp_avg_sq().data() + p.offset});
    }
    io::write_safetensors((tmp / "optimizer.safetensors").string(), moments,
                          {{"optimizer", "adamw"}, {"updates", std::to_string(opt.updates())}});
  }
  if (w.state != nullptr) {
    io::write_file_atomic((tmp / "trainer_state.json").string(), state_to_json(*w.state, w.train_config).dump(2) + "\n");
  }
  if (!w.tokenizer_path.empty()) copy_file(w.tokenizer_path, (tmp / "tokenizer.json").string());
  // The marker goes last: a directory without it is an interrupted write and is never loaded.
  Json marker = Json::object();
  marker.set("step", Json(w.state != nullptr ? w.state->step : 0)).set("written_at_unix", Json(static_cast<int64_t>(std::time(nullptr))));
  // Size and sha256 of every file: readers refuse a checkpoint damaged or edited after it was written, and a
  // tokenizer that is not this model's (tokenizer_sha256, as a dataset manifest's tokenizerHash).
  Json files = Json::object();
  for (const char* name : {"config.json", "model.safetensors", "tokenizer.json", "optimizer.safetensors", "trainer_state.json"}) {
    const fs::path file = tmp / name;
    if (!fs::exists(file)) continue;
    uint64_t bytes = 0;
    const std::string hex = io::sha256_file_hex(file.string(), &bytes);
    Json entry = Json::object();
    entry.set("bytes", Json(bytes)).set("sha256", Json(hex));
    files.set(name, entry);
    if (std::string(name) == "tokenizer.json") marker.set("tokenizer_sha256", Json(hex));
  }
  marker.set("files", files);
  io::write_file_atomic((tmp / "COMPLETE").string(), marker.dump() + "\n");

  std::error_code ec;
  if (fs::exists(final_path)) {
    // Replacing a checkpoint of the same step (a resumed run re-saving it): move the old one
    // aside first so the rename below cannot fail on a non-empty target.
    const fs::path old = parent / (".old-" + final_path.filename().string() + "-" + std::to_string(::getpid()));
    fs::remove_all(old);
    fs::rename(final_path, old);
    fs::rename(tmp, final_path);
    fs::remove_all(old, ec);
  } else {
    fs::rename(tmp, final_path);
  }
  return final_dir;
}

std::vector<int64_t> complete_checkpoints(const std::string& run_dir) {
  std::vector<int64_t> steps;
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return steps;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step-", 0) != 0 || !entry.is_directory()) continue;
    if (!fs::exists(entry.path() / "COMPLETE")) continue;
    try {
      size_t used = 0;
      const long long s = std::stoll(name.substr(5), &used);
      if (used == name.size() - 5) steps.push_back(s);
    } catch (const std::exception&) {
      // not one of ours
    }
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

std::string latest_checkpoint(const std::string& run_dir) {
  const std::vector<int64_t> steps = complete_checkpoints(run_dir);
  if (steps.empty()) return "";
  return (fs::path(run_dir) / "checkpoints" / checkpoint_dir_name(steps.back())).string();
}

std::string write_run_checkpoint(const std::string& run_dir, int keep, const CheckpointWrite& w) {
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  const int64_t step = w.state != nullptr ? w.state->step : 0;
  const std::string path = write_checkpoint_dir((dir / checkpoint_dir_name(step)).string(), w);
  std::vector<int64_t> steps = complete_checkpoints(run_dir);
  std::error_code ec;
  while (static_cast<int>(steps.size()) > keep) {
    fs::remove_all(dir / checkpoint_dir_name(steps.front()), ec);
    steps.erase(steps.begin());
  }
  // Leftovers of writes interrupted by a crash (ours are gone by now: they were renamed).
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(".tmp-", 0) == 0 || name.rfind(".old-", 0) == 0) fs::remove_all(entry.path(), ec);
  }
  return path;
}

void load_model_weights(Model& model, const std::string& ckpt_dir) {
  const io::SafetensorsFile file(ckpt_dir + "/model.safetensors");
  for (ParamView& p : model.params()) {
    if (!file.has(p.name)) {
      throw std::runtime_error(file.path() + ": missing tensor \"" + p.name +
                               "\" (was it written for a different config.json?)");
    }
    file.read_f32(p.name, p.shape, p.data);
  }
}

void load_optimizer(AdamW& opt, const Model& model, const std::string& ckpt_dir) {
  const io::SafetensorsFile file(ckpt_dir + "/optimizer.safetensors");
  for (const ParamView& p : model.params()) {
    file.read_f32(p.name + ".exp_avg", p.shape, opt.exp_avg().data() + p.offset);
    file.read_f32(p.name + ".exp_avg_sq", p.shape, opt.exp_avg_sq().data() + p.offset);
  }
}

TrainerState read_trainer_state(const std::string& ckpt_dir) {
  const std::string path = ckpt_dir + "/trainer_state.json";
  const Json j = io::read_json_file(path);
  try {
    if (!j.is_object() || j.get("format") == nullptr || j.get("format")->as_string() != "sdt-trainer-state") {
      throw std::runtime_error("not an sdt trainer state (\"format\" is not \"sdt-trainer-state\")");
    }
    auto req = [&](const char* key) -> const Json& {
      const Json* v = j.get(key);
      if (v == nullptr) throw std::runtime_error(std::string("missing field \"") + key + "\"");
      return *v;
    };
    if (req("version").as_int() != 1) throw std::runtime_error("unsupported version; rebuild sdt-native");
    TrainerState s;
    s.step = req("step").as_int();
    s.updates = req("updates").as_int();
    s.tokens_seen = req("tokens_seen").as_int();
    s.stream_position = req("stream_position").as_int();
    s.nonfinite_in_a_row = static_cast<int>(req("nonfinite_in_a_row").as_int());
    s.seed = parse_hex64(j.get("seed"), "seed");
    s.rng_state = parse_hex64(j.get("rng") ? j.get("rng")->get("state") : nullptr, "rng.state");
    s.last_loss = req("last_loss").is_null() ? 0.0 : req("last_loss").as_number();
    s.last_lr = req("last_lr").as_number();
    return s;
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": " + e.what() + ". Resume from another checkpoint or start a new run.");
  }
}

}  // namespace sdt::train
