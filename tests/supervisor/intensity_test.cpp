// Restart intensity, OTP's rule: before each restart, forget restarts older
// than the period; more than max_restarts left -> stop everything, give up
// with a fault. The manual clock moves the window.

#include "supervisor/fixture.hpp"

#include <limits>

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;

namespace {

using Intensity = supervisor_fixture;

/// A device that monitors the supervisor: what its parent would hear.
struct watcher {
  device d;
  explicit watcher(supervisor const& s) { EXPECT_FALSE(d.link_line(s.line(), link_mode::monitor)); }
  std::optional<std::optional<fault>> heard() {
    auto m = d.try_receive();
    if (!m) return std::nullopt;
    auto const* gone = as_disconnected(*m);
    EXPECT_TRUE(gone);
    return gone ? gone->fault : std::nullopt;
  }
};

TEST_F(Intensity, ExactlyAtTheLimitKeepsGoing) {
  auto s = spec();
  s.max_restarts = 3;
  s.period = 5s;
  s.children = {kids.spec("a"), kids.spec("b")};
  auto sup = start(std::move(s));
  watcher w(sup);
  for (int i = 0; i < 3; ++i) {
    kids.end("a", ending::error);
    idle();
  }
  EXPECT_EQ(kids.starts["a"], 4);
  EXPECT_FALSE(ended(sup));
  EXPECT_FALSE(w.heard());
  auto b = budget(sup).value;
  EXPECT_EQ(b.restarts_in_window, 3u);
  EXPECT_EQ(b.max_restarts, 3u);
  EXPECT_EQ(b.period, 5s);
  EXPECT_TRUE(of_kind(supervisor_event_kind::intensity_exceeded).empty());
  stop(sup);
}

TEST_F(Intensity, OneOverTheLimitGivesUpWithFault) {
  auto s = spec();
  s.max_restarts = 3;
  s.period = 5s;
  s.children = {kids.spec("a"), kids.spec("b"), kids.spec("c")};
  auto sup = start(std::move(s));
  watcher w(sup);
  for (int i = 0; i < 3; ++i) {
    kids.end("b", ending::error);
    idle();
  }
  kids.clear_log();
  kids.end("b", ending::exception);
  idle();
  // The fourth restart is refused: everything stops, last started first.
  EXPECT_EQ(kids.log, (strings{"end b", "stop c", "stop a"}));
  EXPECT_EQ(kids.starts["b"], 4);
  auto exit = ended(sup);
  ASSERT_TRUE(exit);
  EXPECT_TRUE(exit->intensity_exceeded);
  EXPECT_EQ(exit->fault, fault::error());
  auto heard = w.heard();
  ASSERT_TRUE(heard);
  EXPECT_EQ(*heard, fault::error());

  auto give_up = of_kind(supervisor_event_kind::intensity_exceeded);
  ASSERT_EQ(give_up.size(), 1u);
  EXPECT_EQ(give_up[0].child, "b");
  EXPECT_EQ(why(give_up[0]), "exception: std::runtime_error: boom");
  EXPECT_EQ(give_up[0].restarts, 4u);
  EXPECT_EQ(give_up[0].max_restarts, 3u);
  auto term = of_kind(supervisor_event_kind::child_terminated);
  ASSERT_EQ(term.size(), 4u);
  // The refused restart's report says so: 4 restarts counted, 3 allowed.
  EXPECT_EQ(decision(term[3]), "give_up");
  EXPECT_EQ(term[3].restarts, 4u);
  EXPECT_EQ(term[3].max_restarts, 3u);
  EXPECT_NE(format_text(term[3]).find("restarts=\"4 > 3 in 5s\" action=give_up"), std::string::npos)
      << format_text(term[3]);
  EXPECT_EQ(decision(term[2]), "restart");
  EXPECT_EQ(term[2].restarts, 3u);

  // A supervisor that gave up answers nothing but its exit.
  EXPECT_EQ(which_ec(sup).ec, supervisor_errc::supervisor_down);
  EXPECT_EQ(start_child(sup, kids.spec("late")).ec, supervisor_errc::supervisor_down);
  auto again = stop(sup);
  EXPECT_TRUE(again.intensity_exceeded);
}

TEST_F(Intensity, ZeroRestartsFirstRestartableFailureEnds) {
  auto s = spec();
  s.max_restarts = 0;
  s.children = {kids.spec("perm"), kids.spec("trans", restart_type::transient),
                kids.spec("temp", restart_type::temporary)};
  auto sup = start(std::move(s));
  // Exits that are not restarted do not count.
  kids.end("temp", ending::error);
  kids.end("trans", ending::clean);
  idle();
  EXPECT_FALSE(ended(sup));
  EXPECT_EQ(budget(sup).value.restarts_in_window, 0u);
  kids.end("perm", ending::error);
  idle();
  auto exit = ended(sup);
  ASSERT_TRUE(exit);
  EXPECT_TRUE(exit->intensity_exceeded);
  EXPECT_EQ(kids.starts["perm"], 1);
}

TEST_F(Intensity, ZeroRestartsInZeroPeriod) {
  auto s = spec();
  s.max_restarts = 0;
  s.period = 0s;
  s.children = {kids.spec("a", restart_type::transient)};
  auto sup = start(std::move(s));
  kids.end("a", ending::error);
  idle();
  auto exit = ended(sup);
  ASSERT_TRUE(exit);
  EXPECT_TRUE(exit->intensity_exceeded);
}

TEST_F(Intensity, RestartAtExactlyThePeriodStillCounts) {
  // OTP keeps restarts with now - t <= period.
  auto s = spec();
  s.max_restarts = 2;
  s.period = 10s;
  s.children = {kids.spec("a")};
  auto sup = start(std::move(s));
  kids.end("a", ending::error);  // t = 0
  idle();
  clock->advance(4s);
  kids.end("a", ending::error);  // t = 4
  idle();
  clock->advance(6s);
  EXPECT_EQ(budget(sup).value.restarts_in_window, 2u);
  kids.end("a", ending::error);  // t = 10: 0, 4, 10 are all within 10 s
  idle();
  auto exit = ended(sup);
  ASSERT_TRUE(exit);
  EXPECT_TRUE(exit->intensity_exceeded);
}

TEST_F(Intensity, WindowSlides) {
  auto s = spec();
  s.max_restarts = 2;
  s.period = 10s;
  s.children = {kids.spec("a")};
  auto sup = start(std::move(s));
  kids.end("a", ending::error);  // t = 0
  idle();
  clock->advance(4s);
  kids.end("a", ending::error);  // t = 4
  idle();
  auto b = budget(sup).value;
  EXPECT_EQ(b.restarts_in_window, 2u);
  EXPECT_EQ(b.until_oldest_expires, 6s);
  clock->advance(6s + 1ns);  // t = 10s + 1ns: the first one has left
  b = budget(sup).value;
  EXPECT_EQ(b.restarts_in_window, 1u);
  EXPECT_EQ(b.until_oldest_expires, 4s - 1ns);
  kids.end("a", ending::error);  // 4, 10: two, at the limit
  idle();
  EXPECT_FALSE(ended(sup));
  EXPECT_EQ(budget(sup).value.restarts_in_window, 2u);
  // Many restarts, each more than a period after the one before: never over.
  for (int i = 0; i < 20; ++i) {
    clock->advance(11s);
    kids.end("a", ending::error);
    idle();
  }
  EXPECT_FALSE(ended(sup));
  EXPECT_EQ(budget(sup).value.restarts_in_window, 1u);
  clock->advance(11s);
  auto quiet = budget(sup).value;
  EXPECT_EQ(quiet.restarts_in_window, 0u);
  EXPECT_EQ(quiet.until_oldest_expires, 0s);
  stop(sup);
}

TEST_F(Intensity, OneForAllCascadeCountsOnce) {
  auto s = spec();
  s.strategy = restart_strategy::one_for_all;
  s.max_restarts = 1;
  s.children = {kids.spec("a"), kids.spec("b"), kids.spec("c")};
  auto sup = start(std::move(s));
  kids.end("a", ending::error);
  idle();
  // Three children restarted, one restart counted.
  EXPECT_EQ(of_kind(supervisor_event_kind::restarted).size(), 3u);
  EXPECT_EQ(budget(sup).value.restarts_in_window, 1u);
  EXPECT_FALSE(ended(sup));
  kids.end("c", ending::error);
  idle();
  auto exit = ended(sup);
  ASSERT_TRUE(exit);
  EXPECT_TRUE(exit->intensity_exceeded);
}

TEST_F(Intensity, SimultaneousCrashesInOneForAllCountOnce) {
  // b's exit is already queued when a's restart takes everyone down and up:
  // b's old incarnation is not restarted a second time, nor counted.
  auto s = spec();
  s.strategy = restart_strategy::one_for_all;
  s.max_restarts = 1;
  s.children = {kids.spec("a"), kids.spec("b"), kids.spec("c")};
  auto sup = start(std::move(s));
  kids.end("a", ending::error);
  kids.end("b", ending::error);
  idle();
  EXPECT_FALSE(ended(sup));
  EXPECT_EQ(budget(sup).value.restarts_in_window, 1u);
  for (auto const& c : which(sup)) {
    EXPECT_EQ(c.incarnation, 2u) << c.id;
    EXPECT_EQ(c.status, child_status::running) << c.id;
  }
  auto term = of_kind(supervisor_event_kind::child_terminated);
  ASSERT_EQ(term.size(), 2u);
  EXPECT_EQ(term[0].child, "a");
  EXPECT_EQ(decision(term[0]), "restart");
  EXPECT_EQ(term[1].child, "b");
  EXPECT_EQ(term[1].incarnation, 1u);
  EXPECT_EQ(decision(term[1]), "none (restarted with its group)");
  stop(sup);
}

TEST_F(Intensity, HugeLimitCostsNothingUpFront) {
  // max_restarts near UINT32_MAX means "practically never give up"; the
  // restart history must not be allocated for the limit.
  auto s = spec();
  s.max_restarts = std::numeric_limits<std::uint32_t>::max();
  s.period = std::chrono::hours(24);
  s.children = {kids.spec("a")};
  auto sup = start(std::move(s));
  for (int i = 0; i < 100; ++i) {
    kids.end("a", ending::error);
    idle();
  }
  auto b = budget(sup).value;
  EXPECT_EQ(b.restarts_in_window, 100u);
  EXPECT_EQ(b.max_restarts, std::numeric_limits<std::uint32_t>::max());
  stop(sup);
}

TEST_F(Intensity, ReportsCountRestartsInWindow) {
  auto s = spec();
  s.max_restarts = 5;
  s.period = 1s;
  s.children = {kids.spec("a")};
  auto sup = start(std::move(s));
  for (int i = 0; i < 3; ++i) {
    kids.end("a", ending::error);
    idle();
    clock->advance(600ms);
  }
  // Restarts at 0, 600, 1200 ms; at 1200 the first has left.
  auto term = of_kind(supervisor_event_kind::child_terminated);
  ASSERT_EQ(term.size(), 3u);
  EXPECT_EQ(term[0].restarts, 1u);
  EXPECT_EQ(term[1].restarts, 2u);
  EXPECT_EQ(term[2].restarts, 2u);
  EXPECT_EQ(term[2].max_restarts, 5u);
  EXPECT_EQ(term[2].period, 1s);
  stop(sup);
}

}  // namespace
