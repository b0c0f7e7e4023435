// Supervisors on a 4-thread io_context, children on their own strands,
// hundreds of children crashing at random (a seeded RNG per incarnation, so
// each child's choices are reproducible; the interleaving is the threads').
// Counted through the observer: no restart lost or duplicated. The test
// thread only waits on promises; nothing sleeps.

#include "supervisor/fixture.hpp"

#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <future>
#include <mutex>
#include <random>
#include <thread>

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;

namespace {

/// Fails without ever suspending: its co_spawn thread outlives manage's
/// return by one resumption (regression: the work's cancellation signal must
/// live until then).
asio::awaitable<boost::system::result<void, int>> failing_work() {
  co_return boost::system::result<void, int>(13);
}

/// Shared by every child and the observer of one run.
struct chaos {
  explicit chaos(int budget, int workers) : crashes_left(budget), total_workers(workers) {}

  std::atomic<int> crashes_left;
  int const total_workers;
  std::atomic<int> waiting{0};  // children in their final, crash-free wait
  std::atomic<bool> settled_once{false};
  std::promise<void> settled;
  std::atomic<int> crashes{0};

  std::mutex mu;  // guards what follows
  std::vector<supervisor_event> events;
  std::map<std::pair<std::string, std::string>, int> starts;  // (supervisor, child)

  void observe(supervisor_event const& e) {
    std::lock_guard lock(mu);
    events.push_back(e);
  }

  /// A worker that crashes at random while the budget lasts, in one of four
  /// ways, after a random number of hops through its executor; then waits
  /// under manage until it is stopped.
  child_spec worker_spec(std::string id) {
    if (managed_works) {
      return worker(id, [this, id](child_context& c) -> start_result {
        // A device of the work's own that the child monitors: faulting it
        // is the third way to crash, a cascade the supervisor's listener hears.
        device dep;
        c.device.link(dep, link_mode::monitor);
        return managed_life(c.supervisor, id, c.incarnation, c.executor, std::move(dep));
      });
    }
    return worker(id,
                  [this, id](child_context& c) -> asio::awaitable<void> { return life(c, id); });
  }

  /// The same chaos as a managed work the supervisor runs: it fails by value,
  /// by throwing or by a cascade (it faults a device the child monitors, and
  /// the supervisor cancels it), or waits until the supervisor cancels it (a
  /// shutdown).
  bool managed_works = false;
  asio::awaitable<boost::system::result<void, int>> managed_life(std::string sup, std::string id,
                                                                 std::uint64_t incarnation,
                                                                 asio::any_io_executor ex,
                                                                 device dep) {
    {
      std::lock_guard lock(mu);
      ++starts[{sup, id}];
    }
    std::mt19937 rng(static_cast<std::uint32_t>(
        std::hash<std::string>{}(fmt::format("{}/{}#{}", sup, id, incarnation))));
    int const hops = static_cast<int>(rng() % 5);
    for (int i = 0; i < hops; ++i) co_await asio::post(ex, asio::use_awaitable);
    if (crashes_left.fetch_sub(1) > 0) {
      crashes.fetch_add(1);
      auto const how = rng() % 3;
      if (how == 0) throw std::runtime_error("chaos");
      if (how == 1) co_return boost::system::result<void, int>(13);
      dep.disconnect(fault::error());
      co_await forever();  // until the supervisor's listener cancels it
      co_return boost::system::result<void, int>();
    }
    if (waiting.fetch_add(1) + 1 == total_workers && !settled_once.exchange(true))
      settled.set_value();
    try {
      co_await forever();
    } catch (...) {
      waiting.fetch_sub(1);
      throw;
    }
    co_return boost::system::result<void, int>();
  }

  asio::awaitable<void> life(child_context& c, std::string id) {
    {
      std::lock_guard lock(mu);
      ++starts[{c.supervisor, id}];
    }
    std::mt19937 rng(static_cast<std::uint32_t>(
        std::hash<std::string>{}(fmt::format("{}/{}#{}", c.supervisor, id, c.incarnation))));
    int const hops = static_cast<int>(rng() % 5);
    for (int i = 0; i < hops; ++i) co_await asio::post(c.executor, asio::use_awaitable);
    if (crashes_left.fetch_sub(1) > 0) {
      crashes.fetch_add(1);
      co_await crash(c, static_cast<int>(rng() % 4));
      co_return;
    }
    co_await settle(c, id);
  }

