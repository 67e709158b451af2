// Tests of native/src/train: AdamW, schedule, clipping, checkpoints, exact resume, non-finite steps,
// the data-parallel hooks (train/data_parallel.h) at one rank and at two ranks sharing every step.
#include <unistd.h>

#include <cmath>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "io/binary.h"
#include "io/json.h"
#include "io/stream.h"
#include "model/model.h"
#include "test_framework.h"
#include "ranks/rendezvous.h"
#include "train/checkpoint.h"
#include "train/data_parallel.h"
#include "train/optimizer.h"
#include "sdt/splitmix64.h"
#include "train/schedule.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using sdt::io::Json;
using namespace sdt::train;
using sdt::SplitMix64;
using sdt::Device;
using sdt::TrainBackend;
using sdt::dist::RankEnv;

namespace {

std::string temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("sdt-test-train-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

TrainConfig tiny_config(int64_t total_steps) {
  const Json model = Json::parse(
      R"({"vocab_size": 32, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
          "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 16, "mask_token_id": 3})");
  Json j = Json::object();
  j.set("model", model).set("total_steps", Json(total_steps)).set("micro_batches", Json(2)).set("seed", Json(5)).set("threads", Json(2));
  Json sched = Json::object();
  sched.set("lr", Json(0.02)).set("min_lr", Json(0.002)).set("warmup_steps", Json(2));
  j.set("schedule", sched);
  return train_config_from_json(j, "test");
}

// A batch like the mask objective makes: roughly half the inputs masked, loss on those.
sdt::io::StreamBatch random_batch(SplitMix64& rng, int B, int T, float weight = 1.0f) {
  sdt::io::StreamBatch b;
  b.B = B;
  b.T = T;
  b.tag = "mask";
  for (int i = 0; i < B * T; ++i) {
    int32_t tok = static_cast<int32_t>(4 + rng.next() % 28);
    const bool masked = rng.next() % 2 == 0;
    b.input_ids.push_back(masked ? 3 : tok);
    b.target_ids.push_back(masked ? tok : -1);
    b.weights.push_back(masked ? weight : 0.0f);
  }
  return b;
}

struct Captured {
  std::vector<Json> events;
  int code = -1;
  std::vector<const Json*> of(const std::string& kind) const {
    std::vector<const Json*> out;
    for (const Json& e : events) {
      if (e.get("event")->as_string() == kind) out.push_back(&e);
    }
    return out;
  }
};

Captured run(const TrainConfig& cfg, const std::string& stream, const std::string& out, bool resume, int64_t stop_after = 0,
             DataParallel* dp = nullptr) {
  Captured c;
  TrainOptions opt;
  opt.stream_path = stream;
  opt.run_dir = out;
  opt.resume = resume;
  opt.stop_after_steps = stop_after;
  opt.data_parallel = dp;
  c.code = run_training(cfg, opt, [&](const Json& e) { c.events.push_back(e); }, [](const std::string&) {}, nullptr);
  return c;
}


void write_train_stream(const std::string& path, const std::vector<const sdt::io::StreamBatch*>& batches) {
  sdt::io::StreamWriter w(path);
  for (const auto* b : batches) w.write_batch(sdt::io::FrameKind::Train, *b);
  w.write_control(sdt::io::FrameKind::End);
  w.close();
}

std::vector<double> field(const Captured& c, const char* kind, const char* key) {
  std::vector<double> out;
  for (const Json* e : c.of(kind)) out.push_back(e->get(key)->as_number());
  return out;
}

RankEnv world_of(int rank, int world) {
  RankEnv e;
  e.rank = rank;
  e.world_size = world;
  e.master_addr = "127.0.0.1";
  e.source = "torchrun";
  return e;
}

// A world of one, watched: counts the hooks' calls and checks that they leave the values alone.
class Watched : public DataParallel {
 public:
  Watched() : inner_(make_data_parallel(RankEnv{}, Device::Cpu, 0)) {}
  int rank() const override { return inner_->rank(); }
  int world() const override { return inner_->world(); }
  void sum(std::vector<double>& v) override {
    const std::vector<double> before = v;
    inner_->sum(v);
    ++sums;
    changed = changed || v != before;
  }
  void sum_gradients(TrainBackend& b) override {
    const TrainBackend::Gradients g = b.gradients();
    const std::vector<float> before(g.data, g.data + g.count);
    inner_->sum_gradients(b);
    ++gradient_sums;
    changed = changed || g.device != Device::Cpu || std::vector<float>(g.data, g.data + g.count) != before;
    nonzero = nonzero || before != std::vector<float>(before.size(), 0.0f);
  }
  int sums = 0, gradient_sums = 0;
  bool changed = false, nonzero = false;

 private:
  std::unique_ptr<DataParallel> inner_;
};

// Two ranks of this process, one thread each, summing through shared memory. A harness for the
// trainer's use of the hooks (global normalizer, votes, rank 0 alone checkpointing); sdt itself sums
// across ranks only through NCCL.
class SharedSums {
 public:
  void sum(std::vector<double>& v) {
    std::unique_lock<std::mutex> lock(m_);
    const uint64_t gen = generation_;
    if (arrived_ == 0) acc_.assign(v.size(), 0.0);
    for (size_t i = 0; i < v.size(); ++i) acc_[i] += v[i];
    if (++arrived_ == 2) {
      result_ = acc_;
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != gen; });
    }
    v = result_;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  std::vector<double> acc_, result_;
};

class ThreadRank : public DataParallel {
 public:
  ThreadRank(SharedSums& s, int rank) : s_(s), rank_(rank) {}
  int rank() const override { return rank_; }
  int world() const override { return 2; }
  void sum(std::vector<double>& v) override { s_.sum(v); }
  void sum_gradients(TrainBackend& b) override {
    const TrainBackend::Gradients g = b.gradients();
    std::vector<double> v(g.data, g.data + g.count);
    s_.sum(v);
    for (size_t i = 0; i < g.count; ++i) g.data[i] = static_cast<float>(v[i]);
  }

