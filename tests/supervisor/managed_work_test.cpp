// Managed works: a start function that returns awaitable<result<T, E>> has
// the supervisor run it under manage's rules. What each end means, what the
// listener on the device does, and the misuses that must fail clearly. The
// strategy matrix (strategy_test) runs every strategy x restart x end with
// managed works too; the stress test runs them on four threads.

#include "supervisor/fixture.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;

namespace {

using void_result = boost::system::result<void, int>;

/// A work that waits for `t` and then ends as `how` says; logs what it saw.
struct scripted {
  explicit scripted(asio::any_io_executor ex)
      : t(std::move(ex), asio::steady_timer::time_point::max()) {}
  asio::steady_timer t;
  ending how = ending::clean;
  bool told = false;
  strings log;
  backplane::line line;  // the current incarnation's device

  void end(ending h) {
    how = h;
    told = true;
    t.cancel();
  }
  asio::awaitable<void_result> work() {
    log.push_back("run");
    auto [ec] = co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!told) {
      log.push_back("cancelled");
      throw boost::system::system_error(ec);
    }
    log.push_back("end");
    if (how == ending::exception) throw std::runtime_error("boom");
    if (how == ending::error) co_return void_result(boost::system::in_place_error, 3);
    co_return void_result();
  }
};

class ManagedWork : public supervisor_fixture {
 protected:
  std::shared_ptr<scripted> w = std::make_shared<scripted>(ctx.get_executor());

  /// A child `id` whose every incarnation runs `w`'s work (one at a time).
  child_spec child(std::string id, restart_type restart = restart_type::permanent,
                   std::optional<backplane::line> monitor = std::nullopt) {
    auto spec = worker(
        std::move(id),
        [w = w, monitor](device& d) -> asio::awaitable<void_result> {
          w->told = false;
          w->line = d.line();
          if (monitor) (void)d.link_line(*monitor, link_mode::monitor);
          return w->work();
        },
        restart);
    return spec;
  }
  supervisor_event terminated() {
    auto t = of_kind(supervisor_event_kind::child_terminated);
    EXPECT_EQ(t.size(), 1u);
    return t.empty() ? supervisor_event{} : t.back();
  }
};

TEST_F(ManagedWork, AnErrorIsAFaultAndRestarts) {
  auto s = spec();
  s.children = {child("w")};
  auto sup = start(std::move(s));
  auto const first = info(sup, "w")->device;
  w->end(ending::error);
  idle();
  auto t = terminated();
  EXPECT_EQ(why(t), "error: 3");  // the value it returned
  EXPECT_EQ(decision(t), "restart");
  EXPECT_EQ(info(sup, "w")->incarnation, 2u);
  EXPECT_NE(info(sup, "w")->device, first);
  EXPECT_EQ(w->log, (strings{"run", "end", "run"}));
  stop(sup);
}

TEST_F(ManagedWork, AnExceptionIsAFaultNamedInTheReport) {
  auto s = spec();
  s.children = {child("w")};
  auto sup = start(std::move(s));
  w->end(ending::exception);
  idle();
  EXPECT_EQ(why(terminated()), "exception: std::runtime_error: boom");
  EXPECT_EQ(info(sup, "w")->status, child_status::running);
  stop(sup);
}

TEST_F(ManagedWork, AValueIsACleanExit) {
  auto s = spec();
  s.children = {child("w", restart_type::transient)};
  auto sup = start(std::move(s));
  w->end(ending::clean);
  idle();
  auto t = terminated();
  EXPECT_EQ(why(t), "clean");
  EXPECT_EQ(decision(t), "none (transient, exited cleanly)");
  EXPECT_EQ(info(sup, "w")->status, child_status::stopped);
  stop(sup);
}

TEST_F(ManagedWork, AValueOfAnyDefaultConstructibleTypeIsAccepted) {
  auto s = spec();
  int runs = 0;
  s.children = {worker(
      "w",
      [&runs](device&) -> asio::awaitable<boost::system::result<std::string, std::error_code>> {
        ++runs;
        co_return std::string("done");
      },
      restart_type::transient)};
  auto sup = start(std::move(s));
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(why(terminated()), "clean");
  stop(sup);
}

