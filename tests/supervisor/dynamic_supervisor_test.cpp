// dynamic_supervisor: children from one template with per-child arguments,
// known by device id; limits, restarts, intensity, backoff, concurrent
// shutdown, nesting in a declared tree, and reports.

#include "fixture.hpp"

#include <backplane/supervisor/dynamic_supervisor.hpp>

#include <boost/asio/strand.hpp>

#include <future>
#include <set>
#include <thread>

namespace backplane::test {
namespace {

using dyn = dynamic_supervisor<int>;

/// Children whose ends the test decides. Each is a managed work waiting on a
/// timer; `n` is its argument. A child started with a negative argument
/// fails to start.
struct dyn_kids {
  struct one {
    explicit one(boost::asio::any_io_executor ex)
        : timer(std::move(ex), boost::asio::steady_timer::time_point::max()) {}
    boost::asio::steady_timer timer;
    ending how = ending::clean;
    bool told = false;
    std::uint64_t incarnation = 0;
  };
  std::map<int, std::shared_ptr<one>> current;
  std::vector<std::string> log;
  bool ignore_shutdown = false;  // a run that never looks at its mailbox
  std::set<int> refuse;          // their (re)starts fail

  static boost::asio::awaitable<boost::system::result<void, int>> work(std::shared_ptr<one> k,
                                                                       dyn_kids* self, int n) {
    auto [ec] = co_await k->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (!k->told) {
      self->log.push_back(fmt::format("cancel {}", n));
      throw boost::system::system_error(ec);
    }
    self->log.push_back(fmt::format("end {}", n));
    if (k->how == ending::exception) throw std::runtime_error(fmt::format("boom {}", n));
    if (k->how == ending::error) co_return boost::system::result<void, int>(7);
    co_return boost::system::result<void, int>();
  }
  static boost::asio::awaitable<void> deaf(std::shared_ptr<one> k, dyn_kids* self, int n) {
    auto [ec] = co_await k->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    self->log.push_back(fmt::format("killed {}", n));
    throw boost::system::system_error(ec);
  }

  auto fn() {
    return [this](child_context& c, int n) -> start_result {
      if (n < 0) throw std::invalid_argument("negative");
      if (refuse.count(n)) return start_error{fmt::format("refused {}", n)};
      auto k = std::make_shared<one>(c.executor);
      k->incarnation = c.incarnation;
      current[n] = k;
      log.push_back(fmt::format("start {}", n));
      if (ignore_shutdown) return deaf(k, this, n);
      return work(k, this, n);
    };
  }
  void end(int n, ending how) {
    auto& k = current.at(n);
    k->how = how;
    k->told = true;
    k->timer.cancel();
  }
};

class DynamicSupervisor : public supervisor_fixture {
 protected:
  dyn_kids children;

