// Per-operation cancellation of the runtime API: a caller's cancellation ends
// its wait (operation_aborted, at once), never the action, which is carried
// out whole; an answer given before the cancellation wins; queries accept
// every cancellation type, calls that act terminal and partial only. Tested
// at each point: before the supervisor acts, while it acts, after it answered
// but before the handler ran, through a cancellation slot, `||` and a
// parallel_group, and on four threads.

#include "supervisor/fixture.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <thread>

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

/// A run that never hears its shutdown request (it never receives): the
/// supervisor waits its shutdown timeout, then cancels it.
asio::awaitable<void> deaf() {
  asio::steady_timer t(co_await asio::this_coro::executor, asio::steady_timer::time_point::max());
  (void)co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

child_spec deaf_child(std::string id) {
  child_spec c = worker(std::move(id), [](device&) { return deaf(); });
  c.shutdown = shutdown_policy::timeout(1s);
  return c;
}

class Cancel : public supervisor_fixture {
 protected:
  /// Where the caller's handlers run: a context of its own, so that a test
  /// can stop between the supervisor's answer and the handler.
  asio::io_context caller;
  asio::cancellation_signal signal;

  template <class H>
  auto bound(H h) {
    return asio::bind_cancellation_slot(signal.slot(),
                                        asio::bind_executor(caller.get_executor(), std::move(h)));
  }
};

TEST_F(Cancel, TerminateChildWaitEndsButTheStopGoesOn) {
  auto s = spec();
  s.children = {deaf_child("d"), kids.spec("a")};
  auto sup = start(std::move(s));
  int calls = 0;
  boost::system::error_code got;
  sup.async_terminate_child("d", bound([&](boost::system::error_code ec) {
                              ++calls;
                              got = ec;
                            }));
  idle();  // the supervisor asked d to stop and waits for it
  EXPECT_EQ(info(sup, "d")->status, child_status::running);
  signal.emit(asio::cancellation_type::terminal);
  run_until_idle(caller);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got, asio::error::operation_aborted);
  // The stop goes on: d is cancelled at its timeout, its spec kept.
  clock->advance(1s);
  idle();
  run_until_idle(caller);
  EXPECT_EQ(calls, 1) << "the dropped answer must not reach the handler";
  EXPECT_EQ(info(sup, "d")->status, child_status::stopped);
  stop(sup);
}

TEST_F(Cancel, BeforeTheSupervisorActsTheActionStillHappens) {
  auto sup = start(spec());
  int calls = 0;
  boost::system::error_code got;
  sup.async_start_child(kids.spec("a"), bound([&](boost::system::error_code ec, device_id) {
                          ++calls;
                          got = ec;
                        }));
  signal.emit(asio::cancellation_type::partial);
  run_until_idle(caller);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got, asio::error::operation_aborted);
  idle();
  run_until_idle(caller);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(kids.running("a")) << "the call was made: the child started";
  stop(sup);
}

TEST_F(Cancel, AnAnswerGivenBeforeTheCancellationWins) {
  // Cancelled at the moment of completion: the supervisor has answered,
  // the handler has not run yet.
  auto sup = start(spec());
  int calls = 0;
  boost::system::error_code got;
  device_id dev;
  sup.async_start_child(kids.spec("a"), bound([&](boost::system::error_code ec, device_id d) {
                          ++calls;
                          got = ec;
                          dev = d;
                        }));
  idle();  // answered: the handler is queued on the caller's context
  EXPECT_EQ(calls, 0);
  signal.emit(asio::cancellation_type::terminal);
  run_until_idle(caller);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(got);
  EXPECT_TRUE(dev);
  stop(sup);
}

TEST_F(Cancel, TotalCancellationIsIgnoredByCallsThatAct) {
  auto sup = start(spec());
  std::vector<boost::system::error_code> got;
  auto note = [&](boost::system::error_code ec, auto&&...) { got.push_back(ec); };
  sup.async_start_child(kids.spec("a"), bound(note));
  signal.emit(asio::cancellation_type::total);
  idle();
  run_until_idle(caller);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0]) << "total cancellation promises no side effect: not offered";
  // A query has no side effect: total cancels its wait.
  got.clear();
  sup.async_which_children(bound(note));
  signal.emit(asio::cancellation_type::total);
  run_until_idle(caller);
  idle();
  run_until_idle(caller);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], asio::error::operation_aborted);
  stop(sup);
}

