#include <backplane/backplane.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

namespace asio = boost::asio;
using namespace backplane;

TEST(Smoke, MonitorHearsDrop) {
  device a;
  std::optional<device> b(std::in_place);
  a.link(*b, link_mode::monitor);
  auto bid = b->id();
  b.reset();
  auto m = a.try_receive();
  ASSERT_TRUE(m);
  auto* d = as_disconnected(*m);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->sender, bid);
  EXPECT_EQ(d->fault, fault::drop());
  EXPECT_EQ(a.link_count(), 0u);
}

TEST(Smoke, ManageCascades) {
  asio::io_context ctx;
  device sup;
  device child;
  sup.link(child, link_mode::monitor);
  auto child_line = child.line();
  bool done = false;
  asio::co_spawn(ctx, [&, c = std::move(child)]() mutable -> asio::awaitable<void> {
    auto r = co_await manage(std::move(c), []() -> asio::awaitable<boost::system::result<int, int>> {
      co_return boost::system::result<int, int>(boost::system::in_place_error, 7);
    }());
    EXPECT_FALSE(r);
    EXPECT_TRUE(r.error().is_error());
    EXPECT_EQ(r.error().error_value(), 7);
    done = true;
  }, asio::detached);
  ctx.run();
  EXPECT_TRUE(done);
  auto m = sup.try_receive();
  ASSERT_TRUE(m);
  EXPECT_EQ(as_disconnected(*m)->fault, fault::error());
  EXPECT_EQ(fmt::format("{}", *m), fmt::format("disconnected {} (error)", child_line.id()));
}
