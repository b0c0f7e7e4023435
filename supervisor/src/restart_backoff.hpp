#pragma once
// One child's backoff between restarts (child_spec::backoff): a delay that
// grows by `multiplier` with each restart in a row, up to `max`, jittered, and
// starts again from `initial` once the child has stayed up `reset_after`.
// One rule for the static and the dynamic supervisor.

#include <backplane/supervisor/child_spec.hpp>
#include <backplane/supervisor/clock.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

namespace backplane::detail {

class restart_backoff {
 public:
  using time_point = supervisor_clock::time_point;
  using duration = supervisor_clock::duration;

  /// The child started at `now`: its quiet time counts from here.
  void started(time_point now) noexcept { quiet_since_ = now; }

  /// The delay before the restart asked for at `now`, jittered with `rng`.
  /// A child quiet for `reset_after` since its last start starts again from
  /// `initial`; each delay counts as a restart in a row.
  [[nodiscard]] duration next(backoff_policy const& b, time_point now, std::minstd_rand& rng) {
    if (now - quiet_since_ >= b.reset_after) consecutive_ = 0;
    double base = static_cast<double>(b.initial.count()) *
                  std::pow(b.multiplier, static_cast<double>(consecutive_));
    base = std::min(base, static_cast<double>(b.max.count()));
    double factor = 1.0;
    if (b.jitter > 0) {
      std::uniform_real_distribution<double> dist(1.0 - b.jitter, 1.0 + b.jitter);
      factor = dist(rng);
    }
    // Below the nanosecond count's limit, whatever the policy's product.
    double const ns = std::min(base * factor, 9.0e18);
    auto const delay = duration(static_cast<std::int64_t>(ns));
    if (consecutive_ < std::numeric_limits<std::uint32_t>::max()) ++consecutive_;
    // A retry right after the attempt is not quiet; the next start resets this.
    quiet_since_ = now + delay;
    return delay;
  }

  /// Restarts in a row so far.
  [[nodiscard]] std::uint32_t in_a_row() const noexcept { return consecutive_; }

 private:
  std::uint32_t consecutive_ = 0;
  time_point quiet_since_{};
};

}  // namespace backplane::detail
