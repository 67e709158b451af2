// The multi-process contract of native/src/ranks/rendezvous.h on CPU: the environment variables,
// a world of 1 (no network), and real processes exchanging rank 0's bytes over TCP.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "ranks/rendezvous.h"
#include "test_framework.h"

namespace {

using sdt::dist::RankEnv;

RankEnv env_of(const std::map<std::string, std::string>& vars) {
  return sdt::dist::rank_env_from([&](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

std::string error_of(const std::map<std::string, std::string>& vars) {
  try {
    env_of(vars);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// A port nothing listens on right now (the kernel's pick for port 0).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Runs share_from_rank0 in `world` child processes (rank r with `claims[r]` as its world size);
// each writes what it got (or "ERR <message>") to a pipe. Returns the outputs by rank.
std::vector<std::string> run_ranks(int world, const std::vector<int>& claims, const std::vector<uint8_t>& secret,
                                   int timeout_ms) {
  const int port = free_port();
  std::vector<int> fds;
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r) {
    int p[2];
    if (::pipe(p) != 0) throw std::runtime_error("pipe");
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(p[0]);
      std::string out;
      try {
        const RankEnv e = env_of({{"RANK", std::to_string(r)},
                                  {"WORLD_SIZE", std::to_string(claims[static_cast<size_t>(r)])},
                                  {"MASTER_ADDR", "127.0.0.1"},
                                  {"MASTER_PORT", std::to_string(port)}});
        // Only rank 0 holds the bytes; the others start with something else.
        const std::vector<uint8_t> mine = r == 0 ? secret : std::vector<uint8_t>{1, 2, 3};
        const std::vector<uint8_t> got = sdt::dist::share_from_rank0(e, mine, timeout_ms);
        out.assign(got.begin(), got.end());
      } catch (const std::exception& ex) {
        out = std::string("ERR ") + ex.what();
      }
      const ssize_t w = ::write(p[1], out.data(), out.size());
      ::_exit(w == static_cast<ssize_t>(out.size()) ? 0 : 1);
    }
    ::close(p[1]);
    fds.push_back(p[0]);
    pids.push_back(pid);
  }
  std::vector<std::string> outs;
  for (size_t r = 0; r < fds.size(); ++r) {
    std::string s;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fds[r], buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
    ::close(fds[r]);
    int status = 0;
    ::waitpid(pids[r], &status, 0);
    outs.push_back(s);
  }
  return outs;
}

}  // namespace

TEST(rendezvous_env_torchrun_slurm_and_default) {
  const RankEnv t = env_of({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node7"},
                            {"MASTER_PORT", "40000"}});
  CHECK_EQ(t.source, std::string("torchrun"));
  CHECK_EQ(t.rank, 3);
  CHECK_EQ(t.world_size, 8);
  CHECK_EQ(t.local_rank, 1);
  CHECK_EQ(t.master_addr, std::string("node7"));
  CHECK_EQ(t.master_port, 40000);
  // Slurm's variables when RANK is unset; torchrun's win when both are there.
  const RankEnv s = env_of({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "6"}, {"SLURM_LOCALID", "2"},
                            {"MASTER_ADDR", "10.0.0.1"}});
  CHECK_EQ(s.source, std::string("slurm"));
  CHECK_EQ(s.rank, 5);
  CHECK_EQ(s.world_size, 6);
  CHECK_EQ(s.local_rank, 2);
  CHECK_EQ(s.master_port, 29500);
  CHECK_EQ(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "2"},
                   {"MASTER_ADDR", "h"}})
               .rank,
           0);
  const RankEnv d = env_of({});
  CHECK_EQ(d.source, std::string("default"));
  CHECK_EQ(d.rank, 0);
  CHECK_EQ(d.world_size, 1);
}

TEST(rendezvous_env_errors_name_the_variable) {
  CHECK(error_of({{"RANK", "1"}}).find("WORLD_SIZE is not set") != std::string::npos);
  CHECK(error_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}}).find("not below the world size 2") !=
        std::string::npos);
  CHECK(error_of({{"RANK", "x"}, {"WORLD_SIZE", "2"}}).find("RANK=\"x\"") != std::string::npos);
  CHECK(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}}).find("MASTER_ADDR is not set") != std::string::npos);
  CHECK(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}})
            .find("MASTER_PORT") != std::string::npos);
  CHECK(error_of({{"WORLD_SIZE", "4"}}).find("RANK is not") != std::string::npos);
  CHECK(error_of({{"SLURM_PROCID", "0"}}).find("SLURM_NTASKS is not set") != std::string::npos);
}

TEST(rendezvous_world_of_one_needs_no_network) {
  const std::vector<uint8_t> id = {9, 8, 7};
  const RankEnv e = env_of({});
  const std::vector<uint8_t> got = sdt::dist::share_from_rank0(e, id, 1);
  CHECK(got == id);
}

TEST(rendezvous_four_processes_get_rank0_bytes) {
  std::vector<uint8_t> secret(128);  // an ncclUniqueId's size
  for (size_t i = 0; i < secret.size(); ++i) secret[i] = static_cast<uint8_t>(i * 37 + 11);
  const std::vector<std::string> outs = run_ranks(4, {4, 4, 4, 4}, secret, 20000);
  const std::string want(secret.begin(), secret.end());
  CHECK_EQ(outs.size(), size_t{4});
  for (const std::string& o : outs) CHECK(o == want);
}

TEST(rendezvous_mismatched_world_and_timeout_are_errors) {
  const std::vector<uint8_t> secret = {1, 2, 3, 4};
  // Rank 1 believes in a world of 3: rank 0 names the disagreement, rank 1 gets no answer.
  const std::vector<std::string> outs = run_ranks(2, {2, 3}, secret, 3000);
  CHECK(outs[0].find("ERR") == 0);
  CHECK(outs[0].find("says the world has 3 ranks") != std::string::npos);
  CHECK(outs[1].find("ERR") == 0);
  // Rank 0 alone in a world of 2: the deadline passes, naming the missing rank.
  const int port = free_port();
  const RankEnv e = env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"},
                            {"MASTER_PORT", std::to_string(port)}});
  std::string msg;
  try {
    sdt::dist::share_from_rank0(e, secret, 300);
  } catch (const std::runtime_error& ex) {
    msg = ex.what();
  }
  CHECK(msg.find("timed out waiting for rank(s) 1 of 2") != std::string::npos);
}
