// Stopping: reverse start order, one child at a time; a shutdown request,
// then cancellation after the timeout; brutal; infinity; a child that ignores
// even cancellation; children that end on their own meanwhile; who may stop
// a supervisor.

#include "supervisor/fixture.hpp"

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;

namespace {

using Shutdown = supervisor_fixture;

/// A child that never reads its mailbox (so it ignores shutdown requests)
/// and logs when it is cancelled.
child_spec stubborn(std::string id, std::vector<std::string>& log, shutdown_policy pol) {
  auto c = worker(id, [&log, id](device&) -> asio::awaitable<void> {
    log.push_back("start " + id);
    try {
      co_await forever();
    } catch (boost::system::system_error const&) {
      log.push_back("cancelled " + id);
      throw;
    }
  });
  c.shutdown = pol;
  return c;
}

TEST_F(Shutdown, ReverseStartOrder) {
  auto s = spec();
  s.children = {kids.spec("a"), kids.spec("b"), kids.spec("c"), kids.spec("d")};
  auto sup = start(std::move(s));
  kids.clear_log();
  auto exit = stop(sup);
  EXPECT_EQ(kids.log, (strings{"stop d", "stop c", "stop b", "stop a"}));
  EXPECT_FALSE(exit.fault);
  EXPECT_FALSE(exit.intensity_exceeded);
  // Clean stops are not errors: nothing reported.
  EXPECT_TRUE(events.empty());
}

TEST_F(Shutdown, OneAtATime) {
  // c ignores the request: b is not asked until c is gone.
  auto s = spec();
  s.children = {kids.spec("a"), kids.spec("b"),
                stubborn("c", kids.log, shutdown_policy::timeout(1s))};
  auto sup = start(std::move(s));
  kids.clear_log();
  bool stopped = false;
  sup.async_stop([&](auto, auto) { stopped = true; });
  idle();
  EXPECT_TRUE(kids.log.empty());
  EXPECT_FALSE(stopped);
  EXPECT_EQ(clock->pending(), 1u);  // c's deadline
  clock->advance(999ms);
  idle();
  EXPECT_TRUE(kids.log.empty());
  clock->advance(1ms);
  idle();
  EXPECT_EQ(kids.log, (strings{"cancelled c", "stop b", "stop a"}));
  EXPECT_TRUE(stopped);
}

TEST_F(Shutdown, IgnoringShutdownIsCancelledAfterTimeout) {
  auto s = spec();
  s.children = {stubborn("x", kids.log, shutdown_policy::timeout(250ms))};
  auto sup = start(std::move(s));
  device_id const x = info(sup, "x")->device.value();
  bool stopped = false;
  sup.async_stop([&](auto, supervisor_exit e) {
    EXPECT_FALSE(e.fault);
    stopped = true;
  });
  idle();
  clock->advance(250ms);
  idle();
  EXPECT_TRUE(stopped);
  EXPECT_EQ(kids.log, (strings{"start x", "cancelled x"}));
  auto errs = of_kind(supervisor_event_kind::shutdown_error);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].child, "x");
  EXPECT_EQ(errs[0].device, x);
  EXPECT_EQ(why(errs[0]), "shutdown_timeout: did not stop within 250ms of the shutdown request");
  EXPECT_EQ(decision(errs[0]), "cancel");
  EXPECT_EQ(clock->pending(), 0u);
}

TEST_F(Shutdown, ZeroTimeoutCancelsAtOnce) {
  auto s = spec();
  s.children = {stubborn("x", kids.log, shutdown_policy::timeout(0ms))};
  auto sup = start(std::move(s));
  stop(sup);
  EXPECT_EQ(kids.log, (strings{"start x", "cancelled x"}));
}

TEST_F(Shutdown, TerminateChildUsesTheSameTimeout) {
  auto s = spec();
  s.children = {stubborn("x", kids.log, shutdown_policy::timeout(1s))};
  auto sup = start(std::move(s));
  std::optional<boost::system::error_code> done;
  sup.async_terminate_child("x", [&](boost::system::error_code ec) { done = ec; });
  idle();
  EXPECT_FALSE(done);
  clock->advance(1s);
  idle();
  ASSERT_TRUE(done);
  EXPECT_FALSE(*done);
  EXPECT_EQ(info(sup, "x")->status, child_status::stopped);
  stop(sup);
}

TEST_F(Shutdown, BrutalCancelsWithoutAsking) {
  auto s = spec();
  auto b = kids.spec("b");
  b.shutdown = shutdown_policy::brutal();
  s.children = {kids.spec("a"), b};
  auto sup = start(std::move(s));
  kids.clear_log();
  stop(sup);
  // b's manage was cancelled (a panic), not asked (a power_off).
  EXPECT_EQ(kids.log, (strings{"kill b", "stop a"}));
  EXPECT_TRUE(of_kind(supervisor_event_kind::shutdown_error).empty());
}

