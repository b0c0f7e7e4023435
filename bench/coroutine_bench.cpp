// Devices as coroutines on a single-threaded io_context, against the Asio
// floors they stand on, all in one binary so that ratios come from one run.
//
// Every coroutine case runs as ONE driver coroutine that loops over the
// benchmark's iterations (a ping-pong: start an op, co_await its end, next),
// on an io_context(1) that lives for the whole case; nothing per op but the
// op itself. The driver is the long-lived monitor.
//
//   spawn_exit            a fresh device d, monitored by the driver
//                         (mon.link(d, monitor)), is spawned (backplane::spawn) with a body
//                         that returns at once; the driver co_awaits
//                         mon.async_receive(deferred) and checks it got disconnected{d, clean}.
//                         Erlang's spawn_exit (spawn_monitor + receive 'DOWN').
//   spawn_exit_use_awaitable  the same with the use_awaitable token for the receive.
//   monitor_down          a fresh monitored device is spawned with a body that waits in
//                         async_receive (co_spawn starts it inline, so it is parked when
//                         spawn returns; checked), then line.send(shutdown{}) tells it to stop;
//                         it returns and the driver observes disconnected{d, clean}. Erlang's
//                         monitor_down_normal.
//   monitor_down_manage   as monitor_down, but the device runs manage() on a work that
//                         never completes (a steady_timer waiting forever): manage hears the
//                         shutdown, cancels the work, waits for it to finish, disconnects.
//                         The work takes its operation_aborted as a value (as_tuple).
//   monitor_down_manage_throwing  the same with a work that lets operation_aborted escape
//                         as boost::system::system_error, as a plain `co_await
//                         t.async_wait(deferred)` does: one throw, rethrown once per
//                         coroutine level (compare floor_throw_catch).
//   monitor_down_spawn_managed  as monitor_down_manage, the work run by spawn_managed instead
//                         (one coroutine, the work's own; the device heard by a callback
//                         receive): the same table, one frame less.
//   monitor_down_spawn_managed_throwing  the same with the throwing work.
//   bytes_per_device      heap bytes per live device (malloc's own accounting, mallinfo2,
//                         over 100k live devices; counter `bytes_per_device`).
//   bytes_per_waiting_coroutine  heap bytes per spawned device parked in async_receive
//                         (device + coroutine frames + waiter), over 100k of them.
//
// Floors (what the cases cannot go below with Asio 1.26 / Boost 1.81):
//   floor_co_spawn            co_await co_spawn(ex, trivial(), deferred): a bare co_spawn of an
//                             awaitable that returns at once, its completion observed by the
//                             driver.
//   floor_post_deferred       co_await post(ex, deferred): one resumption through the queue.
//   floor_post_use_awaitable  co_await post(ex, use_awaitable).
//   floor_post                post(ex, handler) of a plain lambda that posts the next one.
//   floor_make_shared         std::make_shared<std::uint64_t> and its release.
//   floor_throw_catch         throw std::runtime_error and catch it.
//
// Target (issue 2): spawn_exit and monitor_down within 1.3x of
// floor_co_spawn + floor_post_deferred from the same run.
//
// `/reactor` rows (issue 10): the same case on a context that also holds a pending timer and
// an open loopback socket (bench/live_reactor.hpp), as a service's context does: every pass
// through a short handler queue then runs the reactor too. Counter `hops_per_op`: handlers
// the io_context ran (io_context::run()'s own count) per op, for every driven case.

#include "fixed_iterations.hpp"
#include "live_reactor.hpp"

#include <backplane/backplane.hpp>

#include <benchmark/benchmark.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/result.hpp>

#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using backplane::device;
using backplane::link_mode;
using backplane::message;

// A wrong outcome would make a figure meaningless; stop loudly.
void expect(bool ok) {
  if (!ok) std::abort();
}

void expect_clean_exit(message const& m) {
  auto const* gone = backplane::as_disconnected(m);
  expect(gone != nullptr && !gone->fault);
}

/// Runs `driver(state)` to completion on a fresh single-threaded io_context, with a live
/// reactor on it if `reactor`; publishes the handlers run per op as `hops_per_op`.
template <class Driver>
void run_driver(benchmark::State& state, Driver driver, bool reactor = false) {
  asio::io_context ctx(1);
  std::optional<bench::live_reactor> live;
  if (reactor) live.emplace(ctx);
  bool finished = false;
  asio::co_spawn(ctx, driver(state), [&](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
    finished = true;
    if (live) live->stop_waiting();
  });
  std::size_t const handlers = ctx.run();
  expect(finished);
  state.counters["hops_per_op"] =
      static_cast<double>(handlers) /
      static_cast<double>(std::max<benchmark::IterationCount>(state.iterations(), 1));
}

