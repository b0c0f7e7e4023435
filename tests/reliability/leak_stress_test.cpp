// Stress with leak accounting: 100,000 devices in hub-and-spoke groups and
// 10,000 supervised children crashing at random, on an io_context run by 8
// threads; afterwards the process's live allocations must be back where they
// started, counted by this executable's allocation hooks (alloc_counter.cpp),
// not merely "LSan found nothing at exit".
//
// How live allocations are compared, and why so: Asio keeps freed blocks in a
// per-thread recycling cache, and some state is made once per process
// (thread-local service caches, error categories, iostream/locale data).
// So (1) a small warm-up round of the very same work runs first, so that
// everything made once exists before the baseline is taken; (2) the baseline
// is read with no io_context alive; (3) the big round runs on threads that
// call io_context::run(), and the count is read only after those threads
// have returned from run() (Asio's thread_info, and with it the recycling
// cache, lives in run()'s frame) and been joined, and after the io_context
// (its services, timers, strands) is destroyed. What is live then and was
// not at the baseline is a leak.
//
// Bounded for CI (a few seconds on two cores; smaller under ThreadSanitizer);
// BACKPLANE_STRESS_ROUNDS=<n> repeats the big round n times for a long run.

#include "reliability/alloc_counter.hpp"
#include "supervisor/fixture.hpp"

#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <mutex>
#include <random>
#include <thread>

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;