TEST_F(Shutdown, InfinityWaits) {
  auto s = spec();
  s.children = {kids.spec("a"), stubborn("x", kids.log, shutdown_policy::infinity())};
  auto sup = start(std::move(s));
  kids.clear_log();
  bool stopped = false;
  sup.async_stop([&](auto, auto) { stopped = true; });
  idle();
  clock->advance(std::chrono::hours(24));
  idle();
  EXPECT_FALSE(stopped);
  EXPECT_TRUE(kids.log.empty());
  EXPECT_EQ(clock->pending(), 0u);  // no timer for infinity
}

TEST_F(Shutdown, IgnoringCancellationTooIsAbandoned) {
  // A child that survives its cancellation is unlinked and reported after a
  // grace period (its timeout), so the supervisor never hangs.
  auto s = spec();
  auto c = worker("deaf", [&](device&) -> asio::awaitable<void> {
    kids.log.push_back("start deaf");
    try {
      co_await forever();
    } catch (...) {
      kids.log.push_back("cancelled deaf");
    }
    co_await asio::this_coro::reset_cancellation_state();
    co_await forever();  // and never returns
  });
  c.shutdown = shutdown_policy::timeout(100ms);
  s.children = {kids.spec("a"), c};
  auto sup = start(std::move(s));
  bool stopped = false;
  sup.async_stop([&](auto, supervisor_exit e) {
    stopped = true;
    // Not clean: a child is left running.
    EXPECT_EQ(e.abandoned, (strings{"deaf"}));
    EXPECT_FALSE(e.fault);
  });
  idle();
  clock->advance(100ms);
  idle();
  EXPECT_FALSE(stopped);
  clock->advance(100ms);
  idle();
  EXPECT_TRUE(stopped);
  EXPECT_EQ(kids.log, (strings{"start a", "start deaf", "cancelled deaf", "stop a"}));
  auto errs = of_kind(supervisor_event_kind::shutdown_error);
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_EQ(decision(errs[0]), "cancel");
  EXPECT_EQ(decision(errs[1]), "abandon");
  EXPECT_EQ(why(errs[1]), "kill_timeout: ignored cancellation for 100ms");
}

TEST_F(Shutdown, ChildrenEndingOnTheirOwnAreNeitherRestartedNorWaitedFor) {
  auto s = spec();
  s.children = {kids.spec("a"), kids.spec("b"),
                stubborn("slow", kids.log, shutdown_policy::timeout(1s)), kids.spec("d")};
  auto sup = start(std::move(s));
  kids.clear_log();
  bool stopped = false;
  sup.async_stop([&](auto, auto) { stopped = true; });
  idle();
  EXPECT_EQ(kids.log, (strings{"stop d"}));  // slow holds up the rest
  kids.end("a", ending::error);              // a crashes meanwhile
  kids.end("b", ending::clean);              // b returns meanwhile
  idle();
  clock->advance(1s);
  idle();
  EXPECT_TRUE(stopped);
  EXPECT_EQ(kids.log, (strings{"stop d", "crash a", "end b", "cancelled slow"}));
  EXPECT_EQ(kids.starts["a"], 1);
  EXPECT_EQ(kids.starts["b"], 1);
  EXPECT_TRUE(of_kind(supervisor_event_kind::restarted).empty());
  // Reported as what they were, with no action.
  auto term = of_kind(supervisor_event_kind::child_terminated);
  ASSERT_EQ(term.size(), 2u);
  EXPECT_EQ(term[0].child, "a");
  EXPECT_EQ(why(term[0]), "error: 7");
  EXPECT_EQ(decision(term[0]), "none (supervisor stopping)");
  EXPECT_EQ(term[1].child, "b");
  EXPECT_EQ(why(term[1]), "clean");
}

TEST_F(Shutdown, ChildFaultingWhenAskedToStopIsReported) {
  // OTP's shutdown_error: asked to stop, the child ended with a fault of its own.
  auto s = spec();
  s.children = {worker("x", [](device& d) -> asio::awaitable<void> {
    (void)co_await d.async_receive(asio::use_awaitable);
    throw std::runtime_error("cleanup failed");
  })};
  auto sup = start(std::move(s));
  stop(sup);
  auto errs = of_kind(supervisor_event_kind::shutdown_error);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(why(errs[0]), "exception: std::runtime_error: cleanup failed");
  EXPECT_EQ(decision(errs[0]), "none");
}

