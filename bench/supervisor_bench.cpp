// The supervisor's costs (issue 3, item 10), measured as the Erlang/OTP anchor
// (shared/anchors/erlang) measures its own, so that the two compare from one sitting.
// How to run it and the figures: bench/SUPERVISOR.md.
//
// Every case runs on ONE single-threaded io_context driven by hand from the
// benchmark thread: the bench triggers something, then polls until nothing is
// ready (run_until_idle). A supervisor parked in its receive is outstanding
// work, so run() would never return. Supervisors start with child_strands =
// false (a single thread needs none; the _strands case turns them on) and a
// muted logger (null sink, level off: no report is even formatted) except
// where a case says otherwise.
//
// The children wait on a `trigger`: a one-shot, cancellable async wait that the
// bench fires. It plays the part of OTP's `receive crash -> exit(crash) end`;
// a cancellation (manage stopping the work on a shutdown request) completes it
// with operation_aborted, like any Asio wait.
//
//   restart_cycle_error     one_for_one, intensity 1'000'000 in 1 s, one child whose start
//                           function returns its work (awaitable<result<void, int>>), which
//                           the supervisor manages; the work waits on its trigger and then
//                           returns an error -> the child disconnects with fault::error ->
//                           the supervisor restarts it -> the new incarnation's work is
//                           parked on its trigger again (checked: one more start, armed).
//                           op = one crash->restarted cycle. A fresh supervisor every 100
//                           cycles (not timed), as OTP's sup_one_for_one_restart. Clock: a
//                           manual_clock advanced by 2 us per cycle (timed; ~20 ns), so the
//                           window stays realistic: at most 500k restarts in any 1 s.
//   restart_cycle_error_run_manage  the same work, in a run that co_awaits
//                           manage(std::move(device), work) itself (three coroutines a child,
//                           not one: the run, manage's loop, and the work manage spawns).
//   restart_cycle_error_plain  the same with the smallest child there is: no manage; its run
//                           waits on the trigger, disconnects with fault::error and returns
//                           (brutal shutdown, since it does not listen to its device).
//   restart_cycle_error_strands  the same as restart_cycle_error with child_strands = true.
//   restart_cycle_error_formatted  the same with a null-sink logger at level info: every
//                           report is formatted (text) and thrown away.
//   restart_cycle_throw     the work throws std::runtime_error instead (fault::error, the
//                           exception as the cause). _run_manage: inside manage in a run.
//   restart_cycle_throw_run the child's run itself throws (no manage): the crash report
//                           carries "error: std::runtime_error: boom". Brutal shutdown.
//   restart_cycle_{error,throw}_sustained/N  ONE supervisor for N cycles (fixed iteration
//                           counts): ns/op must not grow with N (O(1) intensity check).
//   floor_throw_catch       throw and catch a std::runtime_error (the throw target is
//                           "within 1.3x of floor_throw_catch + restart_cycle_error").
//   floor_throw_awaited     a coroutine throws, its co_awaiting caller catches: Asio rethrows
//                           the stored exception at co_await, so this is two throws, what
//                           any exception out of an awaitable costs.
//   floor_bare_restart_cycle  restart_cycle_error_run_manage without a supervisor: a coroutine on
//   its own
//                           device links a child as a peer, co_spawns it under manage (slot
//                           bound) and spawns the next when the disconnect arrives.
//   floor_spawn_10k         10,000 parked children (device + peer link + co_spawn with a bound
//                           slot) from a plain loop: the floor under start_10k, time and bytes.
//   floor_co_spawn, floor_post_deferred  the Asio floors of coroutine_bench, repeated here so
//                           that ratios come from one process: a bare co_spawn, observed by a
//                           driver coroutine; one resumption through the queue.
//   one_for_all_100         100 children as above (managed works; _run_manage: runs that
//                           co_await manage); #50's work returns an error -> the other
//                           99 are stopped (shutdown request, 5 s timeout, in reverse) and
//                           all 100 start again in order (checked: 100 starts, all armed).
//                           op = the whole cycle. Steady clock (each stop arms a real
//                           timeout timer, as in production). Fresh supervisor every 100
//                           cycles, as OTP.
//   rest_for_one_100        the same under rest_for_one: #50..#100 (51) restarted.
//   start_10k               async_start_child x 10,000 (unique ids, spec built in the loop)
//                           from a driver coroutine, one after another (OTP calls
//                           supervisor:start_child synchronously); the worker is the
//                           minimal one: co_await device.async_receive() (a shutdown
//                           request ends it cleanly). Time and heap bytes (mallinfo2 delta)
//                           per child. op = 10,000 children; counters ns_per_child,
//                           bytes_per_child, allocs_per_child.
//   start_10k_work          the same with each child a managed work waiting on a never-fired
//                           trigger (the supervisor listens on its device).
//   start_10k_run_manage    the same work in a run that co_awaits manage itself.
//   shutdown_10k[_work|_run_manage]  async_stop on such a supervisor with 10,000 children (untimed
//                           start), until the stop completes: each child is asked to shut
//                           down and awaited, in reverse order. counter ns_per_child.
//   intensity_exceeded      supervisor::start (intensity 3 in 5 s, steady clock) with one
//                           child whose managed work returns an error at once, until async_wait
//                           reports intensity_exceeded (checked: 1 start + 3 restarts).
//   logged_restarts         restart_cycle_error for 100,000 cycles with every report logged
//                           through an spdlog async_logger (own thread pool, 1 thread,
//                           queue 8192, overflow policy block: nothing is dropped) to a
//                           basic_file_sink in /tmp, at the default level (info: one
//                           child_terminated error line + one restarted info line per
//                           restart). Intensity 1000 in 1 s (cheap fresh supervisors every
//                           100 cycles, all timed). Timed until the thread pool has written
//                           everything and joined; the file's lines are counted afterwards.
//                           counters restarts_per_s, crash_reports, restarted_reports.
//   logged_restarts_errors_only  the same with the logger at level warn: only the crash
//                           reports (child_terminated, level error), one line per restart.
//
// `/reactor` rows (issue 10): the same case with a live reactor on its io_context (a pending
// timer and an open loopback socket, bench/live_reactor.hpp), as a service's context has; every
// pass through a short handler queue then runs the reactor as well.
// Counter hops_per_op (hops_per_child for the 10k cases): handlers the io_context ran
// (poll()'s own count) per op during the timed part: the executor queue passes an op takes.
//
// allocs_* counters count operator new calls (one thread_local increment each). Asio's
// recycling allocator (coroutine frames, handlers) calls aligned_alloc directly when its
// 2-entry per-thread cache misses; those are not counted (callgrind shows them as memalign).
//
// SUPBENCH_ITERS=n fixes the iteration count of every free-running case (callgrind:
// instructions per op = total / n with --toggle-collect='*one_child_rig::cycle*').
// SUPBENCH_SUSTAINED=a,b,c sets the sustained cases' cycle counts (default
// 1000,10000,100000,1000000).