namespace {

#if defined(__SANITIZE_THREAD__)
constexpr bool kSmall = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool kSmall = true;
#else
constexpr bool kSmall = false;
#endif
#else
constexpr bool kSmall = false;
#endif

constexpr int kThreads = 8;

struct sizes {
  int groups;    // hub-and-spoke groups
  int spokes;    // per group
  int sups;      // supervisors
  int children;  // per supervisor
  int crashes;   // crash budget for all children together
};

sizes big() {
  if (kSmall) return {100, 99, 10, 100, 1000};
  return {1000, 99, 100, 100, 5000};  // 100,000 devices; 10,000 children
}
sizes warm() { return {8, 9, 4, 5, 40}; }

// ------------------------------------------------------------- devices ----

/// A hub and its spokes: each spoke monitors the hub through a line (which
/// may lose the race with the hub's end: link_down), then waits for the
/// hub's end, which must reach it exactly once, with the hub's fault.
/// Where the test thread waits for the round to settle: every spoke done,
/// every crash restarted. Poked by the spokes and the observers.
struct settle {
  std::mutex mu;
  std::condition_variable cv;
  void poke() {
    std::lock_guard lock(mu);
    cv.notify_all();
  }
};

struct group {
  backplane::line hub;
  std::optional<fault> how;  // written before the hub ends
  std::atomic<int> linked{0};
  std::atomic<int> heard{0};
  std::atomic<int> wrong{0};
  std::atomic<int> done{0};
  settle* s = nullptr;
};

asio::awaitable<void> spoke(std::shared_ptr<group> g) {
  device d;
  if (d.link_line(g->hub, link_mode::monitor)) {  // link_down: the hub was first
    g->done.fetch_add(1);
    g->s->poke();
    co_return;
  }
  g->linked.fetch_add(1);
  auto [ec, m] = co_await d.async_receive(asio::as_tuple(asio::use_awaitable));
  auto const* gone = ec ? nullptr : as_disconnected(m);
  if (!gone || gone->sender != g->hub.id() || gone->fault != g->how) {
    g->wrong.fetch_add(1);
  } else {
    g->heard.fetch_add(1);
  }
  g->done.fetch_add(1);
  g->s->poke();
}

asio::awaitable<void> hub_life(std::shared_ptr<group> g, device hub, int kind, int hops) {
  auto ex = co_await asio::this_coro::executor;
  for (int i = 0; i < hops; ++i) co_await asio::post(ex, asio::use_awaitable);
  if (kind == 0) {
    g->how.reset();
    hub.disconnect();
  } else if (kind == 1) {
    g->how = fault::error();
    hub.disconnect(fault::error());
  } else {
    g->how = fault::drop();
    device gone = std::move(hub);  // dropped
  }
}

void devices_round(asio::io_context& ctx, sizes const& z, std::uint32_t seed, settle& st,
                   std::vector<std::shared_ptr<group>>& out) {
  std::mt19937 rng(seed);
  for (int i = 0; i < z.groups; ++i) {
    auto g = std::make_shared<group>();
    g->s = &st;
    device hub;
    g->hub = hub.line();
    for (int k = 0; k < z.spokes; ++k)
      asio::co_spawn(asio::make_strand(ctx), spoke(g), asio::detached);
    asio::co_spawn(
        asio::make_strand(ctx),
        hub_life(g, std::move(hub), static_cast<int>(rng() % 3), static_cast<int>(rng() % 4)),
        asio::detached);
    out.push_back(std::move(g));
  }
}

void check_devices(std::vector<std::shared_ptr<group>> const& gs, int spokes) {
  long linked = 0;
  for (auto const& g : gs) {
    EXPECT_EQ(g->done.load(), spokes);
    EXPECT_EQ(g->wrong.load(), 0);
    EXPECT_EQ(g->heard.load(), g->linked.load()) << "a notification lost or duplicated";
    linked += g->linked.load();
  }
  std::printf("devices: %zu hubs, %ld of %zu spokes linked in time\n", gs.size(), linked,
              gs.size() * static_cast<std::size_t>(spokes));
}

// ---------------------------------------------------------- supervisors ----

struct chaos {
  std::atomic<int> budget;
  std::atomic<int> crashes{0};
  std::mutex mu;
  long terminated = 0;  // crash reports
  long restarted = 0;
  settle* s = nullptr;
  explicit chaos(int b) : budget(b) {}
};

/// A child that crashes (error, throw, drop) after a few hops while the
/// budget lasts, then waits under manage until it is stopped.
asio::awaitable<void> child_life(child_context& c, chaos* k) {
  std::mt19937 rng(static_cast<std::uint32_t>(c.incarnation * 7919 + c.id.size()));
  int const hops = static_cast<int>(rng() % 3);
  for (int i = 0; i < hops; ++i) co_await asio::post(c.executor, asio::use_awaitable);
  if (k->budget.fetch_sub(1) > 0) {
    k->crashes.fetch_add(1);
    switch (rng() % 3) {
      case 0: throw std::runtime_error("chaos");
      case 1: c.device.disconnect(fault::error()); co_return;
      default: {
        device gone = std::move(c.device);
        co_return;
      }
    }
  }
  (void)co_await manage(std::move(c.device), forever_result());
}

std::vector<supervisor> supervisors_round(asio::io_context& ctx, sizes const& z, chaos& k,
                                          std::shared_ptr<manual_clock> const& clock,
                                          std::shared_ptr<spdlog::logger> const& logger) {
  std::vector<supervisor> out;
  for (int s = 0; s < z.sups; ++s) {
    supervisor_spec spec;
    spec.name = fmt::format("s{}", s);
    // Mostly one_for_one; a group restart of 100 children is 100 starts.
    spec.strategy = s % 10 == 0   ? restart_strategy::one_for_all
                    : s % 10 == 1 ? restart_strategy::rest_for_one
                                  : restart_strategy::one_for_one;
    spec.max_restarts = 1'000'000;
    spec.period = std::chrono::hours(1);
    spec.clock = clock;
    spec.logger = logger;
    spec.observer = [&k](supervisor_event const& e) {
      {
        std::lock_guard lock(k.mu);
        // A crash is reported once: as child_terminated, or as a
        // shutdown_error when it came while the supervisor was stopping
        // that child for a group restart (a fault of its own).
        if (e.event == supervisor_event_kind::child_terminated ||
            (e.event == supervisor_event_kind::shutdown_error &&
             e.action == supervisor_action::none))
          ++k.terminated;
        if (e.event == supervisor_event_kind::restarted) ++k.restarted;
      }
      k.s->poke();
    };
    spec.child_strands = true;
    for (int c = 0; c < z.children; ++c) {
      spec.children.push_back(
          worker(fmt::format("c{}", c),
                 [&k](child_context& cc) -> asio::awaitable<void> { return child_life(cc, &k); }));
    }
    auto strand = asio::make_strand(ctx);
    // Started from the supervisor's own strand, as the API asks on a
    // multi-threaded context.
    std::promise<supervisor> made;
    asio::post(strand, [&, strand] {
      auto r = supervisor::start(strand, std::move(spec));
      made.set_value(*r);
    });
    out.push_back(made.get_future().get());
  }
  return out;
}

/// One round: everything made, run on 8 threads until quiet, stopped,
/// checked, destroyed. Returns once the threads have been joined and the
/// context destroyed.
void round(sizes const& z, std::uint32_t seed, bool report) {
  auto clock = std::make_shared<manual_clock>();
  auto logger =
      std::make_shared<spdlog::logger>("stress", std::make_shared<spdlog::sinks::null_sink_mt>());
  std::vector<std::shared_ptr<group>> groups;
  chaos k(z.crashes);
  settle st;
  k.s = &st;
  {
    asio::io_context ctx(kThreads);
    auto guard = asio::make_work_guard(ctx);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) threads.emplace_back([&ctx] { ctx.run(); });

    devices_round(ctx, z, seed, st, groups);
    auto sups = supervisors_round(ctx, z, k, clock, logger);

    // Until every spoke is done and the crash budget is spent and restarted;
    // the bound is a safety net for a lost event, far beyond a healthy run.
    auto quiet = [&] {
      for (auto const& g : groups)
        if (g->done.load() != z.spokes) return false;
      std::lock_guard lock(k.mu);
      return k.budget.load() <= 0 && k.restarted >= k.crashes.load();
    };
    {
      std::unique_lock lock(st.mu);
      // quiet() takes k.mu under st.mu; nobody takes them the other way
      // round (the observers let go of k.mu before they poke).
      bool const settled = st.cv.wait_for(lock, std::chrono::seconds(120), quiet);
      EXPECT_TRUE(settled) << "the round did not settle";
    }

    std::vector<std::future<supervisor_exit>> exits;
    for (auto& s : sups) exits.push_back(s.async_stop(asio::use_future));
    for (auto& f : exits) {
      auto e = f.get();
      EXPECT_FALSE(e.fault);
    }
    sups.clear();
    guard.reset();
    for (auto& t : threads) t.join();
  }
  check_devices(groups, z.spokes);
  {
    std::lock_guard lock(k.mu);
    // Every crash reported once and restarted once (a group restart restarts
    // others too: restarted >= crashes; each report is one exit).
    EXPECT_GE(k.restarted, k.crashes.load());
    EXPECT_GE(k.terminated, k.crashes.load());
    if (report)
      std::printf("supervisors: %d x %d children, %d crashes, %ld reports, %ld restarts\n", z.sups,
                  z.children, k.crashes.load(), k.terminated, k.restarted);
  }
}

TEST(LeakStress, LiveAllocationsReturnToTheBaseline) {
  round(warm(), 1, false);  // everything made once per process exists now
  std::int64_t const baseline = alloc::live();
  int const rounds = [] {
    char const* v = std::getenv("BACKPLANE_STRESS_ROUNDS");
    return v && *v ? std::max(1, std::atoi(v)) : 1;
  }();
  for (int r = 0; r < rounds; ++r) {
    round(big(), static_cast<std::uint32_t>(r + 2), true);
    std::int64_t const now = alloc::live();
    EXPECT_EQ(now, baseline) << "round " << r << ": " << (now - baseline)
                             << " allocations more than before it";
    if (now != baseline) break;
  }
}

}  // namespace