  dynamic_supervisor_spec dspec(std::string name = "dyn") {
    dynamic_supervisor_spec s;
    s.name = std::move(name);
    s.clock = clock;
    s.logger = logger;
    s.observer = [this](supervisor_event const& e) { events.push_back(e); };
    s.child_strands = false;
    return s;
  }
  dyn start(dynamic_supervisor_spec s) {
    auto d = dyn::start(ctx.get_executor(), std::move(s), children.fn());
    idle();
    return d;
  }
  reply<device_id> start_child(dyn& d, int n) {
    auto r = std::make_shared<reply<device_id>>();
    d.async_start_child(n, value_handler(r));
    return wait_reply(r);
  }
  device_id must_start(dyn& d, int n) {
    auto r = start_child(d, n);
    EXPECT_FALSE(r.ec) << r.ec.message();
    return r.value;
  }
  boost::system::error_code terminate(dyn& d, device_id id) {
    auto r = std::make_shared<reply<int>>();
    d.async_terminate_child(id, void_handler(r));
    return wait_reply(r).ec;
  }
  std::vector<dynamic_child_info> which(dyn& d) {
    auto r = std::make_shared<reply<std::vector<dynamic_child_info>>>();
    d.async_which_children(value_handler(r));
    auto v = wait_reply(r);
    EXPECT_FALSE(v.ec);
    return v.value;
  }
  child_counts counts(dyn& d) {
    auto r = std::make_shared<reply<child_counts>>();
    d.async_count_children(value_handler(r));
    return wait_reply(r).value;
  }
  std::optional<supervisor_exit> stop_async(dyn& d) {
    auto out = std::make_shared<std::optional<supervisor_exit>>();
    d.async_stop([out](boost::system::error_code, supervisor_exit e) { *out = e; });
    idle();
    return *out;
  }
  std::optional<supervisor_exit> ended(dyn& d) {
    auto out = std::make_shared<std::optional<supervisor_exit>>();
    d.async_wait([out](boost::system::error_code, supervisor_exit e) { *out = e; });
    idle();
    return *out;
  }
};

TEST_F(DynamicSupervisor, StartsChildrenWithTheirArgumentsKnownByDevice) {
  auto d = start(dspec());
  device_id a = must_start(d, 1);
  device_id b = must_start(d, 2);
  device_id c = must_start(d, 3);
  EXPECT_EQ(children.log, (strings{"start 1", "start 2", "start 3"}));
  auto rows = which(d);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].device, a);
  EXPECT_EQ(rows[1].device, b);
  EXPECT_EQ(rows[2].device, c);
  for (auto const& r : rows) EXPECT_EQ(r.status, child_status::running);
  auto n = counts(d);
  EXPECT_EQ(n.specs, 3u);
  EXPECT_EQ(n.active, 3u);
  EXPECT_EQ(n.workers, 3u);
  EXPECT_EQ(n.supervisors, 0u);
  auto e = stop_async(d);
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->fault);
}

TEST_F(DynamicSupervisor, StartBeyondMaxChildrenFailsClearly) {
  auto s = dspec();
  s.max_children = 2;
  auto d = start(s);
  must_start(d, 1);
  device_id b = must_start(d, 2);
  auto r = start_child(d, 3);
  EXPECT_EQ(r.ec, pool_errc::max_children);
  EXPECT_NE(r.ec.message().find("max_children"), std::string::npos);
  EXPECT_EQ(children.log.size(), 2u);
  // Room again once one is terminated.
  EXPECT_FALSE(terminate(d, b));
  EXPECT_FALSE(start_child(d, 3).ec);
}

TEST_F(DynamicSupervisor, TerminateStopsOneChildAndForgetsIt) {
  auto d = start(dspec());
  device_id a = must_start(d, 1);
  device_id b = must_start(d, 2);
  device_id c = must_start(d, 3);
  EXPECT_FALSE(terminate(d, b));
  EXPECT_EQ(children.log.back(), "cancel 2");  // a managed work is cancelled by the request
  auto rows = which(d);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].device, a);
  EXPECT_EQ(rows[1].device, c);
  EXPECT_EQ(terminate(d, b), supervisor_errc::not_found);
  EXPECT_EQ(terminate(d, device_id{}), supervisor_errc::not_found);
  EXPECT_TRUE(of_kind(supervisor_event_kind::child_terminated).empty()) << "a requested stop";
}

TEST_F(DynamicSupervisor, CrashedChildRestartsWithItsArguments) {
  auto d = start(dspec());
  device_id first = must_start(d, 5);
  children.end(5, ending::exception);
  idle();
  EXPECT_EQ(children.log, (strings{"start 5", "end 5", "start 5"}));
  auto rows = which(d);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_NE(rows[0].device, first);
  EXPECT_EQ(rows[0].incarnation, 2u);
  auto crash = of_kind(supervisor_event_kind::child_terminated);
  ASSERT_EQ(crash.size(), 1u);
  EXPECT_EQ(crash[0].supervisor, "dyn");
  EXPECT_EQ(crash[0].child, "child");
  EXPECT_EQ(crash[0].device, first);
  EXPECT_EQ(why(crash[0]), "exception: std::runtime_error: boom 5");
  EXPECT_EQ(decision(crash[0]), "restart");
  ASSERT_EQ(of_kind(supervisor_event_kind::restarted).size(), 1u);
  EXPECT_EQ(of_kind(supervisor_event_kind::restarted)[0].device, rows[0].device);
  // The new incarnation is terminated by its own device.
  EXPECT_EQ(terminate(d, first), supervisor_errc::not_found);
  EXPECT_FALSE(terminate(d, rows[0].device));
}

