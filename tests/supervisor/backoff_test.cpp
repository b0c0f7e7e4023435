// Beyond OTP: per-child exponential restart backoff driven by the injectable
// clock, incarnation numbers, and late exits from old incarnations.

#include "supervisor/fixture.hpp"

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;

namespace {

using Backoff = supervisor_fixture;

backoff_policy exact(std::chrono::nanoseconds initial, std::chrono::nanoseconds max,
                     std::chrono::nanoseconds reset_after = 1h) {
  return backoff_policy{
      .initial = initial, .max = max, .multiplier = 2.0, .jitter = 0.0, .reset_after = reset_after};
}

TEST_F(Backoff, ExponentialDelaysWithoutJitter) {
  auto s = spec();
  s.max_restarts = 100;
  auto a = kids.spec("a");
  a.backoff = exact(100ms, 1s);
  s.children = {a, kids.spec("b")};
  auto sup = start(std::move(s));
  std::vector<std::chrono::milliseconds> const expected = {100ms, 200ms,  400ms,
                                                           800ms, 1000ms, 1000ms};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(i);
    kids.end("a", ending::error);
    idle();
    auto term = of_kind(supervisor_event_kind::child_terminated).back();
    EXPECT_EQ(term.action, supervisor_action::restart);
    EXPECT_EQ(term.delay, std::optional<std::chrono::nanoseconds>(expected[i]));
    EXPECT_EQ(info(sup, "a")->status, child_status::restarting);
    EXPECT_FALSE(info(sup, "a")->device);
    EXPECT_EQ(info(sup, "b")->status, child_status::running);
    clock->advance(expected[i] - 1ns);
    idle();
    EXPECT_FALSE(kids.running("a"));
    clock->advance(1ns);
    idle();
    EXPECT_TRUE(kids.running("a"));
    EXPECT_EQ(info(sup, "a")->incarnation, i + 2);
  }
  // Each restart counted when it was decided.
  EXPECT_EQ(budget(sup).value.restarts_in_window, expected.size());
  stop(sup);
}

TEST_F(Backoff, ResetsAfterAQuietPeriod) {
  auto s = spec();
  auto a = kids.spec("a");
  a.backoff = exact(100ms, 10s, /*reset_after*/ 5s);
  s.children = {a};
  s.period = 1s;  // so the intensity window never fills here
  auto sup = start(std::move(s));
  auto crash_and_delay = [&] {
    kids.end("a", ending::error);
    idle();
    return decision(of_kind(supervisor_event_kind::child_terminated).back());
  };
  EXPECT_EQ(crash_and_delay(), "restart in 100ms");
  clock->advance(100ms);
  idle();
  EXPECT_EQ(crash_and_delay(), "restart in 200ms");
  clock->advance(200ms);
  idle();
  clock->advance(5s - 1ns);  // not quite quiet long enough
  EXPECT_EQ(crash_and_delay(), "restart in 400ms");
  clock->advance(400ms);
  idle();
  clock->advance(5s);  // quiet for reset_after since its start: back to the start
  EXPECT_EQ(crash_and_delay(), "restart in 100ms");
  clock->advance(100ms);
  idle();
  EXPECT_TRUE(kids.running("a"));
  stop(sup);
}

TEST_F(Backoff, JitterStaysWithinItsBounds) {
  auto s = spec();
  auto a = kids.spec("a");
  a.backoff = backoff_policy{
      .initial = 100ms, .max = 1s, .multiplier = 2.0, .jitter = 0.2, .reset_after = 1h};
  s.children = {a};
  auto sup = start(std::move(s));
  kids.end("a", ending::error);
  idle();
  clock->advance(80ms - 1ns);  // the shortest possible delay is 80 ms
  idle();
  EXPECT_FALSE(kids.running("a"));
  clock->advance(40ms + 1ns);  // the longest is 120 ms
  idle();
  EXPECT_TRUE(kids.running("a"));
  stop(sup);
}

TEST_F(Backoff, FailedStartsBackOffToo) {
  // A start that keeps failing is retried after growing delays, each try
  // counted toward intensity.
  int fail = 0;
  auto s = spec();
  s.max_restarts = 10;
  auto inner = kids.spec("a");
  auto a = inner;
  a.start = [&, st = inner.start](child_context& c) -> start_result {
    if (fail > 0) {
      --fail;
      return start_error{"unavailable"};
    }
    return st(c);
  };
  a.backoff = exact(100ms, 10s);
  s.children = {a};
  auto sup = start(std::move(s));
  fail = 2;
  kids.end("a", ending::error);
  idle();
  clock->advance(100ms);
  idle();
  clock->advance(200ms);
  idle();
  clock->advance(400ms - 1ns);
  idle();
  EXPECT_FALSE(kids.running("a"));
  clock->advance(1ns);
  idle();
  EXPECT_TRUE(kids.running("a"));
  strings actions;
  for (auto const& e : of_child("a"))
    actions.push_back(std::string(to_string(e.event)) + " " + decision(e));
  EXPECT_EQ(actions, (strings{"child_terminated restart in 100ms", "start_error retry in 200ms",
                              "start_error retry in 400ms", "restarted none"}));
  EXPECT_EQ(budget(sup).value.restarts_in_window, 3u);
  stop(sup);
}

