// Start functions that fail: at the supervisor's start, at a restart (retried,
// each try counted), for a dynamic child, for restart_child, and part-way
// through a group restart.

#include "supervisor/fixture.hpp"

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;

namespace {

using StartFailure = supervisor_fixture;

/// A puppet whose start can be made to fail, by throwing or by value.
struct flaky_start {
  flaky_start(puppets& k, std::string i, int fail = 0, bool value = false)
      : kids(k), id(std::move(i)), fail_next(fail), by_value(value) {}
  puppets& kids;
  std::string id;
  int fail_next = 0;  // how many starts to fail from now on
  bool by_value = false;
  int attempts = 0;
  std::function<void()> on_failure;  // runs inside the failing start

  child_spec spec(restart_type r = restart_type::permanent) {
    child_spec inner = kids.spec(id, r);
    child_spec c = inner;
    c.start = [this, inner_start = inner.start](child_context& ctx) -> start_result {
      ++attempts;
      if (fail_next > 0) {
        --fail_next;
        if (on_failure) on_failure();
        if (by_value) return start_error{"no database"};
        throw std::runtime_error("no database");
      }
      return inner_start(ctx);
    };
    return c;
  }
};

TEST_F(StartFailure, AtInitStopsStartedInReverseAndFails) {
  flaky_start d(kids, "d", 1);
  auto s = spec();
  s.children = {kids.spec("a"), kids.spec("b"), kids.spec("c"), d.spec(), kids.spec("e")};
  auto r = supervisor::start(ctx.get_executor(), std::move(s));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().id, "d");
  EXPECT_EQ(r.error().reason, "exception: std::runtime_error: no database");
  idle();
  EXPECT_EQ(kids.log, (strings{"start a", "start b", "start c", "stop c", "stop b", "stop a"}));
  EXPECT_EQ(kids.starts.count("e"), 0u);
  auto errs = of_kind(supervisor_event_kind::start_error);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].child, "d");
  EXPECT_EQ(why(errs[0]), "exception: std::runtime_error: no database");
  EXPECT_EQ(errs[0].incarnation, 1u);
}

TEST_F(StartFailure, AtInitByValue) {
  flaky_start a(kids, "a", 1, true);
  auto s = spec();
  s.children = {a.spec(), kids.spec("b")};
  auto r = supervisor::start(ctx.get_executor(), std::move(s));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().id, "a");
  EXPECT_EQ(r.error().reason, "no database");
  idle();
  EXPECT_TRUE(kids.log.empty());
}

TEST_F(StartFailure, EmptyStartErrorReasonIsNamed) {
  auto s = spec();
  s.children = {worker("a", [](device&) -> start_result { return start_error{}; })};
  auto r = supervisor::start(ctx.get_executor(), std::move(s));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "start_error");
  idle();
}

TEST_F(StartFailure, AtInitTheFailedSupervisorFaults) {
  // Whoever watched the supervisor's device (a parent) hears a fault. The
  // supervisor is gone once its started children have stopped.
  std::optional<line> sup_line;
  auto s = spec();
  s.children = {kids.spec("a"), worker("b", [&](child_context&) -> start_result {
                  throw std::runtime_error("nope");
                })};
  s.on_start = [&](supervisor const& h) { sup_line = h.line(); };
  auto r = supervisor::start(ctx.get_executor(), std::move(s));
  ASSERT_FALSE(r);
  EXPECT_FALSE(sup_line);  // never started: no handle was handed out
  idle();
  EXPECT_EQ(kids.log, (strings{"start a", "stop a"}));
}

TEST_F(StartFailure, AtRestartRetriedEachTryCounted) {
  flaky_start a(kids, "a");
  auto s = spec();
  s.max_restarts = 5;
  s.children = {a.spec(), kids.spec("b")};
  auto sup = start(std::move(s));
  a.fail_next = 2;
  kids.end("a", ending::error);
  idle();
  EXPECT_EQ(a.attempts, 4);  // 1 + two failed tries + the good one
  EXPECT_TRUE(kids.running("a"));
  EXPECT_EQ(budget(sup).value.restarts_in_window, 3u);
  auto errs = of_kind(supervisor_event_kind::start_error);
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_EQ(decision(errs[0]), "retry");
  EXPECT_EQ(errs[0].restarts, 2u);
  EXPECT_EQ(errs[1].restarts, 3u);
  EXPECT_EQ(errs[0].incarnation, 2u);
  EXPECT_EQ(errs[1].incarnation, 3u);
  auto info_a = info(sup, "a");
  EXPECT_EQ(info_a->status, child_status::running);
  EXPECT_EQ(info_a->incarnation, 4u);
  stop(sup);
}