TEST_F(ManagedWork, AFaultOfAMonitoredDeviceCancelsTheWorkAndCascades) {
  device dep;
  device_id const dep_id = dep.id();
  auto s = spec();
  s.children = {child("w", restart_type::transient, dep.line())};
  auto sup = start(std::move(s));
  dep.disconnect(fault::error());
  idle();
  EXPECT_EQ(w->log, (strings{"run", "cancelled", "run"}));
  auto t = terminated();
  EXPECT_EQ(why(t), "cascade from " + to_string(dep_id));
  EXPECT_EQ(decision(t), "restart");
  stop(sup);
}

TEST_F(ManagedWork, ACleanExitOfAMonitoredDeviceIsForgotten) {
  device dep;
  auto s = spec();
  s.children = {child("w", restart_type::permanent, dep.line())};
  auto sup = start(std::move(s));
  auto const running = info(sup, "w")->device;
  dep.disconnect();
  idle();
  EXPECT_EQ(w->log, (strings{"run"}));
  EXPECT_TRUE(of_kind(supervisor_event_kind::child_terminated).empty());
  EXPECT_EQ(info(sup, "w")->device, running);
  // The listener is still there: the next message is heard too.
  device other;
  device_id const other_id = other.id();
  ASSERT_FALSE(other.link_line(w->line, link_mode::notify));
  other.disconnect(fault::error());
  idle();
  EXPECT_EQ(why(terminated()), "cascade from " + to_string(other_id));
  stop(sup);
}

TEST_F(ManagedWork, AShutdownRequestCancelsTheWorkAndEndsCleanly) {
  auto s = spec();
  s.children = {child("w", restart_type::transient)};
  auto sup = start(std::move(s));
  EXPECT_FALSE(terminate_child(sup, "w"));
  EXPECT_EQ(w->log, (strings{"run", "cancelled"}));
  // Stopped by the request, within its timeout: no kill, no shutdown error.
  EXPECT_TRUE(of_kind(supervisor_event_kind::shutdown_error).empty());
  EXPECT_EQ(info(sup, "w")->status, child_status::stopped);
  EXPECT_EQ(clock->pending(), 0u);
  stop(sup);
}

TEST_F(ManagedWork, AStopReachesTheWorkWithoutATripThroughItsMailbox) {
  // A stop plays the listener's part itself (a clean end, the work cancelled) instead of
  // sending the shutdown request to the device for the listener to hear: with a reactor on
  // the context each handler in a row is one more epoll_wait, and a group stop makes them
  // child after child. Counted in handlers run on this single thread: the call's hop to the
  // supervisor, its wake-up, then the work's timer completing. Through the mailbox it took four.
  auto s = spec();
  s.children = {child("w", restart_type::transient)};
  auto sup = start(std::move(s));
  bool replied = false;
  sup.async_terminate_child("w", [&replied](boost::system::error_code ec) {
    EXPECT_FALSE(ec);
    replied = true;
  });
  std::size_t handlers = 0;
  while (w->log.size() < 2 && ctx.poll_one() != 0) ++handlers;
  EXPECT_EQ(w->log, (strings{"run", "cancelled"}));
  EXPECT_EQ(handlers, 3u);
  idle();
  EXPECT_TRUE(replied);
  // As on a request: a clean end within the timeout, no shutdown error.
  EXPECT_TRUE(of_kind(supervisor_event_kind::shutdown_error).empty());
  EXPECT_EQ(info(sup, "w")->status, child_status::stopped);
  stop(sup);
}

TEST_F(ManagedWork, BrutalShutdownCancelsTheWork) {
  auto s = spec();
  auto c = child("w");
  c.shutdown = shutdown_policy::brutal();
  s.children = {c};
  auto sup = start(std::move(s));
  auto exit = stop(sup);
  EXPECT_FALSE(exit.fault);
  EXPECT_EQ(w->log, (strings{"run", "cancelled"}));
  EXPECT_TRUE(of_kind(supervisor_event_kind::shutdown_error).empty());
}

