#include "ranks/rendezvous.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

namespace sdt::dist {
namespace {

constexpr uint32_t kMagic = 0x52544453u;  // "SDTR"
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxPayload = 1u << 20;

using Clock = std::chrono::steady_clock;

int parse_int(const char* name, const char* v, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  if (!*v || !end || *end || errno || x < lo || x > hi)
    throw std::invalid_argument(std::string(name) + "=\"" + v + "\" is not an integer in [" + std::to_string(lo) +
                                ", " + std::to_string(hi) + "]");
  return static_cast<int>(x);
}

class Socket {
 public:
  explicit Socket(int fd = -1) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(Socket&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Socket& operator=(Socket&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

int ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Waits for `events` on fd until the deadline; false when it passed.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, ms_left(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) throw std::runtime_error(std::string("rendezvous: poll failed: ") + std::strerror(errno));
  }
}

// Reads exactly n bytes; false on end of stream or the deadline.
bool read_all(int fd, void* buf, size_t n, Clock::time_point deadline) {
  auto* p = static_cast<uint8_t*>(buf);
  while (n > 0) {
    if (!wait_for(fd, POLLIN, deadline)) return false;
    const ssize_t r = ::recv(fd, p, n, 0);
    if (r == 0) return false;
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

void write_all(int fd, const void* buf, size_t n, const std::string& to) {
  const auto* p = static_cast<const uint8_t*>(buf);
  while (n > 0) {
    const ssize_t r = ::send(fd, p, n, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("rendezvous: sending to " + to + " failed: " + std::strerror(errno));
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
}

std::string where(const RankEnv& env) { return env.master_addr + ":" + std::to_string(env.master_port); }

struct Hello {
  uint32_t magic, version;
  int32_t rank, world;
};

std::vector<uint8_t> serve(const RankEnv& env, const std::vector<uint8_t>& payload, Clock::time_point deadline) {
  Socket listener(::socket(AF_INET, SOCK_STREAM, 0));
  if (listener.fd() < 0) throw std::runtime_error(std::string("rendezvous: socket: ") + std::strerror(errno));
  const int one = 1;
  ::setsockopt(listener.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(static_cast<uint16_t>(env.master_port));
  if (::bind(listener.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error("rendezvous: rank 0 cannot listen on port " + std::to_string(env.master_port) + ": " +
                             std::strerror(errno) + " (set MASTER_PORT to a free port)");
  if (::listen(listener.fd(), env.world_size) != 0)
    throw std::runtime_error(std::string("rendezvous: listen: ") + std::strerror(errno));

  std::vector<Socket> peers(static_cast<size_t>(env.world_size));
  int joined = 1;  // rank 0 itself
  while (joined < env.world_size) {
    if (!wait_for(listener.fd(), POLLIN, deadline)) {
      std::string missing;
      for (int r = 1; r < env.world_size; ++r)
        if (peers[static_cast<size_t>(r)].fd() < 0) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
      throw std::runtime_error("rendezvous: rank 0 on " + where(env) + " timed out waiting for rank(s) " + missing +
                               " of " + std::to_string(env.world_size));
    }
    Socket peer(::accept(listener.fd(), nullptr, nullptr));
    if (peer.fd() < 0) continue;
    Hello h{};
    if (!read_all(peer.fd(), &h, sizeof h, deadline) || h.magic != kMagic || h.version != kVersion)
      continue;  // not one of ours (a port scanner, a stale peer): ignore it
    if (h.world != env.world_size)
      throw std::runtime_error("rendezvous: rank " + std::to_string(h.rank) + " says the world has " +
                               std::to_string(h.world) + " ranks, rank 0 has WORLD_SIZE=" +
                               std::to_string(env.world_size));
    if (h.rank <= 0 || h.rank >= env.world_size)
      throw std::runtime_error("rendezvous: a peer claims rank " + std::to_string(h.rank) + ", outside [1, " +
                               std::to_string(env.world_size) + ")");
    Socket& slot = peers[static_cast<size_t>(h.rank)];
    if (slot.fd() >= 0)
      throw std::runtime_error("rendezvous: rank " + std::to_string(h.rank) + " joined twice (two processes with RANK=" +
                               std::to_string(h.rank) + ")");
    slot = std::move(peer);
    ++joined;
  }
  // Everyone is here: the reply doubles as the barrier.
  const uint32_t head[2] = {kMagic, static_cast<uint32_t>(payload.size())};
  for (int r = 1; r < env.world_size; ++r) {
    const std::string to = "rank " + std::to_string(r);
    write_all(peers[static_cast<size_t>(r)].fd(), head, sizeof head, to);
    write_all(peers[static_cast<size_t>(r)].fd(), payload.data(), payload.size(), to);
  }
  return payload;
}

Socket connect_to(const RankEnv& env, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(env.master_port);
  const int err = ::getaddrinfo(env.master_addr.c_str(), port.c_str(), &hints, &found);
  if (err != 0)
    throw std::runtime_error("rendezvous: MASTER_ADDR=" + env.master_addr + " does not resolve: " + gai_strerror(err));
  const sockaddr_in target = *reinterpret_cast<const sockaddr_in*>(found->ai_addr);
  ::freeaddrinfo(found);
  // Rank 0 may not be listening yet: retry until the deadline.
  for (;;) {
    Socket s(::socket(AF_INET, SOCK_STREAM, 0));
    if (s.fd() < 0) throw std::runtime_error(std::string("rendezvous: socket: ") + std::strerror(errno));
    if (::connect(s.fd(), reinterpret_cast<const sockaddr*>(&target), sizeof target) == 0) return s;
    if (ms_left(deadline) == 0)
      throw std::runtime_error("rendezvous: rank " + std::to_string(env.rank) + " could not reach rank 0 at " +
                               where(env) + ": " + std::strerror(errno));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::vector<uint8_t> join(const RankEnv& env, Clock::time_point deadline) {
  Socket s = connect_to(env, deadline);
  const int one = 1;
  ::setsockopt(s.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const Hello h{kMagic, kVersion, env.rank, env.world_size};
  write_all(s.fd(), &h, sizeof h, "rank 0 at " + where(env));
  uint32_t head[2] = {};
  if (!read_all(s.fd(), head, sizeof head, deadline) || head[0] != kMagic || head[1] > kMaxPayload)
    throw std::runtime_error("rendezvous: rank " + std::to_string(env.rank) + " got no answer from rank 0 at " +
                             where(env) + " (it stopped, or not every rank joined before the deadline)");
  std::vector<uint8_t> payload(head[1]);
  if (!read_all(s.fd(), payload.data(), payload.size(), deadline))
    throw std::runtime_error("rendezvous: rank " + std::to_string(env.rank) + ": rank 0's message was cut short");
  return payload;
}

}  // namespace

RankEnv rank_env_from(const std::function<const char*(const char*)>& get) {
  RankEnv e;
  auto need = [&](const char* name, const char* because) -> const char* {
    const char* v = get(name);
    if (!v) throw std::invalid_argument(std::string(name) + " is not set (" + because + ")");
    return v;
  };
  if (get("RANK")) {
    e.source = "torchrun";
    e.rank = parse_int("RANK", get("RANK"), 0, 1 << 20);
    e.world_size = parse_int("WORLD_SIZE", need("WORLD_SIZE", "RANK is"), 1, 1 << 20);
    e.local_rank = get("LOCAL_RANK") ? parse_int("LOCAL_RANK", get("LOCAL_RANK"), 0, 1 << 10) : 0;
  } else if (get("SLURM_PROCID")) {
    e.source = "slurm";
    e.rank = parse_int("SLURM_PROCID", get("SLURM_PROCID"), 0, 1 << 20);
    e.world_size = parse_int("SLURM_NTASKS", need("SLURM_NTASKS", "SLURM_PROCID is"), 1, 1 << 20);
    e.local_rank = get("SLURM_LOCALID") ? parse_int("SLURM_LOCALID", get("SLURM_LOCALID"), 0, 1 << 10) : 0;
  } else if (get("WORLD_SIZE") && parse_int("WORLD_SIZE", get("WORLD_SIZE"), 1, 1 << 20) > 1) {
    throw std::invalid_argument("WORLD_SIZE is set but RANK is not: set RANK (0 .. WORLD_SIZE-1) for each process");
  }
  if (e.rank >= e.world_size)
    throw std::invalid_argument("rank " + std::to_string(e.rank) + " (from " + e.source +
                                " variables) is not below the world size " + std::to_string(e.world_size));
  if (const char* port = get("MASTER_PORT")) e.master_port = parse_int("MASTER_PORT", port, 1, 65535);
  if (const char* addr = get("MASTER_ADDR")) e.master_addr = addr;
  if (e.world_size > 1 && e.master_addr.empty())
    (void)need("MASTER_ADDR", "a world of more than one rank needs rank 0's host");
  return e;
}

RankEnv rank_env() {
  return rank_env_from([](const char* name) { return static_cast<const char*>(std::getenv(name)); });
}

std::vector<uint8_t> share_from_rank0(const RankEnv& env, const std::vector<uint8_t>& payload, int timeout_ms) {
  if (env.world_size <= 1) return payload;
  if (payload.size() > kMaxPayload) throw std::invalid_argument("rendezvous: payload larger than 1 MiB");
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  return env.rank == 0 ? serve(env, payload, deadline) : join(env, deadline);
}

}  // namespace sdt::dist
