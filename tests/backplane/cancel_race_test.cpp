// A cancellation that arrives after a message has woken a receive but before
// the receive's handler runs: the message stays in the mailbox, first in line,
// and the receive completes with operation_aborted. Composing a receive with
// `||`, parallel_group or a timeout therefore never loses a message.

#include "support/run_until_idle.hpp"

#include <backplane/backplane.hpp>

#include <gtest/gtest.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <variant>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using namespace backplane;
using backplane::test::run_until_idle;
using backplane::test::start;

message numbered(std::uint64_t k) { return backplane::shutdown{device_id(k)}; }
std::uint64_t number_of(message const& m) { return as_shutdown(m)->requester.value(); }

/// The message out of a `receive || other` result. Asio's `||` flattens a
/// variant operand, so `message` (itself a variant) does not appear as one
/// alternative: any alternative but the other branch's monostate is one.
template <class... Ts>
std::optional<message> message_of(std::variant<Ts...> const& r) {
  return std::visit(
      [](auto const& v) -> std::optional<message> {
        if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::monostate>) {
          return std::nullopt;
        } else {
          return message(v);
        }
      },
      r);
}

/// Sends `k` to `l` and returns: the branch of a `||` that finishes while the
/// receive's wake-up is still queued.
asio::awaitable<void> send_and_return(line l, std::uint64_t k) {
  l.send(numbered(k));
  co_return;
}

/// Runs `receive || send k` (or `send k || receive`) for k = 1..10 and
/// counts the messages that neither the result nor the mailbox holds.
asio::awaitable<void> race_receive_with_sender(device& d, bool receive_first, int& lost) {
  line l = d.line();
  for (std::uint64_t k = 1; k <= 10; ++k) {
    auto m =
        receive_first
            ? message_of(co_await (d.async_receive(asio::use_awaitable) || send_and_return(l, k)))
            : message_of(co_await (send_and_return(l, k) || d.async_receive(asio::use_awaitable)));
    // The sender won: its message must still be here, and next in line.
    if (!m) m = d.try_receive();
    if (!m) {
      ++lost;
      continue;
    }
    EXPECT_EQ(number_of(*m), k);
  }
}

TEST(CancelRace, ReceiveOrABranchThatSendsLosesNothing) {
  for (bool receive_first : {true, false}) {
    asio::io_context ctx;
    device d;
    int lost = 0;
    auto o = start(ctx, race_receive_with_sender(d, receive_first, lost));
    run_until_idle(ctx);
    ASSERT_TRUE(o->done);
    EXPECT_FALSE(o->error);
    EXPECT_EQ(lost, 0) << (receive_first ? "receive || send" : "send || receive");
    EXPECT_FALSE(d.try_receive());
  }
}

/// Completes inline in its initiation after sending `k` to `l`: in a
/// parallel_group it finishes first, while the receive's wake-up is queued.
auto send_then_complete(line l, std::uint64_t k) {
  return asio::async_initiate<decltype(asio::deferred) const&, void()>(
      [](auto handler, line to, std::uint64_t n) {
        to.send(numbered(n));
        std::move(handler)();
      },
      asio::deferred, std::move(l), k);
}

TEST(CancelRace, ParallelGroupLoserConsumesNothing) {
  asio::io_context ctx;
  device d;
  line l = d.line();
  // Named: the coroutine keeps a pointer to its closure, which a temporary
  // would leave dangling once it first suspends (ASan: stack-use-after-scope).
  auto body = [&]() -> asio::awaitable<void> {
    // Bound to our executor: a handler without one would complete on the
    // system executor, on another thread.
    auto [order, ec, m] =
        co_await asio::experimental::make_parallel_group(
            d.async_receive(asio::bind_executor(ctx, asio::deferred)), send_then_complete(l, 1))
            .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
    EXPECT_EQ(order[0], 1u) << "the inline completion finishes first";
    EXPECT_EQ(ec, asio::error::operation_aborted) << "the cancelled receive took the message";
    // Nothing consumed: the next receive gets it.
    auto again = co_await d.async_receive(asio::use_awaitable);
    EXPECT_EQ(number_of(again), 1u);
  };
  auto o = start(ctx, body());
  run_until_idle(ctx);
  ASSERT_TRUE(o->done);
  EXPECT_FALSE(o->error);
  EXPECT_FALSE(d.try_receive());
}