TEST_F(DynamicSupervisor, RestartTypesDecideWhoComesBack) {
  auto s = dspec();
  s.restart = restart_type::transient;
  auto d = start(s);
  must_start(d, 1);
  must_start(d, 2);
  children.end(1, ending::clean);  // transient, clean: gone
  children.end(2, ending::error);  // transient, fault: back
  idle();
  auto rows = which(d);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].incarnation, 2u);
  EXPECT_EQ(children.current.at(2)->incarnation, 2u);

  auto t = dspec("temp");
  t.restart = restart_type::temporary;
  auto d2 = start(t);
  must_start(d2, 3);
  children.end(3, ending::exception);
  idle();
  EXPECT_TRUE(which(d2).empty());
}

TEST_F(DynamicSupervisor, IntensityExceededStopsAllAndFaults) {
  auto s = dspec();
  s.max_restarts = 1;
  auto d = start(s);
  device watcher;
  ASSERT_FALSE(watcher.link_line(d.line(), link_mode::monitor));
  must_start(d, 1);
  must_start(d, 2);
  children.end(1, ending::exception);
  idle();
  children.end(1, ending::exception);
  idle();
  auto e = ended(d);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->intensity_exceeded);
  EXPECT_EQ(children.log.back(), "cancel 2");
  ASSERT_EQ(of_kind(supervisor_event_kind::intensity_exceeded).size(), 1u);
  auto m = watcher.try_receive();
  ASSERT_TRUE(m);
  auto const* gone = as_disconnected(*m);
  ASSERT_TRUE(gone && gone->fault);
  EXPECT_EQ(describe(gone->cause)
                .rfind("backplane::restart_intensity_exceeded: supervisor dyn "
                       "gave up",
                       0),
            0u)
      << describe(gone->cause);
  EXPECT_EQ(start_child(d, 3).ec, supervisor_errc::supervisor_down);
}

TEST_F(DynamicSupervisor, AFailedStartIsNotKept) {
  auto d = start(dspec());
  EXPECT_EQ(start_child(d, -1).ec, supervisor_errc::start_failed);
  EXPECT_TRUE(which(d).empty()) << "a failed start is not kept";
  ASSERT_EQ(of_kind(supervisor_event_kind::start_error).size(), 1u);
  EXPECT_EQ(why(of_kind(supervisor_event_kind::start_error)[0]),
            "exception: std::invalid_argument: negative");
}

TEST_F(DynamicSupervisor, FailedRestartsCountTowardIntensity) {
  auto s = dspec();
  s.max_restarts = 2;
  auto d = start(s);
  must_start(d, 1);
  children.refuse.insert(1);
  children.end(1, ending::exception);
  idle();
  auto e = ended(d);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->intensity_exceeded);
  auto errors = of_kind(supervisor_event_kind::start_error);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(why(errors[0]), "refused 1");
  EXPECT_EQ(decision(errors[0]), "retry");
  EXPECT_EQ(decision(errors[1]), "give_up");
}

TEST_F(DynamicSupervisor, BackoffDelaysTheRestartOnTheClock) {
  auto s = dspec();
  s.backoff = backoff_policy{100ms, 1s, 2.0, 0.0, 30s};
  auto d = start(s);
  device_id first = must_start(d, 1);
  children.end(1, ending::exception);
  idle();
  auto rows = which(d);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].status, child_status::restarting);
  EXPECT_EQ(rows[0].device, first);
  EXPECT_EQ(decision(of_kind(supervisor_event_kind::child_terminated)[0]), "restart in 100ms");
  clock->advance(99ms);
  idle();
  EXPECT_EQ(which(d)[0].status, child_status::restarting);
  clock->advance(1ms);
  idle();
  EXPECT_EQ(which(d)[0].status, child_status::running);
  EXPECT_EQ(children.log.back(), "start 1");
}