 private:
  SharedSums& s_;
  int rank_;
};

}  // namespace

TEST(adamw_matches_a_hand_computed_step) {
  std::vector<float> data = {1.0f, -2.0f, 0.5f}, grad = {0.5f, -1.0f, 0.25f};
  std::vector<sdt::ParamView> params(2);
  params[0].name = "w";
  params[0].numel = 2;
  params[0].offset = 0;
  params[0].data = data.data();
  params[0].grad = grad.data();
  params[0].decay = true;
  params[1].name = "norm";
  params[1].numel = 1;
  params[1].offset = 2;
  params[1].data = data.data() + 2;
  params[1].grad = grad.data() + 2;
  params[1].decay = false;
  AdamW opt({0.9, 0.999, 1e-8, 0.01}, 3);
  opt.step(params, 0.1);
  // Step 1: m_hat = g, v_hat = g^2, so the Adam step is lr * g / (|g| + eps) ~= lr * sign(g).
  CHECK_NEAR(data[0], 1.0 * (1 - 0.1 * 0.01) - 0.1 * 0.5 / (0.5 + 1e-8), 1e-6);
  CHECK_NEAR(data[1], -2.0 * (1 - 0.1 * 0.01) + 0.1 * 1.0 / (1.0 + 1e-8), 1e-6);
  CHECK_NEAR(data[2], 0.5 - 0.1, 1e-6);  // no decay on norms
  // Step 2 against the textbook formula in double.
  const double w0 = data[0], g2 = -0.3;
  grad = {static_cast<float>(g2), 0.0f, 0.0f};
  opt.step(params, 0.05);
  const double m = 0.9 * 0.05 + 0.1 * g2, v = 0.999 * 0.00025 + 0.001 * g2 * g2;
  const double mh = m / (1 - 0.81), vh = v / (1 - 0.999 * 0.999);
  CHECK_NEAR(data[0], w0 * (1 - 0.05 * 0.01) - 0.05 * mh / (std::sqrt(vh) + 1e-8), 1e-6);
  CHECK_EQ(opt.updates(), int64_t{2});
}

