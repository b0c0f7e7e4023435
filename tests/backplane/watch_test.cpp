// watch: the same work across several messages, the message's priority, and
// what cancelling a watch leaves behind.

#include "support/run_until_idle.hpp"

#include <backplane/backplane.hpp>

#include <gtest/gtest.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace backplane;
using backplane::test::run_until_idle;
using backplane::test::start;

/// Counts its starts, then finishes with 7 when `gate` receives anything.
asio::awaitable<int> gated(device& gate, int& starts) {
  ++starts;
  (void)co_await gate.async_receive(asio::use_awaitable);
  co_return 7;
}

asio::awaitable<int> immediate(int v) { co_return v; }

/// Watches until the work ends, keeping everything it saw.
asio::awaitable<void> watch_to_the_end(device& d, work<int>& w, std::vector<watched<int>>& seen) {
  for (;;) {
    auto r = co_await watch(d, w);
    bool last = !r.is_message();
    seen.push_back(std::move(r));
    if (last) co_return;
  }
}

TEST(Watch, ContinuesTheSameWorkAcrossMessages) {
  asio::io_context ctx;
  device d;
  device gate;
  int starts = 0;
  work<int> w(gated(gate, starts));
  EXPECT_FALSE(w.started());
  std::vector<watched<int>> seen;
  auto o = start(ctx, watch_to_the_end(d, w, seen));
  run_until_idle(ctx);
  EXPECT_TRUE(w.started());
  EXPECT_EQ(starts, 1);
  EXPECT_TRUE(seen.empty());

  for (std::uint64_t i = 1; i <= 3; ++i) {
    d.line().request_shutdown(device_id(i));
    run_until_idle(ctx);
    ASSERT_EQ(seen.size(), i);
    ASSERT_TRUE(seen.back().is_message());
    EXPECT_EQ(seen.back().msg(), message(backplane::shutdown{device_id(i)}));
    EXPECT_FALSE(w.done()) << "a message must not stop the work";
  }
  gate.line().request_shutdown(device_id(99));
  run_until_idle(ctx);
  ASSERT_TRUE(o->done);
  ASSERT_EQ(seen.size(), 4u);
  ASSERT_TRUE(seen.back().is_completed());
  EXPECT_EQ(seen.back().value(), 7);
  EXPECT_EQ(starts, 1) << "the same work, never restarted";
  EXPECT_TRUE(w.done());
}

TEST(Watch, DoesNotStartTheWorkBeforeTheFirstWatch) {
  asio::io_context ctx;
  device gate;
  int starts = 0;
  work<int> w(gated(gate, starts));
  run_until_idle(ctx);
  EXPECT_FALSE(w.started());
  EXPECT_EQ(starts, 0);
}

TEST(Watch, MessageWinsWhenBothAreReady) {
  asio::io_context ctx;
  device d;
  work<int> w(immediate(5));
  d.line().request_shutdown(device_id(1));
  // The first watch starts the work and returns the waiting message.
  auto first = start(ctx, watch(d, w));
  run_until_idle(ctx);
  ASSERT_TRUE(first->done);
  ASSERT_TRUE(first->value->is_message());
  EXPECT_EQ(first->value->msg(), message(backplane::shutdown{device_id(1)}));
  ASSERT_TRUE(w.done());  // it ran meanwhile: its outcome waits for a watch

  d.line().request_shutdown(device_id(2));
  auto second = start(ctx, watch(d, w));
  run_until_idle(ctx);
  ASSERT_TRUE(second->done);
  ASSERT_TRUE(second->value->is_message()) << "a message beats a finished work";
  EXPECT_EQ(second->value->msg(), message(backplane::shutdown{device_id(2)}));

  auto third = start(ctx, watch(d, w));
  run_until_idle(ctx);
  ASSERT_TRUE(third->done);
  ASSERT_TRUE(third->value->is_completed());
  EXPECT_EQ(third->value->value(), 5);
}

TEST(Watch, WakesWhenTheWorkFinishesWhileWaiting) {
  asio::io_context ctx;
  device d;
  device gate;
  int starts = 0;
  work<int> w(gated(gate, starts));
  auto r = start(ctx, watch(d, w));
  run_until_idle(ctx);
  EXPECT_FALSE(r->done);
  gate.line().request_shutdown(device_id(1));
  run_until_idle(ctx);
  ASSERT_TRUE(r->done);
  ASSERT_TRUE(r->value->is_completed());
  EXPECT_EQ(r->value->value(), 7);
}

struct custom_failure : std::runtime_error {
  custom_failure(std::string const& what, int c) : std::runtime_error(what), code(c) {}
  int code;
};

asio::awaitable<int> throws_custom() {
  throw custom_failure("disk on fire", 451);
  co_return 0;
}

TEST(Watch, ThrowingWorkIsAPanicWithTheOriginalException) {
  asio::io_context ctx;
  device d;
  work<int> w(throws_custom());
  auto r = start(ctx, watch(d, w));
  run_until_idle(ctx);
  ASSERT_TRUE(r->done);
  ASSERT_TRUE(r->value) << describe(r->error);
  ASSERT_TRUE(r->value->is_panic());
  try {
    std::rethrow_exception(r->value->exception());
  } catch (custom_failure const& e) {
    EXPECT_STREQ(e.what(), "disk on fire");
    EXPECT_EQ(e.code, 451);
  }
  EXPECT_TRUE(d.valid());  // watch judges nothing
}