  asio::awaitable<void> crash(child_context& c, int how) {
    if (how == 0) throw std::runtime_error("chaos");
    if (how == 1) {
      auto r = co_await manage(std::move(c.device), failing_work());
      // A shutdown request already waiting wins over the error (manage's
      // bias): then this was a clean stop, not a crash.
      if (!r && r.error().is_power_off()) crashes.fetch_sub(1);
    } else if (how == 2) {
      c.device.disconnect(fault::error());
    } else {
      device dropped = std::move(c.device);
    }
  }

  asio::awaitable<void> settle(child_context& c, std::string const& id) {
    if (waiting.fetch_add(1) + 1 == total_workers && !settled_once.exchange(true))
      settled.set_value();
    auto r = co_await manage(std::move(c.device), forever_result());
    waiting.fetch_sub(1);
    EXPECT_FALSE(r);
    if (!r) {
      EXPECT_TRUE(r.error().is_power_off()) << id;
    }
  }
};

/// Runs `ctx` on four threads until it runs out of work; returns a future per
/// thread so that the test can tell a hang from the end.
std::vector<std::future<void>> run_on_four_threads(asio::io_context& ctx) {
  std::vector<std::future<void>> threads;
  for (int i = 0; i < 4; ++i)
    threads.push_back(std::async(std::launch::async, [&ctx] { ctx.run(); }));
  return threads;
}

/// Waits for `f`, giving up (failing, and stopping the context so the test
/// ends) after a deadline far beyond any healthy run: a safety net for a
/// lost restart, not a timing assertion.
template <class F>
bool wait_or_fail(F& f, asio::io_context& ctx, char const* what) {
  if (f.wait_for(std::chrono::seconds(100)) == std::future_status::ready) return true;
  ADD_FAILURE() << "hung waiting for " << what;
  ctx.stop();
  return false;
}

supervisor_spec base_spec(std::string name, chaos& c, std::shared_ptr<manual_clock> const& clock) {
  supervisor_spec s;
  s.name = std::move(name);
  s.max_restarts = 1'000'000;
  s.period = std::chrono::hours(1);
  s.clock = clock;
  s.logger =
      std::make_shared<spdlog::logger>("stress", std::make_shared<spdlog::sinks::null_sink_mt>());
  s.observer = [&c](supervisor_event const& e) { c.observe(e); };
  s.child_strands = true;
  return s;
}

struct group_info {
  restart_strategy strategy;
  std::vector<std::string> order;
};

/// Checks the record of one run: every crash reported exactly once, every
/// decided restart carried out exactly once (a group restart once per member),
/// incarnations without gaps or repeats, and starts matching restarts.
void check(chaos& c, std::map<std::string, group_info> const& sups, int budget) {
  std::lock_guard lock(c.mu);
  int crash_reports = 0;
  std::map<std::pair<std::string, std::string>, std::uint64_t> incarnation;
  std::map<std::string, std::size_t> expected_restarts;
  std::map<std::string, std::size_t> restarts;
  for (auto const& e : c.events) {
    auto key = std::make_pair(e.supervisor, e.child);
    switch (e.event) {
      case supervisor_event_kind::child_terminated: {
        ASSERT_NE(why(e), "clean") << e.child;
        ++crash_reports;
        if (decision(e) == "restart") {
          auto const& g = sups.at(e.supervisor);
          auto pos = std::find(g.order.begin(), g.order.end(), e.child) - g.order.begin();
          std::size_t const n = g.order.size();
          expected_restarts[e.supervisor] += g.strategy == restart_strategy::one_for_one ? 1
                                             : g.strategy == restart_strategy::one_for_all
                                                 ? n
                                                 : n - static_cast<std::size_t>(pos);
        } else {
          // An exit superseded by a group restart (its successor may have
          // crashed too by the time it is decided).
          EXPECT_TRUE(decision(e) == "none (restarted with its group)" ||
                      decision(e) == "none (old incarnation)")
              << format_text(e);
        }
        break;
      }
      case supervisor_event_kind::restarted: {
        ++restarts[e.supervisor];
        auto& inc = incarnation[key];
        if (inc == 0) inc = 1;
        EXPECT_EQ(e.incarnation, inc + 1) << e.supervisor << " " << e.child;
        inc = e.incarnation;
        break;
      }
      case supervisor_event_kind::shutdown_error:
        // Crashed just as its group restart asked it to stop.
        EXPECT_EQ(decision(e), "none") << e.child;
        ++crash_reports;
        break;
      default: ADD_FAILURE() << "unexpected event " << format_text(e);
    }
  }
  EXPECT_EQ(crash_reports, c.crashes.load());
  EXPECT_GT(c.crashes.load(), budget * 9 / 10);
  for (auto const& [sup, g] : sups) EXPECT_EQ(restarts[sup], expected_restarts[sup]) << sup;
  for (auto const& [key, n] : c.starts) {
    auto it = incarnation.find(key);
    std::uint64_t const last = it == incarnation.end() ? 1 : it->second;
    EXPECT_EQ(static_cast<std::uint64_t>(n), last) << key.first << " " << key.second;
  }
}

void hundreds_crashing_at_random(bool managed_works) {
  constexpr int workers = 300;
  constexpr int budget = 10000;
  asio::io_context ctx(4);
  auto clock = std::make_shared<manual_clock>();
  chaos c(budget, workers);
  c.managed_works = managed_works;
  auto s = base_spec("flat", c, clock);
  group_info g{restart_strategy::one_for_one, {}};
  for (int i = 0; i < workers; ++i) {
    std::string id = fmt::format("w{}", i);
    g.order.push_back(id);
    s.children.push_back(c.worker_spec(id));
  }
  auto sup = supervisor::start(asio::make_strand(ctx), std::move(s));
  ASSERT_TRUE(sup);
  auto settled = c.settled.get_future();
  auto threads = run_on_four_threads(ctx);
  if (wait_or_fail(settled, ctx, "every child to settle")) {
    std::promise<supervisor_exit> stopped;
    sup->async_stop([&](boost::system::error_code ec, supervisor_exit e) {
      EXPECT_FALSE(ec);
      stopped.set_value(e);
    });
    auto exit = stopped.get_future();
    if (wait_or_fail(exit, ctx, "the supervisor to stop")) {
      auto e = exit.get();
      EXPECT_FALSE(e.fault);
      EXPECT_FALSE(e.intensity_exceeded);
    }
  }
  // The context runs out of work by itself once everything has ended.
  for (auto& t : threads) wait_or_fail(t, ctx, "the threads to finish");
  for (auto& t : threads) t.get();
  check(c, {{"flat", g}}, budget);
  EXPECT_EQ(c.waiting.load(), 0);
}

TEST(Stress, HundredsOfChildrenCrashingAtRandom) { hundreds_crashing_at_random(false); }

// The same with managed works: the supervisor's listener, the work's end and
// a kill meet on each child's strand.
TEST(Stress, HundredsOfManagedWorksCrashingAtRandom) { hundreds_crashing_at_random(true); }

TEST(Stress, TreeOfStrategiesCrashingAtRandom) {
  // root (one_for_one) -> four nested supervisors, one per strategy (and a
  // second one_for_one), 40 children each. Group restarts under contention.
  constexpr int per_sup = 40;
  constexpr int budget = 2000;
  asio::io_context ctx(4);
  auto clock = std::make_shared<manual_clock>();
  chaos c(budget, 4 * per_sup);
  auto root = base_spec("root", c, clock);
  std::map<std::string, group_info> sups;
  std::vector<std::pair<std::string, restart_strategy>> const kinds = {
      {"o1", restart_strategy::one_for_one},
      {"all", restart_strategy::one_for_all},
      {"rest", restart_strategy::rest_for_one},
      {"o2", restart_strategy::one_for_one}};
  for (auto const& [name, strategy] : kinds) {
    supervisor_spec nested{.name = name,
                           .strategy = strategy,
                           .max_restarts = 1'000'000,
                           .period = std::chrono::hours(1)};
    group_info g{strategy, {}};
    for (int i = 0; i < per_sup; ++i) {
      std::string id = fmt::format("{}-{}", name, i);
      g.order.push_back(id);
      nested.children.push_back(c.worker_spec(id));
    }
    sups["root/" + name] = g;
    root.children.push_back(supervisor_child(name, nested));
  }
  sups["root"] = group_info{restart_strategy::one_for_one, {"o1", "all", "rest", "o2"}};
  auto sup = supervisor::start(asio::make_strand(ctx), std::move(root));
  ASSERT_TRUE(sup);
  auto settled = c.settled.get_future();
  auto threads = run_on_four_threads(ctx);
  if (wait_or_fail(settled, ctx, "every child to settle")) {
    std::promise<supervisor_exit> stopped;
    sup->async_stop([&](boost::system::error_code, supervisor_exit e) { stopped.set_value(e); });
    auto exit = stopped.get_future();
    if (wait_or_fail(exit, ctx, "the tree to stop")) {
      EXPECT_FALSE(exit.get().fault);
    }
  }
  for (auto& t : threads) wait_or_fail(t, ctx, "the threads to finish");
  for (auto& t : threads) t.get();
  check(c, sups, budget);
}

}  // namespace