TEST_F(StartFailure, RetriesBeyondIntensityGiveUp) {
  flaky_start a(kids, "a");
  auto s = spec();
  s.max_restarts = 3;
  s.children = {kids.spec("first"), a.spec()};
  auto sup = start(std::move(s));
  a.fail_next = 1000;
  kids.clear_log();
  kids.end("a", ending::error);
  idle();
  // The crash counts 1, failed tries 2, 3 and 4: the fourth is too many.
  EXPECT_EQ(a.attempts, 1 + 3);
  auto exit = ended(sup);
  ASSERT_TRUE(exit);
  EXPECT_TRUE(exit->intensity_exceeded);
  EXPECT_EQ(kids.log, (strings{"crash a", "stop first"}));
  auto errs = of_kind(supervisor_event_kind::start_error);
  ASSERT_EQ(errs.size(), 3u);
  EXPECT_EQ(decision(errs.back()), "give_up");
  EXPECT_EQ(errs.back().restarts, 4u);
  EXPECT_EQ(errs.back().max_restarts, 3u);
  EXPECT_NE(format_text(errs.back()).find("restarts=\"4 > 3 in 5s\" action=give_up"),
            std::string::npos)
      << format_text(errs.back());
  EXPECT_EQ(of_kind(supervisor_event_kind::intensity_exceeded).size(), 1u);
}

TEST_F(StartFailure, SupervisorAnswersWhileRetrying) {
  // Between two tries the supervisor serves its API and shows the child as
  // restarting.
  flaky_start a(kids, "a");
  auto s = spec();
  s.max_restarts = 100;
  s.children = {a.spec(), kids.spec("b")};
  auto sup = start(std::move(s));
  std::optional<std::vector<child_info>> seen;
  std::optional<child_counts> counted;
  a.fail_next = 5;
  a.on_failure = [&] {
    if (a.fail_next != 3) return;  // during the second failed try
    sup.async_which_children([&](auto ec, auto v) {
      EXPECT_FALSE(ec);
      seen = std::move(v);
    });
    sup.async_count_children([&](auto ec, auto n) {
      EXPECT_FALSE(ec);
      counted = n;
    });
  };
  kids.end("a", ending::error);
  idle();
  ASSERT_TRUE(seen);
  ASSERT_EQ(seen->size(), 2u);
  EXPECT_EQ((*seen)[0].id, "a");
  EXPECT_EQ((*seen)[0].status, child_status::restarting);
  EXPECT_FALSE((*seen)[0].device);
  EXPECT_EQ((*seen)[1].status, child_status::running);
  ASSERT_TRUE(counted);
  EXPECT_EQ(counted->specs, 2u);
  EXPECT_EQ(counted->active, 1u);
  // And the retrying went on to success afterwards.
  EXPECT_TRUE(kids.running("a"));
  EXPECT_EQ(a.attempts, 7);
  stop(sup);
}

TEST_F(StartFailure, TerminateChildEndsTheRetrying) {
  flaky_start a(kids, "a");
  auto s = spec();
  s.max_restarts = 100;
  s.children = {a.spec(), kids.spec("b")};
  auto sup = start(std::move(s));
  std::optional<boost::system::error_code> terminated;
  a.fail_next = 1000;
  a.on_failure = [&] {
    if (a.attempts != 3) return;
    sup.async_terminate_child("a", [&](boost::system::error_code ec) { terminated = ec; });
  };
  kids.end("a", ending::error);
  idle();
  ASSERT_TRUE(terminated);
  EXPECT_FALSE(*terminated);
  EXPECT_EQ(a.attempts, 3);  // the try queued behind the terminate never ran
  auto ia = info(sup, "a");
  ASSERT_TRUE(ia);
  EXPECT_EQ(ia->status, child_status::stopped);  // spec kept
  EXPECT_FALSE(ended(sup));
  // It can be started again by hand.
  a.fail_next = 0;
  auto r = restart_child(sup, "a");
  EXPECT_FALSE(r.ec);
  EXPECT_TRUE(kids.running("a"));
  stop(sup);
}

