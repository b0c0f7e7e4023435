// Fault injection: std::bad_alloc at every allocation the library reaches in
// a link/unlink/disconnect cycle of the core and in a supervisor's restart
// cycle (n swept, each run in its own process: sweep.hpp), and exceptions
// from the places user code runs inside the supervisor (the observer, a
// logger's sink). Each must end in a documented outcome (docs/reliability.md):
// an error to the caller, or a fault to the monitors; never an exception out
// of io_context::run(), a hang, a leak or a lost event. The one documented
// exception: a notification's completion that cannot be posted (Asio
// allocates the post; there is nobody left to tell) terminates with a message
// saying so.

#include "reliability/alloc_counter.hpp"
#include "reliability/sweep.hpp"
#include "supervisor/fixture.hpp"

#include <backplane/supervisor/dynamic_supervisor.hpp>

#include <spdlog/sinks/base_sink.h>
#include <boost/asio/bind_executor.hpp>

#include <cstdio>
#include <map>
#include <mutex>

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;

// Under UBSan, Asio's make_strand crash (sweep.hpp) is recognised by the stack
// in UBSan's report; without print_stacktrace the report has none and the
// point reads as "broken". Built in, so a plain `ctest` in a sanitizer build
// classifies it as CI does (UBSAN_OPTIONS in the environment still wins).
// Unused in builds without UBSan.
extern "C" char const* __ubsan_default_options() { return "print_stacktrace=1:halt_on_error=1"; }

