// Lifetimes: io_contexts destroyed while coroutines wait on devices, lines
// and devices outliving their context, works outliving their watcher. Each
// test also holds a token in every coroutine frame, so that "nothing leaks"
// is checked here as well as by LeakSanitizer in the sanitizer build.

#include "support/run_until_idle.hpp"

#include <backplane/backplane.hpp>

#include <gtest/gtest.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <map>
#include <memory>
#include <optional>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace backplane;
using backplane::test::run_until_idle;
using backplane::test::start;

using token = std::shared_ptr<int>;

/// Everything in `d`'s mailbox, by sender: each sender's faults in order.
std::map<device_id, std::vector<std::optional<fault>>> drain(device& d) {
  std::map<device_id, std::vector<std::optional<fault>>> out;
  while (auto m = d.try_receive()) {
    auto const* gone = as_disconnected(*m);
    if (gone) out[gone->sender].push_back(gone->fault);
  }
  return out;
}

/// Every line's device was heard exactly once, dropped.
void expect_each_dropped_once(device& monitor, std::vector<line> const& lines) {
  auto heard = drain(monitor);
  EXPECT_EQ(heard.size(), lines.size());
  for (auto const& l : lines) {
    EXPECT_FALSE(l.connected());
    EXPECT_EQ(heard[l.id()], std::vector<std::optional<fault>>{fault::drop()}) << l.id().value();
  }
}
using work_result = boost::system::result<int, int>;

asio::awaitable<work_result> forever_result(token) {
  co_await test::forever();
  co_return work_result(boost::system::in_place_value, 0);
}

asio::awaitable<int> forever_int(token) {
  co_await test::forever();
  co_return 0;
}

asio::awaitable<int> gated_int(device& gate, token) {
  (void)co_await gate.async_receive(asio::use_awaitable);
  co_return 0;
}

enum class waiting_in { receive, watch, watch_on_device, part_manage, manage };

/// Spawns a coroutine that owns a fresh device and waits in `how` for ever.
line spawn_waiter(asio::io_context& ctx, waiting_in how, token t, device* gate = nullptr) {
  switch (how) {
    case waiting_in::receive:
      return spawn(ctx, device(), [t](device& d) -> asio::awaitable<void> {
        (void)co_await d.async_receive(asio::use_awaitable);
      });
    case waiting_in::watch:
      return spawn(ctx, device(), [t](device& d) -> asio::awaitable<void> {
        work<int> w(forever_int(t));
        for (;;) (void)co_await watch(d, w);
      });
    case waiting_in::watch_on_device:
      return spawn(ctx, device(), [t, gate](device& d) -> asio::awaitable<void> {
        work<int> w(gated_int(*gate, t));
        for (;;) (void)co_await watch(d, w);
      });
    case waiting_in::part_manage:
      return spawn(ctx, device(), [t](device& d) -> asio::awaitable<void> {
        (void)co_await part_manage(std::move(d), forever_result(t));
      });
    case waiting_in::manage:
      return spawn(ctx, device(), [t](device& d) -> asio::awaitable<void> {
        (void)co_await manage(std::move(d), forever_result(t));
      });
  }
  return {};
}

class ContextDestroyed : public ::testing::TestWithParam<waiting_in> {};

TEST_P(ContextDestroyed, WhileCoroutinesWaitLeaksNothing) {
  device monitor;
  // Outlive the context: a work may wait on one (one receive per device).
  std::vector<device> gates(50);
  auto t = std::make_shared<int>(0);
  std::weak_ptr<int> weak = t;
  std::vector<line> lines;
  {
    asio::io_context ctx;
    for (std::size_t i = 0; i < gates.size(); ++i) {
      lines.push_back(spawn_waiter(ctx, GetParam(), t, &gates[i]));
      ASSERT_FALSE(monitor.link_line(lines.back(), link_mode::monitor));
    }
    t.reset();
    run_until_idle(ctx);
    for (auto& l : lines) EXPECT_TRUE(l.connected());
    EXPECT_FALSE(monitor.try_receive());
  }
  // Every frame is gone, and with it every device, dropped.
  EXPECT_TRUE(weak.expired());
  expect_each_dropped_once(monitor, lines);
  EXPECT_EQ(monitor.link_count(), 0u);
  // The gates are still usable.
  for (auto& gate : gates) {
    EXPECT_TRUE(gate.line().request_shutdown(device_id(1)));
    EXPECT_TRUE(gate.try_receive());
  }
}

