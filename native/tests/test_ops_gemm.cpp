// GEMM backends against the naive triple loop.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "gemm/gemm.h"
#include "test_model_util.h"

using sdt_test::TestRng;

namespace {

using GemmFn = void (*)(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int);

int compare_with_naive(GemmFn fn, uint64_t seed) {
  TestRng rng(seed);
  int bad = 0;
  const int shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {17, 33, 65}, {64, 48, 300}, {100, 130, 70}, {6, 16, 256}, {5, 1, 9}};
  for (const auto& s : shapes) {
    const int M = s[0], N = s[1], K = s[2];
    for (int ta = 0; ta < 2; ++ta) {
      for (int tb = 0; tb < 2; ++tb) {
        for (float beta : {0.0f, 1.0f, -0.5f}) {
          // Leading dimensions larger than the logical width catch stride bugs.
          const int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 1;
          const auto A = sdt_test::random_vector(static_cast<size_t>(ta ? K : M) * lda, rng);
          const auto B = sdt_test::random_vector(static_cast<size_t>(tb ? N : K) * ldb, rng);
          auto C0 = sdt_test::random_vector(static_cast<size_t>(M) * ldc, rng);
          // beta = 0 must ignore whatever C holds, NaN included.
          if (beta == 0.0f) C0[0] = std::numeric_limits<float>::quiet_NaN();
          auto C1 = C0;
          const float alpha = 0.75f;
          sdt::gemm_naive(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C0.data(), ldc);
          fn(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C1.data(), ldc);
          for (int i = 0; i < M; ++i)
            for (int j = 0; j < ldc; ++j) {
              const float want = C0[static_cast<size_t>(i) * ldc + j], got = C1[static_cast<size_t>(i) * ldc + j];
              // Columns past N are padding and must be left untouched (both sides hold the same input).
              const double tol = 1e-5 * K + 1e-6;
              if (!(std::fabs(static_cast<double>(want) - static_cast<double>(got)) <= tol) &&
                  !(std::isnan(want) && std::isnan(got))) {
                if (bad < 3) {
                  char buf[200];
                  std::snprintf(buf, sizeof buf, "M=%d N=%d K=%d ta=%d tb=%d beta=%g at (%d,%d): %g vs %g", M, N, K,
                                ta, tb, static_cast<double>(beta), i, j, static_cast<double>(want),
                                static_cast<double>(got));
                  sdt_test::fail(__FILE__, __LINE__, buf);
                }
                ++bad;
              }
            }
        }
      }
    }
  }
  return bad;
}

}  // namespace

TEST(gemm_own_matches_naive) { CHECK_EQ(compare_with_naive(&sdt::gemm_own, 1), 0); }

TEST(gemm_dispatch_matches_naive) { CHECK_EQ(compare_with_naive(&sdt::gemm, 2), 0); }

TEST(gemm_own_large_blocks_match_naive) {
  // Sizes beyond one KC / NC block exercise the outer loops.
  TestRng rng(3);
  const int M = 37, N = 3100, K = 530;
  const auto A = sdt_test::random_vector(static_cast<size_t>(M) * K, rng);
  const auto B = sdt_test::random_vector(static_cast<size_t>(K) * N, rng);
  std::vector<float> C0(static_cast<size_t>(M) * N, 0.0f), C1(C0);
  sdt::gemm_naive(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C0.data(), N);
  sdt::gemm_own(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C1.data(), N);
  double max_err = 0.0;
  for (size_t i = 0; i < C0.size(); ++i)
    max_err = std::max(max_err, std::fabs(static_cast<double>(C0[i]) - static_cast<double>(C1[i])));
  CHECK_NEAR(max_err, 0.0, 1e-3);
}

