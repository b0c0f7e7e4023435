#pragma once
// The deadline of the stop in progress, with one timer for a batch of stops.
// Stopping a group stops its children one after the other, each under its own
// deadline; most end long before it. So a timer armed for an earlier stop is
// kept while it falls due no later than the next stop's deadline: when it
// fires early, it re-arms for the deadline then in force. A batch of quick
// stops arms one timer, not one each. Private to src/.

#include <backplane/supervisor/clock.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <memory>
#include <optional>
#include <utility>

namespace backplane::detail {

class stop_deadline {
 public:
  using time_point = supervisor_clock::time_point;

  stop_deadline(std::shared_ptr<supervisor_clock> clock, boost::asio::any_io_executor ex)
      : clock_(std::move(clock)), ex_(std::move(ex)) {}

  /// A stop waits until `at`, or for as long as it takes (nullopt). When no
  /// armed timer falls due by `at`, one is scheduled to run `make_fire()` on
  /// the executor: a callable (the owner's lifetime guard around it) that
  /// must call timer_fired.
  template <class MakeFire>
  void arm(std::optional<time_point> at, MakeFire const& make_fire) {
    at_ = at;
    passed_ = false;
    if (!at || (timer_ && timer_at_ <= *at)) return;  // fires in time; re-arms then
    timer_at_ = *at;
    timer_ = clock_->schedule(*at, ex_, make_fire());
  }

  /// The armed timer ran (on the executor): true if the deadline in force
  /// has passed, which the waiting stop must hear. A timer armed for an
  /// earlier stop re-arms for the later deadline instead.
  template <class MakeFire>
  [[nodiscard]] bool timer_fired(MakeFire const& make_fire) {
    timer_.reset();  // from its own callback: safe
    if (!at_) return false;
    if (clock_->now() < *at_) {
      arm(at_, make_fire);
      return false;
    }
    passed_ = true;
    return true;
  }

  /// Whether the deadline of the stop in progress has passed.
  [[nodiscard]] bool passed() const noexcept { return passed_; }

  /// The stop is over: its deadline no longer counts. The timer stays armed
  /// for the next stop of the batch.
  void finish() noexcept {
    at_.reset();
    passed_ = false;
  }

  /// No stop is in progress, nor will one be soon: the timer goes too.
  void clear() noexcept {
    finish();
    timer_.reset();
  }

 private:
  std::shared_ptr<supervisor_clock> clock_;
  boost::asio::any_io_executor ex_;
  std::optional<time_point> at_;
  bool passed_ = false;
  std::unique_ptr<supervisor_clock::timer> timer_;
  time_point timer_at_{};
};

}  // namespace backplane::detail