TEST_F(ManagedWork, AWorkIgnoringCancellationIsAbandonedAfterItsTimeout) {
  auto s = spec();
  strings log;
  auto c = worker("deaf", [&log](device&) -> asio::awaitable<void_result> {
    for (;;) {  // shrugs off every cancellation
      try {
        co_await forever();
      } catch (...) {
        log.push_back("cancelled");
      }
      co_await asio::this_coro::reset_cancellation_state();
    }
  });
  c.shutdown = shutdown_policy::timeout(100ms);
  s.children = {c};
  auto sup = start(std::move(s));
  bool stopped = false;
  sup.async_stop([&](auto, auto) { stopped = true; });
  idle();
  EXPECT_EQ(log, (strings{"cancelled"}));  // the shutdown request cancelled it at once
  clock->advance(100ms);
  idle();
  EXPECT_EQ(log, (strings{"cancelled", "cancelled"}));  // then the kill did
  EXPECT_FALSE(stopped);
  clock->advance(100ms);
  idle();
  EXPECT_TRUE(stopped);
  auto errs = of_kind(supervisor_event_kind::shutdown_error);
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_EQ(decision(errs[0]), "cancel");
  EXPECT_EQ(decision(errs[1]), "abandon");
}

TEST_F(ManagedWork, AStartFunctionMayHandTheDeviceToManage) {
  // manage() returns awaitable<result<..., crash<E>>>: a managed work whose
  // device manage owns. The supervisor leaves the device to it.
  auto s = spec();
  s.children = {worker("w", [w = w](device& d) {
    w->told = false;
    return manage(std::move(d), w->work());
  })};
  auto sup = start(std::move(s));
  w->end(ending::error);
  idle();
  EXPECT_EQ(why(terminated()), "error: 3");  // manage describes what the work returned
  EXPECT_EQ(info(sup, "w")->incarnation, 2u);
  EXPECT_FALSE(terminate_child(sup, "w"));  // manage hears the request: a clean stop
  EXPECT_EQ(w->log, (strings{"run", "end", "run", "cancelled"}));
  EXPECT_TRUE(of_kind(supervisor_event_kind::shutdown_error).empty());
  stop(sup);
}

/// A coroutine start function: its body is the work, and its first step
/// (before it first suspends) runs before the supervisor starts listening.
asio::awaitable<void_result> takes_its_device(device& d, std::shared_ptr<scripted> w) {
  auto r = co_await manage(std::move(d), w->work());
  if (!r) co_return void_result(boost::system::in_place_error, 1);
  co_return void_result();
}

TEST_F(ManagedWork, AWorkTakingItsDeviceAtOnceIsLeftToDecide) {
  for (bool strands : {false, true}) {
    SCOPED_TRACE(strands ? "child strands" : "no strands");
    events.clear();
    w->log.clear();
    auto s = spec();
    s.child_strands = strands;
    s.children = {worker("w", [w = w](device& d) {
      w->told = false;
      return takes_its_device(d, w);
    })};
    auto sup = start(std::move(s));
    w->end(ending::exception);
    idle();
    // manage caught the throw and disconnected with fault::error and the cause.
    EXPECT_EQ(why(terminated()), "exception: std::runtime_error: boom");
    EXPECT_EQ(info(sup, "w")->incarnation, 2u);
    EXPECT_FALSE(terminate_child(sup, "w"));
    EXPECT_EQ(w->log, (strings{"run", "end", "run", "cancelled"}));
    stop(sup);
  }
}

TEST_F(ManagedWork, AWorkDisconnectingItsDeviceAtOnceEndsTheChild) {
  auto s = spec();
  s.children = {worker(
      "w",
      [](device& d) -> asio::awaitable<void_result> {
        d.disconnect(fault::error());
        co_return void_result();
      },
      restart_type::temporary)};
  auto sup = start(std::move(s));
  EXPECT_EQ(why(terminated()), "error");
  EXPECT_FALSE(info(sup, "w"));
  stop(sup);
}

TEST_F(ManagedWork, AWorkTakingItsDeviceLaterDoesNotBreakTheSupervisor) {
  // A misuse (documented): the supervisor's receive is parked on the device
  // when the work takes it. What must not happen: an exception out of the
  // supervisor, a hang, or a lost exit.
  device dep;
  auto s = spec();
  std::optional<device> taken;
  s.children = {worker(
      "w",
      [&taken, dep = dep.line()](device& d) -> asio::awaitable<void_result> {
        (void)d.link_line(dep, link_mode::monitor);
        return [](device& d, std::optional<device>& taken) -> asio::awaitable<void_result> {
          co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
          taken.emplace(std::move(d));
          co_await forever();
          co_return void_result();
        }(d, taken);
      },
      restart_type::temporary)};
  auto sup = start(std::move(s));
  ASSERT_TRUE(taken);
  dep.disconnect();  // clean: the listener wakes, finds the device gone, stops listening
  idle();
  EXPECT_TRUE(of_kind(supervisor_event_kind::child_terminated).empty());
  taken->disconnect(fault::error());  // the new owner decides
  idle();
  EXPECT_EQ(why(terminated()), "error");
  stop(sup);
}