INSTANTIATE_TEST_SUITE_P(Lifetime, ContextDestroyed,
                         ::testing::Values(waiting_in::receive, waiting_in::watch,
                                           waiting_in::watch_on_device, waiting_in::part_manage,
                                           waiting_in::manage),
                         [](auto const& info) {
                           switch (info.param) {
                             case waiting_in::receive: return "InAsyncReceive";
                             case waiting_in::watch: return "InWatch";
                             case waiting_in::watch_on_device: return "InWatchOfAWorkOnADevice";
                             case waiting_in::part_manage: return "InPartManage";
                             case waiting_in::manage: return "InManage";
                           }
                           return "Unknown";
                         });

TEST(Lifetime, ContextDestroyedWithLinkedWaitersInside) {
  // Peers in one context: destroying one frame drops its device, which
  // tells the others while they too are being destroyed.
  device outside;
  auto t = std::make_shared<int>(0);
  std::weak_ptr<int> weak = t;
  std::vector<line> lines;
  {
    asio::io_context ctx;
    for (int i = 0; i < 100; ++i) {
      auto how = static_cast<waiting_in>(i % 5 == 2 ? 0 : i % 5);
      lines.push_back(spawn_waiter(ctx, how, t));
      if (i > 0) {
        ASSERT_FALSE(lines[i].link_line(lines[i - 1], link_mode::peer));
      }
    }
    ASSERT_FALSE(outside.link_line(lines.back(), link_mode::monitor));
    t.reset();
    run_until_idle(ctx);
  }
  EXPECT_TRUE(weak.expired());
  for (auto& l : lines) EXPECT_FALSE(l.connected());
  auto m = outside.try_receive();
  ASSERT_TRUE(m);
  EXPECT_EQ(as_disconnected(*m)->sender, lines.back().id());
}

TEST(Lifetime, ContextNeverRunLeaksNothing) {
  device monitor;
  auto t = std::make_shared<int>(0);
  std::weak_ptr<int> weak = t;
  std::vector<line> lines;
  {
    asio::io_context ctx;
    for (int i = 0; i < 20; ++i) {
      lines.push_back(spawn_waiter(ctx, static_cast<waiting_in>(i % 5 == 2 ? 0 : i % 5), t));
      ASSERT_FALSE(monitor.link_line(lines.back(), link_mode::monitor));
    }
    t.reset();
  }
  EXPECT_TRUE(weak.expired());
  expect_each_dropped_once(monitor, lines);
}

TEST(Lifetime, ContextDestroyedWithACompletionQueued) {
  // The message arrived and the wake-up is posted, but never run.
  device monitor;
  auto t = std::make_shared<int>(0);
  std::weak_ptr<int> weak = t;
  line l;
  {
    asio::io_context ctx;
    l = spawn_waiter(ctx, waiting_in::receive, t);
    ASSERT_FALSE(monitor.link_line(l, link_mode::monitor));
    t.reset();
    run_until_idle(ctx);
    EXPECT_TRUE(l.request_shutdown(device_id(1)));
  }
  EXPECT_TRUE(weak.expired());
  EXPECT_EQ(monitor.try_receive(), message(disconnected{l.id(), fault::drop()}));
}

TEST(Lifetime, MonitorInAnotherContextHearsTheDrop) {
  asio::io_context survivor;
  device monitor;
  std::optional<message> heard;
  monitor.async_receive(asio::bind_executor(survivor, [&](boost::system::error_code ec, message m) {
    if (!ec) heard = m;
  }));
  line l;
  {
    asio::io_context doomed;
    l = spawn_waiter(doomed, waiting_in::manage, std::make_shared<int>(0));
    ASSERT_FALSE(monitor.link_line(l, link_mode::monitor));
    run_until_idle(doomed);
    run_until_idle(survivor);
    EXPECT_FALSE(heard);
  }
  run_until_idle(survivor);
  EXPECT_EQ(heard, message(disconnected{l.id(), fault::drop()}));
}

TEST(Lifetime, DeviceOutlivesItsContext) {
  device d;
  auto t = std::make_shared<int>(0);
  std::weak_ptr<int> weak = t;
  bool called = false;
  {
    asio::io_context ctx;
    d.async_receive(asio::bind_executor(
        ctx, [&called, t](boost::system::error_code, message) { called = true; }));
    t.reset();
    run_until_idle(ctx);
  }
  // The pending handler was destroyed, not invoked.
  EXPECT_FALSE(called);
  EXPECT_TRUE(weak.expired());
  // The device goes on: it receives, links, and waits on a new context.
  EXPECT_TRUE(d.line().request_shutdown(device_id(1)));
  EXPECT_EQ(d.try_receive(), message(backplane::shutdown{device_id(1)}));
  asio::io_context next;
  std::optional<message> got;
  d.async_receive(asio::bind_executor(next, [&](boost::system::error_code ec, message m) {
    if (!ec) got = m;
  }));
  device other;
  d.link(other, link_mode::monitor);
  auto other_id = other.id();
  other.disconnect(fault::error());
  run_until_idle(next);
  EXPECT_EQ(got, message(disconnected{other_id, fault::error()}));
}

