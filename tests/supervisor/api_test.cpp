// The runtime API, call by call, with every error code; OTP's rules for
// temporary and transient children.

#include "supervisor/fixture.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;

namespace {

using Api = supervisor_fixture;

TEST_F(Api, HandleBasics) {
  auto sup = start(spec("app"));
  EXPECT_EQ(sup.path(), "app");
  EXPECT_TRUE(sup.id());
  EXPECT_EQ(sup.line().id(), sup.id());
  EXPECT_TRUE(sup.line().connected());
  supervisor copy = sup;  // handles are copyable and lead to the same supervisor
  EXPECT_EQ(copy.id(), sup.id());
  stop(copy);
  EXPECT_FALSE(sup.line().connected());
}

TEST_F(Api, StartChild) {
  auto s = spec();
  s.children = {kids.spec("a")};
  auto sup = start(std::move(s));
  auto r = start_child(sup, kids.spec("x", restart_type::transient));
  ASSERT_FALSE(r.ec);
  EXPECT_TRUE(r.value.device);
  EXPECT_TRUE(kids.running("x"));
  auto x = info(sup, "x");
  ASSERT_TRUE(x);
  EXPECT_EQ(x->device, r.value);
  EXPECT_EQ(x->restart, restart_type::transient);
  EXPECT_EQ(x->incarnation, 1u);
  EXPECT_EQ(ids(sup), (strings{"a", "x"}));
  // A dynamic child is supervised like a declared one.
  kids.end("x", ending::error);
  idle();
  EXPECT_EQ(kids.starts["x"], 2);

  // Same id again: running -> `running`, with the running device.
  auto dup = start_child(sup, kids.spec("x"));
  EXPECT_EQ(dup.ec, supervisor_errc::running);
  EXPECT_EQ(dup.value, info(sup, "x")->device);
  // Stopped (spec kept) -> already_present.
  ASSERT_FALSE(terminate_child(sup, "x"));
  EXPECT_EQ(start_child(sup, kids.spec("x")).ec, supervisor_errc::already_present);
  stop(sup);
  EXPECT_EQ(start_child(sup, kids.spec("y")).ec, supervisor_errc::supervisor_down);
}

TEST_F(Api, TerminateChild) {
  auto s = spec();
  s.children = {kids.spec("a"), kids.spec("t", restart_type::temporary)};
  auto sup = start(std::move(s));
  kids.clear_log();
  // A permanent child is stopped, not restarted, and its spec kept.
  ASSERT_FALSE(terminate_child(sup, "a"));
  EXPECT_EQ(kids.log, (strings{"stop a"}));
  auto a = info(sup, "a");
  EXPECT_EQ(a->status, child_status::stopped);
  EXPECT_FALSE(a->device);
  EXPECT_EQ(kids.starts["a"], 1);
  EXPECT_TRUE(of_kind(supervisor_event_kind::child_terminated).empty());
  EXPECT_EQ(budget(sup).value.restarts_in_window, 0u);
  // Again on a stopped child: fine, nothing happens.
  EXPECT_FALSE(terminate_child(sup, "a"));
  // A temporary child's spec goes with it (OTP).
  ASSERT_FALSE(terminate_child(sup, "t"));
  EXPECT_EQ(ids(sup), (strings{"a"}));
  EXPECT_EQ(terminate_child(sup, "nobody"), supervisor_errc::not_found);
  stop(sup);
  EXPECT_EQ(terminate_child(sup, "a"), supervisor_errc::supervisor_down);
}

TEST_F(Api, RestartChild) {
  auto s = spec();
  s.children = {kids.spec("a")};
  auto sup = start(std::move(s));
  EXPECT_EQ(restart_child(sup, "a").ec, supervisor_errc::running);
  EXPECT_EQ(restart_child(sup, "nobody").ec, supervisor_errc::not_found);
  device_id const before = info(sup, "a")->device.value();
  ASSERT_FALSE(terminate_child(sup, "a"));
  auto r = restart_child(sup, "a");
  ASSERT_FALSE(r.ec);
  EXPECT_NE(r.value, before);
  auto a = info(sup, "a");
  EXPECT_EQ(a->device, r.value);
  EXPECT_EQ(a->status, child_status::running);
  EXPECT_EQ(a->incarnation, 2u);
  // A manual restart is not a restart for intensity.
  EXPECT_EQ(budget(sup).value.restarts_in_window, 0u);
  stop(sup);
  EXPECT_EQ(restart_child(sup, "a").ec, supervisor_errc::supervisor_down);
}

TEST_F(Api, DeleteChild) {
  auto s = spec();
  s.children = {kids.spec("a"), kids.spec("b")};
  auto sup = start(std::move(s));
  EXPECT_EQ(delete_child(sup, "a"), supervisor_errc::running);
  EXPECT_EQ(delete_child(sup, "nobody"), supervisor_errc::not_found);
  ASSERT_FALSE(terminate_child(sup, "a"));
  ASSERT_FALSE(delete_child(sup, "a"));
  EXPECT_EQ(ids(sup), (strings{"b"}));
  EXPECT_EQ(restart_child(sup, "a").ec, supervisor_errc::not_found);
  // Its id is free again.
  ASSERT_FALSE(start_child(sup, kids.spec("a")).ec);
  EXPECT_EQ(ids(sup), (strings{"b", "a"}));
  stop(sup);
  EXPECT_EQ(delete_child(sup, "a"), supervisor_errc::supervisor_down);
}

TEST_F(Api, WhichChildren) {
  auto s = spec();
  supervisor_spec nested{.name = "n"};
  s.children = {kids.spec("w", restart_type::transient), supervisor_child("n", nested),
                kids.spec("t", restart_type::temporary)};
  auto sup = start(std::move(s));
  ASSERT_FALSE(terminate_child(sup, "w"));
  auto all = which(sup);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].id, "w");
  EXPECT_FALSE(all[0].device);
  EXPECT_EQ(all[0].kind, child_kind::worker);
  EXPECT_EQ(all[0].restart, restart_type::transient);
  EXPECT_EQ(all[0].status, child_status::stopped);
  EXPECT_EQ(all[0].incarnation, 1u);
  EXPECT_EQ(all[1].id, "n");
  EXPECT_TRUE(all[1].device);
  EXPECT_EQ(all[1].kind, child_kind::supervisor);
  EXPECT_EQ(all[1].restart, restart_type::permanent);
  EXPECT_EQ(all[1].status, child_status::running);
  EXPECT_EQ(all[2].restart, restart_type::temporary);
  stop(sup);
  EXPECT_EQ(which_ec(sup).ec, supervisor_errc::supervisor_down);
}