TEST_F(Backoff, OneForAllWaitsAsAGroup) {
  auto s = spec();
  s.strategy = restart_strategy::one_for_all;
  auto a = kids.spec("a");
  a.backoff = exact(1s, 1s);
  s.children = {a, kids.spec("b")};
  auto sup = start(std::move(s));
  kids.clear_log();
  kids.end("a", ending::error);
  idle();
  EXPECT_EQ(kids.log, (strings{"crash a", "stop b"}));
  for (auto const& c : which(sup)) EXPECT_EQ(c.status, child_status::restarting) << c.id;
  clock->advance(1s);
  idle();
  EXPECT_EQ(kids.log, (strings{"crash a", "stop b", "start a", "start b"}));
  stop(sup);
}

TEST_F(Backoff, AGroupRestartOvertakesAPendingBackoff) {
  // rest_for_one: c waits out its backoff when a crashes; a's restart takes c
  // along at once, and c's own timer must not start it a second time.
  auto s = spec();
  s.strategy = restart_strategy::rest_for_one;
  auto c = kids.spec("c");
  c.backoff = exact(1s, 1s);
  s.children = {kids.spec("a"), kids.spec("b"), c};
  auto sup = start(std::move(s));
  kids.end("c", ending::error);
  idle();
  EXPECT_EQ(info(sup, "c")->status, child_status::restarting);
  kids.clear_log();
  kids.end("a", ending::error);
  idle();
  EXPECT_EQ(kids.log, (strings{"crash a", "stop b", "start a", "start b", "start c"}));
  EXPECT_EQ(clock->pending(), 0u);
  clock->advance(1s);
  idle();
  EXPECT_EQ(kids.starts["c"], 2);
  EXPECT_EQ(info(sup, "c")->incarnation, 2u);
  stop(sup);
}

TEST_F(Backoff, TerminateChildCancelsAPendingRestart) {
  auto s = spec();
  auto a = kids.spec("a");
  a.backoff = exact(1s, 1s);
  s.children = {a};
  auto sup = start(std::move(s));
  kids.end("a", ending::error);
  idle();
  EXPECT_EQ(restart_child(sup, "a").ec, supervisor_errc::restarting);
  EXPECT_EQ(delete_child(sup, "a"), supervisor_errc::restarting);
  // OTP: a child waiting to restart is present (not running).
  EXPECT_EQ(start_child(sup, kids.spec("a")).ec, supervisor_errc::already_present);
  ASSERT_FALSE(terminate_child(sup, "a"));
  EXPECT_EQ(info(sup, "a")->status, child_status::stopped);
  EXPECT_EQ(clock->pending(), 0u);
  clock->advance(2s);
  idle();
  EXPECT_EQ(kids.starts["a"], 1);
  stop(sup);
}

TEST_F(Backoff, StoppingCancelsAPendingRestart) {
  auto s = spec();
  auto a = kids.spec("a");
  a.backoff = exact(1s, 1s);
  s.children = {a};
  auto sup = start(std::move(s));
  kids.end("a", ending::error);
  idle();
  EXPECT_EQ(clock->pending(), 1u);
  stop(sup);
  EXPECT_EQ(clock->pending(), 0u);
  clock->advance(2s);
  idle();
  EXPECT_EQ(kids.starts["a"], 1);
}

