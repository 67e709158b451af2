// Command-line flags for the sdt-native subcommands: --name VALUE / --name=VALUE / boolean
// --name, generated --help with defaults, and errors that name the flag at fault.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace sdt::train {

struct FlagSpec {
  std::string name;         // without the leading dashes
  std::string arg;          // placeholder in help ("FILE"); empty for a boolean flag
  std::string default_value;  // shown in help; "" with required=false means "unset"
  std::string help;
  bool required = false;
};

class FlagError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CommandFlags {
  std::string command;  // e.g. "train"
  std::string summary;
  std::vector<FlagSpec> specs;
  std::vector<std::string> positionals_help;  // e.g. {"FILE  the stream to check"}

  std::string usage() const;
};

struct ParsedFlags {
  std::map<std::string, std::string> values;  // every spec'd flag, with defaults filled in
  std::vector<std::string> positionals;
  bool help = false;

  const std::string& str(const std::string& name) const { return values.at(name); }
  bool flag(const std::string& name) const { return values.at(name) == "true"; }
  // Numeric accessors: FlagError naming --name when the value is not a number.
  long long integer(const std::string& name) const;
  double number(const std::string& name) const;
};

// argv[0] is the subcommand name. Throws FlagError for an unknown flag, a missing value or a
// missing required flag, with a message that names it and points at --help.
ParsedFlags parse_flags(const CommandFlags& cmd, int argc, char** argv);

}  // namespace sdt::train