awaitable<void> returns_at_once(device&) { co_return; }

template <class Token>
awaitable<void> spawn_exit_driver(benchmark::State& state) {
  auto ex = co_await asio::this_coro::executor;
  device mon;
  for (auto _ : state) {
    device d;
    mon.link(d, link_mode::monitor);
    backplane::spawn(ex, std::move(d), returns_at_once);
    message m = co_await mon.async_receive(Token{});
    expect_clean_exit(m);
  }
}

awaitable<void> monitor_down_driver(benchmark::State& state) {
  auto ex = co_await asio::this_coro::executor;
  device mon;
  bool waiting = false;
  for (auto _ : state) {
    device d;
    mon.link(d, link_mode::monitor);
    auto l = backplane::spawn(ex, std::move(d), [&waiting](device& self) -> awaitable<void> {
      waiting = true;
      message m = co_await self.async_receive(asio::deferred);
      waiting = false;
      expect(backplane::as_shutdown(m) != nullptr);
    });
    expect(waiting);  // the device is parked in its receive before being told to stop
    expect(l.send(backplane::shutdown{mon.id()}));
    message m = co_await mon.async_receive(asio::deferred);
    expect_clean_exit(m);
  }
}

template <bool Throwing>
awaitable<boost::system::result<void, int>> forever() {
  asio::steady_timer t(co_await asio::this_coro::executor, asio::steady_timer::time_point::max());
  if constexpr (Throwing) {
    co_await t.async_wait(asio::deferred);  // throws operation_aborted when manage cancels us
  } else {
    auto [ec] = co_await t.async_wait(asio::as_tuple(asio::deferred));
    expect(ec == asio::error::operation_aborted);
  }
  co_return boost::system::result<void, int>();
}

template <bool Throwing>
awaitable<void> managed_forever(device& self) {
  auto r = co_await backplane::manage(std::move(self), forever<Throwing>());
  expect(!r && r.error().is_power_off());
}

template <bool Throwing>
awaitable<void> monitor_down_manage_driver(benchmark::State& state) {
  auto ex = co_await asio::this_coro::executor;
  device mon;
  for (auto _ : state) {
    device d;
    mon.link(d, link_mode::monitor);
    auto l = backplane::spawn(ex, std::move(d), managed_forever<Throwing>);
    expect(l.send(backplane::shutdown{mon.id()}));
    message m = co_await mon.async_receive(asio::deferred);
    expect_clean_exit(m);
  }
}

template <bool Throwing>
awaitable<void> monitor_down_spawn_managed_driver(benchmark::State& state) {
  auto ex = co_await asio::this_coro::executor;
  device mon;
  for (auto _ : state) {
    device d;
    mon.link(d, link_mode::monitor);
    auto l = d.line();
    backplane::spawn_managed(ex, std::move(d), forever<Throwing>(),
                             [](boost::system::result<void, backplane::crash<int>> r) {
                               expect(!r && r.error().is_power_off());
                             });
    expect(l.send(backplane::shutdown{mon.id()}));
    message m = co_await mon.async_receive(asio::deferred);
    expect_clean_exit(m);
  }
}

void spawn_exit(benchmark::State& state) { run_driver(state, spawn_exit_driver<asio::deferred_t>); }
void spawn_exit_reactor(benchmark::State& state) {
  run_driver(state, spawn_exit_driver<asio::deferred_t>, true);
}
void spawn_exit_use_awaitable(benchmark::State& state) {
  run_driver(state, spawn_exit_driver<asio::use_awaitable_t<>>);
}
void monitor_down(benchmark::State& state) { run_driver(state, monitor_down_driver); }
void monitor_down_reactor(benchmark::State& state) { run_driver(state, monitor_down_driver, true); }
void monitor_down_manage(benchmark::State& state) {
  run_driver(state, monitor_down_manage_driver<false>);
}
void monitor_down_manage_throwing(benchmark::State& state) {
  run_driver(state, monitor_down_manage_driver<true>);
}
void monitor_down_spawn_managed(benchmark::State& state) {
  run_driver(state, monitor_down_spawn_managed_driver<false>);
}
void monitor_down_spawn_managed_throwing(benchmark::State& state) {
  run_driver(state, monitor_down_spawn_managed_driver<true>);
}

// --- memory ---

constexpr int live_count = 100'000;