TEST_F(Backoff, IncarnationNumbers) {
  std::vector<std::uint64_t> seen;
  auto s = spec();
  s.max_restarts = 10;
  s.children = {worker("a", [&](child_context& c) -> asio::awaitable<void> {
    seen.push_back(c.incarnation);
    if (c.incarnation < 4) throw std::runtime_error("not yet");
    co_await manage(std::move(c.device), forever_result());
  })};
  auto sup = start(std::move(s));
  EXPECT_EQ(seen, (std::vector<std::uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(info(sup, "a")->incarnation, 4u);
  std::vector<std::uint64_t> reported;
  for (auto const& e : of_kind(supervisor_event_kind::child_terminated))
    reported.push_back(e.incarnation);
  EXPECT_EQ(reported, (std::vector<std::uint64_t>{1, 2, 3}));
  std::vector<std::uint64_t> restarted;
  for (auto const& e : of_kind(supervisor_event_kind::restarted))
    restarted.push_back(e.incarnation);
  EXPECT_EQ(restarted, (std::vector<std::uint64_t>{2, 3, 4}));
  // terminate + restart_child: a new incarnation too.
  ASSERT_FALSE(terminate_child(sup, "a"));
  ASSERT_FALSE(restart_child(sup, "a").ec);
  EXPECT_EQ(info(sup, "a")->incarnation, 5u);
  stop(sup);
}

TEST_F(Backoff, LateExitFromAnOldIncarnationIsIgnored) {
  // one_for_all: a and b crash together. a's restart replaces b too; b's old
  // exit, heard while c is being stopped and decided afterwards, must not
  // restart b again nor count. (Had b's exit come while the supervisor waited
  // for b itself, it would be a shutdown_error, as in OTP.)
  auto s = spec();
  s.strategy = restart_strategy::one_for_all;
  s.children = {kids.spec("a"), kids.spec("b"), kids.spec("c")};
  auto sup = start(std::move(s));
  device_id const old_b = info(sup, "b")->device.value();
  kids.end("a", ending::error);
  kids.end("b", ending::exception);
  idle();
  EXPECT_EQ(kids.starts["a"], 2);
  EXPECT_EQ(kids.starts["b"], 2);
  EXPECT_EQ(kids.starts["c"], 2);
  EXPECT_EQ(info(sup, "b")->incarnation, 2u);
  EXPECT_EQ(budget(sup).value.restarts_in_window, 1u);
  auto b_events = of_child("b");
  ASSERT_EQ(b_events.size(), 2u);
  EXPECT_EQ(b_events[0].event, supervisor_event_kind::restarted);
  EXPECT_EQ(b_events[1].event, supervisor_event_kind::child_terminated);
  EXPECT_EQ(b_events[1].device, old_b);
  EXPECT_EQ(b_events[1].incarnation, 1u);
  EXPECT_EQ(why(b_events[1]), "exception: std::runtime_error: boom");
  EXPECT_EQ(decision(b_events[1]), "none (restarted with its group)");
  stop(sup);
}

TEST_F(Backoff, ExitOfATemporaryDroppedByItsGroupIsIgnored) {
  auto s = spec();
  s.strategy = restart_strategy::one_for_all;
  s.children = {kids.spec("a"), kids.spec("t", restart_type::temporary), kids.spec("b")};
  auto sup = start(std::move(s));
  kids.end("a", ending::error);
  kids.end("t", ending::error);
  idle();
  EXPECT_EQ(ids(sup), (strings{"a", "b"}));
  EXPECT_EQ(kids.starts["t"], 1);
  EXPECT_EQ(decision(of_child("t").back()), "none (spec removed)");
  stop(sup);
}

TEST(ManualClock, RunsWhatFallsDueInDeadlineOrder) {
  boost::asio::io_context ctx;
  manual_clock clock;
  std::vector<int> ran;
  auto const t0 = clock.now();
  auto late = clock.schedule(t0 + 2s, ctx.get_executor(), [&] { ran.push_back(2); });
  auto early = clock.schedule(t0 + 1s, ctx.get_executor(), [&] { ran.push_back(1); });
  auto dropped = clock.schedule(t0 + 1s, ctx.get_executor(), [&] { ran.push_back(99); });
  EXPECT_EQ(clock.pending(), 3u);
  dropped.reset();  // destroying a timer cancels it
  EXPECT_EQ(clock.pending(), 2u);
  clock.advance(1500ms);
  EXPECT_EQ(clock.now(), t0 + 1500ms);
  run_until_idle(ctx);
  EXPECT_EQ(ran, (std::vector<int>{1}));
  clock.advance(10s);
  run_until_idle(ctx);
  EXPECT_EQ(ran, (std::vector<int>{1, 2}));
  EXPECT_EQ(clock.pending(), 0u);
  // Due already: posted at once.
  auto now = clock.schedule(clock.now(), ctx.get_executor(), [&] { ran.push_back(3); });
  run_until_idle(ctx);
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3}));
}

TEST(ManualClock, ATimerDestroyedAfterFallingDueButBeforeRunningDoesNotRun) {
  boost::asio::io_context ctx;
  manual_clock clock;
  bool ran = false;
  auto t = clock.schedule(clock.now() + 1s, ctx.get_executor(), [&] { ran = true; });
  clock.advance(1s);  // posted, not run yet
  t.reset();
  run_until_idle(ctx);
  EXPECT_FALSE(ran);
}

TEST(ManualClock, ACancelledTimerReleasesItsCallbackAtOnce) {
  // A callback that owns (a shared_ptr to) whoever owns the clock must not
  // outlive its cancelled timer: that cycle leaked a whole service (ASan).
  boost::asio::io_context ctx;
  manual_clock clock;
  auto owned = std::make_shared<int>(0);
  std::weak_ptr<int> watch = owned;
  auto t = clock.schedule(clock.now() + 1h, ctx.get_executor(), [owned] { ++*owned; });
  owned.reset();
  EXPECT_FALSE(watch.expired()) << "the pending callback holds it";
  t.reset();
  EXPECT_TRUE(watch.expired()) << "a cancelled callback kept what it captured until its time";
  EXPECT_EQ(clock.pending(), 0u);
  // A callback whose destruction schedules on the same clock does not deadlock.
  struct reschedules {
    reschedules(manual_clock* clk, boost::asio::io_context* io) : c(clk), x(io) {}
    reschedules(reschedules const&) = delete;
    manual_clock* c;
    boost::asio::io_context* x;
    ~reschedules() {
      if (c) (void)c->schedule(c->now() + 1s, x->get_executor(), [] {});
    }
  };
  auto r = std::make_shared<reschedules>(&clock, &ctx);
  auto t2 = clock.schedule(clock.now() + 1h, ctx.get_executor(), [r] {});
  r.reset();
  t2.reset();
  run_until_idle(ctx);
}

}  // namespace
