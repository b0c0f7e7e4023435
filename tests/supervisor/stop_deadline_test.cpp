// stop_deadline (supervisor/src): the deadline of the stop in progress, one
// timer for a batch of stops. Driven by a manual clock and run_until_idle.

#include "stop_deadline.hpp"

#include "support/run_until_idle.hpp"

#include <backplane/supervisor/clock.hpp>

#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

namespace {

using backplane::manual_clock;
using backplane::detail::stop_deadline;
using backplane::test::run_until_idle;
using namespace std::chrono_literals;

/// A manual clock that counts the timers scheduled on it.
struct counting_clock final : backplane::supervisor_clock {
  manual_clock inner;
  int schedules = 0;
  [[nodiscard]] time_point now() const override { return inner.now(); }
  [[nodiscard]] std::unique_ptr<timer> schedule(time_point at, boost::asio::any_io_executor ex,
                                                std::function<void()> fn) override {
    ++schedules;
    return inner.schedule(at, std::move(ex), std::move(fn));
  }
  [[nodiscard]] std::size_t pending() const { return inner.pending(); }
};

/// A stop_deadline as its owner uses it: the timer's callback calls
/// timer_fired, and a passed deadline wakes the owner (counted here).
struct rig {
  boost::asio::io_context ctx;
  std::shared_ptr<counting_clock> clock = std::make_shared<counting_clock>();
  stop_deadline deadline{clock, ctx.get_executor()};
  int wakes = 0;

  auto make_fire() {
    return [this] { return [this] { fired(); }; };
  }
  void fired() {
    if (deadline.timer_fired(make_fire())) ++wakes;
  }
  void arm(std::optional<stop_deadline::time_point> at) { deadline.arm(at, make_fire()); }
  void advance(std::chrono::nanoseconds d) {
    clock->inner.advance(d);
    run_until_idle(ctx);
  }
};

TEST(StopDeadline, PassesAtItsTimeAndNotBefore) {
  rig r;
  r.arm(r.clock->now() + 5s);
  r.advance(4s);
  EXPECT_FALSE(r.deadline.passed());
  EXPECT_EQ(r.wakes, 0);
  r.advance(1s);
  EXPECT_TRUE(r.deadline.passed());
  EXPECT_EQ(r.wakes, 1);
}

TEST(StopDeadline, WithoutATimeNeverPasses) {
  rig r;
  r.arm(std::nullopt);
  EXPECT_EQ(r.clock->pending(), 0u);
  r.advance(1h);
  EXPECT_FALSE(r.deadline.passed());
}

TEST(StopDeadline, ABatchOfQuickStopsArmsOneTimer) {
  rig r;
  auto const t0 = r.clock->now();
  for (int i = 0; i < 100; ++i) {
    r.arm(t0 + 5s + std::chrono::milliseconds(i));  // each later than the first
    r.deadline.finish();                            // the child ended in time
  }
  EXPECT_EQ(r.clock->schedules, 1);
}

TEST(StopDeadline, AnEarlyTimerReArmsForTheDeadlineInForce) {
  rig r;
  auto const t0 = r.clock->now();
  r.arm(t0 + 1s);
  r.deadline.finish();
  r.arm(t0 + 3s);  // the timer for 1s is kept: it fires first
  EXPECT_EQ(r.clock->schedules, 1);
  r.advance(1s);  // fires early, re-arms for 3s
  EXPECT_FALSE(r.deadline.passed());
  EXPECT_EQ(r.clock->schedules, 2);
  EXPECT_EQ(r.clock->pending(), 1u);
  r.advance(2s);
  EXPECT_TRUE(r.deadline.passed());
  EXPECT_EQ(r.wakes, 1);
}

TEST(StopDeadline, AnEarlierDeadlineArmsAnEarlierTimer) {
  rig r;
  auto const t0 = r.clock->now();
  r.arm(t0 + 10s);
  r.deadline.finish();
  r.arm(t0 + 2s);
  EXPECT_EQ(r.clock->schedules, 2);
  r.advance(2s);
  EXPECT_TRUE(r.deadline.passed());
}

TEST(StopDeadline, AFinishedStopIsNotWokenByItsTimer) {
  rig r;
  r.arm(r.clock->now() + 1s);
  r.deadline.finish();
  r.advance(1s);
  EXPECT_FALSE(r.deadline.passed());
  EXPECT_EQ(r.wakes, 0);
  EXPECT_EQ(r.clock->pending(), 0u);  // nothing waits: not re-armed
}

TEST(StopDeadline, ClearDropsTheTimer) {
  rig r;
  r.arm(r.clock->now() + 1s);
  r.deadline.clear();
  EXPECT_EQ(r.clock->pending(), 0u);
  r.advance(1s);
  EXPECT_EQ(r.wakes, 0);
}

}  // namespace