TEST(gemm_inside_a_parallel_region_is_correct) {
  // The attention calls gemm_own from OpenMP workers; the dispatch may be called that way too.
  // Each worker gets its own product; results must match the naive loop (no shared scratch).
  const int jobs = 6, M = 40, N = 72, K = 300;
  TestRng rng(4);
  std::vector<std::vector<float>> A, B, C_own, C_disp, C_ref;
  for (int j = 0; j < jobs; ++j) {
    A.push_back(sdt_test::random_vector(static_cast<size_t>(M) * K, rng));
    B.push_back(sdt_test::random_vector(static_cast<size_t>(K) * N, rng));
    C_ref.emplace_back(static_cast<size_t>(M) * N, 0.0f);
    sdt::gemm_naive(false, true, M, N, K, 1.0f, A[j].data(), K, B[j].data(), K, 0.0f, C_ref[j].data(), N);
  }
  C_own = C_ref;
  C_disp = C_ref;
#pragma omp parallel for schedule(dynamic, 1)
  for (int j = 0; j < jobs; ++j) {
    sdt::gemm_own(false, true, M, N, K, 1.0f, A[j].data(), K, B[j].data(), K, 0.0f, C_own[j].data(), N);
    sdt::gemm(false, true, M, N, K, 1.0f, A[j].data(), K, B[j].data(), K, 0.0f, C_disp[j].data(), N);
  }
  double err = 0.0;
  for (int j = 0; j < jobs; ++j)
    for (size_t i = 0; i < C_ref[j].size(); ++i) {
      err = std::max(err, std::fabs(static_cast<double>(C_own[j][i]) - C_ref[j][i]));
      err = std::max(err, std::fabs(static_cast<double>(C_disp[j][i]) - C_ref[j][i]));
    }
  CHECK_NEAR(err, 0.0, 1e-3);
}

// Decoding relies on it (Model::forward_chunk): each output row of gemm_own is bit for bit the same whatever
// number of rows the call has, with and without accumulation, single-threaded or inside the thread team.
TEST(gemm_own_rows_do_not_depend_on_the_row_count) {
  TestRng rng(5);
  const int max_rows = 70;
  for (const auto& s : {std::pair{384, 128}, std::pair{128, 384}, std::pair{1000, 130}}) {
    const int N = s.first, K = s.second;
    const auto A = sdt_test::random_vector(static_cast<size_t>(max_rows) * K, rng);
    const auto W = sdt_test::random_vector(static_cast<size_t>(N) * K, rng);
    const auto C0 = sdt_test::random_vector(static_cast<size_t>(max_rows) * N, rng);
    for (float beta : {0.0f, 1.0f}) {
      auto full = C0;
      sdt::gemm_own(false, true, max_rows, N, K, 1.0f, A.data(), K, W.data(), K, beta, full.data(), N);
      int differing = 0;
      for (int M = 1; M < max_rows; ++M) {
        auto part = C0;
        sdt::gemm_own(false, true, M, N, K, 1.0f, A.data(), K, W.data(), K, beta, part.data(), N);
        if (!std::equal(part.begin(), part.begin() + static_cast<long>(M) * N, full.begin())) ++differing;
      }
      CHECK_EQ(differing, 0);
    }
  }
}

// A packed weight gives gemm_own's bits: shapes across KC and NC blocks, op(A) plain and transposed, beta 0
// and 1, B packed from op(B) stored either way.
TEST(gemm_own_packed_equals_gemm_own) {
  TestRng rng(6);
  const int shapes[][3] = {{1, 384, 128}, {7, 33, 65}, {40, 3100, 530}, {3, 1, 9}};
  int differing = 0;
  for (const auto& s : shapes) {
    const int M = s[0], N = s[1], K = s[2];
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (float beta : {0.0f, 1.0f}) {
          const int lda = ta ? M : K, ldb = tb ? K : N;
          const auto A = sdt_test::random_vector(static_cast<size_t>(M) * K, rng);
          const auto Bm = sdt_test::random_vector(static_cast<size_t>(N) * K, rng);
          const auto C0 = sdt_test::random_vector(static_cast<size_t>(M) * N, rng);
          auto want = C0, got = C0;
          sdt::gemm_own(ta, tb, M, N, K, 0.5f, A.data(), lda, Bm.data(), ldb, beta, want.data(), N);
          const sdt::PackedB packed(tb, K, N, Bm.data(), ldb);
          sdt::gemm_own_packed(ta, M, 0.5f, A.data(), lda, packed, beta, got.data(), N);
          if (want != got) ++differing;
        }
  }
  CHECK_EQ(differing, 0);
}