TEST_F(DynamicSupervisor, TerminatingARestartingChildCancelsItsRestart) {
  auto s = dspec();
  s.backoff = backoff_policy{100ms, 1s, 2.0, 0.0, 30s};
  auto d = start(s);
  device_id first = must_start(d, 1);
  children.end(1, ending::exception);
  idle();
  EXPECT_FALSE(terminate(d, first));
  clock->advance(1s);
  idle();
  EXPECT_TRUE(which(d).empty());
  EXPECT_EQ(children.log, (strings{"start 1", "end 1"}));
}

TEST_F(DynamicSupervisor, ShutdownStopsChildrenConcurrentlyEachUnderItsPolicy) {
  auto s = dspec();
  s.shutdown = shutdown_policy::timeout(1s);
  children.ignore_shutdown = true;
  auto d = start(s);
  for (int i = 0; i < 3; ++i) must_start(d, i);
  auto out = std::make_shared<std::optional<supervisor_exit>>();
  d.async_stop([out](boost::system::error_code, supervisor_exit e) { *out = e; });
  idle();
  EXPECT_FALSE(*out) << "the children ignore the request until their timeout";
  // One timeout for all three, not one after another.
  clock->advance(1s);
  idle();
  ASSERT_TRUE(*out);
  EXPECT_FALSE((*out)->fault);
  EXPECT_EQ(of_kind(supervisor_event_kind::shutdown_error).size(), 3u);
  int killed = 0;
  for (auto const& l : children.log) killed += l.rfind("killed", 0) == 0;
  EXPECT_EQ(killed, 3);
}

TEST_F(DynamicSupervisor, AChildIgnoringItsCancellationTooIsAbandonedNotWaitedFor) {
  // A run that survives its cancellation and waits on: the stop must not
  // hang on it (the static supervisor's rule: the timeout once more).
  auto s = dspec();
  s.shutdown = shutdown_policy::timeout(100ms);
  auto d =
      dyn::start(ctx.get_executor(), std::move(s), [this](child_context&, int n) -> start_result {
        return [](dyn_kids* kids, int n) -> boost::asio::awaitable<void> {
          kids->log.push_back(fmt::format("start {}", n));
          try {
            co_await forever();
          } catch (...) {
            kids->log.push_back(fmt::format("cancelled {}", n));
          }
          co_await boost::asio::this_coro::reset_cancellation_state();
          co_await forever();  // and never returns
        }(&children, n);
      });
  idle();
  auto const deaf = must_start(d, 1);
  auto out = std::make_shared<std::optional<supervisor_exit>>();
  d.async_stop([out](boost::system::error_code, supervisor_exit e) { *out = e; });
  idle();
  clock->advance(100ms);  // its shutdown timeout: cancelled
  idle();
  EXPECT_FALSE(*out) << "the cancelled child has its grace period";
  clock->advance(100ms);  // the grace period: abandoned
  idle();
  ASSERT_TRUE(*out) << "the stop hangs on a child that ignores cancellation";
  EXPECT_EQ((*out)->abandoned, (std::vector<std::string>{to_string(deaf)}));
  EXPECT_FALSE((*out)->fault);
  EXPECT_EQ(children.log, (std::vector<std::string>{"start 1", "cancelled 1"}));
  auto errs = of_kind(supervisor_event_kind::shutdown_error);
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_EQ(errs[0].action, supervisor_action::cancel);
  EXPECT_EQ(errs[1].action, supervisor_action::abandon);
  EXPECT_EQ(errs[1].reason.kind, reason_kind::kill_timeout);
  EXPECT_EQ(errs[1].device, deaf);
}

TEST_F(DynamicSupervisor, TerminatingAChildThatIgnoresABrutalKillCompletes) {
  auto s = dspec();
  s.shutdown = shutdown_policy::brutal();
  auto d = dyn::start(ctx.get_executor(), std::move(s), [](child_context&, int) -> start_result {
    return []() -> boost::asio::awaitable<void> {
      try {
        co_await forever();
      } catch (...) {
      }
      co_await boost::asio::this_coro::reset_cancellation_state();
      co_await forever();
    }();
  });
  idle();
  auto const deaf = must_start(d, 1);
  auto r = std::make_shared<reply<int>>();
  d.async_terminate_child(deaf, void_handler(r));
  idle();
  EXPECT_FALSE(r->done) << "killed, it has 5 s to end";
  clock->advance(5s);
  idle();
  ASSERT_TRUE(r->done) << "terminate_child hangs on a child that ignores a brutal kill";
  EXPECT_FALSE(r->ec) << r->ec.message();
  EXPECT_TRUE(which(d).empty()) << "abandoned and forgotten";
  auto errs = of_kind(supervisor_event_kind::shutdown_error);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].action, supervisor_action::abandon);
  auto e = stop_async(d);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->abandoned, (std::vector<std::string>{to_string(deaf)}));
}

