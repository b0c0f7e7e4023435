#pragma once
// OTP's restart intensity with O(1) amortised cost per restart: restart times
// arrive in order, so the ones older than the period leave from the front and
// never come back (each time is added once and dropped once), and a window
// holding more than max_restarts means the limit is exceeded. OTP keeps and
// walks the whole list instead.
//
// The ring grows with the restarts actually recorded (at most max_restarts + 1
// of them), never with the limit itself: max_restarts = 4'000'000'000 costs
// nothing until restarts happen.

#include <backplane/supervisor/clock.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace backplane::detail {

class restart_window {
 public:
  using time_point = supervisor_clock::time_point;
  using duration = supervisor_clock::duration;

  restart_window(std::uint32_t max_restarts, duration period)
      : max_(max_restarts), period_(period) {}

  /// Records a restart at `now`; true if that makes more than max_restarts
  /// within the period (OTP keeps restarts with now - t <= period).
  bool add(time_point now) {
    drop_expired(now);
    if (size_ > max_) pop_front();  // only after a refused restart; keeps size <= max + 1
    push_back(now);
    return size_ > max_;
  }

  /// Restarts that still count at `now`.
  [[nodiscard]] std::uint32_t in_window(time_point now) const noexcept {
    std::size_t i = 0;
    while (i < size_ && now - at(i) > period_) ++i;
    return static_cast<std::uint32_t>(size_ - i);
  }

  /// Until the oldest restart that still counts leaves the window.
  [[nodiscard]] duration until_oldest_expires(time_point now) const noexcept {
    for (std::size_t i = 0; i < size_; ++i)
      if (now - at(i) <= period_) return at(i) + period_ - now;
    return duration::zero();
  }

  [[nodiscard]] std::uint32_t max_restarts() const noexcept { return max_; }
  [[nodiscard]] duration period() const noexcept { return period_; }

 private:
  /// i-th oldest stored restart.
  [[nodiscard]] time_point at(std::size_t i) const noexcept {
    return ring_[(head_ + i) & (ring_.size() - 1)];
  }

  void drop_expired(time_point now) noexcept {
    while (size_ > 0 && now - at(0) > period_) pop_front();
  }

  void pop_front() noexcept {
    head_ = (head_ + 1) & (ring_.size() - 1);
    --size_;
  }

  void push_back(time_point t) {
    if (size_ == ring_.size()) grow();
    ring_[(head_ + size_) & (ring_.size() - 1)] = t;
    ++size_;
  }

  void grow() {
    // Power-of-two capacity so that indexing is a mask.
    std::vector<time_point> bigger(std::max<std::size_t>(4, ring_.size() * 2));
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = at(i);
    ring_ = std::move(bigger);
    head_ = 0;
  }

  std::vector<time_point> ring_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  std::uint32_t max_;
  duration period_;
};

}  // namespace backplane::detail