TEST_F(ManagedWork, AMessageArrivingWithTheWorksValueWinsAsInManage) {
  device dep;
  device_id const dep_id = dep.id();
  auto s = spec();
  s.children = {child("w", restart_type::transient, dep.line())};
  auto sup = start(std::move(s));
  // Both in the same turn: the work's value is queued first.
  w->end(ending::clean);
  dep.disconnect(fault::error());
  idle();
  EXPECT_EQ(w->log, (strings{"run", "end", "run"}));
  auto t = terminated();
  EXPECT_EQ(why(t), "cascade from " + to_string(dep_id));
  EXPECT_EQ(decision(t), "restart");
  stop(sup);
}

TEST_F(ManagedWork, OnChildStrands) {
  device dep;
  device_id const dep_id = dep.id();
  auto s = spec();
  s.child_strands = true;
  s.children = {child("w", restart_type::permanent, dep.line())};
  auto sup = start(std::move(s));
  w->end(ending::error);
  idle();
  dep.disconnect(fault::error());
  idle();
  auto t = of_kind(supervisor_event_kind::child_terminated);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(why(t[0]), "error: 3");
  EXPECT_EQ(why(t[1]), "cascade from " + to_string(dep_id));
  EXPECT_FALSE(terminate_child(sup, "w"));
  EXPECT_EQ(w->log, (strings{"run", "end", "run", "cancelled", "run", "cancelled"}));
  EXPECT_TRUE(of_kind(supervisor_event_kind::shutdown_error).empty());
  stop(sup);
}

TEST(ManagedWorkLifetime, DestroyingTheContextWithAParkedWorkFreesEverything) {
  auto token = std::make_shared<int>(0);
  {
    asio::io_context ctx;
    supervisor_spec s;
    s.name = "sup";
    s.clock = std::make_shared<manual_clock>();
    s.logger =
        std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
    s.children = {worker("w", [token](device&) -> asio::awaitable<void_result> {
      auto keep = token;  // lives in the work's frame
      co_await forever();
      co_return void_result();
    })};
    auto sup = supervisor::start(ctx.get_executor(), std::move(s));
    ASSERT_TRUE(sup);
    run_until_idle(ctx);
    EXPECT_GT(token.use_count(), 1);
  }
  // The listener parked on the device, the work's frame, the incarnation that
  // owns the device: all gone with the context (LeakSanitizer checks the rest).
  EXPECT_EQ(token.use_count(), 1);
}

// Also the regression test for the order of launch and listen: the
// listener's answer here is ready at once, and had it run before the work
// started, co_spawn (Asio 1.81) would have thrown out of io_context::run.
TEST_F(ManagedWork, AReceiveLeftOnTheDeviceFaultsTheChildSayingWhy) {
  auto s = spec();
  std::optional<boost::system::error_code> their_receive;
  s.children = {worker(
      "w",
      [&their_receive, ex = ctx.get_executor()](device& d) -> asio::awaitable<void_result> {
        // Bound to the test's context: an unbound handler would complete on
        // Asio's system executor, another thread.
        d.async_receive(asio::bind_executor(
            ex, [&their_receive](boost::system::error_code ec, message) { their_receive = ec; }));
        return forever_result();
      },
      restart_type::temporary)};
  auto sup = start(std::move(s));
  auto t = terminated();
  EXPECT_NE(why(t).find("std::logic_error"), std::string::npos) << why(t);
  EXPECT_NE(why(t).find("do not receive on it"), std::string::npos) << why(t);
  ASSERT_TRUE(their_receive);
  EXPECT_EQ(*their_receive, asio::error::operation_aborted);
  stop(sup);
}

TEST_F(ManagedWork, AFailedDynamicStartDiscardsTheSpec) {
  auto s = spec();
  auto sup = start(std::move(s));
  auto r = start_child(sup, worker("w", [](device&) -> asio::awaitable<void_result> {
                         throw std::runtime_error("no config");
                       }));
  EXPECT_EQ(r.ec, supervisor_errc::start_failed);
  EXPECT_FALSE(info(sup, "w"));
  auto errs = of_kind(supervisor_event_kind::start_error);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(why(errs[0]), "exception: std::runtime_error: no config");
  stop(sup);
}

}  // namespace