TEST_F(Shutdown, ShutdownRequestToItsLineStopsCleanly) {
  // What a parent does.
  auto s = spec();
  s.children = {kids.spec("a"), kids.spec("b")};
  auto sup = start(std::move(s));
  kids.clear_log();
  device parent;
  EXPECT_TRUE(sup.line().request_shutdown(parent.id()));
  idle();
  EXPECT_EQ(kids.log, (strings{"stop b", "stop a"}));
  auto exit = ended(sup);
  ASSERT_TRUE(exit);
  EXPECT_FALSE(exit->fault);
  EXPECT_FALSE(sup.line().connected());
}

TEST_F(Shutdown, AFaultedLinkedParentStopsItWithACascade) {
  auto s = spec();
  s.children = {kids.spec("a")};
  auto sup = start(std::move(s));
  device parent;
  ASSERT_FALSE(parent.link_line(sup.line(), link_mode::peer));
  device_id const pid = parent.id();
  parent.disconnect(fault::error());
  idle();
  EXPECT_EQ(kids.log, (strings{"start a", "stop a"}));
  auto exit = ended(sup);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->fault, fault::cascade(pid));
}

TEST_F(Shutdown, ACleanlyExitingLinkedDeviceIsForgotten) {
  auto s = spec();
  s.children = {kids.spec("a")};
  auto sup = start(std::move(s));
  {
    device other;
    ASSERT_FALSE(other.link_line(sup.line(), link_mode::peer));
    other.disconnect();
  }
  idle();
  EXPECT_FALSE(ended(sup));
  stop(sup);
}

TEST_F(Shutdown, RunsOnWithoutHandles) {
  // Dropping every handle does not stop (or free) a running supervisor.
  auto s = spec();
  s.children = {kids.spec("a")};
  line l;
  {
    auto sup = start(std::move(s));
    l = sup.line();
  }
  idle();
  kids.end("a", ending::error);
  idle();
  EXPECT_EQ(kids.starts["a"], 2);
  EXPECT_TRUE(l.connected());
  device me;
  l.request_shutdown(me.id());
  idle();
  EXPECT_FALSE(l.connected());
  EXPECT_EQ(kids.log.back(), "stop a");
}

TEST_F(Shutdown, StopTwiceAndAfterTheEnd) {
  auto s = spec();
  s.children = {kids.spec("a")};
  auto sup = start(std::move(s));
  int done = 0;
  sup.async_stop([&](auto ec, auto) {
    EXPECT_FALSE(ec);
    ++done;
  });
  sup.async_stop([&](auto ec, auto) {
    EXPECT_FALSE(ec);
    ++done;
  });
  sup.async_wait([&](auto ec, auto) {
    EXPECT_FALSE(ec);
    ++done;
  });
  idle();
  EXPECT_EQ(done, 3);
  EXPECT_FALSE(stop(sup).fault);
}

TEST_F(Shutdown, CallsDuringShutdownSayDown) {
  auto s = spec();
  s.children = {stubborn("x", kids.log, shutdown_policy::timeout(1s))};
  auto sup = start(std::move(s));
  sup.async_stop([](auto, auto) {});
  idle();
  // Still stopping x.
  EXPECT_EQ(start_child(sup, kids.spec("y")).ec, supervisor_errc::supervisor_down);
  EXPECT_EQ(terminate_child(sup, "x"), supervisor_errc::supervisor_down);
  EXPECT_EQ(restart_child(sup, "x").ec, supervisor_errc::supervisor_down);
  EXPECT_EQ(delete_child(sup, "x"), supervisor_errc::supervisor_down);
  clock->advance(1s);
  idle();
  EXPECT_TRUE(ended(sup));
  EXPECT_EQ(counts(sup).ec, supervisor_errc::supervisor_down);
  EXPECT_EQ(budget(sup).ec, supervisor_errc::supervisor_down);
}

TEST_F(Shutdown, CallsQueuedBehindAShutdownAreAnswered) {
  // A call that reached the supervisor while it was busy, then found it
  // stopping, still gets an answer.
  auto s = spec();
  s.children = {kids.spec("a"), stubborn("x", kids.log, shutdown_policy::timeout(1s))};
  auto sup = start(std::move(s));
  std::vector<boost::system::error_code> answers;
  sup.async_terminate_child("x", [&](auto ec) { answers.push_back(ec); });  // busy for 1 s
  sup.async_terminate_child("a", [&](auto ec) { answers.push_back(ec); });  // queued
  idle();
  sup.async_stop([](auto, auto) {});
  idle();
  clock->advance(1s);
  idle();
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_FALSE(answers[0]);
  EXPECT_EQ(answers[1], supervisor_errc::supervisor_down);
  EXPECT_TRUE(ended(sup));
}

