// A small JSON value, parser and writer: enough for config.json, trainer_state.json, the train
// config, safetensors headers and the JSON-line events. Objects keep their key order so written
// files stay readable and diffs stay small.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <cstddef>
#include <vector>

namespace sdt::io {

class JsonError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  Json() = default;
  Json(std::nullptr_t) {}
  Json(bool b) : type_(Type::Bool), bool_(b) {}
  Json(double d) : type_(Type::Number), num_(d) {}
  Json(float f) : type_(Type::Number), num_(f), is_float_(true) {}
  Json(int i) : type_(Type::Number), num_(i) {}
  Json(int64_t i) : type_(Type::Number), num_(static_cast<double>(i)) {}
  Json(uint64_t i) : type_(Type::Number), num_(static_cast<double>(i)) {}
  Json(const char* s) : type_(Type::String), str_(s) {}
  Json(std::string s) : type_(Type::String), str_(std::move(s)) {}

  static Json array() { Json j; j.type_ = Type::Array; return j; }
  static Json object() { Json j; j.type_ = Type::Object; return j; }

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  // Typed access; throws JsonError naming the expected type.
  bool as_bool() const;
  double as_number() const;
  // Throws unless the number is an integer that fits in int64.
  int64_t as_int() const;
  const std::string& as_string() const;
  // Arrays and objects: number of elements / members, and element i (for an object, the value
  // of member i, whose name is key(i)).
  size_t size() const;
  const Json& at(size_t i) const;
  const std::string& key(size_t i) const;

  // Object access. get() returns nullptr when the key is absent.
  const Json* get(const std::string& key) const;
  bool has(const std::string& key) const { return get(key) != nullptr; }
  // Sets (replacing an existing key in place) and returns *this for chaining.
  Json& set(const std::string& key, Json value);
  // Array append.
  Json& push(Json value);

  // Compact single-line text (for events) or indented text (for files, indent > 0).
  std::string dump(int indent = 0) const;

  // Throws JsonError with "line L, column C: ..." on malformed input.
  static Json parse(const std::string& text);

 private:
  void dump_to(std::string& out, int indent, int depth) const;

  Type type_ = Type::Null;
  bool bool_ = false;
  double num_ = 0.0;
  bool is_float_ = false;  // written with the shortest text that round-trips as float32
  std::string str_;
  std::vector<std::string> keys_;  // object member names, in order
  std::vector<Json> items_;        // array elements or object member values
};

// Shortest decimal text that parses back to exactly `v` (as double / as float).
std::string format_double(double v);
std::string format_float(float v);

// Reads a whole file; throws std::runtime_error naming the path.
std::string read_text_file(const std::string& path);
// Parses a JSON file; errors name the file.
Json read_json_file(const std::string& path);

}  // namespace sdt::io
