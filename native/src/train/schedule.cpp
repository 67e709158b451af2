#include "train/schedule.h"

#include <algorithm>
#include <cmath>

namespace sdt::train {

double LrSchedule::lr_at(int64_t step) const {
  if (step < warmup_steps) {
    return peak_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  }
  const int64_t span = std::max<int64_t>(1, total_steps - warmup_steps - 1);
  const double p = std::clamp(static_cast<double>(step - warmup_steps) / static_cast<double>(span), 0.0, 1.0);
  return min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * p));
}

}  // namespace sdt::train