/// A child that, asked to stop, takes until the test releases it.
child_spec slow_to_stop(std::string id, std::vector<std::string>& log,
                        boost::asio::steady_timer& release) {
  auto c = worker(id, [&log, &release, id](device& d) -> asio::awaitable<void> {
    (void)co_await d.async_receive(asio::as_tuple(asio::use_awaitable));  // the request
    (void)co_await release.async_wait(asio::as_tuple(asio::use_awaitable));
    log.push_back("stop " + id);
  });
  c.shutdown = shutdown_policy::timeout(5s);
  return c;
}

/// A manual clock that counts the timers asked of it.
class counting_clock final : public supervisor_clock {
 public:
  explicit counting_clock(std::shared_ptr<manual_clock> inner) : inner_(std::move(inner)) {}
  [[nodiscard]] time_point now() const override { return inner_->now(); }
  [[nodiscard]] std::unique_ptr<timer> schedule(time_point at, boost::asio::any_io_executor ex,
                                                std::function<void()> fn) override {
    ++scheduled;
    return inner_->schedule(at, std::move(ex), std::move(fn));
  }
  int scheduled = 0;

 private:
  std::shared_ptr<manual_clock> inner_;
};

TEST_F(Shutdown, ABatchOfQuickStopsArmsOneDeadlineTimer) {
  auto counting = std::make_shared<counting_clock>(clock);
  auto s = spec();
  s.clock = counting;
  for (int i = 0; i < 10; ++i) s.children.push_back(kids.spec(fmt::format("k{}", i)));
  auto sup = start(std::move(s));
  kids.clear_log();
  auto exit = stop(sup);
  EXPECT_FALSE(exit.fault);
  EXPECT_EQ(kids.log.size(), 10u);
  // Ten stops with a 5 s timeout each, all quick: one timer, not ten, and
  // none left behind.
  EXPECT_EQ(counting->scheduled, 1);
  EXPECT_EQ(clock->pending(), 0u);
}

TEST_F(Shutdown, ALaterStopGetsItsWholeTimeoutFromTheSharedTimer) {
  // c takes 3 s to stop. b, asked at t = 3 s, must get its full 5 s (until
  // t = 8 s), although the timer armed for c's deadline fires at t = 5 s.
  boost::asio::steady_timer release(ctx, boost::asio::steady_timer::time_point::max());
  auto s = spec();
  s.children = {kids.spec("a"), stubborn("b", kids.log, shutdown_policy::timeout(5s)),
                slow_to_stop("c", kids.log, release)};
  auto sup = start(std::move(s));
  kids.clear_log();
  bool stopped = false;
  sup.async_stop([&](auto, auto) { stopped = true; });
  idle();
  EXPECT_EQ(clock->pending(), 1u);
  clock->advance(3s);
  release.cancel();
  idle();
  EXPECT_EQ(kids.log, (strings{"stop c"}));
  EXPECT_EQ(clock->pending(), 1u);  // still c's timer, not a second one
  clock->advance(2s);               // t = 5 s: c's deadline, not b's
  idle();
  EXPECT_EQ(kids.log, (strings{"stop c"}));
  EXPECT_TRUE(of_kind(supervisor_event_kind::shutdown_error).empty());
  EXPECT_EQ(clock->pending(), 1u);  // re-armed for b's deadline
  clock->advance(3s - 1ms);
  idle();
  EXPECT_EQ(kids.log, (strings{"stop c"}));
  clock->advance(1ms);  // t = 8 s
  idle();
  EXPECT_EQ(kids.log, (strings{"stop c", "cancelled b", "stop a"}));
  ASSERT_EQ(of_kind(supervisor_event_kind::shutdown_error).size(), 1u);
  EXPECT_EQ(of_kind(supervisor_event_kind::shutdown_error)[0].child, "b");
  EXPECT_TRUE(stopped);
  EXPECT_EQ(clock->pending(), 0u);
}

TEST(ShutdownSteadyClock, TimesOutForReal) {
  // The real clock's timers: a child that ignores its shutdown request is
  // cancelled once its (1 ms) timeout has passed. io_context::run returns once
  // everything has ended; nothing here measures time.
  boost::asio::io_context ctx;
  std::vector<std::string> log;
  supervisor_spec s;
  s.name = "real";
  s.logger =
      std::make_shared<spdlog::logger>("real", std::make_shared<spdlog::sinks::null_sink_mt>());
  s.children = {stubborn("x", log, shutdown_policy::timeout(1ms))};
  auto sup = supervisor::start(ctx.get_executor(), std::move(s));
  ASSERT_TRUE(sup);
  std::optional<supervisor_exit> exit;
  sup->async_stop([&](auto, supervisor_exit e) { exit = e; });
  ctx.run();
  ASSERT_TRUE(exit);
  EXPECT_FALSE(exit->fault);
  EXPECT_EQ(log, (strings{"start x", "cancelled x"}));
}

}  // namespace