asio::awaitable<void> void_work() { co_return; }

TEST(Watch, VoidWorkCompletes) {
  asio::io_context ctx;
  device d;
  work<void> w(void_work());
  auto r = start(ctx, watch(d, w));
  run_until_idle(ctx);
  ASSERT_TRUE(r->done);
  EXPECT_TRUE(r->value->is_completed());
}

asio::awaitable<void> watch_into(device& d, work<int>& w, std::optional<watched<int>>& out) {
  out.emplace(co_await watch(d, w));
}

TEST(Watch, CancellingTheWatchLeavesWorkAndMailboxAlone) {
  asio::io_context ctx;
  device d;
  device gate;
  int starts = 0;
  work<int> w(gated(gate, starts));
  asio::cancellation_signal signal;
  std::exception_ptr error;
  bool done = false;
  std::optional<watched<int>> seen;
  asio::co_spawn(ctx, watch_into(d, w, seen),
                 asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e) {
                   error = e;
                   done = true;
                 }));
  run_until_idle(ctx);
  signal.emit(asio::cancellation_type::terminal);
  run_until_idle(ctx);
  ASSERT_TRUE(done);
  ASSERT_TRUE(error);
  try {
    std::rethrow_exception(error);
  } catch (boost::system::system_error const& e) {
    EXPECT_EQ(e.code(), asio::error::operation_aborted);
  }
  EXPECT_FALSE(seen);
  // The work was not cancelled with the watch.
  EXPECT_FALSE(w.done());
  // The mailbox was not touched: a new watch gets the next message, then
  // the same work.
  d.line().request_shutdown(device_id(3));
  auto again = start(ctx, watch(d, w));
  run_until_idle(ctx);
  ASSERT_TRUE(again->done);
  ASSERT_TRUE(again->value->is_message());
  EXPECT_EQ(again->value->msg(), message(backplane::shutdown{device_id(3)}));
  gate.line().request_shutdown(device_id(4));
  auto last = start(ctx, watch(d, w));
  run_until_idle(ctx);
  ASSERT_TRUE(last->done);
  ASSERT_TRUE(last->value->is_completed());
  EXPECT_EQ(last->value->value(), 7);
  EXPECT_EQ(starts, 1);
}

TEST(Watch, AWorkBelongsToTheFirstDeviceThatWatchedIt) {
  asio::io_context ctx;
  device a;
  device b;
  device gate;
  int starts = 0;
  work<int> w(gated(gate, starts));
  auto first = start(ctx, watch(a, w));
  run_until_idle(ctx);
  auto second = start(ctx, watch(b, w));
  run_until_idle(ctx);
  ASSERT_TRUE(second->done);
  ASSERT_TRUE(second->error);
  EXPECT_THROW(std::rethrow_exception(second->error), std::logic_error);
  gate.line().request_shutdown(device_id(1));
  run_until_idle(ctx);
  ASSERT_TRUE(first->done);
  EXPECT_TRUE(first->value->is_completed());
}

/// Records how it ended in `log`.
asio::awaitable<int> logged_forever(std::vector<std::string>& log) {
  struct guard {
    std::vector<std::string>* log;
    ~guard() { log->push_back("destroyed"); }
  } g{&log};
  try {
    co_await test::forever();
  } catch (boost::system::system_error const& e) {
    log.push_back(e.code() == asio::error::operation_aborted ? "aborted" : "other error");
    throw;
  }
  co_return 0;
}

TEST(Watch, DestroyingARunningWorkCancelsIt) {
  asio::io_context ctx;
  device d;
  std::vector<std::string> log;
  std::optional<work<int>> w(std::in_place, logged_forever(log));
  d.line().request_shutdown(device_id(1));
  auto r = start(ctx, watch(d, *w));
  run_until_idle(ctx);
  ASSERT_TRUE(r->value->is_message());
  EXPECT_TRUE(log.empty());
  w.reset();
  run_until_idle(ctx);
  EXPECT_EQ(log, (std::vector<std::string>{"aborted", "destroyed"}));
}

TEST(Watch, CancelStopsTheWorkWhichThenCompletesAsAPanic) {
  asio::io_context ctx;
  device d;
  std::vector<std::string> log;
  work<int> w(logged_forever(log));
  d.line().request_shutdown(device_id(1));
  auto first = start(ctx, watch(d, w));
  run_until_idle(ctx);
  ASSERT_TRUE(first->value->is_message());
  w.cancel();
  run_until_idle(ctx);
  EXPECT_TRUE(w.done());
  EXPECT_EQ(log, (std::vector<std::string>{"aborted", "destroyed"}));
  auto second = start(ctx, watch(d, w));
  run_until_idle(ctx);
  ASSERT_TRUE(second->done);
  ASSERT_TRUE(second->value->is_panic());
  try {
    std::rethrow_exception(second->value->exception());
  } catch (boost::system::system_error const& e) {
    EXPECT_EQ(e.code(), asio::error::operation_aborted);
  }
}

}  // namespace
