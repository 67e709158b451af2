// A tiny test framework for the native tests. Usage, in any native/tests/*.cpp:
//
//   #include "test_framework.h"
//   TEST(my_feature_does_x) {
//     CHECK(1 + 1 == 2);
//     CHECK_EQ(f(3), 9);
//     CHECK_NEAR(g(0.5), 0.25, 1e-6);       // |a - b| <= tol
//     CHECK_CLOSE(h(), ref, 1e-3, 1e-6);     // |a - b| <= atol + rtol * |b|
//     CHECK_THROWS(parse("bad"));
//   }
//
// A failed CHECK records the failure (file:line and values) and the test goes on; an uncaught
// exception fails the test. The binary runs every test (or those whose name contains argv[1]),
// prints one line per test and, last, "N passed, M failed"; it exits non-zero on any failure.
#pragma once

#include <cmath>
#include <sstream>
#include <string>

namespace sdt_test {

using TestFn = void (*)();
struct Registrar {
  Registrar(const char* name, TestFn fn, const char* file, int line);
};
void fail(const char* file, int line, const std::string& message);

template <typename A, typename B>
std::string describe_pair(const char* what, const A& a, const B& b) {
  std::ostringstream os;
  os.precision(9);
  os << what << " (left " << a << ", right " << b << ")";
  return os.str();
}

}  // namespace sdt_test

#define SDT_TEST_CONCAT2(a, b) a##b
#define SDT_TEST_CONCAT(a, b) SDT_TEST_CONCAT2(a, b)

#define TEST(name)                                                                              \
  static void sdt_test_fn_##name();                                                             \
  static const ::sdt_test::Registrar sdt_test_reg_##name(#name, &sdt_test_fn_##name, __FILE__, \
                                                         __LINE__);                             \
  static void sdt_test_fn_##name()

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) ::sdt_test::fail(__FILE__, __LINE__, "CHECK(" #cond ")");   \
  } while (0)

#define CHECK_EQ(a, b)                                                                       \
  do {                                                                                       \
    const auto& sdt_a_ = (a);                                                                \
    const auto& sdt_b_ = (b);                                                                \
    if (!(sdt_a_ == sdt_b_))                                                                 \
      ::sdt_test::fail(__FILE__, __LINE__,                                                   \
                       ::sdt_test::describe_pair("CHECK_EQ(" #a ", " #b ")", sdt_a_, sdt_b_)); \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                                     \
  do {                                                                                            \
    const double sdt_a_ = static_cast<double>(a);                                                 \
    const double sdt_b_ = static_cast<double>(b);                                                 \
    if (!(std::fabs(sdt_a_ - sdt_b_) <= static_cast<double>(tol)))                                \
      ::sdt_test::fail(__FILE__, __LINE__,                                                        \
                       ::sdt_test::describe_pair("CHECK_NEAR(" #a ", " #b ", " #tol ")", sdt_a_, sdt_b_)); \
  } while (0)

#define CHECK_CLOSE(a, b, rtol, atol)                                                             \
  do {                                                                                            \
    const double sdt_a_ = static_cast<double>(a);                                                 \
    const double sdt_b_ = static_cast<double>(b);                                                 \
    if (!(std::fabs(sdt_a_ - sdt_b_) <= static_cast<double>(atol) + static_cast<double>(rtol) * std::fabs(sdt_b_))) \
      ::sdt_test::fail(__FILE__, __LINE__,                                                        \
                       ::sdt_test::describe_pair("CHECK_CLOSE(" #a ", " #b ")", sdt_a_, sdt_b_));  \
  } while (0)

#define CHECK_THROWS(expr)                                                                \
  do {                                                                                    \
    bool sdt_threw_ = false;                                                              \
    try {                                                                                 \
      (void)(expr);                                                                       \
    } catch (...) {                                                                       \
      sdt_threw_ = true;                                                                  \
    }                                                                                     \
    if (!sdt_threw_) ::sdt_test::fail(__FILE__, __LINE__, "CHECK_THROWS(" #expr ") did not throw"); \
  } while (0)
