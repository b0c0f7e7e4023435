// device::async_receive: completion, cancellation, and where handlers run.

#include "support/run_until_idle.hpp"

#include <backplane/backplane.hpp>

#include <gtest/gtest.h>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <thread>

namespace {

namespace asio = boost::asio;
using namespace backplane;
using backplane::test::run_until_idle;
using backplane::test::start;

/// What a callback-style receive saw.
struct received {
  int calls = 0;
  boost::system::error_code ec;
  std::optional<message> msg;
  std::thread::id thread;
};

auto recorder(std::shared_ptr<received> r) {
  return [r](boost::system::error_code ec, message m) {
    ++r->calls;
    r->ec = ec;
    if (!ec) r->msg = std::move(m);
    r->thread = std::this_thread::get_id();
  };
}

TEST(AsyncReceive, CompletesWithAMessageAlreadyThere) {
  asio::io_context ctx;
  device d;
  d.line().request_shutdown(device_id(5));
  auto r = std::make_shared<received>();
  d.async_receive(asio::bind_executor(ctx, recorder(r)));
  EXPECT_EQ(r->calls, 0) << "must not complete inline, even when a message is ready";
  run_until_idle(ctx);
  EXPECT_EQ(r->calls, 1);
  EXPECT_FALSE(r->ec);
  EXPECT_EQ(r->msg, message(backplane::shutdown{device_id(5)}));
  EXPECT_FALSE(d.try_receive());
}

TEST(AsyncReceive, CompletesWhenAMessageArrives) {
  asio::io_context ctx;
  device d;
  auto r = std::make_shared<received>();
  d.async_receive(asio::bind_executor(ctx, recorder(r)));
  run_until_idle(ctx);
  EXPECT_EQ(r->calls, 0);
  device other;
  d.link(other, link_mode::monitor);
  auto other_id = other.id();
  other.disconnect(fault::error());
  EXPECT_EQ(r->calls, 0) << "the sender must not run the handler";
  run_until_idle(ctx);
  EXPECT_EQ(r->calls, 1);
  EXPECT_FALSE(r->ec);
  EXPECT_EQ(r->msg, message(disconnected{other_id, fault::error()}));
}

TEST(AsyncReceive, TakesOneMessageAtATime) {
  asio::io_context ctx;
  device d;
  auto l = d.line();
  for (std::uint64_t i = 1; i <= 3; ++i) l.request_shutdown(device_id(i));
  for (std::uint64_t i = 1; i <= 3; ++i) {
    auto r = std::make_shared<received>();
    d.async_receive(asio::bind_executor(ctx, recorder(r)));
    run_until_idle(ctx);
    ASSERT_EQ(r->calls, 1);
    EXPECT_EQ(r->msg, message(backplane::shutdown{device_id(i)}));
  }
  EXPECT_FALSE(d.try_receive());
}

asio::awaitable<void> receive_n(device& d, int n, std::vector<message>& out) {
  for (int i = 0; i < n; ++i) out.push_back(co_await d.async_receive(asio::use_awaitable));
}

TEST(AsyncReceive, WorksWithUseAwaitableInALoop) {
  asio::io_context ctx;
  device d;
  auto l = d.line();
  std::vector<message> got;
  auto o = start(ctx, receive_n(d, 50, got));
  for (std::uint64_t i = 1; i <= 50; ++i) {
    run_until_idle(ctx);
    EXPECT_EQ(got.size(), i - 1);
    l.request_shutdown(device_id(i));
  }
  run_until_idle(ctx);
  ASSERT_TRUE(o->done);
  ASSERT_EQ(got.size(), 50u);
  for (std::uint64_t i = 1; i <= 50; ++i)
    EXPECT_EQ(got[i - 1], message(backplane::shutdown{device_id(i)}));
}

asio::awaitable<message> receive_deferred(device& d) {
  co_return co_await d.async_receive(asio::deferred);
}

TEST(AsyncReceive, WorksWithDeferred) {
  asio::io_context ctx;
  device d;
  auto o = start(ctx, receive_deferred(d));
  run_until_idle(ctx);
  EXPECT_FALSE(o->done);
  d.line().request_shutdown(device_id(3));
  run_until_idle(ctx);
  ASSERT_TRUE(o->done);
  EXPECT_EQ(o->value, message(backplane::shutdown{device_id(3)}));
}

class AsyncReceiveCancel : public ::testing::TestWithParam<asio::cancellation_type> {};

TEST_P(AsyncReceiveCancel, AbortsAndConsumesNothing) {
  asio::io_context ctx;
  device d;
  asio::cancellation_signal signal;
  auto r = std::make_shared<received>();
  d.async_receive(
      asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(ctx, recorder(r))));
  run_until_idle(ctx);
  signal.emit(GetParam());
  EXPECT_EQ(r->calls, 0) << "cancellation must complete through the executor too";
  run_until_idle(ctx);
  EXPECT_EQ(r->calls, 1);
  EXPECT_EQ(r->ec, asio::error::operation_aborted);
  EXPECT_FALSE(r->msg);
  // The device still works, and the next message is for the next receive.
  d.line().request_shutdown(device_id(8));
  run_until_idle(ctx);
  EXPECT_EQ(r->calls, 1);
  EXPECT_EQ(d.try_receive(), message(backplane::shutdown{device_id(8)}));
  // A second cancellation after completion is harmless.
  signal.emit(GetParam());
  run_until_idle(ctx);
  EXPECT_EQ(r->calls, 1);
}

