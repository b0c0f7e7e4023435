// spawn: a coroutine owning a device, and how its end is heard.

#include "support/run_until_idle.hpp"

#include <backplane/backplane.hpp>

#include <gtest/gtest.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>

namespace {

namespace asio = boost::asio;
using namespace backplane;
using backplane::test::run_until_idle;

using work_result = boost::system::result<int, int>;

TEST(Spawn, NormalReturnIsACleanDisconnect) {
  asio::io_context ctx;
  device monitor;
  bool ran = false;
  auto l = spawn(ctx, device(), [&](device&) -> asio::awaitable<void> {
    ran = true;
    co_return;
  });
  // Nothing runs before the context does, so linking now misses nothing.
  EXPECT_FALSE(ran);
  EXPECT_TRUE(l.connected());
  ASSERT_FALSE(monitor.link_line(l, link_mode::monitor));
  run_until_idle(ctx);
  EXPECT_TRUE(ran);
  EXPECT_FALSE(l.connected());
  EXPECT_EQ(monitor.try_receive(), message(disconnected{l.id(), std::nullopt}));
  EXPECT_FALSE(monitor.try_receive());
}

TEST(Spawn, AnEndWithoutSuspendingIsHeardOnTheNextPass) {
  // co_spawn passes once more through the queue after a coroutine that never suspended. The
  // device ends before that, so its monitor wakes on the pass after the body's, not two later
  // (with a reactor on the context, each pass is an epoll_wait).
  asio::io_context ctx;
  device monitor;
  auto l = spawn(ctx, device(), [](device&) -> asio::awaitable<void> { co_return; });
  ASSERT_FALSE(monitor.link_line(l, link_mode::monitor));
  std::optional<message> heard;
  monitor.async_receive(asio::bind_executor(ctx, [&heard](boost::system::error_code ec, message m) {
    EXPECT_FALSE(ec);
    heard = std::move(m);
  }));
  std::size_t handlers = 0;
  while (!heard && ctx.poll_one() != 0) ++handlers;
  EXPECT_EQ(heard, message(disconnected{l.id(), std::nullopt}));
  EXPECT_EQ(handlers, 2u);  // the body's start, then the monitor's wake-up
  run_until_idle(ctx);
}

TEST(Spawn, ExceptionIsAnErrorFault) {
  asio::io_context ctx;
  device monitor;
  auto l = spawn(ctx, device(), [](device&) -> asio::awaitable<void> {
    throw std::runtime_error("boom");
    co_return;
  });
  ASSERT_FALSE(monitor.link_line(l, link_mode::monitor));
  run_until_idle(ctx);
  auto m = monitor.try_receive();
  ASSERT_TRUE(m);
  auto const* gone = as_disconnected(*m);
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->sender, l.id());
  EXPECT_EQ(gone->fault, fault::error());
  // The escaped exception is the cause the monitor hears.
  EXPECT_EQ(describe(gone->cause), "std::runtime_error: boom");
  EXPECT_FALSE(monitor.try_receive());
}

TEST(Spawn, ReturnsALineToTheGivenDevice) {
  asio::io_context ctx;
  device d;
  auto id = d.id();
  auto l = spawn(ctx, std::move(d), [](device&) -> asio::awaitable<void> { co_return; });
  EXPECT_EQ(l.id(), id);
  run_until_idle(ctx);
}

TEST(Spawn, TheCoroutineOwnsTheDeviceWhileItWaits) {
  asio::io_context ctx;
  device monitor;
  device requester;
  std::optional<message> got;
  auto l = spawn(ctx, device(), [&](device& d) -> asio::awaitable<void> {
    got = co_await d.async_receive(asio::use_awaitable);
  });
  ASSERT_FALSE(monitor.link_line(l, link_mode::monitor));
  run_until_idle(ctx);
  EXPECT_TRUE(l.connected());
  EXPECT_FALSE(got);
  EXPECT_TRUE(l.request_shutdown(requester.id()));
  run_until_idle(ctx);
  EXPECT_EQ(got, message(backplane::shutdown{requester.id()}));
  EXPECT_EQ(monitor.try_receive(), message(disconnected{l.id(), std::nullopt}));
}