TEST_F(Api, CountChildren) {
  auto s = spec();
  supervisor_spec nested{.name = "n"};
  s.children = {kids.spec("a"), kids.spec("b"), supervisor_child("n", nested)};
  auto sup = start(std::move(s));
  ASSERT_FALSE(terminate_child(sup, "b"));
  auto n = counts(sup);
  ASSERT_FALSE(n.ec);
  EXPECT_EQ(n.value.specs, 3u);
  EXPECT_EQ(n.value.active, 2u);
  EXPECT_EQ(n.value.supervisors, 1u);
  EXPECT_EQ(n.value.workers, 2u);
  stop(sup);
}

TEST_F(Api, RestartBudget) {
  auto s = spec();
  s.max_restarts = 4;
  s.period = 10s;
  s.children = {kids.spec("a")};
  auto sup = start(std::move(s));
  auto b = budget(sup);
  ASSERT_FALSE(b.ec);
  EXPECT_EQ(b.value.restarts_in_window, 0u);
  EXPECT_EQ(b.value.max_restarts, 4u);
  EXPECT_EQ(b.value.period, 10s);
  EXPECT_EQ(b.value.until_oldest_expires, 0s);
  kids.end("a", ending::error);
  idle();
  clock->advance(3s);
  kids.end("a", ending::error);
  idle();
  b = budget(sup);
  EXPECT_EQ(b.value.restarts_in_window, 2u);
  EXPECT_EQ(b.value.until_oldest_expires, 7s);
  stop(sup);
}

TEST_F(Api, TemporaryDroppedWhenASiblingsRestartTakesItDown) {
  auto s = spec();
  s.strategy = restart_strategy::one_for_all;
  s.children = {kids.spec("a"), kids.spec("t", restart_type::temporary), kids.spec("b")};
  auto sup = start(std::move(s));
  kids.clear_log();
  kids.end("a", ending::error);
  idle();
  EXPECT_EQ(kids.log, (strings{"crash a", "stop b", "stop t", "start a", "start b"}));
  EXPECT_EQ(ids(sup), (strings{"a", "b"}));
  EXPECT_EQ(kids.starts["t"], 1);
  // Only a's restart counted.
  EXPECT_EQ(budget(sup).value.restarts_in_window, 1u);
  stop(sup);
}

TEST_F(Api, TemporaryAfterTheFailedChildDroppedUnderRestForOne) {
  auto s = spec();
  s.strategy = restart_strategy::rest_for_one;
  s.children = {kids.spec("t0", restart_type::temporary), kids.spec("a"),
                kids.spec("t", restart_type::temporary)};
  auto sup = start(std::move(s));
  kids.end("a", ending::error);
  idle();
  EXPECT_EQ(ids(sup), (strings{"t0", "a"}));  // t0 was before a: untouched
  EXPECT_TRUE(kids.running("t0"));
  stop(sup);
}