TEST_F(StartFailure, DynamicStartFailureDiscardsSpec) {
  auto sup = start(spec());
  flaky_start x(kids, "x", 1);
  auto r = start_child(sup, x.spec());
  EXPECT_EQ(r.ec, supervisor_errc::start_failed);
  EXPECT_FALSE(r.value.device);
  EXPECT_TRUE(ids(sup).empty());
  auto errs = of_kind(supervisor_event_kind::start_error);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(decision(errs[0]), "none (start_child: spec discarded)");
  // Gone, so the same id starts afresh (not already_present).
  auto again = start_child(sup, x.spec());
  EXPECT_FALSE(again.ec);
  EXPECT_EQ(info(sup, "x")->incarnation, 1u);
  stop(sup);
}

TEST_F(StartFailure, FailedRestartChildKeepsSpec) {
  flaky_start a(kids, "a");
  auto s = spec();
  s.children = {a.spec()};
  auto sup = start(std::move(s));
  ASSERT_FALSE(terminate_child(sup, "a"));
  a.fail_next = 1;
  auto r = restart_child(sup, "a");
  EXPECT_EQ(r.ec, supervisor_errc::start_failed);
  auto ia = info(sup, "a");
  ASSERT_TRUE(ia);
  EXPECT_EQ(ia->status, child_status::stopped);
  EXPECT_EQ(decision(of_kind(supervisor_event_kind::start_error).back()),
            "none (restart_child: spec kept)");
  auto ok = restart_child(sup, "a");
  EXPECT_FALSE(ok.ec);
  EXPECT_EQ(info(sup, "a")->device, ok.value);
  stop(sup);
}

TEST_F(StartFailure, OneForAllFailingPartWayStopsWhatItRestarted) {
  flaky_start b(kids, "b");
  auto s = spec();
  s.strategy = restart_strategy::one_for_all;
  s.max_restarts = 10;
  s.children = {kids.spec("a"), b.spec(), kids.spec("c")};
  auto sup = start(std::move(s));
  kids.clear_log();
  b.fail_next = 1;
  kids.end("a", ending::error);
  idle();
  EXPECT_EQ(kids.log, (strings{"crash a", "stop c", "stop b",  // the group goes down
                               "start a",                      // b fails to start
                               "stop a",                       // so a goes down again
                               "start a", "start b", "start c"}));
  EXPECT_EQ(budget(sup).value.restarts_in_window, 2u);
  for (auto const& c : which(sup)) EXPECT_EQ(c.status, child_status::running) << c.id;
  stop(sup);
}

TEST_F(StartFailure, RestForOneRetriesFromTheFailedChild) {
  // OTP's restart(rest_for_one, ...) retries a restart of the child that
  // failed to start: the children before it, restarted by the failed try,
  // stay up.
  flaky_start c(kids, "c");
  auto s = spec();
  s.strategy = restart_strategy::rest_for_one;
  s.max_restarts = 10;
  s.children = {kids.spec("a"), kids.spec("b"), c.spec(), kids.spec("d")};
  auto sup = start(std::move(s));
  kids.clear_log();
  c.fail_next = 2;
  kids.end("b", ending::exception);
  idle();
  EXPECT_EQ(kids.log, (strings{"end b", "stop d", "stop c", "start b", "start c", "start d"}));
  EXPECT_EQ(kids.starts["a"], 1);
  EXPECT_EQ(kids.starts["b"], 2);
  EXPECT_EQ(c.attempts, 4);  // its first start, then three tries
  EXPECT_EQ(budget(sup).value.restarts_in_window, 3u);
  for (auto const& i : which(sup)) EXPECT_EQ(i.status, child_status::running) << i.id;
  stop(sup);
}

TEST_F(StartFailure, RestForOneKeepsTheChildrenBeforeTheFailedOneUp) {
  // The case: [a, b], intensity 3 in an hour; a crashes and b fails
  // to start twice. OTP: start a, fail b, start b (fails), start b: a is
  // started twice in all, never stopped again.
  flaky_start b(kids, "b");
  auto s = spec();
  s.strategy = restart_strategy::rest_for_one;
  s.max_restarts = 3;
  s.period = std::chrono::hours(1);
  s.children = {kids.spec("a"), b.spec()};
  auto sup = start(std::move(s));
  kids.clear_log();
  b.fail_next = 2;
  kids.end("a", ending::error);
  idle();
  EXPECT_EQ(kids.log, (strings{kids.errored("a"), kids.stopped("b"), "start a", "start b"}));
  EXPECT_EQ(kids.starts["a"], 2);
  EXPECT_EQ(budget(sup).value.restarts_in_window, 3u);
  EXPECT_FALSE(ended(sup));
  stop(sup);
}