namespace {

void print_report(char const* what, sweep_report const& r) {
  std::printf("%s: %d allocation points;", what, r.points);
  for (auto const& [k, v] : r.outcomes) std::printf(" %s=%d", k.c_str(), v);
  std::printf("\n");
}

/// Runs `f`; true if it returned, false if it threw std::bad_alloc (an error
/// to the caller). Anything else escapes.
template <class F>
bool attempt(F&& f) {
  try {
    f();
    return true;
  } catch (std::bad_alloc const&) {
    return false;
  }
}

// ------------------------------------------------------------------ core ----

/// One link/unlink/disconnect cycle with a parked receive, checked against
/// what the calls that succeeded promise: links are whole or absent (never
/// one-sided), and every device that monitors a disconnecting one hears it
/// exactly once, through its receive or its mailbox.
int core_cycle(std::uint64_t n) {
  bool broken_run = false;
  auto fail = [&](std::string const& what) {
    std::fprintf(stderr, "%s\n", what.c_str());
    broken_run = true;
  };
  {
    asio::io_context ctx;
    std::optional<device> a, b, c;
    std::vector<message> heard_by_c;
    heard_by_c.reserve(4);  // the test's own bookkeeping must not fail
    std::optional<device> hub;
    std::vector<device> spokes;
    std::vector<char> linked;
    spokes.reserve(10);
    linked.reserve(10);
    bool receive_failed = false;
    alloc::fail_at(n);
    bool const made = attempt([&] {
      a.emplace();
      b.emplace();
      c.emplace();
    });
    if (!made) {
      alloc::fail_at(0);
      std::printf("outcome: create-failed\n");
    } else {
      bool const ab = attempt([&] { a->link(*b, link_mode::peer); });
      bool const cb = attempt([&] { c->link(*b, link_mode::monitor); });
      bool ac = false;
      (void)attempt([&] { ac = !a->link_line(c->line(), link_mode::notify); });
      a->unlink(*b, link_mode::monitor);  // noexcept: a keeps notify to b
      auto whole = [&](device& x, device& y) {
        auto xy = x.link_to(y.id());
        auto yx = y.link_to(x.id());
        if (xy.has_value() != yx.has_value() || (xy && *yx != reversed(*xy)))
          fail("a one-sided link after a failed link call");
      };
      whole(*a, *b);
      whole(*c, *b);
      whole(*a, *c);
      // A callback receive: an initiation that fails throws to this caller.
      // (With use_awaitable, Asio runs the initiation inside the executor,
      // and lets what it throws leave io_context::run(): docs/reliability.md.)
      bool const receiving = attempt([&] {
        c->async_receive(asio::bind_executor(ctx, [&](boost::system::error_code ec, message m) {
          if (!ec) heard_by_c.push_back(std::move(m));
        }));
      });
      receive_failed = !receiving;
      try {
        run_until_idle(ctx);
        b->disconnect(fault::error());
        run_until_idle(ctx);
      } catch (std::bad_alloc const&) {
        fail("std::bad_alloc escaped io_context::run()");
      }
      // a had only notify left toward b: it hears nothing.
      if (a->try_receive()) fail("a heard b after unlinking its monitor");
      // A hub with ten spokes grows its link table past its inline slots and
      // builds its index; a spoke asked twice to shut down grows its mailbox.
      if (attempt([&] { hub.emplace(); })) {
        for (int i = 0; i < 10; ++i) {
          if (!attempt([&] { spokes.emplace_back(); })) continue;
          linked.push_back(attempt([&] { spokes.back().link(*hub, link_mode::monitor); }) ? 1 : 0);
          whole(spokes.back(), *hub);
        }
        for (std::size_t i = 0; i < spokes.size(); i += 3) {
          spokes[i].unlink(*hub, link_mode::monitor);
          linked[i] = 0;
        }
        int sent = 0;
        for (int k = 0; k < 2 && !spokes.empty(); ++k)
          if (attempt([&] { (void)spokes[1 % spokes.size()].line().request_shutdown(hub->id()); }))
            ++sent;
        hub->disconnect(fault::error());
        for (std::size_t i = 0; i < spokes.size(); ++i) {
          int disconnects = 0, shutdowns = 0;
          while (auto m = spokes[i].try_receive()) {
            if (as_disconnected(*m)) ++disconnects;
            if (as_shutdown(*m)) ++shutdowns;
          }
          if (disconnects != (linked[i] ? 1 : 0))
            fail("a spoke heard its hub " + std::to_string(disconnects) + " times");
          if (i == 1 % spokes.size() && shutdowns != sent) fail("a shutdown request was lost");
        }
      }
      a->disconnect();
      run_until_idle(ctx);
      alloc::fail_at(0);
      while (auto m = c->try_receive()) heard_by_c.push_back(std::move(*m));
      std::size_t want = (cb ? 1u : 0u) + (ac ? 1u : 0u);
      if (heard_by_c.size() != want)
        fail("c heard " + std::to_string(heard_by_c.size()) + " notifications, expected " +
             std::to_string(want));
      std::printf("outcome: %s\n", (!ab || !cb || !ac) ? "link-error-to-caller"
                                   : receive_failed    ? "receive-error-to-caller"
                                                       : "delivered");
    }
    ctx.restart();
    run_until_idle(ctx);
  }
  if (broken_run) return broken;
  return alloc::fired() ? handled : not_reached;
}

TEST(FaultInjection, CoreLinkUnlinkDisconnectCycle) {
  auto r = sweep(core_cycle, 2000);
  print_report("core cycle", r);
  EXPECT_GT(r.points, 15);
  for (auto const& p : r.problems) ADD_FAILURE() << p;
}

// ------------------------------------------------------------ supervisor ----

/// A supervisor (one_for_all, a run child and a managed child) whose child
/// crashes: either the restart completes, or the supervisor ends with a
/// fault that its monitor hears. Afterwards it stops and every allocation is
/// given back.
int restart_cycle(std::uint64_t n) {
  bool broken_run = false;
  auto fail = [&](std::string const& what) {
    std::fprintf(stderr, "%s\n", what.c_str());
    broken_run = true;
  };
  {
    asio::io_context ctx;
    auto clock = std::make_shared<manual_clock>();
    puppets kids;
    puppets managed;
    managed.form = puppet_form::managed_work;
    std::vector<supervisor_event> events;
    supervisor_spec s;
    s.name = "sup";
    s.strategy = restart_strategy::one_for_all;
    s.clock = clock;
    s.logger =
        std::make_shared<spdlog::logger>("fi", std::make_shared<spdlog::sinks::null_sink_mt>());
    s.observer = [&](supervisor_event const& e) { events.push_back(e); };
    // Each child on its own strand (the default): a child's coroutine never
    // runs inside the supervisor's (see docs/reliability.md on Asio's part).
    s.child_strands = true;
    s.children = {kids.spec("a"), managed.spec("m")};
    auto sup = supervisor::start(ctx.get_executor(), std::move(s));
    std::optional<supervisor_exit> exit;
    sup->async_wait([&](boost::system::error_code, supervisor_exit e) { exit = e; });
    device watcher;
    (void)watcher.link_line(sup->line(), link_mode::monitor);
    run_until_idle(ctx);

    alloc::fail_at(n);
    bool escaped = false;
    try {
      kids.end("a", ending::error);
      run_until_idle(ctx);
    } catch (std::bad_alloc const&) {
      // Asio's part (docs/reliability.md): an initiation under use_awaitable
      // that throws leaves io_context::run(); run() may be called again.
      escaped = true;
    }
    alloc::fail_at(0);
    run_until_idle(ctx);

    auto const heard = watcher.try_receive();
    bool const restarted = kids.running("a") && managed.running("m") && kids.starts["a"] == 2;
    if (exit) {
      // The supervisor could not go on: it ended with a fault its monitor heard.
      if (!exit->fault) fail("the supervisor ended without a fault");
      auto const* gone = heard ? as_disconnected(*heard) : nullptr;
      if (!gone || !gone->fault) fail("the supervisor's monitor did not hear its fault");
      std::printf("outcome: %ssupervisor-fault-to-monitors\n", escaped ? "asio-escape-then-" : "");
    } else if (restarted) {
      std::printf("outcome: %srestarted\n", escaped ? "asio-escape-then-" : "");
    } else {
      // A start that failed is retried: the clock is manual, so move it.
      clock->advance(std::chrono::seconds(60));
      run_until_idle(ctx);
      if (!(kids.running("a") && managed.running("m"))) {
        fail("the restart neither completed nor ended the supervisor (lost)");
      } else {
        std::printf("outcome: %srestarted-after-retry\n", escaped ? "asio-escape-then-" : "");
      }
    }
    if (!exit) {
      sup->async_stop([](boost::system::error_code, supervisor_exit) {});
      run_until_idle(ctx);
      // A child whose coroutine Asio lost is stopped the slow way: its
      // shutdown timeout, then the grace period, then it is abandoned.
      for (int i = 0; i < 4 && !exit; ++i) {
        clock->advance(std::chrono::seconds(10));
        run_until_idle(ctx);
      }
      if (!exit) fail("the supervisor did not stop afterwards");
    }
    // Children left running by a supervisor that failed hear its fault (their
    // peer) and end; anything else still waiting is ended here.
    for (auto* p : {&kids, &managed})
      for (auto& [id, st] : p->current)
        if (st->running) p->end(id, ending::clean);
    run_until_idle(ctx);
  }
  if (broken_run) return broken;
  return alloc::fired() ? handled : not_reached;
}

TEST(FaultInjection, SupervisorRestartCycle) {
  auto r = sweep(restart_cycle, 5000);
  print_report("restart cycle", r);
  EXPECT_GT(r.points, 20);
  for (auto const& p : r.problems) ADD_FAILURE() << p;
}

// ---------------------------------------------------- dynamic supervisor ----

/// A dynamic child: a managed work waiting on a timer until the cycle ends it
/// (a throw) or the supervisor cancels it.
struct dyn_kid {
  explicit dyn_kid(asio::any_io_executor ex)
      : timer(std::move(ex), asio::steady_timer::time_point::max()) {}
  asio::steady_timer timer;
  bool crash = false;
  bool running = true;
};

asio::awaitable<boost::system::result<void, int>> dyn_work(std::shared_ptr<dyn_kid> k) {
  auto const woken = co_await k->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  (void)woken;  // cancelled by the cycle or by the supervisor: either way it ends
  k->running = false;
  if (k->crash) throw std::runtime_error("crash");
  co_return boost::system::result<void, int>();
}

/// A dynamic supervisor with two children (arguments 1 and 2): child 1
/// crashes and is restarted, a third is started and child 2 terminated, all
/// with the n-th allocation failing. Either every call is answered (with its
/// value or an error) and child 1 runs again, or the supervisor ends with a
/// fault that its monitor hears and that answers its waiters; then it stops
/// and every allocation is given back.
int dynamic_cycle(std::uint64_t n) {
  bool broken_run = false;
  auto fail = [&](std::string const& what) {
    std::fprintf(stderr, "%s\n", what.c_str());
    broken_run = true;
  };
  {
    asio::io_context ctx;
    auto clock = std::make_shared<manual_clock>();
    std::map<int, std::shared_ptr<dyn_kid>> kids;
    dynamic_supervisor_spec s;
    s.name = "dyn";
    s.clock = clock;
    s.max_restarts = 3;
    s.period = std::chrono::seconds(5);
    s.logger =
        std::make_shared<spdlog::logger>("fi", std::make_shared<spdlog::sinks::null_sink_mt>());
    auto d = dynamic_supervisor<int>::start(ctx.get_executor(), std::move(s),
                                            [&](child_context& c, int arg) -> start_result {
                                              auto k = std::make_shared<dyn_kid>(c.executor);
                                              kids[arg] = k;
                                              return dyn_work(k);
                                            });
    std::optional<supervisor_exit> exit;
    d.async_wait([&](boost::system::error_code, supervisor_exit e) { exit = e; });
    device watcher;
    (void)watcher.link_line(d.line(), link_mode::monitor);
    std::optional<boost::system::error_code> first, second, third, terminated;
    device_id two;
    d.async_start_child(1, [&](boost::system::error_code ec, device_id) { first = ec; });
    d.async_start_child(2, [&](boost::system::error_code ec, device_id id) {
      second = ec;
      two = id;
    });
    run_until_idle(ctx);
    if (first != boost::system::error_code{} || second != boost::system::error_code{}) {
      std::fprintf(stderr, "the cycle's setup failed\n");
      return broken;
    }

    alloc::fail_at(n);
    bool escaped = false;
    try {
      kids.at(1)->crash = true;
      kids.at(1)->timer.cancel();
      d.async_start_child(3, [&](boost::system::error_code ec, device_id) { third = ec; });
      d.async_terminate_child(two, [&](boost::system::error_code ec) { terminated = ec; });
      run_until_idle(ctx);
    } catch (std::bad_alloc const&) {
      escaped = true;  // Asio's part, as in the restart cycle
    }
    alloc::fail_at(0);
    run_until_idle(ctx);
    // A restart that failed is retried later (intensity allowing).
    clock->advance(std::chrono::seconds(60));
    run_until_idle(ctx);

    auto const heard = watcher.try_receive();
    std::string const prefix = escaped ? "asio-escape-then-" : "";
    if (exit) {
      if (!exit->fault) fail("the dynamic supervisor ended without a fault");
      auto const* gone = heard ? as_disconnected(*heard) : nullptr;
      if (!gone || !gone->fault) fail("the dynamic supervisor's monitor did not hear its fault");
      std::printf("outcome: %ssupervisor-fault-to-monitors\n", prefix.c_str());
    } else {
      if (!escaped && (!third || !terminated)) fail("a call to the dynamic supervisor was lost");
      bool const restarted = kids.count(1) && kids.at(1)->running;
      if (!restarted) fail("child 1 neither restarted nor ended its supervisor (lost)");
      std::printf("outcome: %s%s\n", prefix.c_str(),
                  third && *third ? "error-to-caller-then-restarted" : "restarted");
      d.async_stop([](boost::system::error_code, supervisor_exit) {});
      run_until_idle(ctx);
      for (int i = 0; i < 4 && !exit; ++i) {
        clock->advance(std::chrono::seconds(10));
        run_until_idle(ctx);
      }
      if (!exit) fail("the dynamic supervisor did not stop afterwards");
    }
    for (auto& [arg, k] : kids)
      if (k->running) k->timer.cancel();
    run_until_idle(ctx);
  }
  if (broken_run) return broken;
  return alloc::fired() ? handled : not_reached;
}

TEST(FaultInjection, DynamicSupervisorJobCycle) {
  auto r = sweep(dynamic_cycle, 5000);
  print_report("dynamic supervisor cycle", r);
  EXPECT_GT(r.points, 20);
  for (auto const& p : r.problems) ADD_FAILURE() << p;
}

// ----------------------------------------------------- user code throwing ----

class ThrowingUserCode : public supervisor_fixture {};

TEST_F(ThrowingUserCode, AnObserverThatThrowsDoesNotStopSupervision) {
  auto s = spec();
  int calls = 0;
  s.observer = [&](supervisor_event const&) {
    ++calls;
    throw std::runtime_error("observer bug");
  };
  s.children = {kids.spec("a")};
  auto sup = start(std::move(s));
  kids.end("a", ending::error);
  idle();
  // Reported (the observer was called), restarted, and still answering.
  EXPECT_GE(calls, 2);
  EXPECT_EQ(kids.starts["a"], 2);
  EXPECT_TRUE(kids.running("a"));
  kids.end("a", ending::error);
  idle();
  EXPECT_EQ(kids.starts["a"], 3);
  auto exit = stop(sup);
  EXPECT_FALSE(exit.fault);
}

/// A sink that throws on every line.
class throwing_sink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(spdlog::details::log_msg const&) override { throw std::runtime_error("disk full"); }
  void flush_() override {}
};

TEST_F(ThrowingUserCode, ALoggerSinkThatThrowsDoesNotStopSupervision) {
  auto s = spec();
  s.logger = std::make_shared<spdlog::logger>("throwing", std::make_shared<throwing_sink>());
  // spdlog catches a sink's exception and hands it to the logger's error
  // handler; one that throws in turn is the user's observer problem again.
  s.logger->set_error_handler([](std::string const&) { throw std::runtime_error("handler"); });
  s.children = {kids.spec("a")};
  auto sup = start(std::move(s));
  kids.end("a", ending::error);
  idle();
  EXPECT_EQ(kids.starts["a"], 2);
  EXPECT_TRUE(kids.running("a"));
  EXPECT_EQ(of_kind(supervisor_event_kind::child_terminated).size(), 1u);
  auto exit = stop(sup);
  EXPECT_FALSE(exit.fault);
}

}  // namespace