/// Every call of the API, cancelled (terminal) before the supervisor runs:
/// one operation_aborted each, and every action carried out.
TEST_F(Cancel, EveryCallBeforeTheSupervisorRuns) {
  auto s = spec();
  s.children = {kids.spec("t"), kids.spec("r"), kids.spec("del")};
  auto sup = start(std::move(s));
  EXPECT_FALSE(terminate_child(sup, "r"));
  EXPECT_FALSE(terminate_child(sup, "del"));
  std::vector<std::string> aborted;
  auto expect_abort = [&](std::string what) {
    return [&aborted, what](boost::system::error_code ec, auto&&...) {
      if (ec == asio::error::operation_aborted) aborted.push_back(what);
    };
  };
  std::vector<asio::cancellation_signal> signals(7);
  auto on = [&](std::size_t i, auto h) {
    return asio::bind_cancellation_slot(signals[i].slot(),
                                        asio::bind_executor(caller.get_executor(), std::move(h)));
  };
  sup.async_start_child(kids.spec("n"), on(0, expect_abort("start")));
  sup.async_terminate_child("t", on(1, expect_abort("terminate")));
  sup.async_restart_child("r", on(2, expect_abort("restart")));
  sup.async_delete_child("del", on(3, expect_abort("delete")));
  sup.async_which_children(on(4, expect_abort("which")));
  sup.async_count_children(on(5, expect_abort("count")));
  sup.async_restart_budget(on(6, expect_abort("budget")));
  for (auto& sig : signals) sig.emit(asio::cancellation_type::terminal);
  run_until_idle(caller);
  EXPECT_EQ(aborted,
            (strings{"start", "terminate", "restart", "delete", "which", "count", "budget"}));
  idle();
  run_until_idle(caller);
  EXPECT_EQ(aborted.size(), 7u) << "one completion per call";
  EXPECT_EQ(ids(sup), (strings{"t", "r", "n"}));
  EXPECT_EQ(info(sup, "t")->status, child_status::stopped);
  EXPECT_EQ(info(sup, "r")->status, child_status::running);
  EXPECT_TRUE(kids.running("n"));
  // async_stop and async_wait: the wait ends, the stop goes on.
  asio::cancellation_signal stop_sig, wait_sig;
  int stop_aborts = 0;
  auto count_abort = [&stop_aborts](boost::system::error_code ec, supervisor_exit) {
    if (ec == asio::error::operation_aborted) ++stop_aborts;
  };
  sup.async_wait(asio::bind_cancellation_slot(
      wait_sig.slot(), asio::bind_executor(caller.get_executor(), count_abort)));
  sup.async_stop(asio::bind_cancellation_slot(
      stop_sig.slot(), asio::bind_executor(caller.get_executor(), count_abort)));
  wait_sig.emit(asio::cancellation_type::total);
  stop_sig.emit(asio::cancellation_type::terminal);
  run_until_idle(caller);
  EXPECT_EQ(stop_aborts, 2);
  EXPECT_TRUE(ended(sup)) << "the stop went on";
  run_until_idle(caller);
  EXPECT_EQ(stop_aborts, 2);
}

TEST_F(Cancel, StopRacedWithATimerEndsTheWaitAndTheStopGoesOn) {
  // Stopping with a deadline: `async_stop || timer`.
  auto s = spec();
  s.children = {deaf_child("d")};
  auto sup = start(std::move(s));
  asio::steady_timer deadline(ctx, asio::steady_timer::time_point::max());
  std::optional<std::size_t> which_won;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        auto r = co_await (sup.async_stop(asio::as_tuple(asio::use_awaitable)) ||
                           deadline.async_wait(asio::as_tuple(asio::use_awaitable)));
        which_won = r.index();
      },
      asio::detached);
  idle();
  EXPECT_FALSE(which_won);
  deadline.cancel();  // the deadline passes (fired by hand: no sleeping)
  idle();
  ASSERT_TRUE(which_won);
  EXPECT_EQ(*which_won, 1u);
  EXPECT_FALSE(ended(sup)) << "d still has its timeout to run";
  clock->advance(1s);
  idle();
  auto e = ended(sup);
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->fault);
}

