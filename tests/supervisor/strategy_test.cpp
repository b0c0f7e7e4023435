// Every strategy x restart type x way the child ended. Three children a, b,
// c; b is the subject, with the restart type under test, a and c permanent.
// b ends by a clean return, an error under manage, an exception, a cascade
// (it monitors a device that faults) or a shutdown requested by someone else
// (a clean power_off). What must follow is OTP's rule. Every case runs with
// the children written both ways: as runs that co_await part_manage, and as
// managed works returned by the start function (the supervisor manages them).

#include "supervisor/fixture.hpp"

#include <tuple>

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;

namespace {

enum class how_ended { clean, error, exception, cascade, shutdown };

std::string name(restart_strategy s) {
  switch (s) {
    case restart_strategy::one_for_one: return "OneForOne";
    case restart_strategy::one_for_all: return "OneForAll";
    case restart_strategy::rest_for_one: return "RestForOne";
  }
  return "?";
}
std::string name(restart_type r) {
  switch (r) {
    case restart_type::permanent: return "Permanent";
    case restart_type::transient: return "Transient";
    case restart_type::temporary: return "Temporary";
  }
  return "?";
}
std::string name(how_ended h) {
  switch (h) {
    case how_ended::clean: return "Clean";
    case how_ended::error: return "Error";
    case how_ended::exception: return "Exception";
    case how_ended::cascade: return "Cascade";
    case how_ended::shutdown: return "Shutdown";
  }
  return "?";
}

std::string name(puppet_form f) { return f == puppet_form::run ? "Run" : "ManagedWork"; }

using param = std::tuple<restart_strategy, restart_type, how_ended, puppet_form>;

class Strategy : public supervisor_fixture, public ::testing::WithParamInterface<param> {};

TEST_P(Strategy, ChildEndsAndSupervisorFollowsOtpRule) {
  auto const [strategy, restart, how, form] = GetParam();
  kids.form = form;
  device dependency;  // what b monitors
  device_id const dependency_id = dependency.id();
  auto s = spec();
  s.strategy = strategy;
  s.children = {kids.spec("a"), kids.spec("b", restart, dependency.line()), kids.spec("c")};
  auto sup = start(std::move(s));
  ASSERT_EQ(kids.log, (strings{"start a", "start b", "start c"}));
  device_id const b_dev = info(sup, "b")->device.value();
  kids.clear_log();

  device outsider;
  switch (how) {
    case how_ended::clean: kids.end("b", ending::clean); break;
    case how_ended::error: kids.end("b", ending::error); break;
    case how_ended::exception: kids.end("b", ending::exception); break;
    case how_ended::cascade: dependency.disconnect(fault::error()); break;
    case how_ended::shutdown: kids.line("b").request_shutdown(outsider.id()); break;
  }
  idle();

  bool const faulted =
      how == how_ended::error || how == how_ended::exception || how == how_ended::cascade;
  bool const restarts =
      restart == restart_type::permanent || (restart == restart_type::transient && faulted);

  // How b's end was reported.
  auto term = of_kind(supervisor_event_kind::child_terminated);
  ASSERT_EQ(term.size(), 1u);
  EXPECT_EQ(term[0].child, "b");
  EXPECT_EQ(term[0].device, b_dev);
  EXPECT_EQ(term[0].incarnation, 1u);
  switch (how) {
    case how_ended::clean:
    case how_ended::shutdown: EXPECT_EQ(why(term[0]), "clean"); break;
    case how_ended::error:
      // An error returned by value is reported by value, in a run under
      // part_manage as in a managed work (the core describes it).
      EXPECT_EQ(why(term[0]), "error: 7");
      break;
    case how_ended::exception:
      EXPECT_EQ(why(term[0]), "exception: std::runtime_error: boom");
      break;
    case how_ended::cascade:
      EXPECT_EQ(why(term[0]), "cascade from " + to_string(dependency_id));
      break;
  }
  std::string const b_end = how == how_ended::error      ? kids.errored("b")
                            : how == how_ended::cascade  ? kids.cascaded("b")
                            : how == how_ended::shutdown ? kids.stopped("b")
                                                         : "end b";

  if (!restarts) {
    EXPECT_EQ(decision(term[0]), restart == restart_type::temporary
                                     ? "none (temporary: spec removed)"
                                     : "none (transient, exited cleanly)");
    EXPECT_EQ(kids.log, (strings{b_end}));
    EXPECT_TRUE(of_kind(supervisor_event_kind::restarted).empty());
    if (restart == restart_type::temporary) {
      EXPECT_EQ(ids(sup), (strings{"a", "c"}));
    } else {
      auto b = info(sup, "b");
      ASSERT_TRUE(b);
      EXPECT_EQ(b->status, child_status::stopped);
      EXPECT_FALSE(b->device);
    }
    EXPECT_EQ(budget(sup).value.restarts_in_window, 0u);
  } else {
    EXPECT_EQ(decision(term[0]), "restart");
    EXPECT_EQ(term[0].restarts, 1u);
    strings expected;
    strings restarted;
    switch (strategy) {
      case restart_strategy::one_for_one:
        expected = {b_end, "start b"};
        restarted = {"b"};
        break;
      case restart_strategy::one_for_all:
        // The others stop last-started first, then all start in order.
        expected = {b_end, kids.stopped("c"), kids.stopped("a"), "start a", "start b", "start c"};
        restarted = {"a", "b", "c"};
        break;
      case restart_strategy::rest_for_one:
        expected = {b_end, kids.stopped("c"), "start b", "start c"};
        restarted = {"b", "c"};
        break;
    }
    EXPECT_EQ(kids.log, expected);
    strings got;
    for (auto const& e : of_kind(supervisor_event_kind::restarted)) {
      got.push_back(e.child);
      EXPECT_EQ(e.incarnation, 2u);
      EXPECT_EQ(decision(e), "none");
    }
    EXPECT_EQ(got, restarted);
    for (auto const& c : which(sup)) {
      EXPECT_EQ(c.status, child_status::running) << c.id;
      bool const again = std::find(restarted.begin(), restarted.end(), c.id) != restarted.end();
      EXPECT_EQ(c.incarnation, again ? 2u : 1u) << c.id;
    }
    EXPECT_NE(info(sup, "b")->device, b_dev);
    EXPECT_EQ(budget(sup).value.restarts_in_window, 1u);  // a group restart counts once
  }

  // Nothing else happened: no shutdown errors, no giving up.
  EXPECT_TRUE(of_kind(supervisor_event_kind::shutdown_error).empty());
  EXPECT_TRUE(of_kind(supervisor_event_kind::intensity_exceeded).empty());

  kids.clear_log();
  auto exit = stop(sup);
  EXPECT_FALSE(exit.fault);
  EXPECT_FALSE(exit.intensity_exceeded);
  for (auto const& l : kids.log) EXPECT_EQ(l.rfind(kids.stopped(""), 0), 0u) << l;
  EXPECT_EQ(kids.log.back(), kids.stopped("a"));
}

INSTANTIATE_TEST_SUITE_P(
    All, Strategy,
    ::testing::Combine(::testing::Values(restart_strategy::one_for_one,
                                         restart_strategy::one_for_all,
                                         restart_strategy::rest_for_one),
                       ::testing::Values(restart_type::permanent, restart_type::transient,
                                         restart_type::temporary),
                       ::testing::Values(how_ended::clean, how_ended::error, how_ended::exception,
                                         how_ended::cascade, how_ended::shutdown),
                       ::testing::Values(puppet_form::run, puppet_form::managed_work)),
    [](::testing::TestParamInfo<param> const& i) {
      return name(std::get<0>(i.param)) + name(std::get<1>(i.param)) + name(std::get<2>(i.param)) +
             name(std::get<3>(i.param));
    });

using Strategies = supervisor_fixture;

TEST_F(Strategies, RestForOneFirstChildRestartsEveryone) {
  auto s = spec();
  s.strategy = restart_strategy::rest_for_one;
  s.children = {kids.spec("a"), kids.spec("b"), kids.spec("c")};
  auto sup = start(std::move(s));
  kids.clear_log();
  kids.end("a", ending::error);
  idle();
  EXPECT_EQ(kids.log, (strings{"crash a", "stop c", "stop b", "start a", "start b", "start c"}));
  stop(sup);
}

TEST_F(Strategies, RestForOneLastChildRestartsAlone) {
  auto s = spec();
  s.strategy = restart_strategy::rest_for_one;
  s.children = {kids.spec("a"), kids.spec("b"), kids.spec("c")};
  auto sup = start(std::move(s));
  kids.clear_log();
  kids.end("c", ending::exception);
  idle();
  EXPECT_EQ(kids.log, (strings{"end c", "start c"}));
  stop(sup);
}

TEST_F(Strategies, DynamicChildrenJoinTheOrder) {
  // Children added at runtime come after the declared ones: rest_for_one
  // takes them along, and they stop first.
  auto s = spec();
  s.strategy = restart_strategy::rest_for_one;
  s.children = {kids.spec("a"), kids.spec("b")};
  auto sup = start(std::move(s));
  ASSERT_FALSE(start_child(sup, kids.spec("x")).ec);
  kids.clear_log();
  kids.end("b", ending::error);
  idle();
  EXPECT_EQ(kids.log, (strings{"crash b", "stop x", "start b", "start x"}));
  kids.clear_log();
  stop(sup);
  EXPECT_EQ(kids.log, (strings{"stop x", "stop b", "stop a"}));
}

TEST_F(Strategies, OneForAllRestartsManuallyTerminatedSiblings) {
  // OTP: a one_for_all restart starts every non-temporary child, including
  // one stopped with terminate_child.
  auto s = spec();
  s.strategy = restart_strategy::one_for_all;
  s.children = {kids.spec("a"), kids.spec("b")};
  auto sup = start(std::move(s));
  ASSERT_FALSE(terminate_child(sup, "b"));
  EXPECT_EQ(info(sup, "b")->status, child_status::stopped);
  kids.clear_log();
  kids.end("a", ending::error);
  idle();
  EXPECT_EQ(kids.log, (strings{"crash a", "start a", "start b"}));
  EXPECT_EQ(info(sup, "b")->status, child_status::running);
  stop(sup);
}

TEST_F(Strategies, SiblingCrashingWhenItsGroupStopsItIsReportedOnceAndRestartedOnce) {
  // b answers its shutdown request with a crash: OTP's shutdown_error. It is
  // restarted with the group, once; its crash is not a restart of its own.
  int b_starts = 0;
  auto s = spec();
  s.strategy = restart_strategy::one_for_all;
  s.children = {kids.spec("a"), worker("b", [&](device& d) -> asio::awaitable<void> {
                  ++b_starts;
                  (void)co_await d.async_receive(asio::use_awaitable);
                  throw std::runtime_error("crashed on the way out");
                })};
  auto sup = start(std::move(s));
  kids.end("a", ending::error);
  idle();
  EXPECT_EQ(b_starts, 2);
  EXPECT_EQ(kids.starts["a"], 2);
  auto errs = of_kind(supervisor_event_kind::shutdown_error);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].child, "b");
  EXPECT_EQ(errs[0].incarnation, 1u);
  EXPECT_EQ(why(errs[0]), "exception: std::runtime_error: crashed on the way out");
  EXPECT_EQ(of_kind(supervisor_event_kind::child_terminated).size(), 1u);  // a's
  EXPECT_EQ(budget(sup).value.restarts_in_window, 1u);
  stop(sup);
}

}  // namespace