std::size_t heap_in_use() {
  struct mallinfo2 mi = ::mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

void bytes_per_device(benchmark::State& state) {
  double bytes = 0;
  for (auto _ : state) {
    std::vector<device> devices;
    devices.reserve(live_count);
    std::size_t before = heap_in_use();
    for (int i = 0; i < live_count; ++i) devices.emplace_back();
    bytes = static_cast<double>(heap_in_use() - before) / live_count;
    benchmark::DoNotOptimize(devices.data());
  }
  state.counters["bytes_per_device"] = bytes;
}

awaitable<void> parks(device& self) { (void)co_await self.async_receive(asio::deferred); }

void bytes_per_waiting_coroutine(benchmark::State& state) {
  double bytes = 0;
  for (auto _ : state) {
    asio::io_context ctx(1);
    std::vector<backplane::line> lines;
    lines.reserve(live_count);
    std::size_t before = heap_in_use();
    for (int i = 0; i < live_count; ++i) lines.push_back(backplane::spawn(ctx, device(), parks));
    ctx.poll();
    bytes = static_cast<double>(heap_in_use() - before) / live_count;
    // Each line reference keeps a (small) state alive after exit; count it as
    // part of the device, since a supervisor holds one too.
    for (auto& l : lines) expect(l.send(backplane::shutdown{backplane::device_id()}));
    ctx.run();
  }
  state.counters["bytes_per_device"] = bytes;
}

// --- floors ---

awaitable<void> trivial() { co_return; }

awaitable<void> floor_co_spawn_driver(benchmark::State& state) {
  auto ex = co_await asio::this_coro::executor;
  for (auto _ : state) co_await asio::co_spawn(ex, trivial(), asio::deferred);
}

template <class Token>
awaitable<void> floor_post_driver(benchmark::State& state) {
  auto ex = co_await asio::this_coro::executor;
  for (auto _ : state) co_await asio::post(ex, Token{});
}

void floor_co_spawn(benchmark::State& state) { run_driver(state, floor_co_spawn_driver); }
void floor_co_spawn_reactor(benchmark::State& state) {
  run_driver(state, floor_co_spawn_driver, true);
}
void floor_post_deferred(benchmark::State& state) {
  run_driver(state, floor_post_driver<asio::deferred_t>);
}
void floor_post_deferred_reactor(benchmark::State& state) {
  run_driver(state, floor_post_driver<asio::deferred_t>, true);
}
void floor_post_use_awaitable(benchmark::State& state) {
  run_driver(state, floor_post_driver<asio::use_awaitable_t<>>);
}

struct repost {
  benchmark::State* state;
  asio::io_context* ctx;
  void operator()() const {
    if (state->KeepRunning()) asio::post(*ctx, *this);
  }
};

void floor_post(benchmark::State& state) {
  asio::io_context ctx(1);
  asio::post(ctx, repost{&state, &ctx});
  ctx.run();
}

void floor_make_shared(benchmark::State& state) {
  for (auto _ : state) {
    auto p = std::make_shared<std::uint64_t>(42);
    benchmark::DoNotOptimize(p);
  }
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

}  // namespace

BENCHMARK(spawn_exit)->Apply(bench::fixed_iterations);
BENCHMARK(spawn_exit_reactor)->Name("spawn_exit/reactor")->Apply(bench::fixed_iterations);
BENCHMARK(spawn_exit_use_awaitable)->Apply(bench::fixed_iterations);
BENCHMARK(monitor_down)->Apply(bench::fixed_iterations);
BENCHMARK(monitor_down_reactor)->Name("monitor_down/reactor")->Apply(bench::fixed_iterations);
BENCHMARK(monitor_down_manage)->Apply(bench::fixed_iterations);
BENCHMARK(monitor_down_manage_throwing)->Apply(bench::fixed_iterations);
BENCHMARK(monitor_down_spawn_managed)->Apply(bench::fixed_iterations);
BENCHMARK(monitor_down_spawn_managed_throwing)->Apply(bench::fixed_iterations);
BENCHMARK(floor_co_spawn)->Apply(bench::fixed_iterations);
BENCHMARK(floor_co_spawn_reactor)->Name("floor_co_spawn/reactor")->Apply(bench::fixed_iterations);
BENCHMARK(floor_post_deferred)->Apply(bench::fixed_iterations);
BENCHMARK(floor_post_deferred_reactor)
    ->Name("floor_post_deferred/reactor")
    ->Apply(bench::fixed_iterations);
BENCHMARK(floor_post_use_awaitable)->Apply(bench::fixed_iterations);
BENCHMARK(floor_post)->Apply(bench::fixed_iterations);
BENCHMARK(floor_make_shared)->Apply(bench::fixed_iterations);
BENCHMARK(floor_throw_catch)->Apply(bench::fixed_iterations);
BENCHMARK(bytes_per_device)->Iterations(1);
BENCHMARK(bytes_per_waiting_coroutine)->Iterations(1);

BENCHMARK_MAIN();