#include "live_reactor.hpp"

#include <backplane/backplane.hpp>
#include <backplane/supervisor.hpp>

#include <benchmark/benchmark.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/system/result.hpp>

#include <fmt/format.h>
#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

// --- allocation counter: every operator new on this thread ---
namespace {
thread_local std::uint64_t allocations = 0;
}  // namespace

// Out of line, so that GCC does not pair an inlined free() with a `new` it saw.
[[gnu::noinline]] void* operator new(std::size_t n) {
  ++allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using backplane::child_context;
using backplane::device;
using backplane::manual_clock;
using backplane::restart_strategy;
using backplane::start_result;
using backplane::supervisor;
using backplane::supervisor_spec;
using clock_type = std::chrono::steady_clock;
using error_code = boost::system::error_code;

// A wrong outcome would make a figure meaningless; stop loudly.
void expect(bool ok, char const* what) {
  if (!ok) {
    std::fprintf(stderr, "supervisor_bench: check failed: %s\n", what);
    std::abort();
  }
}

/// Handlers run by every run_until_idle so far: the hop count of whatever ran in between.
std::uint64_t handlers_run = 0;

std::size_t run_until_idle(asio::io_context& ctx) {
  // One poll(): it returns only once a look at the reactor (when there is one) found nothing
  // ready, so a second call would only repeat that look, one more epoll_wait per op with a
  // live reactor, which a service blocked in run() does not make.
  std::size_t const total = ctx.poll();
  if (ctx.stopped()) ctx.restart();
  handlers_run += total;
  return total;
}

/// A live reactor on `ctx` for the whole case when `on` (the `/reactor` rows).
std::unique_ptr<bench::live_reactor> reactor_if(bool on, asio::io_context& ctx) {
  return on ? std::make_unique<bench::live_reactor>(ctx) : nullptr;
}

std::size_t heap_in_use() {
  struct mallinfo2 mi = ::mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::shared_ptr<spdlog::logger> muted_logger() {
  static auto const l = [] {
    auto logger = std::make_shared<spdlog::logger>("supbench-muted",
                                                   std::make_shared<spdlog::sinks::null_sink_st>());
    logger->set_level(spdlog::level::off);
    return logger;
  }();
  return l;
}

std::shared_ptr<spdlog::logger> formatting_null_logger() {
  static auto const l = [] {
    auto logger = std::make_shared<spdlog::logger>("supbench-null-info",
                                                   std::make_shared<spdlog::sinks::null_sink_st>());
    logger->set_level(spdlog::level::info);
    return logger;
  }();
  return l;
}

// --- trigger: what the children wait on ---

/// A one-shot wait the bench completes: fire() completes it with success; a
/// cancellation (terminal, from manage or a brutal kill) with operation_aborted.
/// The handler is type-erased by hand (one allocation, as any_completion_handler would).
struct trigger {
  struct waiter {
    virtual ~waiter() = default;
    virtual void complete(error_code ec) = 0;
  };
  template <class Handler>
  struct waiter_of final : waiter {
    explicit waiter_of(Handler h) : handler(std::move(h)) {}
    void complete(error_code ec) override { std::move(handler)(ec); }
    Handler handler;
  };

  std::unique_ptr<waiter> pending;
  asio::any_io_executor ex;
  asio::any_io_executor fallback;

  [[nodiscard]] bool armed() const { return pending != nullptr; }
  void fire(error_code ec = {}) {
    asio::post(ex, [w = std::move(pending), ec]() mutable { w->complete(ec); });
  }
};

template <class Token>
auto async_wait_fired(trigger& t, Token&& token) {
  return asio::async_initiate<Token, void(error_code)>(
      [](auto h, trigger* t) {
        t->ex = asio::get_associated_executor(h, t->fallback);
        auto slot = asio::get_associated_cancellation_slot(h);
        if (slot.is_connected()) {
          slot.assign([t](asio::cancellation_type) {
            if (t->armed()) t->fire(asio::error::operation_aborted);
          });
        }
        t->pending = std::make_unique<trigger::waiter_of<decltype(h)>>(std::move(h));
      },
      token, &t);
}

// --- children ---

using work_result = boost::system::result<void, int>;

/// Waits for the trigger; then fails by value. A cancellation (shutdown) is a clean end.
awaitable<work_result> wait_then_error(trigger& t) {
  auto [ec] = co_await async_wait_fired(t, asio::as_tuple(asio::deferred));
  if (ec) co_return work_result();
  co_return work_result(boost::system::in_place_error, 1);
}

awaitable<work_result> wait_then_throw(trigger& t) {
  auto [ec] = co_await async_wait_fired(t, asio::as_tuple(asio::deferred));
  if (ec) co_return work_result();
  throw std::runtime_error("boom");
}

awaitable<work_result> error_at_once() { co_return work_result(boost::system::in_place_error, 1); }

awaitable<void> managed_error(device& d, trigger& t) {
  (void)co_await backplane::manage(std::move(d), wait_then_error(t));
}
awaitable<void> managed_throw(device& d, trigger& t) {
  (void)co_await backplane::manage(std::move(d), wait_then_throw(t));
}
awaitable<void> run_throws(trigger& t) {
  auto [ec] = co_await async_wait_fired(t, asio::as_tuple(asio::deferred));
  if (!ec) throw std::runtime_error("boom");
}
/// Without manage: the run itself disconnects with a fault and returns.
awaitable<void> plain_error(device& d, trigger& t) {
  auto [ec] = co_await async_wait_fired(t, asio::as_tuple(asio::deferred));
  if (!ec) d.disconnect(backplane::fault::error());
}
/// The minimal worker: parked on its device until a shutdown request arrives.
awaitable<void> parked(device& d) { (void)co_await d.async_receive(asio::deferred); }

/// How a crashing child is written and how it fails. work_*: the start function returns the
/// work (awaitable<result>) and the supervisor manages it; run_manage_*: the start function
/// returns a run that co_awaits manage(device, work) itself.
enum class failure {
  work_error,
  work_throw,
  run_manage_error,
  run_manage_throw,
  plain_error,
  throw_run
};

backplane::child_spec crashing_child(std::string id, failure how, trigger* t,
                                     std::uint64_t* starts) {
  auto spec = backplane::worker(std::move(id), [how, t, starts](child_context& c) -> start_result {
    ++*starts;
    switch (how) {
      case failure::work_error: return wait_then_error(*t);
      case failure::work_throw: return wait_then_throw(*t);
      case failure::run_manage_error: return managed_error(c.device, *t);
      case failure::run_manage_throw: return managed_throw(c.device, *t);
      case failure::plain_error: return plain_error(c.device, *t);
      case failure::throw_run: return run_throws(*t);
    }
    return backplane::start_error{"unreachable"};
  });
  // These runs do not listen to their device: stop them by cancellation.
  if (how == failure::throw_run || how == failure::plain_error) {
    spec.shutdown = backplane::shutdown_policy::brutal();
  }
  return spec;
}

supervisor start_or_die(asio::io_context& ctx, supervisor_spec spec) {
  auto sup = supervisor::start(ctx.get_executor(), std::move(spec));
  expect(sup.has_value(), "supervisor started");
  run_until_idle(ctx);
  return std::move(*sup);
}

void stop_or_die(asio::io_context& ctx, supervisor& sup) {
  bool stopped = false;
  sup.async_stop([&](error_code ec, backplane::supervisor_exit e) {
    expect(!ec && !e.fault && !e.intensity_exceeded, "clean stop");
    stopped = true;
  });
  run_until_idle(ctx);
  expect(stopped, "supervisor stopped");
}

// --- restart cycles (one_for_one, one child) ---

struct cycle_options {
  failure how = failure::work_error;
  bool strands = false;
  std::shared_ptr<spdlog::logger> logger{};  // default: muted
  std::uint32_t max_restarts = 1'000'000;
  bool reactor = false;  // a live reactor on the context (the `/reactor` rows)
};

/// One supervisor with one crashing child, and the means to crash it.
class one_child_rig {
 public:
  one_child_rig(asio::io_context& ctx, cycle_options const& o) : ctx_(ctx) {
    trig_.fallback = ctx.get_executor();
    supervisor_spec spec;
    spec.name = "bench";
    spec.strategy = restart_strategy::one_for_one;
    spec.max_restarts = o.max_restarts;
    spec.period = std::chrono::seconds(1);
    spec.clock = clock_;
    spec.logger = o.logger ? o.logger : muted_logger();
    spec.child_strands = o.strands;
    spec.children.push_back(crashing_child("w", o.how, &trig_, &starts_));
    sup_.emplace(start_or_die(ctx, std::move(spec)));
    expect(starts_ == 1 && trig_.armed(), "child parked");
  }
  ~one_child_rig() { stop_or_die(ctx_, *sup_); }
  one_child_rig(one_child_rig const&) = delete;
  one_child_rig& operator=(one_child_rig const&) = delete;

  /// One crash -> restarted -> parked again. Out of line: callgrind's
  /// --toggle-collect='*one_child_rig::cycle*' counts exactly the cycles.
  [[gnu::noinline]] void cycle() {
    std::uint64_t const before = starts_;
    clock_->advance(std::chrono::microseconds(2));
    trig_.fire();
    run_until_idle(ctx_);
    expect(starts_ == before + 1 && trig_.armed(), "restarted and parked");
  }

 private:
  asio::io_context& ctx_;
  std::shared_ptr<manual_clock> clock_ = std::make_shared<manual_clock>();
  trigger trig_;
  std::uint64_t starts_ = 0;
  std::optional<supervisor> sup_;
};

constexpr std::int64_t block = 100;  // cycles per fresh supervisor, as OTP's ?BLOCK

void restart_cycle(benchmark::State& state, cycle_options o, std::int64_t per_supervisor) {
  asio::io_context ctx(1);
  auto const live = reactor_if(o.reactor, ctx);
  std::unique_ptr<one_child_rig> rig;
  std::int64_t i = 0;
  std::uint64_t allocs = 0, hops = 0;
  for (auto _ : state) {
    if (i++ % per_supervisor == 0) {
      state.PauseTiming();
      rig.reset();
      rig = std::make_unique<one_child_rig>(ctx, o);
      state.ResumeTiming();
    }
    std::uint64_t const a0 = allocations, h0 = handlers_run;
    rig->cycle();
    allocs += allocations - a0;
    hops += handlers_run - h0;
  }
  rig.reset();  // the timer has stopped with the loop
  run_until_idle(ctx);
  auto const n = static_cast<double>(state.iterations());
  state.counters["allocs_per_op"] = static_cast<double>(allocs) / n;
  state.counters["hops_per_op"] = static_cast<double>(hops) / n;
}

void restart_cycle_error(benchmark::State& s) { restart_cycle(s, {}, block); }
void restart_cycle_error_reactor(benchmark::State& s) {
  restart_cycle(s, {.reactor = true}, block);
}
void restart_cycle_error_run_manage(benchmark::State& s) {
  restart_cycle(s, {.how = failure::run_manage_error}, block);
}
void restart_cycle_error_plain(benchmark::State& s) {
  restart_cycle(s, {.how = failure::plain_error}, block);
}
void restart_cycle_error_strands(benchmark::State& s) {
  restart_cycle(s, {.strands = true}, block);
}
void restart_cycle_error_formatted(benchmark::State& s) {
  restart_cycle(s, {.logger = formatting_null_logger()}, block);
}
void restart_cycle_throw(benchmark::State& s) {
  restart_cycle(s, {.how = failure::work_throw}, block);
}
void restart_cycle_throw_reactor(benchmark::State& s) {
  restart_cycle(s, {.how = failure::work_throw, .reactor = true}, block);
}
void restart_cycle_throw_run_manage(benchmark::State& s) {
  restart_cycle(s, {.how = failure::run_manage_throw}, block);
}
void restart_cycle_throw_run(benchmark::State& s) {
  restart_cycle(s, {.how = failure::throw_run}, block);
}
void restart_cycle_error_sustained(benchmark::State& s) {
  restart_cycle(s, {}, std::numeric_limits<std::int64_t>::max());
}
void restart_cycle_error_sustained_reactor(benchmark::State& s) {
  restart_cycle(s, {.reactor = true}, std::numeric_limits<std::int64_t>::max());
}
void restart_cycle_throw_sustained(benchmark::State& s) {
  restart_cycle(s, {.how = failure::work_throw}, std::numeric_limits<std::int64_t>::max());
}

void floor_throw_catch(benchmark::State& state) {
  for (auto _ : state) {
    try {
      throw std::runtime_error("boom");
    } catch (std::exception const& e) {
      benchmark::DoNotOptimize(e.what());
    }
  }
}

// The Asio floors under a cycle (as in coroutine_bench): a bare co_spawn of a
// coroutine that returns at once, and one resumption through the queue.
awaitable<void> trivial() { co_return; }

template <class Body>
void run_floor(benchmark::State& state, Body body) {
  asio::io_context ctx(1);
  bool finished = false;
  asio::co_spawn(ctx, body(state), [&](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
    finished = true;
  });
  ctx.run();
  expect(finished, "floor driver finished");
}

awaitable<void> floor_co_spawn_driver(benchmark::State& state) {
  auto ex = co_await asio::this_coro::executor;
  for (auto _ : state) co_await asio::co_spawn(ex, trivial(), asio::deferred);
}
awaitable<void> floor_post_driver(benchmark::State& state) {
  auto ex = co_await asio::this_coro::executor;
  for (auto _ : state) co_await asio::post(ex, asio::deferred);
}
void floor_co_spawn(benchmark::State& s) { run_floor(s, floor_co_spawn_driver); }
void floor_post_deferred(benchmark::State& s) { run_floor(s, floor_post_driver); }

// --- floors without a supervisor: what the backplane and Asio cost alone ---

/// A throw that crosses a coroutine boundary, as every exception from an
/// Asio awaitable does: thrown in the callee, stored in its frame, rethrown
/// into the caller at co_await. The throwing restart cycles stand on this.
awaitable<void> thrower() {
  throw std::runtime_error("boom");
  co_return;
}
awaitable<void> floor_throw_awaited_driver(benchmark::State& state) {
  for (auto _ : state) {
    try {
      co_await thrower();
    } catch (std::exception const& e) {
      benchmark::DoNotOptimize(e.what());
    }
  }
}
void floor_throw_awaited(benchmark::State& s) { run_floor(s, floor_throw_awaited_driver); }

/// The smallest thing that restarts a managed child: a coroutine on its own
/// device that links each child as a peer, co_spawns it (with a cancellation
/// slot bound, as a supervisor needs to kill it) and, when its disconnect
/// arrives, spawns the next. No decision, no report, no bookkeeping: the
/// backplane and Asio share of restart_cycle_error.
struct bare_restarter {
  asio::io_context& ctx;
  trigger trig;
  std::uint64_t starts = 0;
  device self;
  std::shared_ptr<asio::cancellation_signal> kill = std::make_shared<asio::cancellation_signal>();

  void spawn_child() {
    device child;
    self.link(child, backplane::link_mode::peer);
    ++starts;
    auto body = [](device d, trigger& t) -> awaitable<void> {
      (void)co_await backplane::manage(std::move(d), wait_then_error(t));
    };
    asio::co_spawn(ctx, body(std::move(child), trig),
                   asio::bind_cancellation_slot(kill->slot(), [k = kill](std::exception_ptr) {}));
  }
  awaitable<void> loop() {
    for (;;) {
      spawn_child();
      auto [ec, m] = co_await self.async_receive(asio::as_tuple(asio::deferred));
      if (ec) co_return;
    }
  }
};

void floor_bare_restart_cycle(benchmark::State& state) {
  asio::io_context ctx(1);
  bare_restarter r{ctx, {}, 0, device{}};
  r.trig.fallback = ctx.get_executor();
  asio::cancellation_signal stop;
  asio::co_spawn(ctx, r.loop(), asio::bind_cancellation_slot(stop.slot(), asio::detached));
  run_until_idle(ctx);
  for (auto _ : state) {
    std::uint64_t const before = r.starts;
    r.trig.fire();
    run_until_idle(ctx);
    expect(r.starts == before + 1 && r.trig.armed(), "bare restart");
  }
  stop.emit(asio::cancellation_type::terminal);
  r.kill->emit(asio::cancellation_type::terminal);
  run_until_idle(ctx);
}

/// 10,000 children as start_10k's minimal worker, each on its own device,
/// linked to one parent device and co_spawned with a bound cancellation slot,
/// from a plain loop: the backplane and Asio share of a started child, in
/// time and bytes.
constexpr int floor_many = 10'000;  // as start_10k

void floor_spawn_10k(benchmark::State& state) {
  double total = 0, bytes = 0;
  for (auto _ : state) {
    asio::io_context ctx(1);
    device parent;
    std::vector<std::shared_ptr<asio::cancellation_signal>> kills;
    kills.reserve(floor_many);
    std::size_t const heap0 = heap_in_use();
    auto const t0 = clock_type::now();
    for (int i = 0; i < floor_many; ++i) {
      device child;
      parent.link(child, backplane::link_mode::peer);
      auto k = std::make_shared<asio::cancellation_signal>();
      auto body = [](device d) -> awaitable<void> { co_await parked(d); };
      asio::co_spawn(ctx, body(std::move(child)),
                     asio::bind_cancellation_slot(k->slot(), [k](std::exception_ptr) {}));
      kills.push_back(std::move(k));
    }
    run_until_idle(ctx);
    double const t = seconds_since(t0);
    bytes += static_cast<double>(heap_in_use() - heap0) / floor_many;
    state.SetIterationTime(t);
    total += t;
    for (auto& k : kills) k->emit(asio::cancellation_type::terminal);
    run_until_idle(ctx);
  }
  auto const n = static_cast<double>(state.iterations());
  state.counters["ns_per_child"] = total / n / floor_many * 1e9;
  state.counters["bytes_per_child"] = bytes / n;
}

// --- one_for_all / rest_for_one with 100 children ---

constexpr int group_size = 100;
constexpr int group_victim = 49;  // #50

class group_rig {
 public:
  group_rig(asio::io_context& ctx, restart_strategy strategy, failure how)
      : ctx_(ctx), triggers_(group_size) {
    supervisor_spec spec;
    spec.name = "bench";
    spec.strategy = strategy;
    spec.max_restarts = 1'000'000;
    spec.period = std::chrono::seconds(1);
    spec.clock = backplane::steady_supervisor_clock();
    spec.logger = muted_logger();
    spec.child_strands = false;
    for (int i = 0; i < group_size; ++i) {
      triggers_[static_cast<std::size_t>(i)].fallback = ctx.get_executor();
      spec.children.push_back(crashing_child(fmt::format("w{}", i + 1), how,
                                             &triggers_[static_cast<std::size_t>(i)], &starts_));
    }
    sup_.emplace(start_or_die(ctx, std::move(spec)));
    expect(starts_ == group_size, "all started");
  }
  ~group_rig() { stop_or_die(ctx_, *sup_); }
  group_rig(group_rig const&) = delete;
  group_rig& operator=(group_rig const&) = delete;

  [[gnu::noinline]] void cycle(std::uint64_t restarted) {
    std::uint64_t const before = starts_;
    triggers_[group_victim].fire();
    run_until_idle(ctx_);
    expect(starts_ == before + restarted, "group restarted");
    for (auto const& t : triggers_) expect(t.armed(), "every child parked");
  }

 private:
  asio::io_context& ctx_;
  std::vector<trigger> triggers_;
  std::uint64_t starts_ = 0;
  std::optional<supervisor> sup_;
};

void group_cycle(benchmark::State& state, restart_strategy strategy, std::uint64_t restarted,
                 failure how = failure::work_error, bool reactor = false) {
  asio::io_context ctx(1);
  auto const live = reactor_if(reactor, ctx);
  std::unique_ptr<group_rig> rig;
  std::int64_t i = 0;
  std::uint64_t allocs = 0, hops = 0;
  for (auto _ : state) {
    if (i++ % block == 0) {
      state.PauseTiming();
      rig.reset();
      rig = std::make_unique<group_rig>(ctx, strategy, how);
      state.ResumeTiming();
    }
    std::uint64_t const a0 = allocations, h0 = handlers_run;
    rig->cycle(restarted);
    allocs += allocations - a0;
    hops += handlers_run - h0;
  }
  rig.reset();  // the timer has stopped with the loop
  run_until_idle(ctx);
  auto const n = static_cast<double>(state.iterations());
  state.counters["allocs_per_op"] = static_cast<double>(allocs) / n;
  state.counters["hops_per_op"] = static_cast<double>(hops) / n;
  state.counters["restarted_per_op"] = static_cast<double>(restarted);
}

void one_for_all_100(benchmark::State& s) {
  group_cycle(s, restart_strategy::one_for_all, group_size);
}
void one_for_all_100_run_manage(benchmark::State& s) {
  group_cycle(s, restart_strategy::one_for_all, group_size, failure::run_manage_error);
}
void rest_for_one_100(benchmark::State& s) {
  group_cycle(s, restart_strategy::rest_for_one, group_size - group_victim);
}
void one_for_all_100_reactor(benchmark::State& s) {
  group_cycle(s, restart_strategy::one_for_all, group_size, failure::work_error, true);
}
void rest_for_one_100_reactor(benchmark::State& s) {
  group_cycle(s, restart_strategy::rest_for_one, group_size - group_victim, failure::work_error,
              true);
}

// --- 10k children: start and shutdown ---

constexpr int many = 10'000;

supervisor empty_supervisor(asio::io_context& ctx) {
  supervisor_spec spec;
  spec.name = "bench";
  spec.max_restarts = 1'000'000;
  spec.period = std::chrono::seconds(1);
  spec.clock = backplane::steady_supervisor_clock();
  spec.logger = muted_logger();
  spec.child_strands = false;
  return start_or_die(ctx, std::move(spec));
}

/// The 10k children: the minimal parked run, a run that co_awaits manage on a
/// never-fired trigger, or the same work returned for the supervisor to manage.
enum class many_kind { parked, run_manage, work };

awaitable<void> start_children(supervisor& sup, many_kind kind, std::vector<trigger>* triggers,
                               int* started) {
  for (int i = 0; i < many; ++i) {
    trigger* t = kind == many_kind::parked ? nullptr : &(*triggers)[static_cast<std::size_t>(i)];
    backplane::child_spec spec =
        kind == many_kind::parked ? backplane::worker(fmt::format("c{}", i), parked)
        : kind == many_kind::run_manage
            ? backplane::worker(fmt::format("c{}", i),
                                [t](device& d) { return managed_error(d, *t); })
            : backplane::worker(fmt::format("c{}", i),
                                [t](device&) { return wait_then_error(*t); });
    auto [ec, child] =
        co_await sup.async_start_child(std::move(spec), asio::as_tuple(asio::deferred));
    expect(!ec && child.device, "child started");
    ++*started;
  }
}

// Out of line so that callgrind can count each phase alone
// (--toggle-collect='*drive_start*' or '*drive_shutdown*').
[[gnu::noipa]] void drive_start(asio::io_context& ctx) { run_until_idle(ctx); }
[[gnu::noipa]] void drive_shutdown(asio::io_context& ctx) { run_until_idle(ctx); }

struct many_round {
  double start_s = 0;
  double stop_s = 0;
  double bytes = 0;
  double allocs = 0;
  double start_hops = 0;
  double stop_hops = 0;
};

many_round start_and_stop_many(many_kind kind, bool reactor) {
  asio::io_context ctx(1);
  auto const live = reactor_if(reactor, ctx);
  std::vector<trigger> triggers(kind == many_kind::parked ? 0 : many);
  for (auto& t : triggers) t.fallback = ctx.get_executor();
  supervisor sup = empty_supervisor(ctx);
  many_round r;
  int started = 0;
  std::size_t const heap0 = heap_in_use();
  std::uint64_t const a0 = allocations;
  std::uint64_t h0 = handlers_run;
  auto t0 = clock_type::now();
  asio::co_spawn(ctx, start_children(sup, kind, &triggers, &started), asio::detached);
  drive_start(ctx);
  r.start_s = seconds_since(t0);
  r.start_hops = static_cast<double>(handlers_run - h0) / many;
  r.allocs = static_cast<double>(allocations - a0) / many;
  r.bytes = static_cast<double>(heap_in_use() - heap0) / many;
  expect(started == many, "10k started");
  bool stopped = false;
  h0 = handlers_run;
  t0 = clock_type::now();
  sup.async_stop([&](error_code ec, backplane::supervisor_exit e) {
    expect(!ec && !e.fault, "clean stop");
    stopped = true;
  });
  drive_shutdown(ctx);
  r.stop_s = seconds_since(t0);
  r.stop_hops = static_cast<double>(handlers_run - h0) / many;
  expect(stopped, "10k stopped");
  return r;
}

void many_case(benchmark::State& state, many_kind kind, bool shutdown, bool reactor = false) {
  double total = 0, bytes = 0, allocs = 0, hops = 0;
  for (auto _ : state) {
    many_round r = start_and_stop_many(kind, reactor);
    double const t = shutdown ? r.stop_s : r.start_s;
    state.SetIterationTime(t);
    total += t;
    bytes += r.bytes;
    allocs += r.allocs;
    hops += shutdown ? r.stop_hops : r.start_hops;
  }
  auto const n = static_cast<double>(state.iterations());
  state.counters["ns_per_child"] = total / n / many * 1e9;
  state.counters["hops_per_child"] = hops / n;
  if (!shutdown) {
    state.counters["bytes_per_child"] = bytes / n;
    state.counters["allocs_per_child"] = allocs / n;
  }
}

void start_10k(benchmark::State& s) { many_case(s, many_kind::parked, false); }
void shutdown_10k(benchmark::State& s) { many_case(s, many_kind::parked, true); }
void start_10k_work(benchmark::State& s) { many_case(s, many_kind::work, false); }
void shutdown_10k_work(benchmark::State& s) { many_case(s, many_kind::work, true); }
void start_10k_reactor(benchmark::State& s) { many_case(s, many_kind::parked, false, true); }
void shutdown_10k_reactor(benchmark::State& s) { many_case(s, many_kind::parked, true, true); }
void start_10k_work_reactor(benchmark::State& s) { many_case(s, many_kind::work, false, true); }
void shutdown_10k_work_reactor(benchmark::State& s) { many_case(s, many_kind::work, true, true); }
void start_10k_run_manage(benchmark::State& s) { many_case(s, many_kind::run_manage, false); }
void shutdown_10k_run_manage(benchmark::State& s) { many_case(s, many_kind::run_manage, true); }

// --- one child among many: start, terminate, delete (O(1) each) ---

/// One round beside the parked crowd: start, terminate and delete a
/// permanent child, then start and terminate a temporary one (dropped when
/// it stops). Out of line: callgrind --toggle-collect='*one_among_round*'.
[[gnu::noipa]] void one_among_round(asio::io_context& ctx, supervisor& sup) {
  int done = 0;
  auto started = [&done](error_code ec, backplane::device_id id) {
    expect(!ec && id, "child started");
    ++done;
  };
  auto ok = [&done](error_code ec) {
    expect(!ec, "call answered without error");
    ++done;
  };
  sup.async_start_child(backplane::worker("p", parked), started);
  sup.async_terminate_child("p", ok);
  sup.async_delete_child("p", ok);
  sup.async_start_child(backplane::worker("t", parked, backplane::restart_type::temporary),
                        started);
  sup.async_terminate_child("t", ok);
  run_until_idle(ctx);
  expect(done == 5, "five calls answered");
}

/// The round beside range(0) parked children: flat from 1k to 100k when no
/// call looks at the other children.
void one_among(benchmark::State& state) {
  auto const n = state.range(0);
  asio::io_context ctx(1);
  supervisor sup = empty_supervisor(ctx);
  std::int64_t started = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    sup.async_start_child(
        backplane::worker(fmt::format("c{}", i), parked, backplane::restart_type::temporary),
        [&started](error_code ec, backplane::device_id) {
          expect(!ec, "crowd child started");
          ++started;
        });
    if (i % 1024 == 1023) run_until_idle(ctx);
  }
  run_until_idle(ctx);
  expect(started == n, "crowd started");
  for (auto _ : state) one_among_round(ctx, sup);  // five calls a round
  stop_or_die(ctx, sup);
}

// --- intensity exceeded ---

/// One supervisor's whole life. Out of line: callgrind --toggle-collect='*intensity_round*'.
[[gnu::noipa]] void intensity_round(asio::io_context& ctx, std::uint64_t& starts) {
  {
    std::uint64_t const before = starts;
    supervisor_spec spec;
    spec.name = "bench";
    spec.max_restarts = 3;
    spec.period = std::chrono::seconds(5);
    spec.clock = backplane::steady_supervisor_clock();
    spec.logger = muted_logger();
    spec.child_strands = false;
    spec.children.push_back(backplane::worker("crasher", [&starts](device&) {
      ++starts;
      return error_at_once();
    }));
    auto sup = supervisor::start(ctx.get_executor(), std::move(spec));
    expect(sup.has_value(), "supervisor started");
    bool gone = false;
    sup->async_wait([&](error_code ec, backplane::supervisor_exit e) {
      expect(!ec && e.intensity_exceeded && e.fault.has_value(), "gave up with a fault");
      gone = true;
    });
    run_until_idle(ctx);
    expect(gone && starts == before + 4, "1 start + 3 restarts, then gone");
  }
}

void intensity_case(benchmark::State& state, bool reactor) {
  asio::io_context ctx(1);
  auto const live = reactor_if(reactor, ctx);
  std::uint64_t starts = 0;
  std::uint64_t const h0 = handlers_run;
  for (auto _ : state) intensity_round(ctx, starts);
  state.counters["hops_per_op"] =
      static_cast<double>(handlers_run - h0) / static_cast<double>(state.iterations());
}
void intensity_exceeded(benchmark::State& s) { intensity_case(s, false); }
void intensity_exceeded_reactor(benchmark::State& s) { intensity_case(s, true); }

// --- logged restarts ---

constexpr std::int64_t logged_cycles = 100'000;

struct line_counts {
  std::uint64_t lines = 0, terminated = 0, restarted = 0;
};

line_counts count_lines(std::string const& path) {
  line_counts c;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    ++c.lines;
    if (line.find("event=child_terminated") != std::string::npos) ++c.terminated;
    if (line.find("event=restarted") != std::string::npos) ++c.restarted;
  }
  return c;
}

