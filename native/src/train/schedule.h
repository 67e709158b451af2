// Learning-rate schedule: linear warm-up then cosine decay to a floor.
#pragma once

#include <cstdint>

namespace sdt::train {

struct LrSchedule {
  double peak_lr = 3e-4;
  double min_lr = 3e-5;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  // Learning rate for the update made at 0-based step `step`:
  //   step < warmup:  peak * (step + 1) / warmup        (never 0, so the first update moves)
  //   afterwards:     min + (peak - min) * (1 + cos(pi * p)) / 2,
  //                   p = (step - warmup) / max(1, total - warmup - 1), clamped to [0, 1]
  // so the last step (total - 1) runs at exactly min_lr.
  double lr_at(int64_t step) const;
};

}  // namespace sdt::train
