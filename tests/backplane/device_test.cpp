// device: identity, ownership, disconnecting, and misuse.

#include <backplane/backplane.hpp>

#include <gtest/gtest.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <utility>

namespace {

using namespace backplane;

/// The message a monitor expects when `id` disconnects with `f`.
message gone(device_id id, std::optional<fault> f) { return disconnected{id, f}; }

TEST(Device, IsBornConnectedWithAFreshIdAndNoLinks) {
  device d;
  EXPECT_TRUE(d.valid());
  EXPECT_TRUE(d.id());
  EXPECT_EQ(d.link_count(), 0u);
  EXPECT_FALSE(d.try_receive());
  EXPECT_TRUE(d.line().connected());
  EXPECT_EQ(d.line().id(), d.id());
}

TEST(Device, IdsAreUniqueAndNeverReused) {
  std::unordered_set<device_id> seen;
  device_id last;
  for (int i = 0; i < 5000; ++i) {
    device d;
    // The destroyed device's id must not come back for the next one.
    EXPECT_TRUE(seen.insert(d.id()).second);
    EXPECT_GT(d.id(), last);
    last = d.id();
  }
  EXPECT_FALSE(device_id{});
  EXPECT_EQ(device_id{}.value(), 0u);
}

TEST(Device, IsMoveOnly) {
  static_assert(!std::is_copy_constructible_v<device>);
  static_assert(!std::is_copy_assignable_v<device>);
  static_assert(std::is_nothrow_move_constructible_v<device>);
  static_assert(std::is_nothrow_move_assignable_v<device>);
  device a;
  auto id = a.id();
  device b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the point of the test
  EXPECT_TRUE(b.valid());
  EXPECT_EQ(b.id(), id);
}

TEST(Device, MovingKeepsLinksAndMailbox) {
  device watcher;
  device a;
  watcher.link(a, link_mode::monitor);
  a.line().request_shutdown(watcher.id());
  device b(std::move(a));
  EXPECT_EQ(b.link_to(watcher.id()), link_mode::notify);
  auto m = b.try_receive();
  ASSERT_TRUE(m);
  EXPECT_EQ(*m, message(backplane::shutdown{watcher.id()}));
  auto id = b.id();
  b.disconnect(fault::error());
  EXPECT_EQ(watcher.try_receive(), gone(id, fault::error()));
}

TEST(Device, DestructorDisconnectsWithDrop) {
  device watcher;
  device_id id;
  line l;
  {
    device d;
    id = d.id();
    l = d.line();
    watcher.link(d, link_mode::monitor);
  }
  EXPECT_FALSE(l.connected());
  EXPECT_EQ(watcher.try_receive(), gone(id, fault::drop()));
  EXPECT_FALSE(watcher.try_receive());
  EXPECT_EQ(watcher.link_count(), 0u);
}

TEST(Device, MoveAssignmentDropsTheOverwrittenDevice) {
  device watcher;
  device a;
  device b;
  auto a_id = a.id();
  auto b_id = b.id();
  watcher.link(a, link_mode::monitor);
  watcher.link(b, link_mode::monitor);
  a = std::move(b);
  EXPECT_EQ(a.id(), b_id);
  EXPECT_EQ(watcher.try_receive(), gone(a_id, fault::drop()));
  EXPECT_FALSE(watcher.try_receive());
  EXPECT_EQ(watcher.link_to(b_id), link_mode::monitor);
}

TEST(Device, SelfMoveAssignmentIsHarmless) {
  device watcher;
  device a;
  watcher.link(a, link_mode::monitor);
  device& alias = a;
  a = std::move(alias);
  EXPECT_TRUE(a.valid());
  EXPECT_FALSE(watcher.try_receive());
}

TEST(Device, CleanDisconnectIsHeardWithoutFault) {
  device watcher;
  device d;
  auto id = d.id();
  watcher.link(d, link_mode::monitor);
  d.disconnect();
  EXPECT_FALSE(d.valid());
  EXPECT_EQ(watcher.try_receive(), gone(id, std::nullopt));
  EXPECT_EQ(watcher.link_count(), 0u);
}

TEST(Device, FaultyDisconnectIsHeardWithItsFault) {
  for (auto f : {fault::drop(), fault::error(), fault::cascade(device_id(12345))}) {
    device watcher;
    device d;
    auto id = d.id();
    watcher.link(d, link_mode::monitor);
    d.disconnect(f);
    EXPECT_EQ(watcher.try_receive(), gone(id, f)) << fmt::format("{}", f);
  }
}

TEST(Device, DisconnectWithACauseTellsEveryMonitorTheSameException) {
  device subject;
  device a;
  device b;
  a.link(subject, link_mode::monitor);
  b.link(subject, link_mode::peer);
  device_id const id = subject.id();
  auto const cause = std::make_exception_ptr(std::runtime_error("disk full"));
  subject.disconnect(fault::error(), cause);
  EXPECT_FALSE(subject.valid());
  EXPECT_EQ(a.try_receive(), message(disconnected{id, fault::error(), cause}));
  EXPECT_EQ(b.try_receive(), message(disconnected{id, fault::error(), cause}));
  // Without one, the cause is empty.
  device c;
  device watcher;
  watcher.link(c, link_mode::monitor);
  device_id const cid = c.id();
  c.disconnect(fault::error());
  auto m = watcher.try_receive();
  ASSERT_TRUE(m);
  EXPECT_FALSE(as_disconnected(*m)->cause);
  EXPECT_EQ(*m, gone(cid, fault::error()));
}

TEST(Device, DisconnectHappensOnceAndDiscardsTheMailbox) {
  device watcher;
  std::optional<device> d(std::in_place);
  auto l = d->line();
  watcher.link(*d, link_mode::monitor);
  EXPECT_TRUE(l.send(backplane::shutdown{watcher.id()}));
  d->disconnect(fault::error());
  // The destructor of an already disconnected device says nothing more.
  d.reset();
  EXPECT_EQ(watcher.try_receive(), gone(l.id(), fault::error()));
  EXPECT_FALSE(watcher.try_receive());
  EXPECT_FALSE(l.send(backplane::shutdown{watcher.id()}));
}

TEST(Device, SelfLinkThrowsInvalidArgument) {
  device d;
  try {
    d.link(d, link_mode::peer);
    FAIL() << "linking a device to itself must throw";
  } catch (std::invalid_argument const& e) {
    EXPECT_NE(std::string(e.what()).find("itself"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)d.link_line(d.line(), link_mode::monitor), std::invalid_argument);
  EXPECT_THROW((void)d.line().link_line(d.line(), link_mode::notify), std::invalid_argument);
  // Nothing was half-linked.
  EXPECT_EQ(d.link_count(), 0u);
  EXPECT_FALSE(d.link_to(d.id()));
}

TEST(Device, MovedFromDeviceThrowsLogicError) {
  device a;
  device b(std::move(a));
  device other;
  auto other_line = other.line();
  // NOLINTBEGIN(bugprone-use-after-move): detecting this misuse is the point.
  EXPECT_FALSE(a.valid());
  EXPECT_THROW((void)a.id(), std::logic_error);
  EXPECT_THROW((void)a.line(), std::logic_error);
  EXPECT_THROW(a.link(other, link_mode::monitor), std::logic_error);
  EXPECT_THROW(other.link(a, link_mode::monitor), std::logic_error);
  EXPECT_THROW(a.unlink(other, link_mode::monitor), std::logic_error);
  EXPECT_THROW(other.unlink(a, link_mode::monitor), std::logic_error);
  EXPECT_THROW((void)a.link_line(other_line, link_mode::monitor), std::logic_error);
  EXPECT_THROW(a.unlink_line(other_line, link_mode::monitor), std::logic_error);
  EXPECT_THROW((void)a.link_to(other.id()), std::logic_error);
  EXPECT_THROW((void)a.link_count(), std::logic_error);
  EXPECT_THROW((void)a.try_receive(), std::logic_error);
  EXPECT_THROW(a.disconnect(), std::logic_error);
  EXPECT_THROW((void)a.state_for_library(), std::logic_error);
  boost::asio::io_context ctx;
  EXPECT_THROW(a.async_receive(boost::asio::bind_executor(ctx, [](auto, auto) {})),
               std::logic_error);
  // NOLINTEND(bugprone-use-after-move)
  EXPECT_EQ(other.link_count(), 0u);
  EXPECT_EQ(ctx.poll(), 0u);
}

TEST(Device, MovedFromErrorSaysWhatToDo) {
  device a;
  device b(std::move(a));
  try {
    (void)a.id();  // NOLINT(bugprone-use-after-move)
    FAIL();
  } catch (std::logic_error const& e) {
    EXPECT_NE(std::string(e.what()).find("moved from"), std::string::npos) << e.what();
  }
}

TEST(Device, DisconnectedDeviceIsEmpty) {
  device d;
  d.disconnect();
  EXPECT_FALSE(d.valid());
  EXPECT_THROW((void)d.id(), std::logic_error);
  EXPECT_THROW(d.disconnect(), std::logic_error);
}

TEST(Device, MovedFromDeviceCanBeAssignedAgain) {
  device a;
  device b(std::move(a));
  a = device();  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(a.valid());
  EXPECT_NE(a.id(), b.id());
}

}  // namespace