TEST(lr_schedule_warms_up_then_follows_the_cosine_to_min) {
  LrSchedule s;
  s.peak_lr = 1.0;
  s.min_lr = 0.1;
  s.warmup_steps = 4;
  s.total_steps = 14;
  CHECK_NEAR(s.lr_at(0), 0.25, 1e-12);
  CHECK_NEAR(s.lr_at(3), 1.0, 1e-12);
  CHECK_NEAR(s.lr_at(4), 1.0, 1e-12);
  // Halfway through the decay (step 4 + 9/2): cos(pi/2) = 0.
  CHECK_NEAR(s.lr_at(13), 0.1, 1e-12);
  const double mid = 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 5.0 / 9.0));
  CHECK_NEAR(s.lr_at(9), mid, 1e-12);
  CHECK_NEAR(s.lr_at(100), 0.1, 1e-12);
  for (int64_t i = 4; i < 13; ++i) CHECK(s.lr_at(i + 1) <= s.lr_at(i));
}

TEST(clipping_uses_the_global_norm) {
  std::vector<float> g1 = {3.0f, 0.0f}, g2 = {0.0f, 4.0f, 0.0f};
  std::vector<sdt::ParamView> params(2);
  params[0].numel = 2;
  params[0].grad = g1.data();
  params[1].numel = 3;
  params[1].grad = g2.data();
  const double norm = global_grad_norm(params);
  CHECK_NEAR(norm, 5.0, 1e-12);
  CHECK_NEAR(clip_factor(norm, 1.0), 0.2, 1e-7);
  CHECK_EQ(clip_factor(norm, 10.0), 1.0f);
  CHECK_EQ(clip_factor(norm, 0.0), 1.0f);
  scale_grads(params, clip_factor(norm, 1.0));
  CHECK_NEAR(global_grad_norm(params), 1.0, 1e-6);
}