INSTANTIATE_TEST_SUITE_P(EveryType, AsyncReceiveCancel,
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

TEST(AsyncReceive, CancelledReceiveLeavesAQueuedMessageAlone) {
  asio::io_context ctx;
  device d;
  asio::cancellation_signal signal;
  auto r = std::make_shared<received>();
  d.async_receive(
      asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(ctx, recorder(r))));
  signal.emit(asio::cancellation_type::terminal);
  // A message arriving after the cancel but before the handler runs stays.
  d.line().request_shutdown(device_id(4));
  run_until_idle(ctx);
  EXPECT_EQ(r->ec, asio::error::operation_aborted);
  EXPECT_EQ(d.try_receive(), message(backplane::shutdown{device_id(4)}));
}

// A cancellation after the message arrived but before the handler runs:
// see cancel_race_test.cpp.

asio::awaitable<void> receive_one(device& d, std::optional<message>& out) {
  out = co_await d.async_receive(asio::use_awaitable);
}

TEST(AsyncReceive, CancellingTheCoroutineThrowsOperationAborted) {
  asio::io_context ctx;
  device d;
  std::optional<message> got;
  asio::cancellation_signal signal;
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(ctx, receive_one(d, got),
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
  EXPECT_FALSE(got);
  d.line().request_shutdown(device_id(2));
  EXPECT_EQ(d.try_receive(), message(backplane::shutdown{device_id(2)}));
}

TEST(AsyncReceive, NeverRunsOnTheSendersThread) {
  asio::io_context ctx;
  device d;
  auto l = d.line();
  auto r = std::make_shared<received>();
  d.async_receive(asio::bind_executor(ctx, recorder(r)));
  // Nobody runs the context while the other thread sends: the handler can
  // only have run inline if it ran at all.
  std::thread::id sender_id;
  std::thread sender([&] {
    sender_id = std::this_thread::get_id();
    EXPECT_TRUE(l.request_shutdown(device_id(1)));
  });
  sender.join();
  EXPECT_EQ(r->calls, 0);
  ctx.run();  // returns once the handler has run: nothing else is pending
  EXPECT_EQ(r->calls, 1);
  EXPECT_EQ(r->thread, std::this_thread::get_id());
  EXPECT_NE(r->thread, sender_id);
}

TEST(AsyncReceive, WakesTheReceiverWhileItsContextRuns) {
  // The receiver's context runs on this thread, blocked in run() because the
  // pending receive is outstanding work; another thread sends.
  asio::io_context ctx;
  device d;
  auto l = d.line();
  auto r = std::make_shared<received>();
  d.async_receive(asio::bind_executor(ctx, recorder(r)));
  std::thread::id sender_id;
  std::thread sender([&] {
    sender_id = std::this_thread::get_id();
    l.request_shutdown(device_id(1));
  });
  ctx.run();
  sender.join();
  EXPECT_EQ(r->calls, 1);
  EXPECT_EQ(r->msg, message(backplane::shutdown{device_id(1)}));
  EXPECT_EQ(r->thread, std::this_thread::get_id());
  EXPECT_NE(r->thread, sender_id);
}

TEST(AsyncReceive, RunsOnTheHandlersStrand) {
  asio::io_context ctx;
  auto strand = asio::make_strand(ctx);
  device d;
  bool in_strand = false;
  d.async_receive(asio::bind_executor(strand, [&](boost::system::error_code, message) {
    in_strand = strand.running_in_this_thread();
  }));
  d.line().request_shutdown(device_id(1));
  run_until_idle(ctx);
  EXPECT_TRUE(in_strand);
}

TEST(AsyncReceive, DisconnectingTheDeviceAbortsAPendingReceive) {
  asio::io_context ctx;
  device d;
  auto r = std::make_shared<received>();
  d.async_receive(asio::bind_executor(ctx, recorder(r)));
  d.disconnect();
  EXPECT_EQ(r->calls, 0);
  run_until_idle(ctx);
  EXPECT_EQ(r->calls, 1);
  EXPECT_EQ(r->ec, asio::error::operation_aborted);
}

TEST(AsyncReceive, ASecondReceiveAtOnceFailsWithAlreadyStarted) {
  // One receive at a time per device: a second one must not silently take
  // the place of the first (which would then never complete, and leak).
  asio::io_context ctx;
  device d;
  auto first = std::make_shared<received>();
  auto second = std::make_shared<received>();
  d.async_receive(asio::bind_executor(ctx, recorder(first)));
  d.async_receive(asio::bind_executor(ctx, recorder(second)));
  EXPECT_EQ(second->calls, 0) << "not inline, even to fail";
  run_until_idle(ctx);
  EXPECT_EQ(first->calls, 0);
  EXPECT_EQ(second->calls, 1);
  EXPECT_EQ(second->ec, asio::error::already_started);
  d.line().request_shutdown(device_id(6));
  run_until_idle(ctx);
  EXPECT_EQ(first->calls, 1);
  EXPECT_EQ(first->msg, message(backplane::shutdown{device_id(6)}));
  EXPECT_EQ(second->calls, 1);
}

/// Counts what the wait allocates through the handler's allocator.
struct counters {
  std::atomic<int> allocations{0};
  std::atomic<int> deallocations{0};
};

template <class T>
struct counting_allocator {
  using value_type = T;
  counters* c;
  explicit counting_allocator(counters* cs) noexcept : c(cs) {}
  template <class U>
  counting_allocator(counting_allocator<U> const& o) noexcept : c(o.c) {}  // NOLINT
  T* allocate(std::size_t n) {
    ++c->allocations;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    ++c->deallocations;
    std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(counting_allocator<U> const& o) const noexcept {
    return c == o.c;
  }
};

TEST(AsyncReceive, UsesTheHandlersAllocator) {
  asio::io_context ctx;
  device d;
  counters c;
  int calls = 0;
  d.async_receive(asio::bind_allocator(
      counting_allocator<void>(&c),
      asio::bind_executor(ctx, [&](boost::system::error_code, message) { ++calls; })));
  EXPECT_GE(c.allocations.load(), 1);
  d.line().request_shutdown(device_id(1));
  run_until_idle(ctx);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(c.allocations.load(), c.deallocations.load());
}

}  // namespace