/// What a callback-style receive saw.
struct received {
  int calls = 0;
  boost::system::error_code ec;
  std::optional<message> msg;
};

auto recorder(std::shared_ptr<received> r) {
  return [r](boost::system::error_code ec, message m) {
    ++r->calls;
    r->ec = ec;
    if (!ec) r->msg = std::move(m);
  };
}

class CancelRaceSlot : public ::testing::TestWithParam<asio::cancellation_type> {};

TEST_P(CancelRaceSlot, CancelAfterTheMessageArrivedLeavesItFirstInLine) {
  asio::io_context ctx;
  device d;
  asio::cancellation_signal signal;
  auto r = std::make_shared<received>();
  d.async_receive(
      asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(ctx, recorder(r))));
  run_until_idle(ctx);
  d.line().send(numbered(1));
  d.line().send(numbered(2));
  // The wait has been woken and its handler is queued: the request still wins.
  signal.emit(GetParam());
  run_until_idle(ctx);
  EXPECT_EQ(r->calls, 1);
  EXPECT_EQ(r->ec, asio::error::operation_aborted);
  EXPECT_FALSE(r->msg);
  // Both messages are still there, in their order, for the next receives.
  auto next = std::make_shared<received>();
  d.async_receive(asio::bind_executor(ctx, recorder(next)));
  run_until_idle(ctx);
  ASSERT_TRUE(next->msg);
  EXPECT_EQ(number_of(*next->msg), 1u);
  EXPECT_EQ(d.try_receive(), numbered(2));
  // A request after the handler ran does nothing.
  signal.emit(GetParam());
  run_until_idle(ctx);
  EXPECT_EQ(r->calls, 1);
}

TEST_P(CancelRaceSlot, CancelWhenAMessageWasAlreadyThereLeavesIt) {
  // The message was there before the receive began: the completion is
  // queued at once, and a request before it runs still wins.
  asio::io_context ctx;
  device d;
  d.line().send(numbered(7));
  asio::cancellation_signal signal;
  auto r = std::make_shared<received>();
  d.async_receive(
      asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(ctx, recorder(r))));
  signal.emit(GetParam());
  run_until_idle(ctx);
  EXPECT_EQ(r->ec, asio::error::operation_aborted);
  EXPECT_EQ(d.try_receive(), numbered(7));
}

INSTANTIATE_TEST_SUITE_P(EveryType, CancelRaceSlot,
                         ::testing::Values(asio::cancellation_type::terminal,
                                           asio::cancellation_type::partial,
                                           asio::cancellation_type::total),
                         [](auto const& info) {
                           switch (info.param) {
                             case asio::cancellation_type::terminal: return "Terminal";
                             case asio::cancellation_type::partial: return "Partial";
                             default: return "Total";
                           }
                         });

asio::awaitable<int> never_done(device& gate) {
  (void)co_await gate.async_receive(asio::use_awaitable);
  co_return 0;
}

asio::awaitable<void> watch_into(device& d, work<int>& w, std::optional<watched<int>>& out) {
  out.emplace(co_await watch(d, w));
}

TEST(CancelRace, CancellingAWokenWatchLeavesTheMessage) {
  // watch waits without consuming, then takes the message: the same race,
  // one level up. Cancelled after a message woke it but before it resumed,
  // it throws operation_aborted (its documented cancellation) and leaves
  // the message.
  asio::io_context ctx;
  device d;
  device gate;
  work<int> w(never_done(gate));
  asio::cancellation_signal signal;
  std::optional<watched<int>> seen;
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(ctx, watch_into(d, w, seen),
                 asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e) {
                   error = e;
                   done = true;
                 }));
  run_until_idle(ctx);
  // On the context's thread, as a `||` would: the message wakes the watch
  // (its resumption is queued), then the cancellation comes.
  asio::post(ctx, [&] {
    d.line().send(numbered(1));
    signal.emit(asio::cancellation_type::terminal);
  });
  run_until_idle(ctx);
  ASSERT_TRUE(done);
  EXPECT_FALSE(seen) << "the watch took the message although it was cancelled";
  ASSERT_TRUE(error);
  try {
    std::rethrow_exception(error);
  } catch (boost::system::system_error const& e) {
    EXPECT_EQ(e.code(), asio::error::operation_aborted);
  }
  EXPECT_EQ(d.try_receive(), numbered(1));
  gate.line().send(numbered(0));
  run_until_idle(ctx);
}

