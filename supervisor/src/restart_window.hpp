#pragma once
// OTP's restart intensity in O(1): only the newest max_restarts + 1 restart
// times can decide whether more than max_restarts fall within the period,
// so a ring of that many replaces OTP's ever-growing list.

#include <backplane/supervisor/clock.hpp>

#include <cstdint>
#include <vector>

namespace backplane::detail {

class restart_window {
 public:
  using time_point = supervisor_clock::time_point;
  using duration = supervisor_clock::duration;

  restart_window(std::uint32_t max_restarts, duration period)
      : ring_(static_cast<std::size_t>(max_restarts) + 1), period_(period) {}

  /// Records a restart at `now`; true if that makes more than max_restarts
  /// within the period (OTP keeps restarts with now - t <= period).
  bool add(time_point now) noexcept {
    ring_[head_] = now;
    head_ = (head_ + 1) % ring_.size();
    if (size_ < ring_.size()) ++size_;
    // The oldest of the newest max+1 restarts is at head_ once the ring is full.
    return size_ == ring_.size() && now - ring_[head_] <= period_;
  }

  /// Restarts that still count at `now`.
  [[nodiscard]] std::uint32_t in_window(time_point now) const noexcept {
    std::uint32_t n = 0;
    for (std::size_t i = 0; i < size_; ++i)
      if (now - at(i) <= period_) ++n;
    return n;
  }

  /// Until the oldest restart that still counts leaves the window.
  [[nodiscard]] duration until_oldest_expires(time_point now) const noexcept {
    for (std::size_t i = 0; i < size_; ++i)
      if (now - at(i) <= period_) return at(i) + period_ - now;
    return duration::zero();
  }

  [[nodiscard]] std::uint32_t max_restarts() const noexcept {
    return static_cast<std::uint32_t>(ring_.size() - 1);
  }
  [[nodiscard]] duration period() const noexcept { return period_; }

 private:
  /// i-th oldest stored restart.
  [[nodiscard]] time_point at(std::size_t i) const noexcept {
    std::size_t oldest = (head_ + ring_.size() - size_) % ring_.size();
    return ring_[(oldest + i) % ring_.size()];
  }

  std::vector<time_point> ring_;
  duration period_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace backplane::detail