TEST(train_resume_reproduces_losses_bit_for_bit) {
  const std::string dir = temp_dir("resume");
  const TrainConfig cfg = tiny_config(6);
  SplitMix64 rng{11};
  std::vector<sdt::io::StreamBatch> batches;
  for (int i = 0; i < 12; ++i) batches.push_back(random_batch(rng, 2, 8));
  {
    sdt::io::StreamWriter w(dir + "/full.bin");
    for (const auto& b : batches) w.write_batch(sdt::io::FrameKind::Train, b);
    w.write_control(sdt::io::FrameKind::End);
    w.close();
    // What a feeder restarted at stream_position 6 would write.
    sdt::io::StreamHeader h;
    h.first_train_frame = 6;
    sdt::io::StreamWriter t(dir + "/tail.bin", h);
    for (size_t i = 6; i < batches.size(); ++i) t.write_batch(sdt::io::FrameKind::Train, batches[i]);
    t.close();
  }
  const Captured a = run(cfg, dir + "/full.bin", dir + "/a", false);
  CHECK_EQ(a.code, 0);
  const auto a_steps = a.of("step");
  CHECK_EQ(a_steps.size(), size_t{6});
  for (const Json* e : a_steps) CHECK(std::isfinite(e->get("loss")->as_number()) && !e->get("skipped")->as_bool());

  const Captured b1 = run(cfg, dir + "/full.bin", dir + "/b", false, 3);
  CHECK_EQ(b1.code, 0);
  CHECK_EQ(b1.of("step").size(), size_t{3});
  CHECK_EQ(latest_checkpoint(dir + "/b"), dir + "/b/checkpoints/step-000003");
  CHECK_EQ(read_trainer_state(latest_checkpoint(dir + "/b")).stream_position, int64_t{6});
  fs::copy(dir + "/b", dir + "/c", fs::copy_options::recursive);
  const Captured b2 = run(cfg, dir + "/full.bin", dir + "/b", true);
  const Captured c2 = run(cfg, dir + "/tail.bin", dir + "/c", true);
  CHECK_EQ(b2.code, 0);
  CHECK_EQ(c2.code, 0);
  std::vector<const Json*> b_steps = b1.of("step"), c_steps = b1.of("step");
  for (const Json* e : b2.of("step")) b_steps.push_back(e);
  for (const Json* e : c2.of("step")) c_steps.push_back(e);
  CHECK_EQ(b_steps.size(), size_t{6});
  CHECK_EQ(c_steps.size(), size_t{6});
  for (size_t i = 0; i < a_steps.size() && i < b_steps.size() && i < c_steps.size(); ++i) {
    for (const char* key : {"loss", "grad_norm", "lr", "tokens"}) {
      CHECK_EQ(a_steps[i]->get(key)->as_number(), b_steps[i]->get(key)->as_number());
      CHECK_EQ(a_steps[i]->get(key)->as_number(), c_steps[i]->get(key)->as_number());
    }
  }
  const auto wa = sdt::io::read_binary_file(dir + "/a/checkpoints/step-000006/model.safetensors");
  CHECK(wa == sdt::io::read_binary_file(dir + "/b/checkpoints/step-000006/model.safetensors"));
  CHECK(wa == sdt::io::read_binary_file(dir + "/c/checkpoints/step-000006/model.safetensors"));
  CHECK(sdt::io::read_binary_file(dir + "/a/checkpoints/step-000006/optimizer.safetensors") ==
        sdt::io::read_binary_file(dir + "/b/checkpoints/step-000006/optimizer.safetensors"));
  fs::remove_all(dir);
}

TEST(train_skips_nonfinite_steps_and_stops_after_too_many) {
  const std::string dir = temp_dir("nan");
  TrainConfig cfg = tiny_config(8);
  cfg.micro_batches = 1;
  cfg.checkpoint_every = 2;
  cfg.keep_checkpoints = 5;
  cfg.max_nonfinite_steps = 3;
  SplitMix64 rng{3};
  const float nan = std::numeric_limits<float>::quiet_NaN();
  {
    // good, good, NaN, good, NaN, NaN, NaN, good
    sdt::io::StreamWriter w(dir + "/s.bin");
    const float weights[] = {1, 1, nan, 1, nan, nan, nan, 1};
    for (float wt : weights) w.write_batch(sdt::io::FrameKind::Train, random_batch(rng, 2, 8, wt));
    w.close();
  }
  const Captured c = run(cfg, dir + "/s.bin", dir + "/run", false);
  CHECK_EQ(c.code, static_cast<int>(kExitNonFinite));
  const auto steps = c.of("step");
  CHECK_EQ(steps.size(), size_t{7});
  if (steps.size() == 7) {
    CHECK(!steps[1]->get("skipped")->as_bool());
    CHECK(steps[2]->get("skipped")->as_bool());
    CHECK(steps[2]->get("loss")->is_null());
    CHECK(!steps[3]->get("skipped")->as_bool());
    CHECK(std::isfinite(steps[3]->get("loss")->as_number()));
    CHECK(steps[6]->get("skipped")->as_bool());
  }
  CHECK_EQ(c.of("error").size(), size_t{1});
  // Checkpoints every 2 steps (step 6 holds the finite weights of step 4); none at the failure.
  CHECK(complete_checkpoints(dir + "/run") == (std::vector<int64_t>{2, 4, 6}));
  CHECK_EQ(read_trainer_state(dir + "/run/checkpoints/step-000006").nonfinite_in_a_row, 2);
  const TrainerState s = read_trainer_state(dir + "/run/checkpoints/step-000004");
  CHECK_EQ(s.updates, int64_t{3});  // step 3 was skipped: no AdamW update
  fs::remove_all(dir);
}

