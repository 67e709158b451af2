#include "sampler/commands.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "engine/engine.h"
#include "sampler/model_source.h"
#include "sampler/protocol.h"

namespace {

using namespace sdt::sampler;

struct Args {
  std::string ckpt;
  std::string config;
  long long random_init = -1;
  std::string requests;
  std::string out;
  std::string device = "cpu";
  bool help = false;
};

const char* kServeHelp =
    "Usage: sdt-native serve (--ckpt DIR | --random-init SEED --config FILE) [--device cpu|cuda]\n"
    "\n"
    "The engine: keeps a model loaded and answers requests on stdin (first output line:\n"
    "{\"event\":\"ready\",...}). Ops: generate (JSON lines, docs/sample.md), score, loss and logits (a JSON\n"
    "line followed by the batch as a binary message framed like the trainer stream; results likewise).\n"
    "A bad request or frame gets {\"id\",\"ok\":false,\"code\",\"error\"} and serving continues.\n"
    "Protocol: schemas/engine.md.\n"
    "\n"
    "Options:\n"
    "  --ckpt DIR           checkpoint directory (config.json, model.safetensors, COMPLETE)\n"
    "  --random-init SEED   use a randomly initialised model instead (tests, speed benchmarks)\n"
    "  --config FILE        config.json for --random-init\n"
    "  --device cpu|cuda    where the model runs [default: cpu]\n"
    "  --help               show this help\n";

const char* kGenerateHelp =
    "Usage: sdt-native generate (--ckpt DIR | --random-init SEED --config FILE) --requests FILE [--out FILE]\n"
    "\n"
    "Answers every JSON-line request of FILE (the serve protocol) and writes the results as JSON lines\n"
    "to --out (default: stdout). For scripts on machines without Node.\n"
    "\n"
    "Options:\n"
    "  --ckpt DIR           checkpoint directory (config.json, model.safetensors)\n"
    "  --random-init SEED   use a randomly initialised model instead\n"
    "  --config FILE        config.json for --random-init\n"
    "  --requests FILE      JSON-line requests [required]\n"
    "  --out FILE           where results go [default: stdout]\n"
    "  --device cpu|cuda    where the model runs [default: cpu]\n"
    "  --help               show this help\n";

// Flags start with "--"; leading words (program, subcommand) are skipped.
bool parse_args(int argc, char** argv, const char* cmd, Args& a) {
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (f.rfind("--", 0) != 0) {
      if (f == "serve" || f == "generate") continue;
      std::fprintf(stderr, "sdt-native %s: unexpected argument \"%s\"; see --help\n", cmd, f.c_str());
      return false;
    }
    if (f == "--help" || f == "-h") {
      a.help = true;
      continue;
    }
    static const char* const kFlags[] = {"--ckpt", "--config", "--requests", "--out", "--device", "--random-init"};
    if (std::find(std::begin(kFlags), std::end(kFlags), f) == std::end(kFlags)) {
      std::fprintf(stderr, "sdt-native %s: unknown flag %s; see --help\n", cmd, f.c_str());
      return false;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "sdt-native %s: %s needs a value; see --help\n", cmd, f.c_str());
      return false;
    }
    const std::string v = argv[++i];
    if (f == "--ckpt") a.ckpt = v;
    else if (f == "--config") a.config = v;
    else if (f == "--requests") a.requests = v;
    else if (f == "--out") a.out = v;
    else if (f == "--device") a.device = v;
    else if (f == "--random-init") {
      char* end = nullptr;
      a.random_init = std::strtoll(v.c_str(), &end, 10);
      if (end == v.c_str() || *end != '\0' || a.random_init < 0) {
        std::fprintf(stderr, "sdt-native %s: --random-init expects a non-negative integer, got \"%s\"\n", cmd, v.c_str());
        return false;
      }
    }
  }
  // Refused rather than resolved: which model would run is not the user's to guess.
  if (!a.ckpt.empty() && a.random_init >= 0) {
    std::fprintf(stderr, "sdt-native %s: --ckpt and --random-init cannot be used together; give one model source\n", cmd);
    return false;
  }
  return true;
}

LoadedModel load(const Args& a, const char* cmd, std::string& source) {
  if (!a.ckpt.empty()) {
    source = a.ckpt;
    return load_checkpoint_model(a.ckpt);
  }
  if (a.random_init >= 0 && !a.config.empty()) {
    source = "random-init:" + std::to_string(a.random_init) + ":" + a.config;
    return random_model(a.config, static_cast<uint64_t>(a.random_init));
  }
  throw std::runtime_error(std::string("sdt-native ") + cmd +
                           ": give --ckpt DIR, or --random-init SEED with --config FILE");
}

// The device is checked before the checkpoint is read, so a wrong --device fails at once.
std::unique_ptr<sdt::Backend> load_backend(const Args& a, const char* cmd, std::string& source) {
  const sdt::Device device = sdt::parse_device(a.device);
  const std::string problem = sdt::device_problem(device);
  if (!problem.empty()) throw std::invalid_argument(problem);
  LoadedModel loaded = load(a, cmd, source);
  return sdt::make_backend(device, std::move(loaded.model), loaded.del_token_id);
}

}  // namespace

int cmd_serve(int argc, char** argv) {
  Args a;
  if (!parse_args(argc, argv, "serve", a)) return 2;
  if (a.help) {
    std::fputs(kServeHelp, stdout);
    return 0;
  }
  try {
    std::string source;
    const std::unique_ptr<sdt::Backend> backend = load_backend(a, "serve", source);
    return sdt::engine::serve(*backend, source, 0, stdout);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "sdt-native serve: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sdt-native serve: %s\n", e.what());
    return 1;
  }
}

int cmd_generate(int argc, char** argv) {
  Args a;
  if (!parse_args(argc, argv, "generate", a)) return 2;
  if (a.help) {
    std::fputs(kGenerateHelp, stdout);
    return 0;
  }
  if (a.requests.empty()) {
    std::fprintf(stderr, "sdt-native generate: --requests FILE is required (JSON-line requests; see --help)\n");
    return 2;
  }
  try {
    std::ifstream in(a.requests);
    if (!in) throw std::runtime_error(a.requests + ": cannot open the requests file");
    std::string source;
    const std::unique_ptr<sdt::Backend> backend = load_backend(a, "generate", source);
    const sdt::Backend& lm = *backend;
    std::ofstream file;
    if (!a.out.empty()) {
      file.open(a.out);
      if (!file) throw std::runtime_error(a.out + ": cannot open for writing");
    }
    std::ostream& out = a.out.empty() ? std::cout : file;
    std::string line;
    int failed = 0;
    int n = 0;
    int line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string result = handle_line(lm, line);
      ++n;
      if (result.find("\"ok\":false") != std::string::npos) {
        ++failed;
        std::fprintf(stderr, "sdt-native generate: %s line %d: %s\n", a.requests.c_str(), line_no, result.c_str());
      }
      out << result << '\n';
    }
    out.flush();
    std::fprintf(stderr, "sdt-native generate: %d requests, %d failed\n", n, failed);
    return failed > 0 ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sdt-native generate: %s\n", e.what());
    return 1;
  }
}