void logged(benchmark::State& state, spdlog::level::level_enum level, bool reactor = false) {
  std::string const path = "/tmp/supbench-logged-restarts.log";
  auto const expected_restarted = level <= spdlog::level::info ? logged_cycles : 0;
  double total = 0;
  std::uint64_t hops = 0;
  line_counts last;
  for (auto _ : state) {
    std::remove(path.c_str());
    auto pool = std::make_shared<spdlog::details::thread_pool>(8192, 1);
    auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, true);
    auto logger = std::make_shared<spdlog::async_logger>("supbench-logged", sink, pool,
                                                         spdlog::async_overflow_policy::block);
    logger->set_level(level);
    auto const t0 = clock_type::now();
    {
      cycle_options const o{.logger = logger, .max_restarts = 1000};
      asio::io_context ctx(1);
      auto const live = reactor_if(reactor, ctx);
      std::unique_ptr<one_child_rig> rig;
      std::uint64_t const h0 = handlers_run;
      for (std::int64_t i = 0; i < logged_cycles; ++i) {
        if (i % block == 0) {
          rig.reset();
          rig = std::make_unique<one_child_rig>(ctx, o);
        }
        rig->cycle();
      }
      rig.reset();
      run_until_idle(ctx);
      hops += handlers_run - h0;
    }
    logger->flush();  // queued behind every report: the sink writes them all, then flushes
    logger.reset();
    sink.reset();
    pool.reset();  // the pool's thread finishes the queue and joins; the sink closes the file
    double const t = seconds_since(t0);
    state.SetIterationTime(t);
    total += t;
    last = count_lines(path);
    expect(last.terminated == static_cast<std::uint64_t>(logged_cycles) &&
               last.restarted == static_cast<std::uint64_t>(expected_restarted),
           "every crash and every restart reported");
  }
  auto const n = static_cast<double>(state.iterations());
  state.counters["restarts_per_s"] = static_cast<double>(logged_cycles) * n / total;
  state.counters["crash_reports"] = static_cast<double>(last.terminated);
  state.counters["restarted_reports"] = static_cast<double>(last.restarted);
  state.counters["lines"] = static_cast<double>(last.lines);
  state.counters["restarts"] = static_cast<double>(logged_cycles);
  // Every supervisor's start and stop included (one per 100 restarts).
  state.counters["hops_per_op"] =
      static_cast<double>(hops) / static_cast<double>(logged_cycles) / n;
}

