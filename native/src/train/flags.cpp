#include "train/flags.h"

#include <cstdlib>

namespace sdt::train {

namespace {

const FlagSpec* find(const CommandFlags& cmd, const std::string& name) {
  for (const FlagSpec& s : cmd.specs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

}  // namespace

std::string CommandFlags::usage() const {
  std::string u = "Usage: sdt-native " + command + " [options]";
  for (const std::string& p : positionals_help) u += " " + p.substr(0, p.find(' '));
  u += "\n\n" + summary + "\n";
  if (!positionals_help.empty()) {
    u += "\nArguments:\n";
    for (const std::string& p : positionals_help) u += "  " + p + "\n";
  }
  u += "\nOptions:\n";
  for (const FlagSpec& s : specs) {
    std::string left = "  --" + s.name + (s.arg.empty() ? "" : " " + s.arg);
    if (left.size() < 30) left.append(30 - left.size(), ' ');
    u += left + " " + s.help;
    if (s.required) {
      u += " [required]";
    } else if (!s.arg.empty() && !s.default_value.empty()) {
      u += " [default: " + s.default_value + "]";
    }
    u += "\n";
  }
  u += "  --help                       show this help\n";
  return u;
}

long long ParsedFlags::integer(const std::string& name) const {
  const std::string& v = values.at(name);
  char* end = nullptr;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0') throw FlagError("--" + name + " expects an integer, got \"" + v + "\"");
  return x;
}

double ParsedFlags::number(const std::string& name) const {
  const std::string& v = values.at(name);
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0') throw FlagError("--" + name + " expects a number, got \"" + v + "\"");
  return x;
}

ParsedFlags parse_flags(const CommandFlags& cmd, int argc, char** argv) {
  ParsedFlags out;
  const std::string hint = "; run `sdt-native " + cmd.command + " --help` for the options";
  for (const FlagSpec& s : cmd.specs) out.values[s.name] = s.arg.empty() ? "false" : s.default_value;
  std::map<std::string, bool> seen;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      out.help = true;
      return out;
    }
    if (a.rfind("--", 0) != 0 || a == "--") {
      out.positionals.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    std::string value;
    bool has_value = false;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    const FlagSpec* s = find(cmd, name);
    if (s == nullptr) throw FlagError("sdt-native " + cmd.command + ": unknown flag --" + name + hint);
    if (s->arg.empty()) {
      if (has_value && value != "true" && value != "false") {
        throw FlagError("sdt-native " + cmd.command + ": --" + name + " takes no value" + hint);
      }
      out.values[name] = has_value ? value : "true";
    } else {
      if (!has_value) {
        if (i + 1 >= argc) throw FlagError("sdt-native " + cmd.command + ": --" + name + " needs a value (" + s->arg + ")" + hint);
        value = argv[++i];
      }
      out.values[name] = value;
    }
    seen[name] = true;
  }
  for (const FlagSpec& s : cmd.specs) {
    if (s.required && !seen[s.name]) {
      throw FlagError("sdt-native " + cmd.command + ": --" + s.name + " is required (" + s.help + ")" + hint);
    }
  }
  return out;
}

}  // namespace sdt::train