namespace {

/// A child that waits for its shutdown request under manage, then ends cleanly.
asio::awaitable<void> parked_worker(device& d) {
  (void)co_await manage(std::move(d), forever_result());
}

}  // namespace

TEST(Stress, RuntimeApiFromManyThreadsAtOnce) {
  // Four caller threads (not the context's) start, inspect, terminate and
  // delete their own children on one supervisor running on four threads,
  // each call waited for through a future. Every call is answered exactly
  // once, each answer is right, and nothing is left behind.
  constexpr int callers = 4;
  constexpr int rounds = 150;
  asio::io_context ctx(4);
  auto work = asio::make_work_guard(ctx);
  supervisor_spec s;
  s.name = "api";
  s.logger =
      std::make_shared<spdlog::logger>("api", std::make_shared<spdlog::sinks::null_sink_mt>());
  s.child_strands = true;
  std::atomic<int> events{0};
  s.observer = [&](supervisor_event const&) { events.fetch_add(1); };
  auto sup = supervisor::start(asio::make_strand(ctx), std::move(s));
  ASSERT_TRUE(sup);
  auto threads = run_on_four_threads(ctx);
  std::vector<std::future<int>> results;
  for (int t = 0; t < callers; ++t) {
    results.push_back(std::async(std::launch::async, [&sup, t] {
      int answered = 0;
      for (int i = 0; i < rounds; ++i) {
        std::string const id = fmt::format("t{}-{}", t, i);
        child_spec c = worker(id, parked_worker);
        c.restart = restart_type::transient;
        device_id const dev = sup->async_start_child(std::move(c), asio::use_future).get();
        EXPECT_TRUE(dev) << id;
        // Starting it again: already running, with the same device.
        std::promise<std::pair<boost::system::error_code, device_id>> again;
        sup->async_start_child(worker(id, parked_worker),
                               [&again](boost::system::error_code ec, device_id d) {
                                 again.set_value({ec, d});
                               });
        auto const [ec, running] = again.get_future().get();
        EXPECT_EQ(ec, supervisor_errc::running) << id;
        EXPECT_EQ(running, dev) << id;
        sup->async_terminate_child(id, asio::use_future).get();
        sup->async_delete_child(id, asio::use_future).get();
        answered += 4;
      }
      return answered;
    }));
  }
  for (auto& r : results) {
    if (!wait_or_fail(r, ctx, "a caller thread")) break;
    EXPECT_EQ(r.get(), 4 * rounds);
  }
  std::promise<child_counts> counted;
  sup->async_count_children([&](boost::system::error_code ec, child_counts n) {
    EXPECT_FALSE(ec);
    counted.set_value(n);
  });
  auto counts = counted.get_future();
  if (wait_or_fail(counts, ctx, "count_children")) {
    auto n = counts.get();
    EXPECT_EQ(n.specs, 0u);
    EXPECT_EQ(n.active, 0u);
  }
  // Terminated on request, cleanly: nothing to report.
  EXPECT_EQ(events.load(), 0);
  std::promise<supervisor_exit> stopped;
  sup->async_stop([&](boost::system::error_code, supervisor_exit e) { stopped.set_value(e); });
  auto exit = stopped.get_future();
  if (wait_or_fail(exit, ctx, "the supervisor to stop")) {
    EXPECT_FALSE(exit.get().fault);
  }
  work.reset();
  for (auto& t : threads) wait_or_fail(t, ctx, "the threads to finish");
  for (auto& t : threads) t.get();
}
