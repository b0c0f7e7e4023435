// async_run_service on a context the test drives by hand, with a manual clock: signals in the
// middle of a start and of a restart, a second signal, the stop deadline, and how the tree stops.

#include "children.hpp"

#include <backplane/service/run_service.hpp>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include <csignal>
#include <optional>

namespace {

using namespace backplane;
using namespace backplane::test;

class Signals : public ::testing::Test {
 protected:
  boost::asio::io_context ctx;
  std::shared_ptr<manual_clock> clock = std::make_shared<manual_clock>();
  std::optional<service_exit> status;
  std::vector<std::string> log;
  std::vector<supervisor_event> events;

  supervisor_spec spec() {
    auto s = root_spec(clock);
    s.observer = [this](supervisor_event const& e) { events.push_back(e); };
    return s;
  }

  void run(supervisor_spec s, std::chrono::nanoseconds deadline = std::chrono::seconds(30)) {
    service_options o;
    o.systemd = false;
    o.logger = muted_logger();
    o.stop_deadline = deadline;
    async_run_service(ctx, std::move(s), o, [this](service_exit e) { status = e; });
    run_until_idle(ctx);
  }

  std::size_t idle() { return run_until_idle(ctx); }
};

TEST_F(Signals, SigtermStopsChildrenInReverseOrder) {
  auto s = spec();
  s.children = {server("a", &log), server("b", &log), server("c", &log)};
  run(std::move(s));
  ASSERT_FALSE(status);
  EXPECT_EQ(log, (std::vector<std::string>{"start a", "start b", "start c"}));
  std::raise(SIGTERM);
  idle();
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, service_exit::clean);
  EXPECT_EQ(log, (std::vector<std::string>{"start a", "start b", "start c", "stop c", "stop b",
                                           "stop a"}));
}

TEST_F(Signals, SigtermDuringTheStartStopsOnceStarted) {
  // b's start function raises the signal: the start goes on (c starts too), then the whole
  // tree stops in reverse.
  auto s = spec();
  auto b = server("b", &log);
  auto start_b = b.start;
  b.start = [start_b](child_context& c) {
    std::raise(SIGTERM);
    return start_b(c);
  };
  s.children = {server("a", &log), b, server("c", &log)};
  run(std::move(s));
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, service_exit::clean);
  EXPECT_EQ(log, (std::vector<std::string>{"start a", "start b", "start c", "stop c", "stop b",
                                           "stop a"}));
}

TEST_F(Signals, SigtermDuringARestartBackoffStopsWithoutRestarting) {
  auto s = spec();
  auto flaky = crasher("flaky");
  flaky.backoff = backoff_policy{.initial = std::chrono::seconds(1), .jitter = 0};
  s.children = {server("a", &log), flaky};
  run(std::move(s));
  ASSERT_FALSE(status);
  // The crash has been reported and the restart waits for its backoff on the manual clock.
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].event, supervisor_event_kind::child_terminated);
  EXPECT_EQ(events[0].action, supervisor_action::restart);
  EXPECT_EQ(events[0].delay, std::chrono::nanoseconds(std::chrono::seconds(1)));
  std::raise(SIGTERM);
  idle();
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, service_exit::clean);
  clock->advance(std::chrono::seconds(2));
  idle();
  for (auto const& e : events) EXPECT_NE(e.event, supervisor_event_kind::restarted);
  EXPECT_EQ(log, (std::vector<std::string>{"start a", "stop a"}));
}

TEST_F(Signals, SecondSignalEndsAtOnceWithForced) {
  auto s = spec();
  s.children = {stubborn("a"), server("b", &log)};
  run(std::move(s));
  std::raise(SIGTERM);
  idle();
  // b has stopped; a ignores the request and the supervisor waits for it (infinity).
  EXPECT_EQ(log, (std::vector<std::string>{"start b", "stop b"}));
  ASSERT_FALSE(status);
  std::raise(SIGINT);
  idle();
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, service_exit::forced);
  release_wedged();  // the service gave up on the tree; end it so that it is freed
  idle();
}

TEST_F(Signals, StopDeadlineEndsWithDeadlineExceeded) {
  auto s = spec();
  s.children = {stubborn("a")};
  run(std::move(s), std::chrono::seconds(10));
  std::raise(SIGTERM);
  idle();
  ASSERT_FALSE(status);
  clock->advance(std::chrono::seconds(10) - std::chrono::nanoseconds(1));
  idle();
  ASSERT_FALSE(status);
  clock->advance(std::chrono::nanoseconds(1));
  idle();
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, service_exit::deadline_exceeded);
  release_wedged();  // the service gave up on the tree; end it so that it is freed
  idle();
}

TEST_F(Signals, CleanStopCancelsTheDeadline) {
  auto s = spec();
  s.children = {server("a", &log)};
  run(std::move(s), std::chrono::seconds(10));
  std::raise(SIGTERM);
  idle();
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, service_exit::clean);
  EXPECT_EQ(clock->pending(), 0U);
}

TEST_F(Signals, RootGivingUpEndsTheServiceWithoutASignal) {
  auto s = spec();
  s.max_restarts = 1;
  s.period = std::chrono::seconds(10);
  s.children = {server("a", &log), crasher("b")};
  run(std::move(s));
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, service_exit::gave_up);
  EXPECT_EQ(log, (std::vector<std::string>{"start a", "stop a"}));
}

TEST_F(Signals, FailedStartStopsTheStartedChildren) {
  auto s = spec();
  s.children = {server("a", &log), unstartable("db"), server("c", &log)};
  run(std::move(s));
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, service_exit::failed_start);
  idle();
  EXPECT_EQ(log, (std::vector<std::string>{"start a", "stop a"}));
}

}  // namespace

namespace {

using namespace backplane;
using namespace backplane::test;

TEST_F(Signals, SigtermAfterABackoffRestartStopsCleanly) {
  auto s = spec();
  auto web = worker("web", [](child_context& c) -> boost::asio::awaitable<work_result> {
    if (c.incarnation == 1) return crash_soon();
    return serve("web", nullptr);
  });
  web.backoff = backoff_policy{.initial = std::chrono::seconds(1), .jitter = 0};
  s.children = {server("a", &log), web};
  run(std::move(s));
  clock->advance(std::chrono::seconds(1));
  idle();
  ASSERT_EQ(events.back().event, supervisor_event_kind::restarted);
  std::raise(SIGTERM);
  idle();
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, service_exit::clean);
}

}  // namespace