TEST_F(DynamicSupervisor, ShutdownRequestToItsLineStopsIt) {
  auto d = start(dspec());
  must_start(d, 1);
  device asker;
  ASSERT_TRUE(d.line().request_shutdown(asker.id()));
  idle();
  auto e = ended(d);
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->fault);
  EXPECT_EQ(children.log.back(), "cancel 1");
}

TEST_F(DynamicSupervisor, SitsInADeclaredTree) {
  std::optional<dyn> handle;
  auto root = spec("app");
  root.children.push_back(dyn::as_child("workers", dspec("unused"), children.fn(),
                                        [&](dyn h) { handle.emplace(std::move(h)); }));
  auto sup = supervisor_fixture::start(root);
  ASSERT_TRUE(handle);
  EXPECT_EQ(handle->path(), "app/workers");
  must_start(*handle, 1);
  must_start(*handle, 2);
  children.end(2, ending::exception);
  idle();
  auto crash = of_kind(supervisor_event_kind::child_terminated);
  ASSERT_EQ(crash.size(), 1u);
  EXPECT_EQ(crash[0].supervisor, "app/workers");
  auto e = stop(sup);
  EXPECT_FALSE(e.fault);
  EXPECT_EQ(children.log.back(), "cancel 2");
  EXPECT_EQ(std::count(children.log.begin(), children.log.end(), "cancel 1"), 1);
}

TEST_F(DynamicSupervisor, GivingUpInATreeIsItsParentsCrash) {
  std::optional<dyn> handle;
  auto root = spec("app");
  root.max_restarts = 0;
  auto ds = dspec("unused");
  ds.max_restarts = 0;
  root.children.push_back(
      dyn::as_child("workers", ds, children.fn(), [&](dyn h) { handle.emplace(std::move(h)); }));
  auto sup = supervisor_fixture::start(root);
  must_start(*handle, 1);
  children.end(1, ending::exception);
  idle();
  auto crashes = of_child("workers");
  ASSERT_FALSE(crashes.empty());
  EXPECT_NE(why(crashes[0]).find("restart_intensity_exceeded"), std::string::npos)
      << why(crashes[0]);
  auto e = supervisor_fixture::ended(sup);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->intensity_exceeded);
}

TEST_F(DynamicSupervisor, BadSpecsAreRejectedSayingWhatToDo) {
  auto s = dspec();
  s.max_children = 0;
  try {
    (void)dyn::start(ctx.get_executor(), s, children.fn());
    FAIL() << "max_children = 0 accepted";
  } catch (std::invalid_argument const& e) {
    EXPECT_NE(std::string(e.what()).find("leave it unset"), std::string::npos) << e.what();
  }
  auto p = dspec();
  p.period = 0s;
  EXPECT_THROW((void)dyn::start(ctx.get_executor(), p, children.fn()), std::invalid_argument);
  auto n = dspec("a/b");
  EXPECT_THROW((void)dyn::start(ctx.get_executor(), n, children.fn()), std::invalid_argument);
  auto t = dspec();
  t.shutdown = shutdown_policy::timeout(-1s);
  EXPECT_THROW((void)dyn::start(ctx.get_executor(), t, children.fn()), std::invalid_argument);
}