TEST_F(StartFailure, RestForOneRetryIsForTheFailedChild) {
  // The retry belongs to the child that failed to start: the child whose
  // crash began it is running, and terminating it leaves the retry alone.
  flaky_start c(kids, "c");
  auto s = spec();
  s.strategy = restart_strategy::rest_for_one;
  s.max_restarts = 10;
  auto cs = c.spec();
  cs.backoff = backoff_policy{.initial = 100ms, .max = 1s, .multiplier = 2.0, .jitter = 0.0};
  s.children = {kids.spec("a"), kids.spec("b"), cs, kids.spec("d")};
  auto sup = start(std::move(s));
  c.fail_next = 1;
  kids.end("b", ending::error);
  idle();
  // c's crash-free restart waits for nothing (b crashed, not c); c's failed
  // start waits c's first backoff step.
  EXPECT_EQ(info(sup, "a")->status, child_status::running);
  EXPECT_EQ(info(sup, "b")->status, child_status::running);
  EXPECT_EQ(info(sup, "c")->status, child_status::restarting);
  EXPECT_EQ(info(sup, "d")->status, child_status::restarting);
  EXPECT_FALSE(terminate_child(sup, "b"));
  clock->advance(100ms);
  idle();
  EXPECT_EQ(info(sup, "b")->status, child_status::stopped);
  EXPECT_EQ(info(sup, "c")->status, child_status::running);
  EXPECT_EQ(info(sup, "d")->status, child_status::running);
  stop(sup);
}

TEST_F(StartFailure, GroupRetryShowsMembersRestarting) {
  // With a backoff on the failed child, the group waits on the clock between
  // tries: everyone is "restarting" meanwhile.
  flaky_start c(kids, "c");
  auto s = spec();
  s.strategy = restart_strategy::one_for_all;
  s.max_restarts = 10;
  auto b = kids.spec("b");
  b.backoff = backoff_policy{.initial = 100ms, .max = 1s, .multiplier = 2.0, .jitter = 0.0};
  s.children = {kids.spec("a"), b, c.spec()};
  auto sup = start(std::move(s));
  kids.clear_log();
  c.fail_next = 1;
  kids.end("b", ending::error);
  idle();
  EXPECT_EQ(kids.log, (strings{"crash b", "stop c", "stop a"}));
  for (auto const& i : which(sup)) EXPECT_EQ(i.status, child_status::restarting) << i.id;
  clock->advance(100ms);
  idle();
  EXPECT_EQ(kids.log,
            (strings{"crash b", "stop c", "stop a", "start a", "start b", "stop b", "stop a"}));
  auto errs = of_kind(supervisor_event_kind::start_error);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].child, "c");
  EXPECT_EQ(decision(errs[0]), "retry in 200ms");
  for (auto const& i : which(sup)) EXPECT_EQ(i.status, child_status::restarting) << i.id;
  clock->advance(199ms);
  idle();
  EXPECT_EQ(kids.starts["a"], 2);
  clock->advance(1ms);
  idle();
  for (auto const& i : which(sup)) EXPECT_EQ(i.status, child_status::running) << i.id;
  EXPECT_EQ(kids.starts["a"], 3);
  stop(sup);
}

TEST_F(StartFailure, TerminatingTheFailedChildReleasesItsGroup) {
  // one_for_all: b's crash restarts everyone; c keeps failing to start. A
  // terminate_child of b (the child the restart is for) ends the retrying, and
  // the others, waiting on it, are left stopped rather than "restarting".
  flaky_start c(kids, "c");
  auto s = spec();
  s.strategy = restart_strategy::one_for_all;
  s.max_restarts = 100;
  s.children = {kids.spec("a"), kids.spec("b"), c.spec()};
  auto sup = start(std::move(s));
  c.fail_next = 1000;
  c.on_failure = [&] {
    if (c.attempts != 3) return;
    sup.async_terminate_child("b", [](boost::system::error_code ec) { EXPECT_FALSE(ec); });
  };
  kids.end("b", ending::error);
  idle();
  EXPECT_EQ(c.attempts, 3);
  for (auto const& i : which(sup)) EXPECT_EQ(i.status, child_status::stopped) << i.id;
  EXPECT_FALSE(ended(sup));
  stop(sup);
}

}  // namespace
