// Runner of the tiny native test framework (see test_framework.h).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "test_framework.h"

namespace sdt_test {
namespace {

struct TestCase {
  const char* name;
  TestFn fn;
  const char* file;
  int line;
};

std::vector<TestCase>& registry() {
  static std::vector<TestCase> tests;
  return tests;
}

int g_failures_in_test = 0;

}  // namespace

Registrar::Registrar(const char* name, TestFn fn, const char* file, int line) {
  registry().push_back({name, fn, file, line});
}

void fail(const char* file, int line, const std::string& message) {
  ++g_failures_in_test;
  // Only the first few failures of a test are printed: a broken loop would flood the log.
  if (g_failures_in_test <= 8) std::fprintf(stderr, "    %s:%d: %s\n", file, line, message.c_str());
  if (g_failures_in_test == 9) std::fprintf(stderr, "    (further failures of this test not shown)\n");
}

}  // namespace sdt_test

int main(int argc, char** argv) {
  using sdt_test::registry;
  const char* filter = argc > 1 ? argv[1] : nullptr;
  int passed = 0, failed = 0;
  std::vector<std::string> failed_names;
  for (const auto& t : registry()) {
    if (filter && !std::strstr(t.name, filter)) continue;
    sdt_test::g_failures_in_test = 0;
    const auto start = std::chrono::steady_clock::now();
    try {
      t.fn();
    } catch (const std::exception& e) {
      sdt_test::fail(t.file, t.line, std::string("uncaught exception: ") + e.what());
    } catch (...) {
      sdt_test::fail(t.file, t.line, "uncaught non-standard exception");
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (sdt_test::g_failures_in_test == 0) {
      ++passed;
      std::printf("[ ok ] %s (%.0f ms)\n", t.name, ms);
    } else {
      ++failed;
      failed_names.push_back(t.name);
      std::printf("[FAIL] %s (%s:%d)\n", t.name, t.file, t.line);
    }
    std::fflush(stdout);
  }
  for (const auto& n : failed_names) std::printf("failed: %s\n", n.c_str());
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