// OTP's rules for simple_one_for_one (supervisor.erl, since OTP 27): a
// dynamic supervisor has no auto_shutdown, so none of its children may be
// significant; rejected whichever way it is started, saying what to do.
TEST_F(DynamicSupervisor, AutoShutdownAndSignificantChildrenAreRejectedAsInOtp) {
  for (auto a : {auto_shutdown::any_significant, auto_shutdown::all_significant}) {
    auto s = dspec();
    s.auto_shutdown = a;
    try {
      (void)dyn::start(ctx.get_executor(), s, children.fn());
      FAIL() << "auto_shutdown = " << to_string(a) << " accepted";
    } catch (std::invalid_argument const& e) {
      std::string const what = e.what();
      EXPECT_NE(what.find(std::string(to_string(a))), std::string::npos) << what;
      EXPECT_NE(what.find("simple_one_for_one"), std::string::npos) << what;
      EXPECT_NE(what.find("significant transient child"), std::string::npos) << what;
    }
    EXPECT_THROW((void)dyn::as_child("workers", s, children.fn()), std::invalid_argument);
  }
  auto g = dspec();
  g.significant = true;
  try {
    (void)dyn::start(ctx.get_executor(), g, children.fn());
    FAIL() << "significant children accepted";
  } catch (std::invalid_argument const& e) {
    EXPECT_NE(std::string(e.what()).find("need auto_shutdown"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)dyn::as_child("workers", g, children.fn()), std::invalid_argument);
}

// What OTP allows instead: the dynamic supervisor itself as a significant
// child, whose clean end (asked through its line) ends its parent cleanly.
TEST_F(DynamicSupervisor, AsASignificantChildItsCleanEndShutsItsParentDown) {
  std::optional<dyn> handle;
  auto root = spec("app");
  root.auto_shutdown = auto_shutdown::any_significant;
  auto c = dyn::as_child("workers", dspec("unused"), children.fn(),
                         [&](dyn h) { handle.emplace(std::move(h)); });
  c.restart = restart_type::transient;
  c.significant = true;
  root.children.push_back(std::move(c));
  auto sup = supervisor_fixture::start(root);
  ASSERT_TRUE(handle);
  must_start(*handle, 1);
  children.end(1, ending::exception);  // a child's crash is restarted, as ever
  idle();
  EXPECT_FALSE(supervisor_fixture::ended(sup));
  device asker;
  ASSERT_TRUE(handle->line().request_shutdown(asker.id()));
  idle();
  auto e = supervisor_fixture::ended(sup);
  ASSERT_TRUE(e) << "the parent did not shut down";
  EXPECT_TRUE(e->auto_shutdown);
  EXPECT_FALSE(e->fault);
}

TEST(DynamicSupervisorThreads, StartsAndTerminatesFromManyThreads) {
  boost::asio::io_context ctx(4);
  auto logger =
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
  dynamic_supervisor_spec s;
  s.logger = logger;
  s.clock = std::make_shared<manual_clock>();
  auto d = dynamic_supervisor<int>::start(
      boost::asio::make_strand(ctx), s,
      [](device&, int) -> boost::asio::awaitable<boost::system::result<void, int>> {
        return forever_result();
      });
  std::atomic<int> started{0}, terminated{0}, to_terminate{0}, failures{0};
  constexpr int per_thread = 200;
  auto guard = boost::asio::make_work_guard(ctx);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&] { ctx.run(); });
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        d.async_start_child(t * per_thread + i,
                            [&, d](boost::system::error_code ec, device_id id) mutable {
                              if (ec) {
                                ++failures;
                                return;
                              }
                              if (id.value() % 2 == 0) {
                                ++to_terminate;  // before `started`, which the test waits for
                                d.async_terminate_child(id, [&](boost::system::error_code ec2) {
                                  if (ec2) ++failures;
                                  ++terminated;
                                });
                              }
                              ++started;
                            });
      }
    });
  }
  for (auto& c : callers) c.join();
  std::promise<supervisor_exit> done;
  // Wait for every start's answer (and the terminations they asked for), then stop.
  while (started.load() + failures.load() < 4 * per_thread ||
         terminated.load() < to_terminate.load())
    std::this_thread::yield();
  d.async_stop([&](boost::system::error_code, supervisor_exit e) { done.set_value(e); });
  auto e = done.get_future().get();
  guard.reset();
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(started.load(), 4 * per_thread);
  EXPECT_FALSE(e.fault);
}

}  // namespace
}  // namespace backplane::test