TEST_F(Api, TransientRules) {
  auto s = spec();
  s.strategy = restart_strategy::one_for_all;
  s.children = {kids.spec("a"), kids.spec("tr", restart_type::transient)};
  auto sup = start(std::move(s));
  // A fault: restarted (alone its own strategy's group).
  kids.end("tr", ending::exception);
  idle();
  EXPECT_EQ(kids.starts["tr"], 2);
  EXPECT_EQ(kids.starts["a"], 2);
  // Taken down by a sibling's restart: restarted with the group (OTP).
  kids.end("a", ending::error);
  idle();
  EXPECT_EQ(kids.starts["tr"], 3);
  // A shutdown asked by someone else: a normal end, not restarted; spec kept.
  device other;
  kids.line("tr").request_shutdown(other.id());
  idle();
  EXPECT_EQ(kids.starts["tr"], 3);
  EXPECT_EQ(info(sup, "tr")->status, child_status::stopped);
  EXPECT_EQ(decision(of_kind(supervisor_event_kind::child_terminated).back()),
            "none (transient, exited cleanly)");
  // A later group restart starts it again (it is stopped, not gone).
  kids.end("a", ending::error);
  idle();
  EXPECT_EQ(kids.starts["tr"], 4);
  stop(sup);
}

TEST_F(Api, CompletesOnTheCallersExecutor) {
  auto s = spec();
  s.children = {kids.spec("a")};
  auto sup = start(std::move(s));
  auto caller = asio::make_strand(ctx);
  bool on_strand = false;
  std::vector<child_info> got;
  asio::co_spawn(
      caller,
      [&]() -> asio::awaitable<void> {
        got = co_await sup.async_which_children(asio::use_awaitable);
        on_strand = caller.running_in_this_thread();
        auto [ec, d] = co_await sup.async_restart_child("a", asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(ec, supervisor_errc::running);
        (void)d;
      },
      asio::detached);
  idle();
  EXPECT_TRUE(on_strand);
  ASSERT_EQ(got.size(), 1u);
  stop(sup);
}

TEST_F(Api, ErrorCodesHaveMessages) {
  for (auto e : {supervisor_errc::already_present, supervisor_errc::running,
                 supervisor_errc::restarting, supervisor_errc::not_found,
                 supervisor_errc::start_failed, supervisor_errc::supervisor_down}) {
    boost::system::error_code ec = e;
    EXPECT_STREQ(ec.category().name(), "backplane.supervisor");
    EXPECT_FALSE(ec.message().empty());
    EXPECT_NE(ec.message(), "unknown supervisor error");
  }
}

TEST_F(Api, ATemporaryChildReleasesItsStartFunctionOnceStarted) {
  // OTP keeps no start arguments for temporary children; a permanent one
  // keeps its start function for its restarts.
  auto held = std::make_shared<int>(1);
  auto sup = start(spec());
  auto t = kids.spec("t", restart_type::temporary);
  t.start = [inner = std::move(t.start), held](child_context& c) { return inner(c); };
  ASSERT_FALSE(start_child(sup, std::move(t)).ec);
  EXPECT_TRUE(kids.running("t"));
  EXPECT_EQ(held.use_count(), 1);
  auto p = kids.spec("p");
  p.start = [inner = std::move(p.start), held](child_context& c) { return inner(c); };
  ASSERT_FALSE(start_child(sup, std::move(p)).ec);
  EXPECT_EQ(held.use_count(), 2);
  EXPECT_FALSE(stop(sup).fault);
}

TEST_F(Api, WhichChildrenIsInStartOrder) {
  // Declared children in their order, then added ones in the order added; a
  // restarted child keeps its place; a deleted one leaves a gap that closes.
  auto s = spec();
  s.children = {kids.spec("a"), kids.spec("b")};
  auto sup = start(std::move(s));
  ASSERT_FALSE(start_child(sup, kids.spec("x")).ec);
  ASSERT_FALSE(start_child(sup, kids.spec("y")).ec);
  kids.end("a", ending::error);
  idle();
  EXPECT_EQ(ids(sup), (strings{"a", "b", "x", "y"}));
  ASSERT_FALSE(terminate_child(sup, "x"));
  ASSERT_FALSE(delete_child(sup, "x"));
  ASSERT_FALSE(start_child(sup, kids.spec("z")).ec);
  ASSERT_FALSE(start_child(sup, kids.spec("x")).ec);
  EXPECT_EQ(ids(sup), (strings{"a", "b", "y", "z", "x"}));
  EXPECT_FALSE(stop(sup).fault);
}

}  // namespace
