// line: sending, asking for shutdown, and surviving its device.

#include <backplane/backplane.hpp>

#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

using namespace backplane;

TEST(Line, IsCopyableAndComparesByDevice) {
  static_assert(std::is_copy_constructible_v<line> && std::is_copy_assignable_v<line>);
  device a;
  device b;
  line la = a.line();
  line la2 = la;
  EXPECT_EQ(la, la2);
  EXPECT_EQ(la, a.line());
  EXPECT_FALSE(la == b.line());
  EXPECT_EQ(la2.id(), a.id());
}

TEST(Line, SendPutsTheMessageInTheMailbox) {
  device d;
  device requester;
  auto l = d.line();
  EXPECT_TRUE(l.send(backplane::shutdown{requester.id()}));
  EXPECT_EQ(d.try_receive(), message(backplane::shutdown{requester.id()}));
  EXPECT_FALSE(d.try_receive());
}

TEST(Line, RequestShutdownSendsAShutdown) {
  device d;
  EXPECT_TRUE(d.line().request_shutdown(device_id(99)));
  auto m = d.try_receive();
  ASSERT_TRUE(m);
  ASSERT_TRUE(as_shutdown(*m));
  EXPECT_FALSE(as_disconnected(*m));
  EXPECT_EQ(as_shutdown(*m)->requester, device_id(99));
}

TEST(Line, MailboxIsFifo) {
  // The first message lives inline and the rest in a queue: interleave
  // sends and receives so that both paths and the switch between them run.
  device d;
  auto l = d.line();
  std::uint64_t sent = 1;
  std::uint64_t received = 1;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < round % 7 + 1; ++i)
      EXPECT_TRUE(l.send(backplane::shutdown{device_id(sent++)}));
    for (int i = 0; i < round % 5; ++i) {
      auto m = d.try_receive();
      if (!m) break;
      EXPECT_EQ(*m, message(backplane::shutdown{device_id(received++)}));
    }
  }
  while (auto m = d.try_receive())
    EXPECT_EQ(*m, message(backplane::shutdown{device_id(received++)}));
  EXPECT_EQ(sent, received);
}

TEST(Line, SendToGoneDeviceReturnsFalse) {
  line l;
  {
    device d;
    l = d.line();
    EXPECT_TRUE(l.connected());
  }
  EXPECT_FALSE(l.connected());
  EXPECT_FALSE(l.send(backplane::shutdown{device_id(1)}));
  EXPECT_FALSE(l.send(disconnected{device_id(1), fault::error()}));
  EXPECT_FALSE(l.request_shutdown(device_id(1)));
}

TEST(Line, SendToDisconnectedDeviceReturnsFalse) {
  device d;
  auto l = d.line();
  d.disconnect();
  EXPECT_FALSE(l.connected());
  EXPECT_FALSE(l.request_shutdown(device_id(1)));
}

TEST(Line, OutlivesItsDevice) {
  std::optional<line> l;
  device_id id;
  {
    device d;
    id = d.id();
    l = d.line();
  }
  // Still answers, without keeping anything connected.
  EXPECT_TRUE(l->valid());
  EXPECT_EQ(l->id(), id);
  EXPECT_FALSE(l->connected());
  line copy = *l;
  l.reset();
  EXPECT_EQ(copy.id(), id);
  EXPECT_FALSE(copy.send(backplane::shutdown{id}));
}

TEST(Line, OutlivesItsDeviceWhileLinked) {
  // A line that outlives its device keeps its state alive; the links of
  // that state must already be gone (the peers were told).
  device watcher;
  line l;
  {
    device d;
    l = d.line();
    EXPECT_FALSE(watcher.link_line(l, link_mode::peer));
  }
  EXPECT_EQ(watcher.link_count(), 0u);
  EXPECT_TRUE(watcher.try_receive());
  EXPECT_EQ(watcher.link_line(l, link_mode::monitor), link_error::link_down);
}

TEST(Line, EmptyLineThrowsLogicError) {
  line l;
  EXPECT_FALSE(l.valid());
  device d;
  EXPECT_THROW((void)l.id(), std::logic_error);
  EXPECT_THROW((void)l.connected(), std::logic_error);
  EXPECT_THROW((void)l.send(backplane::shutdown{d.id()}), std::logic_error);
  EXPECT_THROW((void)l.request_shutdown(d.id()), std::logic_error);
  EXPECT_THROW((void)l.link_line(d.line(), link_mode::monitor), std::logic_error);
  EXPECT_THROW((void)d.line().link_line(l, link_mode::monitor), std::logic_error);
  EXPECT_THROW((void)d.link_line(l, link_mode::monitor), std::logic_error);
  EXPECT_THROW(l.unlink_line(d.line(), link_mode::monitor), std::logic_error);
  line moved_to(std::move(l));
  EXPECT_FALSE(moved_to.valid());
  line from_device = d.line();
  line moved(std::move(from_device));
  EXPECT_FALSE(from_device.valid());  // NOLINT(bugprone-use-after-move)
  EXPECT_THROW((void)from_device.id(), std::logic_error);
  EXPECT_EQ(moved.id(), d.id());
}

TEST(Line, SendsFromManyThreadsAreAllDeliveredInOrderPerSender) {
  constexpr int threads = 4;
  constexpr std::uint64_t per_thread = 2000;
  device d;
  auto l = d.line();
  std::vector<std::thread> senders;
  for (int t = 0; t < threads; ++t) {
    senders.emplace_back([l, t] {
      for (std::uint64_t i = 0; i < per_thread; ++i)
        EXPECT_TRUE(
            l.send(backplane::shutdown{device_id((static_cast<std::uint64_t>(t) << 32) | i)}));
    });
  }
  for (auto& s : senders) s.join();
  std::vector<std::uint64_t> next(threads, 0);
  std::uint64_t total = 0;
  while (auto m = d.try_receive()) {
    auto v = as_shutdown(*m)->requester.value();
    auto t = v >> 32;
    ASSERT_LT(t, static_cast<std::uint64_t>(threads));
    EXPECT_EQ(v & 0xffffffffU, next[t]++);
    ++total;
  }
  EXPECT_EQ(total, threads * per_thread);
}

}  // namespace
