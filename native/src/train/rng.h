// SplitMix64: a tiny seeded generator whose whole state is one uint64, so it is saved in
// trainer_state.json and restored exactly on resume.
#pragma once

#include <cstdint>

namespace sdt::train {

struct SplitMix64 {
  uint64_t state = 0;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};

}  // namespace sdt::train