void logged_restarts(benchmark::State& s) { logged(s, spdlog::level::info); }
void logged_restarts_errors_only(benchmark::State& s) { logged(s, spdlog::level::warn); }
void logged_restarts_reactor(benchmark::State& s) { logged(s, spdlog::level::info, true); }

std::vector<std::int64_t> sustained_counts() {
  std::vector<std::int64_t> out;
  char const* env = std::getenv("SUPBENCH_SUSTAINED");
  std::string s = env ? env : "1000,10000,100000,1000000";
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t next = s.find(',', pos);
    if (next == std::string::npos) next = s.size();
    out.push_back(std::stoll(s.substr(pos, next - pos)));
    pos = next + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // SUPBENCH_ITERS=n fixes the iteration count of the free-running cases
  // (for callgrind: instructions per op = total / n).
  char const* fixed = std::getenv("SUPBENCH_ITERS");
  // min and max over the repetitions too: on a noisy VM the min is the most
  // stable figure (the fastest phase the host reached), as in the OTP anchor.
  auto stats = [](benchmark::internal::Benchmark* b) {
    b->ComputeStatistics(
        "min", [](std::vector<double> const& v) { return *std::min_element(v.begin(), v.end()); });
    b->ComputeStatistics(
        "max", [](std::vector<double> const& v) { return *std::max_element(v.begin(), v.end()); });
    return b;
  };
  auto reg = [fixed, &stats](char const* name, void (*fn)(benchmark::State&)) {
    auto* b = stats(benchmark::RegisterBenchmark(name, fn));
    if (fixed) b->Iterations(std::stoll(fixed));
    return b;
  };
  reg("restart_cycle_error", restart_cycle_error);
  reg("restart_cycle_error/reactor", restart_cycle_error_reactor);
  reg("restart_cycle_error_run_manage", restart_cycle_error_run_manage);
  reg("restart_cycle_error_plain", restart_cycle_error_plain);
  reg("restart_cycle_error_strands", restart_cycle_error_strands);
  reg("restart_cycle_error_formatted", restart_cycle_error_formatted);
  reg("restart_cycle_throw", restart_cycle_throw);
  reg("restart_cycle_throw/reactor", restart_cycle_throw_reactor);
  reg("restart_cycle_throw_run_manage", restart_cycle_throw_run_manage);
  reg("restart_cycle_throw_run", restart_cycle_throw_run);
  reg("floor_throw_catch", floor_throw_catch);
  reg("floor_co_spawn", floor_co_spawn);
  reg("floor_post_deferred", floor_post_deferred);
  reg("floor_throw_awaited", floor_throw_awaited);
  reg("floor_bare_restart_cycle", floor_bare_restart_cycle);
  for (std::int64_t n : sustained_counts()) {
    stats(benchmark::RegisterBenchmark(fmt::format("restart_cycle_error_sustained/{}", n).c_str(),
                                       restart_cycle_error_sustained))
        ->Iterations(n);
    stats(benchmark::RegisterBenchmark(
              fmt::format("restart_cycle_error_sustained/{}/reactor", n).c_str(),
              restart_cycle_error_sustained_reactor))
        ->Iterations(n);
    stats(benchmark::RegisterBenchmark(fmt::format("restart_cycle_throw_sustained/{}", n).c_str(),
                                       restart_cycle_throw_sustained))
        ->Iterations(n);
  }
  reg("one_for_all_100", one_for_all_100);
  reg("one_for_all_100_run_manage", one_for_all_100_run_manage);
  reg("rest_for_one_100", rest_for_one_100);
  reg("one_for_all_100/reactor", one_for_all_100_reactor);
  reg("rest_for_one_100/reactor", rest_for_one_100_reactor);
  stats(benchmark::RegisterBenchmark("start_10k", start_10k))->UseManualTime()->Iterations(5);
  stats(benchmark::RegisterBenchmark("shutdown_10k", shutdown_10k))->UseManualTime()->Iterations(5);
  stats(benchmark::RegisterBenchmark("start_10k_work", start_10k_work))
      ->UseManualTime()
      ->Iterations(5);
  stats(benchmark::RegisterBenchmark("shutdown_10k_work", shutdown_10k_work))
      ->UseManualTime()
      ->Iterations(5);
  using many_fn = std::pair<char const*, void (*)(benchmark::State&)>;
  for (auto [name, fn] : {many_fn{"start_10k/reactor", start_10k_reactor},
                          many_fn{"shutdown_10k/reactor", shutdown_10k_reactor},
                          many_fn{"start_10k_work/reactor", start_10k_work_reactor},
                          many_fn{"shutdown_10k_work/reactor", shutdown_10k_work_reactor}}) {
    stats(benchmark::RegisterBenchmark(name, fn))->UseManualTime()->Iterations(5);
  }
  stats(benchmark::RegisterBenchmark("start_10k_run_manage", start_10k_run_manage))
      ->UseManualTime()
      ->Iterations(5);
  stats(benchmark::RegisterBenchmark("shutdown_10k_run_manage", shutdown_10k_run_manage))
      ->UseManualTime()
      ->Iterations(5);
  stats(benchmark::RegisterBenchmark("floor_spawn_10k", floor_spawn_10k))
      ->UseManualTime()
      ->Iterations(5);
  // Flat from 1k to 100k: one child's start/terminate/delete is O(1).
  stats(benchmark::RegisterBenchmark("one_among", one_among))
      ->Arg(1'000)
      ->Arg(10'000)
      ->Arg(100'000)
      ->Iterations(fixed ? std::stoll(fixed) : 2'000);
  reg("intensity_exceeded", intensity_exceeded);
  reg("intensity_exceeded/reactor", intensity_exceeded_reactor);
  stats(benchmark::RegisterBenchmark("logged_restarts", logged_restarts))
      ->UseManualTime()
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
  stats(benchmark::RegisterBenchmark("logged_restarts/reactor", logged_restarts_reactor))
      ->UseManualTime()
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
  stats(benchmark::RegisterBenchmark("logged_restarts_errors_only", logged_restarts_errors_only))
      ->UseManualTime()
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