TEST(train_evaluates_eval_frames_and_keeps_the_last_k_checkpoints) {
  const std::string dir = temp_dir("eval");
  TrainConfig cfg = tiny_config(4);
  cfg.micro_batches = 1;
  cfg.checkpoint_every = 1;
  cfg.keep_checkpoints = 2;
  cfg.tokenizer = dir + "/tok.json";
  sdt::io::write_file_atomic(cfg.tokenizer, std::string("{\"model\": {}}"));
  SplitMix64 rng{9};
  const sdt::io::StreamBatch ev = random_batch(rng, 2, 8);
  {
    sdt::io::StreamWriter w(dir + "/s.bin");
    w.write_batch(sdt::io::FrameKind::Eval, ev);
    for (int i = 0; i < 4; ++i) w.write_batch(sdt::io::FrameKind::Train, random_batch(rng, 1, 8));
    w.write_control(sdt::io::FrameKind::End);
    w.close();
  }
  const Captured c = run(cfg, dir + "/s.bin", dir + "/run", false);
  CHECK_EQ(c.code, 0);
  const auto evals = c.of("eval");
  CHECK_EQ(evals.size(), size_t{1});
  // Independent expectation: the initial model (same seed draw as the trainer) on the same batch.
  sdt::Model model(cfg.model);
  SplitMix64 init{cfg.seed};
  model.init(init.next());
  sdt::Batch b;
  b.B = ev.B;
  b.T = ev.T;
  b.input_ids = ev.input_ids.data();
  b.target_ids = ev.target_ids.data();
  b.weights = ev.weights.data();
  double wsum = 0;
  for (size_t i = 0; i < ev.weights.size(); ++i) wsum += ev.target_ids[i] >= 0 ? ev.weights[i] : 0.0f;
  const double expected = model.forward_loss(b, wsum).loss;
  if (!evals.empty()) {
    CHECK_NEAR(evals[0]->get("loss")->as_number(), expected, 1e-9);
    CHECK_EQ(evals[0]->get("group")->as_string(), std::string("mask"));
    CHECK_EQ(evals[0]->get("step")->as_int(), int64_t{0});
  }
  CHECK(complete_checkpoints(dir + "/run") == (std::vector<int64_t>{3, 4}));
  const std::string last = latest_checkpoint(dir + "/run");
  for (const char* f : {"config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json", "tokenizer.json", "COMPLETE"}) {
    CHECK(fs::exists(last + "/" + f));
  }
  const Json cj = sdt::io::read_json_file(last + "/config.json");
  CHECK_EQ(cj.get("model_type")->as_string(), std::string("llama"));
  CHECK_EQ(cj.get("architectures")->at(0).as_string(), std::string("LlamaForCausalLM"));
  CHECK_EQ(cj.get("num_key_value_heads")->as_int(), int64_t{1});
  CHECK_EQ(c.of("done").back()->get("reason")->as_string(), std::string("total_steps"));
  fs::remove_all(dir);
}

