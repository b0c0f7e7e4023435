// A start function that says ignore (OTP's `ignore`): no child runs, the spec
// is kept (a temporary one is dropped), nothing fails and nothing is retried;
// restart_child tries again. OTP's supervisor_SUITE sup_start_ignore_* cases
// and the restart of a child whose start then says ignore.

#include "supervisor/fixture.hpp"

#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>

#include <thread>

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;

namespace {

class Ignore : public supervisor_fixture {
 protected:
  /// A puppet whose next `ignores` starts say ignore.
  child_spec ignoring(std::string id, int ignores, restart_type r = restart_type::permanent) {
    auto left = std::make_shared<int>(ignores);
    child_spec c = kids.spec(id, r);
    c.start = [this, left, id, inner = c.start](child_context& ctx) -> start_result {
      if (*left > 0) {
        --*left;
        kids.log.push_back("ignore " + id);
        return start_result::ignore();
      }
      return inner(ctx);
    };
    return c;
  }
};

TEST_F(Ignore, DeclaredChildIsKeptNotRunning) {
  // sup_start_ignore_child: the supervisor starts; the ignored child shows
  // with no device (OTP: undefined pid); counted as a spec, not as active.
  auto s = spec();
  s.children = {ignoring("a", 1), kids.spec("b")};
  auto sup = start(std::move(s));
  EXPECT_EQ(kids.log, (strings{"ignore a", "start b"}));
  auto a = info(sup, "a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, child_status::stopped);
  EXPECT_FALSE(a->device);
  EXPECT_EQ(info(sup, "b")->status, child_status::running);
  auto n = counts(sup);
  EXPECT_EQ(n.value.specs, 2u);
  EXPECT_EQ(n.value.active, 1u);
  EXPECT_TRUE(of_kind(supervisor_event_kind::start_error).empty());
  EXPECT_EQ(budget(sup).value.restarts_in_window, 0u);
  // restart_child tries again.
  auto r = restart_child(sup, "a");
  EXPECT_FALSE(r.ec) << r.ec.message();
  EXPECT_FALSE(r.value.ignored);
  EXPECT_TRUE(r.value.device);
  EXPECT_EQ(info(sup, "a")->device, std::optional(r.value.device));
  EXPECT_EQ(kids.log.back(), "start a");
  stop(sup);
}

TEST_F(Ignore, TemporaryDeclaredChildIsDropped) {
  // sup_start_ignore_temporary_child: OTP keeps no ignored temporary child.
  auto s = spec();
  s.children = {kids.spec("a"), ignoring("t", 1, restart_type::temporary), kids.spec("b")};
  auto sup = start(std::move(s));
  EXPECT_EQ(ids(sup), (strings{"a", "b"}));
  // (A run logs its start when it first runs, after the start functions.)
  EXPECT_EQ(kids.log, (strings{"ignore t", "start a", "start b"}));
  stop(sup);
}

TEST_F(Ignore, StartChildCompletesIgnoredAndKeepsTheSpec) {
  // sup_start_ignore_permanent_child_start_child: {ok, undefined}.
  auto sup = start(spec());
  auto r = start_child(sup, ignoring("c", 2));
  EXPECT_FALSE(r.ec) << r.ec.message();
  EXPECT_TRUE(r.value.ignored);
  EXPECT_FALSE(r.value.device);
  auto c = info(sup, "c");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, child_status::stopped);
  EXPECT_FALSE(c->device);
  // Its spec is there: starting it again is already_present, as in OTP.
  EXPECT_EQ(start_child(sup, kids.spec("c")).ec, supervisor_errc::already_present);
  // restart_child calls the start function again: ignored once more, then started.
  auto again = restart_child(sup, "c");
  EXPECT_FALSE(again.ec);
  EXPECT_TRUE(again.value.ignored);
  auto started = restart_child(sup, "c");
  EXPECT_FALSE(started.ec);
  EXPECT_FALSE(started.value.ignored);
  EXPECT_TRUE(started.value.device);
  EXPECT_EQ(kids.log, (strings{"ignore c", "ignore c", "start c"}));
  EXPECT_TRUE(of_kind(supervisor_event_kind::start_error).empty());
  // An ignored child can be deleted like any stopped one.
  EXPECT_FALSE(terminate_child(sup, "c"));
  EXPECT_FALSE(delete_child(sup, "c"));
  stop(sup);
}

TEST_F(Ignore, TemporaryStartChildIsNotKept) {
  // sup_start_ignore_temporary_child_start_child.
  auto sup = start(spec());
  auto r = start_child(sup, ignoring("t", 1, restart_type::temporary));
  EXPECT_FALSE(r.ec);
  EXPECT_TRUE(r.value.ignored);
  EXPECT_TRUE(ids(sup).empty());
  // Gone: the id is free again.
  auto second = start_child(sup, kids.spec("t", restart_type::temporary));
  EXPECT_FALSE(second.ec);
  EXPECT_TRUE(second.value.device);
  stop(sup);
}

TEST_F(Ignore, RestartThatIgnoresLeavesTheChildStoppedWithoutRetry) {
  // OTP's restart: a start that returns ignore sets the pid to undefined;
  // the restart was counted (intensity), the ignore is no failure, no retry.
  auto s = spec();
  s.max_restarts = 1;
  auto left = std::make_shared<int>(0);
  child_spec a = kids.spec("a");
  a.start = [this, left, inner = a.start](child_context& ctx) -> start_result {
    if (*left > 0) {
      --*left;
      kids.log.push_back("ignore a");
      return start_result::ignore();
    }
    return inner(ctx);
  };
  s.children = {a, kids.spec("b")};
  auto sup = start(std::move(s));
  *left = 1;
  kids.end("a", ending::exception);
  idle();
  EXPECT_EQ(kids.log, (strings{"start a", "start b", "end a", "ignore a"}));
  EXPECT_EQ(info(sup, "a")->status, child_status::stopped);
  EXPECT_FALSE(info(sup, "a")->device);
  EXPECT_EQ(budget(sup).value.restarts_in_window, 1u);
  EXPECT_TRUE(of_kind(supervisor_event_kind::start_error).empty());
  EXPECT_TRUE(of_kind(supervisor_event_kind::restarted).empty());
  clock->advance(1h);
  idle();
  EXPECT_EQ(kids.log.size(), 4u) << "an ignored restart is not retried";
  EXPECT_FALSE(ended(sup));
  // The supervisor goes on: b's crash is restarted as usual.
  kids.end("b", ending::exception);
  idle();
  EXPECT_EQ(kids.log.back(), "start b");
  stop(sup);
}

TEST_F(Ignore, GroupMemberThatIgnoresStaysStoppedWhileTheOthersRestart) {
  auto s = spec();
  s.strategy = restart_strategy::one_for_all;
  auto left = std::make_shared<int>(0);
  child_spec b = kids.spec("b");
  b.start = [this, left, inner = b.start](child_context& ctx) -> start_result {
    if (*left > 0) {
      --*left;
      kids.log.push_back("ignore b");
      return start_result::ignore();
    }
    return inner(ctx);
  };
  s.children = {kids.spec("a"), b, kids.spec("c")};
  auto sup = start(std::move(s));
  kids.clear_log();
  *left = 1;
  kids.end("a", ending::exception);
  idle();
  EXPECT_EQ(kids.log, (strings{"end a", "stop c", "stop b", "start a", "ignore b", "start c"}));
  EXPECT_EQ(info(sup, "b")->status, child_status::stopped);
  EXPECT_EQ(info(sup, "a")->status, child_status::running);
  EXPECT_EQ(info(sup, "c")->status, child_status::running);
  EXPECT_TRUE(of_kind(supervisor_event_kind::start_error).empty());
  stop(sup);
}

TEST_F(Ignore, LinkedDevicesHearACleanEnd) {
  // The ignored incarnation's device is disconnected cleanly, not dropped:
  // whatever the start function linked to it does not see a fault.
  device watcher;
  auto s = spec();
  s.children = {worker("a", [&watcher](child_context& c) -> start_result {
    watcher.link(c.device, link_mode::monitor);
    return start_result::ignore();
  })};
  auto sup = start(std::move(s));
  auto m = watcher.try_receive();
  ASSERT_TRUE(m);
  auto const* gone = as_disconnected(*m);
  ASSERT_TRUE(gone);
  EXPECT_FALSE(gone->fault);
  stop(sup);
}

TEST_F(Ignore, DynamicSupervisorSaysItIsNotSupported) {
  dynamic_supervisor_spec ds;
  ds.clock = clock;
  ds.logger = logger;
  auto dyn = dynamic_supervisor<>::start(
      ctx.get_executor(), ds,
      [](child_context&) -> start_result { return start_result::ignore(); });
  auto out = std::make_shared<reply<device_id>>();
  dyn.async_start_child(value_handler(out));
  auto r = wait_reply(out);
  EXPECT_EQ(r.ec, supervisor_errc::start_failed);
  auto done = std::make_shared<bool>(false);
  dyn.async_stop([done](boost::system::error_code, supervisor_exit) { *done = true; });
  idle();
  EXPECT_TRUE(*done);
}

TEST(IgnoreThreads, StartChildFromAnotherThreadOnFourThreads) {
  asio::io_context ctx(4);
  auto work = asio::make_work_guard(ctx);
  supervisor_spec s;
  s.logger =
      std::make_shared<spdlog::logger>("ign", std::make_shared<spdlog::sinks::null_sink_mt>());
  auto sup = supervisor::start(asio::make_strand(ctx), std::move(s));
  ASSERT_TRUE(sup);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&ctx] { ctx.run(); });
  for (int i = 0; i < 50; ++i) {
    std::string const id = fmt::format("c{}", i);
    auto r = sup->async_start_child(
                    worker(id, [](device&) -> start_result { return start_result::ignore(); }),
                    asio::use_future)
                 .get();
    EXPECT_TRUE(r.ignored);
    EXPECT_FALSE(r.device);
    auto again = sup->async_restart_child(id, asio::use_future).get();
    EXPECT_TRUE(again.ignored);
  }
  auto n = sup->async_count_children(asio::use_future).get();
  EXPECT_EQ(n.specs, 50u);
  EXPECT_EQ(n.active, 0u);
  sup->async_stop(asio::use_future).get();
  work.reset();
  for (auto& t : threads) t.join();
}

}  // namespace
