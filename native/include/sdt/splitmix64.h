// SplitMix64, the one seeded generator of the native side: its whole state is one uint64 (saved in
// trainer_state.json and restored exactly on resume) and its output is fully specified, so a seed
// reproduces weights, batches and sampling on every platform.
#pragma once

#include <cstdint>

namespace sdt {

// Advances `state` and returns the next 64 random bits.
inline uint64_t splitmix64_next(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct SplitMix64 {
  uint64_t state = 0;
  uint64_t next() { return splitmix64_next(state); }
};

}  // namespace sdt