TEST(Spawn, OwnDisconnectIsHeardOnce) {
  asio::io_context ctx;
  device monitor;
  auto l = spawn(ctx, device(), [](device& d) -> asio::awaitable<void> {
    d.disconnect(fault::drop());
    co_return;
  });
  ASSERT_FALSE(monitor.link_line(l, link_mode::monitor));
  run_until_idle(ctx);
  EXPECT_EQ(monitor.try_receive(), message(disconnected{l.id(), fault::drop()}));
  EXPECT_FALSE(monitor.try_receive());
}

asio::awaitable<work_result> fails_with(int e) {
  co_return work_result(boost::system::in_place_error, e);
}

TEST(Spawn, DeviceMovedIntoManageIsJudgedByManage) {
  asio::io_context ctx;
  device monitor;
  std::optional<crash<int>> crashed;
  auto l = spawn(ctx, device(), [&](device& d) -> asio::awaitable<void> {
    auto r = co_await manage(std::move(d), fails_with(3));
    if (!r) crashed = r.error();
  });
  ASSERT_FALSE(monitor.link_line(l, link_mode::monitor));
  run_until_idle(ctx);
  ASSERT_TRUE(crashed);
  EXPECT_TRUE(crashed->is_error());
  auto m = monitor.try_receive();
  ASSERT_TRUE(m && as_disconnected(*m));
  EXPECT_EQ(as_disconnected(*m)->sender, l.id());
  EXPECT_EQ(as_disconnected(*m)->fault, fault::error());  // the cause: manage's returned_error
  EXPECT_FALSE(monitor.try_receive()) << "spawn must not disconnect a device it no longer owns";
}

TEST(Spawn, RunsOnTheGivenStrand) {
  asio::io_context ctx;
  auto strand = asio::make_strand(ctx);
  bool in_strand = false;
  bool resumed_in_strand = false;
  auto l = spawn(strand, device(), [&](device& d) -> asio::awaitable<void> {
    in_strand = strand.running_in_this_thread();
    (void)co_await d.async_receive(asio::use_awaitable);
    resumed_in_strand = strand.running_in_this_thread();
  });
  run_until_idle(ctx);
  l.request_shutdown(device_id(1));
  run_until_idle(ctx);
  EXPECT_TRUE(in_strand);
  EXPECT_TRUE(resumed_in_strand);
}

TEST(Spawn, KeepsTheFunctionAliveWhileItRuns) {
  asio::io_context ctx;
  auto token = std::make_shared<int>(5);
  int seen = 0;
  auto l = spawn(ctx, device(), [token, &seen](device& d) -> asio::awaitable<void> {
    (void)co_await d.async_receive(asio::use_awaitable);
    seen = *token;  // the capture must still be there after a suspension
  });
  std::weak_ptr<int> weak = token;
  token.reset();
  run_until_idle(ctx);
  EXPECT_FALSE(weak.expired());
  l.request_shutdown(device_id(1));
  run_until_idle(ctx);
  EXPECT_EQ(seen, 5);
  EXPECT_TRUE(weak.expired()) << "the function goes away with the coroutine";
}

TEST(Spawn, MayBeCalledFromAnotherThread) {
  asio::io_context ctx;
  device monitor;
  line l;
  std::thread t(
      [&] { l = spawn(ctx, device(), [](device&) -> asio::awaitable<void> { co_return; }); });
  t.join();
  ASSERT_FALSE(monitor.link_line(l, link_mode::monitor));
  ctx.run();
  EXPECT_EQ(monitor.try_receive(), message(disconnected{l.id(), std::nullopt}));
}

}  // namespace