TEST_F(Cancel, ParallelGroupCancelsTheSlowerWait) {
  auto s = spec();
  s.children = {deaf_child("d")};
  auto sup = start(std::move(s));
  asio::steady_timer other(ctx, asio::steady_timer::time_point::max());
  std::optional<boost::system::error_code> terminate_ec;
  asio::experimental::make_parallel_group(sup.async_terminate_child("d", asio::deferred),
                                          other.async_wait(asio::deferred))
      .async_wait(asio::experimental::wait_for_one(),
                  [&](std::array<std::size_t, 2>, boost::system::error_code ec1,
                      boost::system::error_code) { terminate_ec = ec1; });
  idle();
  other.cancel();
  idle();
  ASSERT_TRUE(terminate_ec);
  EXPECT_EQ(*terminate_ec, asio::error::operation_aborted);
  clock->advance(1s);
  idle();
  EXPECT_EQ(info(sup, "d")->status, child_status::stopped);
  stop(sup);
}

TEST_F(Cancel, AQueryThatWinsTheRaceIsAnswered) {
  // which_children answers at once: raced with a timer that never fires,
  // the query wins and the timer is cancelled.
  auto s = spec();
  s.children = {kids.spec("a")};
  auto sup = start(std::move(s));
  asio::steady_timer never(ctx, asio::steady_timer::time_point::max());
  std::optional<std::size_t> rows;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        auto r = co_await (sup.async_which_children(asio::use_awaitable) ||
                           never.async_wait(asio::use_awaitable));
        if (r.index() == 0) rows = std::get<0>(r).size();
      },
      asio::detached);
  idle();
  ASSERT_TRUE(rows);
  EXPECT_EQ(*rows, 1u);
  stop(sup);
}

TEST(CancelThreads, QueriesRacedWithZeroTimersOnFourThreads) {
  // Each race ends exactly once, whichever side wins, with the supervisor
  // and the callers on strands of a four-thread context.
  asio::io_context ctx(4);
  auto work = asio::make_work_guard(ctx);
  supervisor_spec s;
  s.logger =
      std::make_shared<spdlog::logger>("cancel", std::make_shared<spdlog::sinks::null_sink_mt>());
  // A managed work: a stop cancels it at once (the clock here is real).
  s.children = {worker("a", [](device&) { return forever_result(); })};
  auto sup = supervisor::start(asio::make_strand(ctx), std::move(s));
  ASSERT_TRUE(sup);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&ctx] { ctx.run(); });
  constexpr int callers = 4;
  constexpr int rounds = 200;
  std::atomic<int> answered{0}, aborted{0};
  std::vector<std::future<void>> done;
  for (int c = 0; c < callers; ++c) {
    done.push_back(asio::co_spawn(
        asio::make_strand(ctx),
        [&]() -> asio::awaitable<void> {
          auto ex = co_await asio::this_coro::executor;
          for (int i = 0; i < rounds; ++i) {
            asio::steady_timer t(ex, std::chrono::steady_clock::duration::zero());
            auto r = co_await (sup->async_which_children(asio::as_tuple(asio::use_awaitable)) ||
                               t.async_wait(asio::as_tuple(asio::use_awaitable)));
            if (r.index() == 0) {
              auto const& [ec, rows] = std::get<0>(r);
              if (ec == asio::error::operation_aborted) {
                aborted.fetch_add(1);
              } else {
                EXPECT_FALSE(ec);
                EXPECT_EQ(rows.size(), 1u);
                answered.fetch_add(1);
              }
            } else {
              aborted.fetch_add(1);  // the timer won: the query's wait was cancelled
            }
            // Calls that act, raced the same way: terminated and restarted,
            // whether or not anyone waits for the answer.
            asio::steady_timer t2(ex, std::chrono::steady_clock::duration::zero());
            (void)co_await (sup->async_terminate_child("a", asio::as_tuple(asio::use_awaitable)) ||
                            t2.async_wait(asio::as_tuple(asio::use_awaitable)));
            asio::steady_timer t3(ex, std::chrono::steady_clock::duration::zero());
            (void)co_await (sup->async_restart_child("a", asio::as_tuple(asio::use_awaitable)) ||
                            t3.async_wait(asio::as_tuple(asio::use_awaitable)));
          }
        },
        asio::use_future));
  }
  for (auto& f : done) f.get();
  EXPECT_EQ(answered.load() + aborted.load(), callers * rounds);
  sup->async_stop(asio::use_future).get();
  work.reset();
  for (auto& t : threads) t.join();
}

}  // namespace
