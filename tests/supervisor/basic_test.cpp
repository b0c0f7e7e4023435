#include "supervisor/fixture.hpp"

#include <boost/asio/steady_timer.hpp>

namespace asio = boost::asio;
using namespace backplane;
using backplane::test::decision;
using backplane::test::supervisor_fixture;
using backplane::test::why;

namespace {

/// A worker that runs under manage until told to stop; `fail` makes it
/// return an error once it has started.
asio::awaitable<boost::system::result<void, int>> wait_forever() {
  asio::steady_timer t(co_await asio::this_coro::executor, asio::steady_timer::time_point::max());
  co_await t.async_wait(asio::use_awaitable);
  co_return boost::system::result<void, int>();
}

struct counters {
  int starts = 0;
};

}  // namespace

using Basic = supervisor_fixture;

TEST_F(Basic, StartsChildrenInOrderAndStopsInReverse) {
  std::vector<std::string> log;
  auto s = spec();
  for (std::string id : {"a", "b", "c"}) {
    s.children.push_back(worker(id, [&log, id](device& d) -> asio::awaitable<void> {
      log.push_back("start " + id);
      auto r = co_await manage(std::move(d), wait_forever());
      log.push_back("stop " + id);
      (void)r;
    }));
  }
  auto sup = supervisor::start(ctx.get_executor(), std::move(s));
  ASSERT_TRUE(sup);
  idle();
  EXPECT_EQ(log, (std::vector<std::string>{"start a", "start b", "start c"}));
  bool stopped = false;
  sup->async_stop([&](boost::system::error_code ec, supervisor_exit e) {
    EXPECT_FALSE(ec);
    EXPECT_FALSE(e.fault);
    stopped = true;
  });
  idle();
  EXPECT_TRUE(stopped);
  EXPECT_EQ(log, (std::vector<std::string>{"start a", "start b", "start c", "stop c", "stop b",
                                           "stop a"}));
}

TEST_F(Basic, OneForOneRestartsCrashedChild) {
  int starts = 0;
  auto s = spec();
  s.children.push_back(worker("flaky", [&](device& d) -> asio::awaitable<void> {
    ++starts;
    if (starts == 1) throw std::runtime_error("boom");
    co_await manage(std::move(d), wait_forever());
  }));
  auto sup = supervisor::start(ctx.get_executor(), std::move(s));
  ASSERT_TRUE(sup);
  idle();
  EXPECT_EQ(starts, 2);
  auto term = of_kind(supervisor_event_kind::child_terminated);
  ASSERT_EQ(term.size(), 1u);
  EXPECT_EQ(why(term[0]), "exception: std::runtime_error: boom");
  EXPECT_EQ(decision(term[0]), "restart");
  EXPECT_EQ(term[0].restarts, 1u);
  EXPECT_EQ(of_kind(supervisor_event_kind::restarted).size(), 1u);
  bool stopped = false;
  sup->async_stop([&](auto, auto) { stopped = true; });
  idle();
  EXPECT_TRUE(stopped);
}

TEST_F(Basic, IntensityExceededGivesUpWithFault) {
  auto s = spec();
  s.max_restarts = 3;
  s.period = std::chrono::seconds(5);
  int starts = 0;
  s.children.push_back(worker("crasher", [&](device&) -> asio::awaitable<void> {
    ++starts;
    throw std::runtime_error("again");
    co_return;
  }));
  device watcher;
  auto sup = supervisor::start(ctx.get_executor(), std::move(s));
  ASSERT_TRUE(sup);
  ASSERT_FALSE(watcher.link_line(sup->line(), link_mode::monitor));
  idle();
  EXPECT_EQ(starts, 4);  // 1 start + 3 restarts, the 4th restart exceeds
  EXPECT_EQ(of_kind(supervisor_event_kind::intensity_exceeded).size(), 1u);
  auto m = watcher.try_receive();
  ASSERT_TRUE(m);
  ASSERT_TRUE(as_disconnected(*m));
  EXPECT_EQ(as_disconnected(*m)->fault, fault::error());
}

TEST_F(Basic, EachChildKeepsItsOwnStrandAcrossRestarts) {
  // child_strands: a strand per child, made once and reused by its restarts;
  // two children never share one.
  std::map<std::string, std::vector<asio::any_io_executor>> seen;
  auto s = spec();
  s.child_strands = true;
  s.max_restarts = 10;
  for (std::string id : {"a", "b"}) {
    s.children.push_back(worker(id, [&seen, id](child_context& c) -> asio::awaitable<void> {
      seen[id].push_back(c.executor);
      if (c.incarnation < 3) throw std::runtime_error("again");
      co_await manage(std::move(c.device), wait_forever());
    }));
  }
  auto sup = supervisor::start(ctx.get_executor(), std::move(s));
  ASSERT_TRUE(sup);
  idle();
  ASSERT_EQ(seen["a"].size(), 3u);
  ASSERT_EQ(seen["b"].size(), 3u);
  EXPECT_NE(seen["a"][0], asio::any_io_executor(ctx.get_executor()));  // a strand, not ctx's
  EXPECT_EQ(seen["a"][0], seen["a"][1]);
  EXPECT_EQ(seen["a"][1], seen["a"][2]);
  EXPECT_EQ(seen["b"][0], seen["b"][2]);
  EXPECT_NE(seen["a"][0], seen["b"][0]);
  stop(*sup);
}