TEST(train_checkpoint_frames_and_a_truncated_stream) {
  const std::string dir = temp_dir("ctl");
  TrainConfig cfg = tiny_config(10);
  cfg.checkpoint_every = 0;  // only the control frames ask for checkpoints
  SplitMix64 rng{21};
  const std::string path = dir + "/s.bin";
  {
    sdt::io::StreamWriter w(path);
    w.write_batch(sdt::io::FrameKind::Train, random_batch(rng, 1, 8));
    w.write_batch(sdt::io::FrameKind::Train, random_batch(rng, 1, 8));
    w.write_control(sdt::io::FrameKind::Checkpoint);  // between steps: now, at step 1
    w.write_batch(sdt::io::FrameKind::Train, random_batch(rng, 1, 8));
    w.write_control(sdt::io::FrameKind::Checkpoint);  // inside step 2: after it
    for (int i = 0; i < 5; ++i) w.write_batch(sdt::io::FrameKind::Train, random_batch(rng, 1, 8));
    w.close();
  }
  auto bytes = sdt::io::read_binary_file(path);
  bytes.resize(bytes.size() - 10);  // the last frame loses its tail
  sdt::io::write_file_atomic(path, bytes.data(), bytes.size());
  const Captured c = run(cfg, path, dir + "/run", false);
  CHECK_EQ(c.code, static_cast<int>(kExitBadStream));
  std::vector<int64_t> ckpt_steps;
  for (const Json* e : c.of("checkpoint")) ckpt_steps.push_back(e->get("step")->as_int());
  // Step 3 completed before the damaged frame, so it is checkpointed on the way out.
  CHECK(ckpt_steps == (std::vector<int64_t>{1, 2, 3}));
  CHECK(complete_checkpoints(dir + "/run") == (std::vector<int64_t>{1, 2, 3}));
  CHECK_EQ(c.of("error").size(), size_t{1});
  if (!c.of("error").empty()) CHECK(c.of("error")[0]->get("message")->as_string().find("truncated") != std::string::npos);
  CHECK_EQ(read_trainer_state(dir + "/run/checkpoints/step-000003").stream_position, int64_t{6});
  fs::remove_all(dir);
}

TEST(data_parallel_refuses_worlds_it_cannot_train_and_names_the_fix) {
  CHECK_EQ(data_parallel_problem(world_of(0, 1), Device::Cpu), std::string());
  CHECK_EQ(data_parallel_problem(world_of(0, 1), Device::Cuda), std::string());
  const std::string cpu = data_parallel_problem(world_of(1, 4), Device::Cpu);
  CHECK(cpu.find("a world of 4 ranks (from the torchrun variables: rank 1) needs --device cuda") == 0);
  CHECK(cpu.find("NCCL") != std::string::npos && cpu.find("unset RANK/WORLD_SIZE") != std::string::npos);
  CHECK_THROWS(make_data_parallel(world_of(0, 2), Device::Cpu, 1000));
#ifndef SDT_HAVE_CUDA
  const std::string cuda = data_parallel_problem(world_of(0, 2), Device::Cuda);
  CHECK(cuda.find("needs a CUDA build of sdt-native") != std::string::npos);
  CHECK(cuda.find("SDT_CUDA=ON") != std::string::npos);
  CHECK_THROWS(make_data_parallel(world_of(0, 2), Device::Cuda, 1000));
#else
  CHECK_EQ(data_parallel_problem(world_of(0, 2), Device::Cuda), std::string());
#endif
  const auto one = make_data_parallel(world_of(0, 1), Device::Cpu, 0);
  CHECK_EQ(one->world(), 1);
  std::vector<double> v{1.5, -2.0};
  one->sum(v);
  CHECK(v == (std::vector<double>{1.5, -2.0}));
}