TEST(CancelRace, WatchOrABranchThatSendsLosesNothing) {
  asio::io_context ctx;
  device d;
  device gate;
  work<int> w(never_done(gate));
  line l = d.line();
  int lost = 0;
  auto body = [&]() -> asio::awaitable<void> {  // named: see above
    for (std::uint64_t k = 1; k <= 10; ++k) {
      auto r = co_await (watch(d, w) || send_and_return(l, k));
      std::optional<message> m;
      if (r.index() == 0) m = std::get<0>(r).msg();
      if (!m) m = d.try_receive();
      if (!m) {
        ++lost;
        continue;
      }
      EXPECT_EQ(number_of(*m), k);
    }
  };
  auto o = start(ctx, body());
  run_until_idle(ctx);
  ASSERT_TRUE(o->done);
  EXPECT_FALSE(o->error);
  EXPECT_EQ(lost, 0);
  gate.line().send(numbered(0));
  run_until_idle(ctx);
}

/// What one receiver saw.
struct tally {
  std::uint64_t received = 0;
  std::uint64_t out_of_order = 0;
  std::atomic<std::uint64_t> last{0};  // the highest number seen, for pacing
};

/// Receives numbered messages through `receive || zero-delay timer` until it
/// has seen `n`, or until the senders are done and a timeout finds the
/// mailbox empty (so a lost message ends the loop instead of hanging it).
asio::awaitable<void> receive_with_timeouts(device& d, std::uint64_t n,
                                            std::atomic<bool> const& senders_done, tally& t) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::uint64_t expected = 1;
  auto take = [&](message const& m) {
    ++t.received;
    t.last.store(number_of(m));
    if (number_of(m) != expected) ++t.out_of_order;
    expected = number_of(m) + 1;
  };
  while (t.received < n) {
    timer.expires_after(std::chrono::nanoseconds(0));
    auto r =
        co_await (d.async_receive(asio::use_awaitable) || timer.async_wait(asio::use_awaitable));
    if (auto m = message_of(r)) {
      take(*m);
    } else if (senders_done.load()) {
      auto m = d.try_receive();
      if (!m) co_return;
      take(*m);
    }
  }
}

TEST(CancelRace, ReceiveOrZeroDelayTimerOnFourThreadsGetsEveryMessageOnceInOrder) {
  // Devices on strands (a cancellation is emitted on the receive's own
  // executor, Asio's rule), the sender on a foreign thread.
  constexpr int threads = 4;
  constexpr std::size_t devices = 8;
  constexpr std::uint64_t each = 2500;
  asio::io_context ctx(threads);
  std::vector<device> ds(devices);
  std::vector<line> ls;
  for (auto& d : ds) ls.push_back(d.line());
  std::atomic<bool> senders_done{false};
  std::vector<tally> tallies(devices);
  std::vector<std::shared_ptr<test::outcome<void>>> outcomes;
  for (std::size_t i = 0; i < devices; ++i)
    outcomes.push_back(start(asio::make_strand(ctx),
                             receive_with_timeouts(ds[i], each, senders_done, tallies[i])));
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back([&] { ctx.run(); });
  std::thread sender([&] {
    // A yield after each send, so that the receivers keep up and a message
    // usually finds its receive parked, with the timer firing around it.
    for (std::uint64_t k = 1; k <= each; ++k) {
      for (auto& l : ls) {
        EXPECT_TRUE(l.send(numbered(k)));
        std::this_thread::yield();
      }
    }
    senders_done.store(true);
  });
  sender.join();
  for (auto& t : pool) t.join();
  for (std::size_t i = 0; i < devices; ++i) {
    EXPECT_TRUE(outcomes[i]->done);
    EXPECT_FALSE(outcomes[i]->error);
    EXPECT_EQ(tallies[i].received, each) << "device " << i << " lost messages";
    EXPECT_EQ(tallies[i].out_of_order, 0u) << "device " << i;
    EXPECT_FALSE(ds[i].try_receive());
  }
}

}  // namespace
