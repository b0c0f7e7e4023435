#pragma once
// clock: the supervisor's sense of time, injectable so that tests move it by hand.

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace backplane {

/// The time source behind restart intensity, backoff and shutdown timeouts.
///
/// Thread-safety: `now` and `schedule` may be called from any thread.
class supervisor_clock {
 public:
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<std::chrono::steady_clock, duration>;

  /// Cancels a scheduled callback when destroyed or reset (if it has not run).
  class timer {
   public:
    virtual ~timer() = default;
  };

  virtual ~supervisor_clock() = default;
  [[nodiscard]] virtual time_point now() const = 0;
  /// Runs `fn` on `ex` (posted) once `now() >= at`. Destroying the returned
  /// timer before then cancels it; `fn` is then never run.
  [[nodiscard]] virtual std::unique_ptr<timer> schedule(time_point at,
                                                        boost::asio::any_io_executor ex,
                                                        std::function<void()> fn) = 0;
};

/// The real clock: std::chrono::steady_clock and Asio steady timers.
[[nodiscard]] std::shared_ptr<supervisor_clock> steady_supervisor_clock();

/// A clock that only moves when told to. `advance` runs (posts) every
/// callback that falls due, in deadline order.
///
/// Thread-safety: every member may be called from any thread.
class manual_clock final : public supervisor_clock {
 public:
  manual_clock();
  ~manual_clock() override;
  [[nodiscard]] time_point now() const override;
  [[nodiscard]] std::unique_ptr<timer> schedule(time_point at, boost::asio::any_io_executor ex,
                                                std::function<void()> fn) override;
  /// Moves time forward by `d` and posts the callbacks that fall due.
  void advance(duration d);
  /// How many callbacks wait for a later time.
  [[nodiscard]] std::size_t pending() const;

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace backplane