TEST(train_world_of_one_goes_through_the_hooks_and_changes_nothing) {
  const std::string dir = temp_dir("one");
  SplitMix64 rng{17};
  std::vector<sdt::io::StreamBatch> batches;
  for (int i = 0; i < 8; ++i) batches.push_back(random_batch(rng, 2, 8, 1.0f + static_cast<float>(i % 3)));
  std::vector<const sdt::io::StreamBatch*> all;
  for (const auto& b : batches) all.push_back(&b);
  write_train_stream(dir + "/s.bin", all);
  const TrainConfig cfg = tiny_config(4);
  const Captured plain = run(cfg, dir + "/s.bin", dir + "/plain", false);
  Watched watched;
  const Captured hooked = run(cfg, dir + "/s.bin", dir + "/hooked", false, 0, &watched);
  CHECK_EQ(plain.code, 0);
  CHECK_EQ(hooked.code, 0);
  CHECK_EQ(hooked.of("step").size(), size_t{4});
  CHECK(field(plain, "step", "loss") == field(hooked, "step", "loss"));
  CHECK(field(plain, "step", "grad_norm") == field(hooked, "step", "grad_norm"));
  // Per step: the vote before it (weight sum, tokens, stop, end) and the loss; then the gradients.
  CHECK_EQ(watched.sums, 2 * 4);
  CHECK_EQ(watched.gradient_sums, 4);
  CHECK(watched.nonzero);
  CHECK(!watched.changed);
  CHECK(sdt::io::read_binary_file(dir + "/plain/checkpoints/step-000004/model.safetensors") ==
        sdt::io::read_binary_file(dir + "/hooked/checkpoints/step-000004/model.safetensors"));
  fs::remove_all(dir);
}

TEST(train_two_ranks_sharing_each_step_match_one_rank_and_only_rank_0_checkpoints) {
  const std::string dir = temp_dir("two");
  const int steps = 4;
  SplitMix64 rng{19};
  // Weight sums that differ by frame: a rank normalizing by its own sum would give other losses.
  std::vector<sdt::io::StreamBatch> batches;
  for (int i = 0; i < 2 * steps; ++i) batches.push_back(random_batch(rng, 2, 8, 1.0f + static_cast<float>(i % 3)));
  // One rank: two frames per step. Two ranks: rank r reads frame 2s + r of step s (trainer/feed-part.ts
  // with micro_batches 2 over 2 ranks: one whole frame each).
  std::vector<const sdt::io::StreamBatch*> whole, part0, part1;
  for (size_t f = 0; f < batches.size(); ++f) {
    whole.push_back(&batches[f]);
    (f % 2 == 0 ? part0 : part1).push_back(&batches[f]);
  }
  write_train_stream(dir + "/whole.bin", whole);
  write_train_stream(dir + "/rank0.bin", part0);
  write_train_stream(dir + "/rank1.bin", part1);
  const Captured one = run(tiny_config(steps), dir + "/whole.bin", dir + "/one", false);
  CHECK_EQ(one.code, 0);

  SharedSums shared;
  ThreadRank r0(shared, 0), r1(shared, 1);
  TrainConfig per_rank = tiny_config(steps);
  per_rank.micro_batches = 1;
  per_rank.threads = 1;
  Captured c0, c1;
  std::thread t1([&] { c1 = run(per_rank, dir + "/rank1.bin", dir + "/rank1-dir", false, 0, &r1); });
  c0 = run(per_rank, dir + "/rank0.bin", dir + "/run", false, 0, &r0);
  t1.join();
  CHECK_EQ(c0.code, 0);
  CHECK_EQ(c1.code, 0);
  const std::vector<double> loss1 = field(one, "step", "loss"), loss2 = field(c0, "step", "loss");
  const std::vector<double> norm1 = field(one, "step", "grad_norm"), norm2 = field(c0, "step", "grad_norm");
  CHECK_EQ(loss2.size(), size_t{steps});
  CHECK(loss2 == field(c1, "step", "loss"));  // both ranks hold the summed loss and the same weights
  for (size_t i = 0; i < loss1.size() && i < loss2.size(); ++i) {
    CHECK_CLOSE(loss2[i], loss1[i], 1e-5, 1e-6);
    CHECK_CLOSE(norm2[i], norm1[i], 1e-4, 1e-6);
  }
  CHECK(field(c0, "step", "tokens") == field(one, "step", "tokens"));  // every rank's frames count
  CHECK_EQ(latest_checkpoint(dir + "/run"), dir + "/run/checkpoints/step-000004");
  CHECK(!fs::exists(dir + "/rank1-dir/checkpoints"));
  CHECK(c1.of("checkpoint").empty());
  fs::remove_all(dir);
}
