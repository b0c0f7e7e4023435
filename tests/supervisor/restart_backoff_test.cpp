// restart_backoff (supervisor/src): one child's delay between restarts, as the
// static and the dynamic supervisor both compute it. Time is given by hand.

#include "restart_backoff.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <random>

namespace {

using backplane::backoff_policy;
using backplane::detail::restart_backoff;
using namespace std::chrono_literals;
using time_point = restart_backoff::time_point;

backoff_policy no_jitter() {
  backoff_policy b;
  b.initial = 100ms;
  b.max = 1s;
  b.multiplier = 2.0;
  b.jitter = 0.0;
  b.reset_after = 30s;
  return b;
}

TEST(RestartBackoff, GrowsByTheMultiplierUpToMax) {
  restart_backoff r;
  std::minstd_rand rng(1);
  auto const b = no_jitter();
  time_point now{};
  now += 1min;  // past reset_after since the epoch: the first delay is `initial`
  r.started(now);
  std::chrono::nanoseconds const expected[] = {100ms, 200ms, 400ms, 800ms, 1s, 1s};
  for (auto e : expected) {
    auto const d = r.next(b, now, rng);
    EXPECT_EQ(d, e);
    now += d;  // each restart fails at once: never quiet
  }
  EXPECT_EQ(r.in_a_row(), 6u);
}

TEST(RestartBackoff, StartsAgainFromInitialAfterAQuietPeriod) {
  restart_backoff r;
  std::minstd_rand rng(1);
  auto const b = no_jitter();
  time_point now{};
  r.started(now);
  EXPECT_EQ(r.next(b, now, rng), 100ms);
  now += 100ms;
  r.started(now);
  EXPECT_EQ(r.next(b, now + 1s, rng), 200ms);  // up 1 s: not quiet long enough
  now += 1s + 200ms;
  r.started(now);
  now += 30s;  // up reset_after since its last start
  EXPECT_EQ(r.next(b, now, rng), 100ms);
  EXPECT_EQ(r.in_a_row(), 1u);
}

TEST(RestartBackoff, ARetryRightAfterTheDelayIsNotQuiet) {
  restart_backoff r;
  std::minstd_rand rng(1);
  auto b = no_jitter();
  b.reset_after = 150ms;  // shorter than the second delay
  time_point now{};
  r.started(now);
  auto d = r.next(b, now, rng);  // 100ms
  now += d;                      // the retry, whose start fails
  d = r.next(b, now, rng);       // counted from the attempt, not the last start
  EXPECT_EQ(d, 200ms);
}

TEST(RestartBackoff, JitterStaysWithinItsBounds) {
  restart_backoff r;
  std::minstd_rand rng(7);
  auto b = no_jitter();
  b.jitter = 0.2;
  b.multiplier = 1.0;  // every delay is `initial`, jittered
  time_point now{};
  bool varied = false;
  std::chrono::nanoseconds first{};
  for (int i = 0; i < 200; ++i) {
    auto const d = r.next(b, now, rng);
    EXPECT_GE(d, 80ms);
    EXPECT_LE(d, 120ms);
    if (i == 0) first = d;
    varied = varied || d != first;
  }
  EXPECT_TRUE(varied);
}

TEST(RestartBackoff, AHugePolicySaturatesInsteadOfOverflowing) {
  restart_backoff r;
  std::minstd_rand rng(1);
  backoff_policy b;
  b.initial = std::chrono::hours(24 * 365 * 200);
  b.max = std::chrono::nanoseconds::max();
  b.multiplier = 1e300;
  b.jitter = 1.0;
  time_point now{};
  for (int i = 0; i < 5; ++i) {
    auto const d = r.next(b, now, rng);
    EXPECT_GE(d.count(), 0);
  }
}

}  // namespace