TEST(Lifetime, DeviceMovesBetweenContexts) {
  device d;
  asio::io_context first;
  asio::io_context second;
  int first_calls = 0;
  std::optional<message> second_got;
  // Wait on the first context, complete there, then wait on the second.
  d.async_receive(asio::bind_executor(first, [&](auto, auto) { ++first_calls; }));
  d.line().request_shutdown(device_id(1));
  run_until_idle(first);
  EXPECT_EQ(first_calls, 1);
  d.async_receive(asio::bind_executor(second, [&](boost::system::error_code ec, message m) {
    if (!ec) second_got = m;
  }));
  run_until_idle(second);
  d.line().request_shutdown(device_id(2));
  run_until_idle(second);
  EXPECT_EQ(second_got, message(backplane::shutdown{device_id(2)}));
}

TEST(Lifetime, FirstContextDestroyedAfterTheDeviceMovedOn) {
  device d;
  std::optional<asio::io_context> first(std::in_place);
  asio::io_context second;
  bool second_called = false;
  d.async_receive(asio::bind_executor(*first, [](auto, auto) {}));
  d.line().request_shutdown(device_id(1));
  run_until_idle(*first);
  d.async_receive(asio::bind_executor(second, [&](auto, auto) { second_called = true; }));
  first.reset();
  EXPECT_FALSE(second_called);
  d.line().request_shutdown(device_id(2));
  run_until_idle(second);
  EXPECT_TRUE(second_called);
}

TEST(Lifetime, ContextsRebornAtTheSameAddress) {
  // A context often reuses the storage of the one before it; the device must
  // never reach a dead context's waiter list through a stale cache entry.
  device d;
  std::optional<asio::io_context> ctx;
  for (int round = 0; round < 20; ++round) {
    ctx.emplace();
    int calls = 0;
    d.async_receive(asio::bind_executor(*ctx, [&](auto, auto) { ++calls; }));
    if (round % 2 == 0) {
      // Complete this one; the next context is destroyed with it parked.
      d.line().request_shutdown(device_id(1));
      run_until_idle(*ctx);
      EXPECT_EQ(calls, 1);
    }
    ctx.reset();
    EXPECT_LE(calls, 1);
  }
  EXPECT_TRUE(d.line().request_shutdown(device_id(2)));
  EXPECT_EQ(d.try_receive(), message(backplane::shutdown{device_id(2)}));
}

TEST(Lifetime, WorkOutlivesItsContext) {
  // The watcher's frame dies with the context; the work object, kept
  // outside, still thinks its coroutine runs and cancels it on destruction.
  device d;
  auto t = std::make_shared<int>(0);
  std::weak_ptr<int> weak = t;
  std::optional<work<int>> w(std::in_place, forever_int(t));
  t.reset();
  {
    asio::io_context ctx;
    d.line().request_shutdown(device_id(1));
    auto r = start(ctx, watch(d, *w));
    run_until_idle(ctx);
    ASSERT_TRUE(r->done);
    EXPECT_TRUE(w->started());
    EXPECT_FALSE(w->done());
  }
  EXPECT_TRUE(weak.expired());
  w.reset();
  EXPECT_TRUE(d.valid());
}

TEST(Lifetime, LinesOutliveDevicesAndContexts) {
  std::vector<line> lines;
  device survivor;
  {
    asio::io_context ctx;
    for (int i = 0; i < 10; ++i)
      lines.push_back(spawn_waiter(ctx, waiting_in::receive, std::make_shared<int>(0)));
    ASSERT_FALSE(lines[0].link_line(survivor.line(), link_mode::peer));
    run_until_idle(ctx);
  }
  for (auto& l : lines) {
    EXPECT_FALSE(l.connected());
    EXPECT_FALSE(l.request_shutdown(survivor.id()));
    EXPECT_EQ(l.link_line(survivor.line(), link_mode::monitor), link_error::device_down);
    EXPECT_EQ(survivor.link_line(l, link_mode::monitor), link_error::link_down);
  }
  EXPECT_EQ(survivor.try_receive(), message(disconnected{lines[0].id(), fault::drop()}));
  EXPECT_EQ(survivor.link_count(), 0u);
}

}  // namespace
